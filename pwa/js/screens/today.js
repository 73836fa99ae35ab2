// Today: the daily diary on one screen, saved with one tap; yesterday can be filled in later.
import { h, t, tx, localDate, addDays, formatDay, isoWithOffset, announce } from '../ui.js';
import { state, store, render } from '../state.js';
import { submit, refresh } from '../api.js';
import { renderItem } from '../items.js';
import { showCrisis, isSevereDrowsiness, showDrowsinessAdvice, emergencyText } from '../crisis.js';
import { snoozeControl } from '../later.js';

const DAYS_BACK = 7; // how far back a missed day may be filled in

export function today() { return localDate(new Date(), state.me && state.me.timezone); }

/** The current response per local_date for a questionnaire: the latest authored wins (edits). */
export async function currentByDay(questionnaire) {
  const byDay = new Map();
  for (const r of await store.all('history')) {
    if (r.questionnaire !== questionnaire) continue;
    const prev = byDay.get(r.local_date);
    if (!prev || Date.parse(r.authored_at) > Date.parse(prev.authored_at)) byDay.set(r.local_date, r);
  }
  return byDay;
}

/** The first diary day that may be filled in: a week back, never before the patient's start. */
function firstDay(now) {
  const weekBack = addDays(now, -DAYS_BACK);
  const start = state.me && state.me.enrolled_on;
  return start && start > weekBack ? (start > now ? now : start) : weekBack;
}

export async function todayScreen(day) {
  const now = today();
  const first = firstDay(now);
  if (!day || day > now || day < first) day = now;
  const diary = state.questionnaires.get('diary');
  if (!diary) return notLoaded();
  const byDay = await currentByDay('diary');
  const existing = byDay.get(day);
  const answers = existing ? { ...existing.answers } : {};
  // Last known sleep hours: a sensible start for the stepper instead of 0.
  const lastSleep = [...byDay.values()].sort((a, b) => b.local_date.localeCompare(a.local_date))
    .map((r) => r.answers.sleep_hours).find((v) => typeof v === 'number');

  const form = h('form', { class: 'diary', novalidate: true });
  const widgets = new Map();
  let sideEffectsHeading = false;
  for (const item of diary.items) {
    if (item.id.startsWith('se_') && !sideEffectsHeading) {
      form.append(h('h2', { class: 'group' }, t('side_effects')));
      sideEffectsHeading = true;
    }
    const w = renderItem(item, answers[item.id], (v) => {
      if (v === undefined) delete answers[item.id]; else answers[item.id] = v;
      error.textContent = '';
      if (item.safety && typeof v === 'number' && v > item.safety.above) showCrisis();
    }, { markRequired: true, start: item.id === 'sleep_hours' ? (lastSleep ?? 7) : undefined });
    widgets.set(item.id, w);
    form.append(w.el);
  }
  const error = h('p', { class: 'error', role: 'alert' });
  const save = h('button', { type: 'submit', class: 'primary big save' }, t('save'));
  form.append(h('div', { class: 'savebar' }, error, save, h('p', { class: 'small' }, emergencyText())));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const missing = diary.items.filter((i) => i.required && answers[i.id] === undefined);
    if (missing.length) {
      error.textContent = t('required_missing', { items: missing.map((i) => tx(i.text)).join('; ') });
      widgets.get(missing[0].id).focus();
      return;
    }
    save.disabled = true;
    try {
      // Every save is a new response with a new UUID; the latest one of the day counts.
      const result = await submit({
        questionnaire: diary.id, version: diary.version, authored_at: isoWithOffset(), local_date: day,
        task_id: diaryTaskId(day), answers: { ...answers },
      });
      if (result.status === 'refused') {
        // Online and refused: it is not saved, and "sent when there is internet" would be untrue.
        announce(t('saved_refused', { error: result.error }), 'error');
        return;
      }
      announce(result.status === 'sent' ? t('saved') : t('saved_queued'), result.status === 'sent' ? 'ok' : 'queued');
      note.textContent = t('today_done');
      note.hidden = false;
      // Saved (sent or waiting for internet): what to do now comes from the phone itself.
      if (isSevereDrowsiness(answers)) showDrowsinessAdvice();
    } catch (e) {
      announce(t('save_failed', { error: e.message }), 'error');
    } finally {
      save.disabled = false;
    }
  });

  const yesterday = addDays(now, -1);
  const note = h('p', { class: 'notice', hidden: !existing }, t('today_done'));
  const top = [];
  if (state.tasks.some((task) => task.questionnaire !== 'diary')) {
    top.push(h('p', { class: 'notice' }, h('a', { href: '#/tasks' }, t('open_tasks_hint'))));
  }
  const diaryTask = day === now && !existing ? state.tasks.find((x) => x.id === diaryTaskId(day)) : null;
  if (diaryTask) top.push(snoozeControl(diaryTask));
  if (day === now && yesterday >= first && !byDay.has(yesterday)) {
    top.push(h('p', { class: 'notice row' }, h('span', {}, t('yesterday_missing')), ' ',
      h('a', { href: `#/today/${yesterday}`, class: 'button secondary' }, t('fill_yesterday'))));
  } else if (day !== now) {
    top.push(h('p', {}, h('a', { href: '#/today' }, t('back_to_today'))));
  }
  return h('section', { class: 'screen' },
    h('h1', {}, day === now ? t('today_title') : t('diary_for', { date: formatDay(day) }),
      day === now ? h('span', { class: 'sub' }, formatDay(day)) : null),
    top, note,
    diary.intro ? h('p', { class: 'intro' }, tx(diary.intro)) : null,
    form,
    now > first ? otherDay(now, first, day, byDay) : null);
}

/** Joined, but the diary's questions never reached this phone (the connection went right
 * after joining): say so, and a way to try again; it also comes by itself once online. */
function notLoaded() {
  const retry = h('button', { type: 'button', class: 'primary', onclick: async () => {
    retry.disabled = true;
    if (await refresh()) await render();
    else { announce(t('today_not_loaded_still'), 'queued'); retry.disabled = false; }
  } }, t('retry'));
  return h('section', { class: 'screen' }, h('h1', {}, t('today_title')),
    h('p', { class: 'notice' }, t('today_not_loaded')), retry);
}

/** An open diary task for that day, if the schedule made one (links the answer to it). */
function diaryTaskId(day) {
  const task = state.tasks.find((x) => x.questionnaire === 'diary' && x.due_at && localDate(new Date(x.due_at), state.me.timezone) === day);
  return task ? task.id : null;
}

function otherDay(now, first, day, byDay) {
  const select = h('select', { id: 'other-day' });
  for (let d = now; d >= first; d = addDays(d, -1)) {
    select.append(h('option', { value: d, selected: d === day }, `${formatDay(d)}${byDay.has(d) ? ' ✓' : ''}`));
  }
  const form = h('form', { class: 'otherday' },
    h('label', { for: 'other-day' }, t('choose_day')), h('div', { class: 'row' }, select,
      h('button', { type: 'submit', class: 'secondary' }, t('show_day'))));
  form.addEventListener('submit', (e) => { e.preventDefault(); location.hash = select.value === now ? '#/today' : `#/today/${select.value}`; });
  return h('section', { class: 'card', 'aria-labelledby': 'other-day-title' }, h('h2', { id: 'other-day-title' }, t('other_day')), form);
}
