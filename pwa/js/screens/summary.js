// My summary: the patient's own diary by week and questionnaire scores, printable on A4.
import { h, t, tx, plainTitle, instrumentName, addDays, formatDay, formatNumber, wideTable } from '../ui.js';
import { state } from '../state.js';
import { api } from '../api.js';
import { dailyChart } from '../chart.js';
import { currentByDay, today } from './today.js';

const DAYS = 84; // twelve whole weeks: fits two A4 pages with the scores

function mean(values) {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

export async function summaryScreen() {
  const now = today();
  const start = state.me && state.me.enrolled_on && state.me.enrolled_on > addDays(now, -DAYS + 1) ? state.me.enrolled_on : addDays(now, -DAYS + 1);
  const byDay = await currentByDay('diary');
  const days = [];
  for (let d = start; d <= now; d = addDays(d, 1)) days.push(d);
  const answer = (d, item) => { const r = byDay.get(d); const v = r && r.answers[item]; return typeof v === 'number' ? v : null; };
  const fmt = (v) => (v === null ? '–' : formatNumber(v));

  // Weeks from the newest back, each a list of its days.
  const weeks = [];
  for (let i = days.length; i > 0; i -= 7) weeks.push(days.slice(Math.max(0, i - 7), i));
  const rows = weeks.map((week) => {
    const col = (item) => week.map((d) => answer(d, item)).filter((v) => v !== null);
    const filled = week.filter((d) => byDay.has(d)).length;
    const doses = col('rescue_doses');
    return h('tr', {},
      h('th', { scope: 'row' }, `${formatDay(week[0], { day: 'numeric', month: 'short' })} – ${formatDay(week[week.length - 1], { day: 'numeric', month: 'short' })}`),
      h('td', {}, `${filled}/${week.length}`),
      h('td', {}, fmt(mean(col('pain_avg')))), h('td', {}, fmt(mean(col('pain_worst')))),
      h('td', {}, fmt(mean(col('sleep_hours')))), h('td', {}, doses.length ? String(doses.reduce((a, b) => a + b, 0)) : '–'));
  });
  const series = (item) => new Map(days.filter((d) => answer(d, item) !== null).map((d) => [d, answer(d, item)]));
  const pain = [
    { key: 'pain_avg', label: t('trend_pain_avg'), kind: 'line', cls: 's1', values: series('pain_avg') },
    { key: 'pain_worst', label: t('trend_pain_worst'), kind: 'line', cls: 's2', values: series('pain_worst') },
  ];
  const chart = pain.some((s) => s.values.size)
    ? dailyChart({ days, series: pain, yMax: 10, yTicks: [0, 5, 10], labelFor: (d) => formatDay(d, { day: 'numeric', month: 'short' }), describedBy: 'summary-pain' })
    : null;

  let scores = null;
  try { scores = (await api('GET', '/me/summary')).scores; } catch (e) { scores = null; }
  const scoreList = scores === null ? h('p', {}, t('summary_scores_offline'))
    : scores.length === 0 ? h('p', {}, t('summary_scores_none'))
      : wideTable(t('summary_scores'), h('table', { class: 'scores' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('trend_date')), h('th', { scope: 'col' }, t('summary_questionnaire')),
          h('th', { scope: 'col' }, t('summary_score')))),
        h('tbody', {}, [...scores].reverse().map((s) => {
          const q = state.questionnaires.get(s.questionnaire);
          const name = q ? `${plainTitle(q)} (${instrumentName(q)})` : s.questionnaire;
          return h('tr', {}, h('th', { scope: 'row' }, formatDay(s.local_date, { day: 'numeric', month: 'short', year: 'numeric' })),
            h('td', {}, name), h('td', {}, `${tx(s.label)}: ${formatNumber(s.value)}${s.band ? ` (${tx(s.band)})` : ''}`));
        }))));

  return h('section', { class: 'screen summary' },
    h('h1', {}, t('summary_title'), h('span', { class: 'sub' }, `${state.me.display_name} · ${formatDay(start, { day: 'numeric', month: 'long' })} – ${formatDay(now, { day: 'numeric', month: 'long', year: 'numeric' })}`)),
    h('p', { class: 'no-print' }, h('button', { type: 'button', class: 'primary', onclick: () => window.print() }, t('summary_print'))),
    h('h2', { id: 'summary-pain' }, t('trend_pain')),
    chart,
    chart ? h('ul', { class: 'legend' }, pain.map((s) => h('li', {}, h('span', { class: `key ${s.cls}`, 'aria-hidden': 'true' }), s.label))) : h('p', {}, t('trend_none')),
    h('h2', {}, t('summary_weeks')),
    wideTable(t('summary_weeks'), h('table', { class: 'weeks' },
      h('thead', {}, h('tr', {}, [t('summary_week'), t('summary_filled'), t('trend_pain_avg'), t('trend_pain_worst'), t('trend_sleep'), t('summary_doses')]
        .map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows))),
    h('h2', {}, t('summary_scores')),
    scoreList,
    h('p', { class: 'hint' }, t('summary_footer', { date: formatDay(now, { day: 'numeric', month: 'long', year: 'numeric' }) })));
}
