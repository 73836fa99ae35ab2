// Settings: reminder time, language, notifications, what waits to be sent, my data, leave.
import { h, t, tn, tx, fill, plainTitle, formatDay, addDays, localDate, announce, setLanguage } from '../ui.js';
import { state, store, render, outboxItems, signOut } from '../state.js';
import { api, setMe, sendOutbox } from '../api.js';
import { languageChoice, notificationsBlock } from './join.js';
import { disablePush, pushStatus } from '../push.js';

// The outbox list follows sends made elsewhere (online event, service worker).
let refreshOutbox = null;
document.addEventListener('outbox-changed', () => refreshOutbox && refreshOutbox());

export async function settingsScreen() {
  const me = state.me;
  let chosen = me.language || 'nl';
  const time = h('input', { id: 'reminder', type: 'time', value: me.reminder_time || '20:00', required: true });
  const prefsError = h('p', { class: 'error', role: 'alert' });
  const prefs = h('form', { class: 'stack' },
    h('div', { class: 'field' }, h('label', { for: 'reminder' }, t('reminder_time')), time),
    languageChoice(chosen, (code) => { chosen = code; }),
    prefsError,
    h('button', { type: 'submit', class: 'primary' }, t('settings_save')));
  prefs.addEventListener('submit', async (event) => {
    event.preventDefault();
    prefsError.textContent = '';
    try {
      await setMe(await api('PATCH', '/me', { reminder_time: time.value, language: chosen }));
      setLanguage(chosen);
      await render();
      announce(t('settings_saved'), 'ok');
    } catch (e) {
      prefsError.textContent = e.status === 0 ? t('settings_offline') : e.message;
    }
  });

  const notif = await notificationsBlock();
  const push = await pushStatus();
  if (push !== 'on') notif.insertBefore(h('p', { class: 'notice warn' }, t('notif_off_warning')), notif.children[1]);
  if (push === 'on') {
    notif.append(h('button', { type: 'button', class: 'secondary', onclick: async (e) => {
      e.currentTarget.disabled = true;
      try { await disablePush(); } catch (err) { announce(t('settings_offline'), 'error'); }
      render({ keepStatus: true });
    } }, t('notif_turn_off')));
  }

  const outbox = h('div', {});
  const fillOutbox = async () => fill(outbox, await outboxView());
  await fillOutbox();
  refreshOutbox = () => (outbox.isConnected ? fillOutbox() : null);
  const sendButton = h('button', { type: 'button', class: 'primary', onclick: async () => {
    sendButton.disabled = true;
    const s = await sendOutbox();
    announce(s.offline ? t('send_offline') : s.serverError ? t('send_server') : t('send_done', { n: s.sent }), s.offline || s.serverError ? 'queued' : 'ok');
    await fillOutbox();
    sendButton.disabled = false;
  } }, t('send_now'));

  const exportButton = h('button', { type: 'button', class: 'secondary', 'aria-describedby': 'export-explain', onclick: downloadData }, t('export_button'));
  const leaveButton = h('button', { type: 'button', class: 'danger', onclick: leave }, t('leave_button'));

  return h('section', { class: 'screen' }, h('h1', {}, t('settings_title')),
    h('section', { class: 'card' }, prefs),
    notif,
    pauseCard(),
    h('section', { class: 'card', 'aria-labelledby': 'outbox-title' }, h('h2', { id: 'outbox-title' }, t('outbox_title')), outbox, sendButton),
    h('section', { class: 'card', 'aria-labelledby': 'export-title' }, h('h2', { id: 'export-title' }, t('export_title')),
      h('p', {}, h('a', { href: '#/summary', class: 'button primary' }, t('summary_link'))),
      h('p', { class: 'hint', id: 'export-explain' }, t('export_explain')), exportButton),
    h('section', { class: 'card', 'aria-labelledby': 'leave-title' }, h('h2', { id: 'leave-title' }, t('leave_title')), h('p', {}, t('leave_explain')), leaveButton));
}

async function outboxView() {
  const items = (await outboxItems()).sort((a, b) => a.queued_at.localeCompare(b.queued_at));
  if (!items.length) return [h('p', { class: 'outbox-count' }, t('outbox_empty'))];
  const list = h('ul', { class: 'outbox' });
  for (const item of items) {
    const q = state.questionnaires.get(item.body.questionnaire);
    const title = t('outbox_item', { title: q ? plainTitle(q) : item.body.questionnaire, date: formatDay(item.body.local_date) });
    const problem = item.state === 'conflict' ? t('outbox_conflict') : item.state === 'invalid' ? t('outbox_invalid', { error: item.error }) : null;
    list.append(h('li', { class: problem ? 'problem' : null }, h('span', {}, title),
      problem ? h('p', { class: 'error' }, problem) : null,
      // Only answers the server refused can be removed: pending ones are still on their way.
      problem ? h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('outbox_remove')}: ${title}`,
        onclick: async () => { await store.del('outbox', item.id); await sendOutbox(); } }, t('outbox_remove')) : null));
  }
  return [h('p', { class: 'outbox-count' }, tn('outbox_count', items.length)), list];
}

async function downloadData() {
  try {
    const blob = await api('GET', '/me/export');
    const url = URL.createObjectURL(blob instanceof Blob ? blob : new Blob([JSON.stringify(blob)], { type: 'text/csv' }));
    const a = h('a', { href: url, download: `pijnwacht-${new Date().toISOString().slice(0, 10)}.csv`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    announce(t('export_failed', { error: e.message }), 'error');
  }
}

async function leave() {
  const pending = (await outboxItems()).filter((i) => i.state === 'pending').length;
  const yes = h('button', { type: 'button', class: 'danger' }, t('leave_yes'));
  const no = h('button', { type: 'button', class: 'secondary' }, t('leave_no'));
  const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'leave-q' },
    h('h2', { id: 'leave-q' }, t('leave_confirm')),
    pending ? h('p', { class: 'error' }, tn('leave_pending', pending)) : null,
    h('div', { class: 'row buttons' }, no, yes));
  no.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    try {
      await disablePush().catch(() => {});
      await api('DELETE', '/me/device');
      dialog.close();
      await signOut('left');
      announce(t('leave_done'), 'ok');
    } catch (e) {
      dialog.close();
      announce(e.status === 0 ? t('settings_offline') : e.message, 'error');
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  no.focus();
}

/** Pause reminders up to 14 days (a holiday); the team sees it, the silence rule waits. */
function pauseCard() {
  const me = state.me;
  const today = localDate(new Date(), me.timezone);
  const message = h('p', { class: 'hint', role: 'status' });
  const card = h('section', { class: 'card', 'aria-labelledby': 'pause-title' }, h('h2', { id: 'pause-title' }, t('pause_title')));
  const change = async (method, body, done) => {
    try {
      await setMe(await api(method, '/me/pause', body));
      await render({ keepStatus: true });
      announce(done(), 'ok');
    } catch (e) {
      message.textContent = e.status === 0 ? t('pause_offline') : e.message;
    }
  };
  if (me.paused_until) {
    card.append(h('p', { class: 'notice' }, t('pause_on', { date: formatDay(me.paused_until) })),
      h('button', { type: 'button', class: 'secondary', onclick: () => change('DELETE', undefined, () => t('pause_ended')) }, t('pause_end')), message);
    return card;
  }
  const until = h('input', { id: 'pause-until', type: 'date', min: today, max: addDays(today, 14), value: addDays(today, 7) });
  const form = h('form', { class: 'stack' }, h('p', {}, t('pause_explain')),
    h('div', { class: 'field' }, h('label', { for: 'pause-until' }, t('pause_until')), until),
    h('button', { type: 'submit', class: 'secondary' }, t('pause_button')), message);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    change('PUT', { until: until.value }, () => t('pause_saved', { date: formatDay(until.value) }));
  });
  card.append(form);
  return card;
}
