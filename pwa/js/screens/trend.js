// My trend: the patient's own pain, sleep and activity over 30 or 90 days.
import { h, t, tn, fill, addDays, formatDay, formatNumber, formatDateTime, wideTable } from '../ui.js';
import { state } from '../state.js';
import { dailyChart } from '../chart.js';
import { currentByDay, today } from './today.js';

let period = 30;

export async function trendScreen() {
  const now = today();
  const days = [];
  for (let i = period - 1; i >= 0; i -= 1) days.push(addDays(now, -i));
  const byDay = await currentByDay('diary');
  const series = (item) => new Map(days.filter((d) => byDay.has(d) && typeof byDay.get(d).answers[item] === 'number')
    .map((d) => [d, byDay.get(d).answers[item]]));
  const short = (d) => formatDay(d, { day: 'numeric', month: 'short' });

  const toggle = h('div', { class: 'choices two', role: 'group', 'aria-label': t('trend_days') },
    [30, 90].map((n) => h('button', { type: 'button', class: 'toggle', 'aria-pressed': String(period === n),
      onclick: async () => { period = n; const screen = await trendScreen(); fill(document.getElementById('main'), screen); screen.querySelector(`[data-days="${n}"]`).focus(); }, 'data-days': String(n) },
    t(n === 30 ? 'trend_30' : 'trend_90'))));

  const seen = state.me && state.me.team_seen_at
    ? t('team_seen', { date: formatDateTime(state.me.team_seen_at, state.me.timezone) }) : t('team_not_seen');

  const charts = [
    { id: 'pain', title: t('trend_pain'), yMax: 10, yTicks: [0, 5, 10], series: [
      { key: 'pain_avg', label: t('trend_pain_avg'), kind: 'line', cls: 's1' },
      { key: 'pain_worst', label: t('trend_pain_worst'), kind: 'line', cls: 's2' }] },
    { id: 'sleep', title: t('trend_sleep'), yMax: 12, yTicks: [0, 4, 8, 12], series: [
      { key: 'sleep_hours', label: t('trend_sleep'), kind: 'bar', cls: 'bar' }] },
    { id: 'activity', title: t('trend_activity'), yMax: 10, yTicks: [0, 5, 10], series: [
      { key: 'activity', label: t('trend_activity'), kind: 'line', cls: 's1' }] },
  ];
  const figures = charts.map((c) => {
    const data = c.series.map((s) => ({ ...s, values: series(s.key) }));
    const summaries = data.map((s) => summary(s, period));
    const sumId = `sum-${c.id}`;
    if (c.id === 'sleep') c.yMax = Math.max(12, ...data[0].values.values());
    const any = data.some((s) => s.values.size);
    return h('figure', { class: 'card chart-card', 'aria-labelledby': `title-${c.id}` },
      h('h2', { id: `title-${c.id}` }, c.title),
      any ? dailyChart({ days, series: data, yMax: c.yMax, yTicks: c.yTicks, labelFor: short, describedBy: sumId }) : null,
      data.length > 1 ? h('ul', { class: 'legend' }, data.map((s) => h('li', {}, h('span', { class: `key ${s.cls}`, 'aria-hidden': 'true' }), s.label))) : null,
      h('figcaption', { id: sumId, class: 'hint' }, any ? summaries.join(' ') : t('trend_none')),
      any ? table(days, data, c.title) : null);
  });
  return h('section', { class: 'screen' }, h('h1', {}, t('trend_title')),
    h('p', { class: 'notice' }, seen), toggle, figures);
}

function summary(s, days) {
  const v = [...s.values.values()];
  if (!v.length) return `${s.label}: ${t('trend_none')}`;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return t('trend_summary', { label: s.label, days, filled: tn('trend_filled', v.length), mean: formatNumber(mean), min: formatNumber(Math.min(...v)), max: formatNumber(Math.max(...v)) });
}

/** The same numbers as a table, for screen readers and for anyone who prefers numbers. */
function table(days, data, title) {
  const rows = days.filter((d) => data.some((s) => s.values.has(d))).reverse();
  const fmt = (d) => formatDay(d, { weekday: 'short', day: 'numeric', month: 'short' });
  return h('details', {}, h('summary', {}, t('trend_table')),
    wideTable(t('trend_table_label', { title }), h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('trend_date')), data.map((s) => h('th', { scope: 'col' }, s.label)))),
      h('tbody', {}, rows.map((d) => h('tr', {}, h('th', { scope: 'row' }, fmt(d)),
        data.map((s) => h('td', {}, s.values.has(d) ? formatNumber(s.values.get(d)) : '–'))))))));
}
