// The inbox refreshes itself: every minute (while the tab is visible) it fetches the same
// address - so the filters hold - and swaps in the new table rows, keeping the keyboard
// focus on the same link or button. A new urgent alert is announced to screen readers (the
// aria-live region). No inline script: the strict CSP stays.
// A refresh is not the nurse's activity: it says so (X-Pijnwacht-Refresh), so the session's
// idle sign-out still comes on a shared ward PC, and the audit log is not written again for
// patients already logged. When the session has ended the refreshing stops, and the page
// says so with a link to sign in that comes back here.
const table = document.getElementById('inbox-table');
const live = document.getElementById('inbox-live');
const note = document.getElementById('inbox-refreshed');
const expired = document.getElementById('inbox-expired');
const seconds = Number(note?.dataset.refreshSeconds || 60);
let timer = null;

const ids = (root) => new Set([...root.querySelectorAll('tr[data-alert]')].map((tr) => tr.dataset.alert));
let known = table ? ids(table) : new Set();

async function refresh() {
  if (!table || document.hidden) return;
  let response;
  try {
    response = await fetch(location.href, {
      credentials: 'same-origin',
      headers: { Accept: 'text/html', 'X-Pijnwacht-Refresh': '1' },
    });
  } catch {
    return; // offline for a moment: try again next time
  }
  if (new URL(response.url).pathname.startsWith('/clinic/login')) {
    signedOut();
    return;
  }
  if (!response.ok || !new URL(response.url).pathname.startsWith('/clinic/inbox')) return;
  const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
  const fresh = doc.querySelector('#inbox-table tbody');
  if (!fresh) return;
  const focused = document.activeElement?.closest('#inbox-table') ? document.activeElement.dataset.focus : null;
  const urgent = [...fresh.querySelectorAll('tr[data-severity="urgent"][data-status="open"]')].filter(
    (tr) => !known.has(tr.dataset.alert),
  );
  table.tBodies[0].replaceWith(document.adoptNode(fresh));
  known = ids(table);
  if (focused) table.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
  if (urgent.length) {
    const first = urgent[0];
    const who = first.querySelector('td:nth-child(2)')?.textContent.trim() || '';
    const why = first.querySelector('td.why strong')?.textContent.trim() || '';
    live.textContent =
      urgent.length === 1
        ? `Nieuwe urgente melding: ${who}, ${why}.`
        : `${urgent.length} nieuwe urgente meldingen, de eerste: ${who}, ${why}.`;
  }
  const now = new Date();
  note.textContent = `Deze lijst ververst zichzelf elke minuut; laatst om ${now.toLocaleTimeString('nl-NL', { hour: '2-digit', minute: '2-digit' })}.`;
}

// The session ended (idle or its hours): stop, and say so where it is seen and heard.
function signedOut() {
  clearInterval(timer);
  document.removeEventListener('visibilitychange', onVisible);
  const link = document.createElement('a');
  link.href = expired.dataset.signIn;
  link.textContent = 'log opnieuw in';
  expired.className = 'error';
  expired.replaceChildren('Uw sessie is verlopen — ', link, '. Deze lijst wordt niet meer ververst.');
  note.textContent = 'Deze lijst wordt niet meer ververst: u bent uitgelogd.';
}

function onVisible() {
  if (!document.hidden) refresh();
}

// Back from "In behandeling nemen" (#melding-N, the id of that alert's link): the keyboard
// goes on at that row, or at the first one if it left the list, not at the top of the page.
// After the load: Chromium's own scroll to the fragment would take the focus away again.
function focusRow() {
  if (!table || !/^#melding-\d+$/.test(location.hash)) return;
  const link = document.getElementById(location.hash.slice(1)) || table.querySelector('[data-focus^="alert-"]');
  link?.focus();
}

if (document.readyState === 'complete') focusRow();
else window.addEventListener('load', focusRow, { once: true });
if (table) {
  timer = setInterval(refresh, seconds * 1000);
  document.addEventListener('visibilitychange', onVisible);
}
