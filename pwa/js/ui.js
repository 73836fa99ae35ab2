// Small helpers every screen uses: building DOM, texts in the patient's language, dates.
import nl from './i18n/nl.js';
import en from './i18n/en.js';

const MESSAGES = { nl, en };
let lang = 'nl';

export function setLanguage(code) {
  lang = MESSAGES[code] ? code : 'nl';
  document.documentElement.lang = lang;
}

export function language() { return lang; }

/** The message `key` in the current language, with {name} placeholders filled in. */
export function t(key, vars = {}) {
  const text = MESSAGES[lang][key] ?? MESSAGES.nl[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** A count in words: `{key}_one` or `{key}_other` by the language's plural rules ("1 dag", "2 dagen"). */
export function tn(key, n, vars = {}) {
  const form = new Intl.PluralRules(locale()).select(n) === 'one' ? 'one' : 'other';
  return t(`${key}_${form}`, { ...vars, n });
}

/** A text from a definition file: {nl, en} in the current language. */
export function tx(text) {
  if (!text) return '';
  if (typeof text === 'string') return text;
  return text[lang] || text.nl || text.en || '';
}

export function locale() { return lang === 'en' ? 'en-GB' : 'nl-NL'; }

/** Create an element: h('button', {class: 'x', onclick: fn}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

/** Replace an element's children; like h(), null, undefined and false are left out (never "null"). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A questionnaire's title in plain words ("Vragen over uw stemming"), else its own title. */
export function plainTitle(q) {
  const key = `qtitle_${q.id}`;
  const plain = t(key);
  return plain === key ? tx(q.title) : plain;
}

/** The instrument's own short name ("PHQ-9"), shown small under the plain title. */
export function instrumentName(q) {
  return tx(q.short_title) || tx(q.title);
}

// Navigation icons that look like what they open: a diary page with a pen, a clipboard
// with a list, a rising line chart, a gear. 24×24, drawn with the text colour.
const ICONS = {
  today: ['M5 3h11l3 3v15H5z', 'M8 8h6M8 12h8M8 16h5', 'M14 17l5-5 2 2-5 5h-2z'],
  tasks: ['M8 4h8v3H8z', 'M6 5H5v16h14V5h-1', 'M8 11h1M11 11h5M8 15h1M11 15h5'],
  trend: ['M4 4v16h16', 'M7 15l4-5 3 3 5-6'],
  settings: ['M12 8.5a3.5 3.5 0 1 0 0 7 3.5 3.5 0 1 0 0-7z',
    'M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1'],
};

export function icon(name) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', class: `icon icon-${name}`, 'aria-hidden': 'true', focusable: 'false' })) svg.setAttribute(k, v);
  for (const d of ICONS[name]) {
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function formatNumber(n, digits = 1) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(n);
}

/** A data table that scrolls sideways by itself when it is wider than the screen (WCAG 1.4.10
 * allows that for tables); the page never does. Focusable, so a keyboard can scroll it too. */
export function wideTable(label, table) {
  return h('div', { class: 'table-wrap', role: 'region', tabindex: '0', 'aria-label': label }, table);
}

// -- dates --------------------------------------------------------------------------------
// A diary day is a 'YYYY-MM-DD' in the patient's time zone (from the server profile).

export function localDate(when = new Date(), timeZone) {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(when);
  } catch (e) {
    return new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit' }).format(when);
  }
}

export function addDays(isoDate, days) {
  const [y, m, d] = isoDate.split('-').map(Number);
  const dt = new Date(Date.UTC(y, m - 1, d + days, 12));
  return dt.toISOString().slice(0, 10);
}

/** "maandag 23 november" for a diary day. */
export function formatDay(isoDate, opts = { weekday: 'long', day: 'numeric', month: 'long' }) {
  const [y, m, d] = isoDate.split('-').map(Number);
  return new Intl.DateTimeFormat(locale(), { ...opts, timeZone: 'UTC' }).format(new Date(Date.UTC(y, m - 1, d, 12)));
}

export function formatDateTime(iso, timeZone) {
  const opts = { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' };
  try { return new Intl.DateTimeFormat(locale(), { ...opts, timeZone }).format(new Date(iso)); } catch (e) {
    return new Intl.DateTimeFormat(locale(), opts).format(new Date(iso));
  }
}

/** Now as ISO 8601 with this device's UTC offset: 2026-03-29T20:15:00+02:00. */
export function isoWithOffset(d = new Date()) {
  const pad = (n) => String(Math.abs(n)).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

// -- announcing ---------------------------------------------------------------------------
/** Show a message in the shared live region (screen readers hear it too). */
export function announce(text, kind = 'info') {
  const el = document.getElementById('status');
  el.textContent = '';
  el.className = `status ${kind}`;
  // A fresh text node after clearing makes screen readers announce repeated messages too.
  requestAnimationFrame(() => { el.textContent = text; });
  if (text) el.dataset.shown = '1';
}

export function clearAnnouncement() {
  const el = document.getElementById('status');
  el.textContent = '';
  el.className = 'status';
}
