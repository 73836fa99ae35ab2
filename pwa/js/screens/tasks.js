// Questionnaires: the open tasks, and a generic runner — one item per screen, resumable.
import { h, t, tx, fill, plainTitle, instrumentName, formatDay, localDate, isoWithOffset, announce } from '../ui.js';
import { state, store } from '../state.js';
import { submit } from '../api.js';
import { renderItem } from '../items.js';
import { today } from './today.js';
import { showCrisis, crisisBox } from '../crisis.js';
import { snoozeControl } from '../later.js';

const draftKey = (taskId) => `task:${taskId}`;

/** The last day a task can be done: it expires at the start of the next day, usually. */
function lastDay(expiresAt) {
  return formatDay(localDate(new Date(Date.parse(expiresAt) - 60e3), state.me.timezone));
}

export async function tasksScreen() {
  const tasks = state.tasks.filter((task) => task.questionnaire !== 'diary');
  const drafts = new Set((await store.all('drafts')).map((d) => d.key));
  const list = h('ul', { class: 'tasks' });
  for (const task of tasks) {
    const q = state.questionnaires.get(task.questionnaire);
    const title = q ? plainTitle(q) : (tx(task.label) || task.questionnaire);
    list.append(h('li', { class: 'card' },
      h('h2', {}, title, q ? h('span', { class: 'sub' }, instrumentName(q)) : null),
      task.expires_at ? h('p', { class: 'hint' }, t('task_due', { date: lastDay(task.expires_at) })) : null,
      q ? h('a', { class: 'button primary', href: `#/task/${task.id}`, 'aria-label': `${drafts.has(draftKey(task.id)) ? t('task_resume') : t('task_start')}: ${title} (${instrumentName(q)})` },
        drafts.has(draftKey(task.id)) ? t('task_resume') : t('task_start'))
        : h('p', {}, t('task_unknown')),
      q ? snoozeControl(task) : null));
  }
  return h('section', { class: 'screen' }, h('h1', {}, t('tasks_title')),
    tasks.length ? list : h('p', { class: 'notice' }, t('tasks_none')));
}

/** One question of a task per screen: `#/task/<id>/<n>`, so the phone's back button steps
 * back one question (the answers are kept in the draft) instead of leaving the list. */
export async function taskScreen(taskId, index) {
  const task = state.tasks.find((x) => x.id === taskId);
  const q = task && state.questionnaires.get(task.questionnaire);
  if (!q) {
    // Back from the task list to a questionnaire just sent: say so, not "not available".
    const done = ((await store.get('kv', 'done_tasks')) || []).includes(taskId);
    return h('section', { class: 'screen' }, h('h1', {}, t('tasks_title')),
      h('p', { class: done ? 'notice' : null }, t(done ? 'task_sent_already' : 'task_unknown')), h('a', { href: '#/tasks' }, t('tasks_back')));
  }
  const draft = (await store.get('drafts', draftKey(taskId))) || { key: draftKey(taskId), questionnaire: q.id, version: q.version, answers: {}, index: 0 };
  if (draft.version !== q.version) { draft.answers = {}; draft.index = 0; draft.version = q.version; }
  // Back and forward in history move between questions; never past the first unanswered
  // required one (an old URL cannot skip a question).
  if (Number.isInteger(index)) {
    const open = q.items.findIndex((i) => i.required && draft.answers[i.id] === undefined);
    draft.index = open < 0 ? index : Math.min(index, open);
  }
  const items = q.items;
  const section = h('section', { class: 'screen runner' });
  const keep = () => { draft.updated_at = new Date().toISOString(); return store.put('drafts', draft); };

  function show(index, focusQuestion, how) {
    draft.index = Math.max(0, Math.min(items.length - 1, index));
    keep();
    const url = `#/task/${taskId}/${draft.index}`;
    const here = { task: taskId, index: draft.index };
    if (how === 'push') history.pushState(here, '', url); else history.replaceState(here, '', url);
    const item = items[draft.index];
    const last = draft.index === items.length - 1;
    const error = h('p', { class: 'error', role: 'alert' });
    const safety = h('div', { class: 'safety-slot' });
    const updateSafety = (v) => {
      const hit = item.safety && typeof v === 'number' && v > item.safety.above;
      fill(safety, hit ? crisisBox() : null);
      return hit;
    };
    const widget = renderItem(item, draft.answers[item.id], (v) => {
      if (v === undefined) delete draft.answers[item.id]; else draft.answers[item.id] = v;
      error.textContent = '';
      keep();
      // A worrying answer shows the crisis contacts at once — on the phone, offline too.
      if (updateSafety(v)) showCrisis();
    }, {});
    updateSafety(draft.answers[item.id]);
    const progress = h('div', { class: 'progress' },
      h('p', { id: 'progress-text' }, t('runner_progress', { n: draft.index + 1, total: items.length })),
      h('progress', { max: String(items.length), value: String(draft.index + 1), 'aria-labelledby': 'progress-text' }));
    const back = h('button', { type: 'button', class: 'secondary', disabled: draft.index === 0, onclick: () => {
      // The entry before is this task's previous question: go there as the back button does.
      if (draft.index > 0 && visited.has(draft.index - 1)) history.back(); else show(draft.index - 1, true);
    } }, t('runner_back'));
    const next = h('button', { type: 'submit', class: 'primary' }, last ? t('runner_send') : t('runner_next'));
    const later = h('a', { href: '#/tasks', class: 'button link', onclick: () => announce(t('runner_saved_later'), 'ok') }, t('runner_later'));
    const form = h('form', { class: 'stack', novalidate: true }, widget.el, safety, error, h('div', { class: 'row buttons' }, back, next), later);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (item.required && draft.answers[item.id] === undefined) { error.textContent = t('runner_required'); widget.focus(); return; }
      if (!last) { visited.add(draft.index); await keep(); show(draft.index + 1, true, 'push'); return; }
      const firstMissing = items.findIndex((i) => i.required && draft.answers[i.id] === undefined);
      if (firstMissing >= 0) { show(firstMissing, true); return; }
      next.disabled = true;
      const result = await submit({
        questionnaire: q.id, version: q.version, authored_at: isoWithOffset(), local_date: today(),
        task_id: task.id, answers: { ...draft.answers },
      });
      if (result.status === 'refused') {
        // The draft stays: the patient can change an answer and send again.
        error.textContent = t('runner_refused', { error: result.error });
        next.disabled = false;
        return;
      }
      const sent = result.status === 'sent';
      await store.del('drafts', draft.key);
      // Hide the task until the server's list no longer has it.
      const done = (await store.get('kv', 'done_tasks')) || [];
      await store.put('kv', [...done, task.id].slice(-200), 'done_tasks');
      state.tasks = state.tasks.filter((x) => x.id !== task.id);
      await store.put('kv', state.tasks, 'tasks');
      location.hash = '#/tasks';
      // After the list has rendered, so the message is not cleared.
      setTimeout(() => announce(sent ? t('runner_sent') : t('runner_queued'), sent ? 'ok' : 'queued'), 50);
    });
    fill(section,
      h('h1', {}, plainTitle(q), h('span', { class: 'sub' }, instrumentName(q))),
      progress,
      q.recall && draft.index === 0 ? h('p', { class: 'intro' }, tx(q.recall)) : null,
      q.intro && draft.index === 0 ? h('p', { class: 'intro' }, tx(q.intro)) : null,
      form);
    // "Vraag 3 van 9" first, then the question: where a screen reader user expects to be.
    if (focusQuestion) { const p = progress.firstChild; p.tabIndex = -1; p.focus(); }
  }
  // Questions reached forward in this visit: their history entries lie behind us.
  const visited = new Set();
  show(draft.index, false);
  return section;
}
