// The inbox refreshes itself: every minute (while the tab is visible) it fetches the same
// address - so the filters hold - and swaps in the new table rows, keeping the keyboard
// focus on the same link or button. A new urgent alert is announced to screen readers (the
// aria-live region). No inline script: the strict CSP stays.
const table = document.getElementById('inbox-table');
const live = document.getElementById('inbox-live');
const note = document.getElementById('inbox-refreshed');
const seconds = Number(note?.dataset.refreshSeconds || 60);

const ids = (root) => new Set([...root.querySelectorAll('tr[data-alert]')].map((tr) => tr.dataset.alert));
let known = table ? ids(table) : new Set();

async function refresh() {
  if (!table || document.hidden) return;
  let response;
  try {
    response = await fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
  } catch {
    return; // offline for a moment: try again next time
  }
  // Signed out meanwhile (the session expired): leave the page as it is.
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

if (table) {
  setInterval(refresh, seconds * 1000);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });
}
