// "Later herinneren": one more reminder in 1 or 3 hours, within the task's window.
import { h, t, formatDateTime, announce } from './ui.js';
import { state } from './state.js';
import { api } from './api.js';

export const SNOOZE_HOURS = [1, 3];

/** Buttons "Over 1 uur" / "Over 3 uur" for an open task; none once its window closes first. */
export function snoozeControl(task) {
  const left = Date.parse(task.expires_at) - Date.now();
  const hours = SNOOZE_HOURS.filter((n) => n * 3600e3 < left);
  if (!hours.length) return null;
  const message = h('p', { class: 'hint', role: 'status' });
  const buttons = hours.map((n) => h('button', { type: 'button', class: 'secondary', onclick: async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    try {
      const res = await api('POST', `/tasks/${task.id}/snooze`, { hours: n });
      message.textContent = t('later_set', { time: formatDateTime(res.remind_at, state.me.timezone) });
      announce(message.textContent, 'ok');
    } catch (err) {
      message.textContent = err.status === 0 ? t('later_offline') : err.message;
    } finally {
      button.disabled = false;
    }
  } }, t(n === 1 ? 'later_1' : 'later_n', { n })));
  return h('div', { class: 'later' }, h('p', { class: 'later-title' }, t('later_title')),
    h('div', { class: 'row buttons' }, buttons), message);
}
