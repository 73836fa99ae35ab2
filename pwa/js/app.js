// The patient app: state, talking to the server, routing between screens, start-up.
import './core.js';
import { h, t, fill, icon, setLanguage, language, announce, clearAnnouncement } from './ui.js';
import { joinScreen, setupScreen } from './screens/join.js';
import { todayScreen } from './screens/today.js';
import { tasksScreen, taskScreen } from './screens/tasks.js';
import { trendScreen } from './screens/trend.js';
import { settingsScreen } from './screens/settings.js';
import { summaryScreen } from './screens/summary.js';
import { renewPush } from './push.js';

const PW = self.Pijnwacht;
export const store = PW.store;

/** What the screens share: profile, definitions and tasks (last known, kept in IndexedDB). */
export const state = {
  token: null,
  me: null,
  questionnaires: new Map(),
  tasks: [],
  online: navigator.onLine,
};

export class ApiError extends Error {
  constructor(status, detail, extra) { super(detail); this.status = status; this.extra = extra; }
}

/** Call the patient API; throws ApiError (status 0: no connection). */
export async function api(method, path, body) {
  // The server writes its refusals in this language (contract v2), also before joining.
  const headers = { Accept: 'application/json', 'Accept-Language': language() };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (e) {
    setOnline(false);
    throw new ApiError(0, t('error_network'));
  }
  setOnline(true);
  if (res.status === 401 && state.token) {
    await signOut('removed');
    throw new ApiError(401, t('join_removed'));
  }
  const type = res.headers.get('Content-Type') || '';
  const data = res.status === 204 ? null : type.includes('json') ? await res.json().catch(() => null) : await res.blob();
  if (!res.ok) throw new ApiError(res.status, (data && data.detail) || `HTTP ${res.status}`, data && data.extra);
  return data;
}

// -- state kept on the device -------------------------------------------------------------
export async function setMe(me) {
  state.me = me;
  await store.put('kv', me, 'me');
  setLanguage(me.language || 'nl');
  await healRestoredServer(me.generation);
}

async function loadCached() {
  state.token = (await store.get('kv', 'token')) || null;
  const me = await store.get('kv', 'me');
  if (me) { state.me = me; setLanguage(me.language || 'nl'); }
  const defs = (await store.get('kv', 'questionnaires')) || [];
  state.questionnaires = new Map(defs.map((q) => [q.id, q]));
  state.tasks = (await store.get('kv', 'tasks')) || [];
}

/** Fetch profile, definitions and tasks; the last known copies stay when offline. */
export async function refresh() {
  if (!state.token) return false;
  try {
    const [me, qs, tasks] = await Promise.all([api('GET', '/me'), api('GET', '/questionnaires'), api('GET', '/tasks')]);
    await setMe(me);
    state.questionnaires = new Map(qs.questionnaires.map((q) => [q.id, q]));
    await store.put('kv', qs.questionnaires, 'questionnaires');
    const done = (await store.get('kv', 'done_tasks')) || [];
    state.tasks = tasks.tasks.filter((task) => !done.includes(task.id));
    await store.put('kv', state.tasks, 'tasks');
    await pullHistory();
    return true;
  } catch (e) {
    return false;
  }
}

/** A new database generation means the server was restored from a replica or a backup and may
 * lack answers this phone saw confirmed: send them all again (design.md, "Scale"). The new id
 * is kept only once they are in the outbox, so an interrupted heal starts over next time. */
async function healRestoredServer(generation) {
  if (!generation) return;
  const known = await store.get('kv', 'generation');
  if (known && known !== generation) {
    await PW.flush(); // let a send under way finish: the one below must see the whole outbox
    await PW.resendHistory();
  }
  await store.put('kv', generation, 'generation');
  if (known && known !== generation) await sendOutbox();
}

/** Bring responses from the server into local history (a new phone restores its trend). */
async function pullHistory() {
  const since = (await store.get('kv', 'history_since')) || new Date(Date.now() - 100 * 86400e3).toISOString();
  const started = new Date().toISOString();
  const data = await api('GET', `/responses?since=${encodeURIComponent(since)}`);
  for (const r of data.responses || []) await store.put('history', r);
  await PW.pruneHistory();
  // Overlap a little: received_at is the server's clock, not ours.
  await store.put('kv', new Date(Date.parse(started) - 3600e3).toISOString(), 'history_since');
}

export async function signIn(token, me) {
  state.token = token;
  await store.put('kv', token, 'token');
  await setMe(me);
}

export async function signOut(reason) {
  state.token = null;
  state.me = null;
  state.tasks = [];
  await PW.store.clearAll();
  if (reason === 'removed') sessionStorage.setItem('pijnwacht-removed', '1');
  location.hash = '#/join';
  render();
}

// -- outbox ------------------------------------------------------------------------------
/** Put a response in the outbox and try to send it. Returns {status: 'sent'} when the server
 * has it, {status: 'queued'} when it waits for a connection or a server that answers, and
 * {status: 'refused', error} when the server refused it (the reason as the server wrote it). */
export async function submit(response) {
  const item = await PW.enqueue(response);
  await sendOutbox();
  const still = await store.get('outbox', item.id);
  if (!still) return { status: 'sent' };
  if (still.state && still.state !== 'pending') return { status: 'refused', error: still.error && still.error !== still.state ? still.error : t('refused_fallback') };
  requestBackgroundSync();
  return { status: 'queued' };
}

let retryTimer = null;
let retryDelay = 0;

export async function sendOutbox() {
  clearTimeout(retryTimer);
  const summary = await PW.flush();
  if (summary.unauthorized) { await signOut('removed'); return summary; }
  if (summary.offline) setOnline(false); else if (summary.sent || summary.serverError) setOnline(true);
  updateOutboxBadge();
  document.dispatchEvent(new CustomEvent('outbox-changed', { detail: summary }));
  // While the app is open, keep trying (5 s, 10 s, … up to 5 min): the `online` event can
  // come before the connection really works, and a server may be down for a while.
  if (summary.offline || summary.serverError) {
    retryDelay = Math.min(retryDelay ? retryDelay * 2 : 5000, 300000);
    retryTimer = setTimeout(sendOutbox, retryDelay);
  } else {
    retryDelay = 0;
  }
  return summary;
}

async function requestBackgroundSync() {
  try {
    const reg = await navigator.serviceWorker?.ready;
    if (reg && reg.sync) await reg.sync.register(PW.SYNC_TAG);
  } catch (e) { /* not supported or not allowed: online event and app start cover it */ }
}

export async function outboxItems() { return PW.store.all('outbox'); }

async function updateOutboxBadge() {
  const badge = document.querySelector('#nav .badge');
  if (!badge) return;
  const n = (await outboxItems()).length;
  badge.textContent = n ? String(n) : '';
  badge.hidden = !n;
}

// -- connectivity ------------------------------------------------------------------------
export function setOnline(online) {
  state.online = online;
  const banner = document.getElementById('offline');
  banner.textContent = t('offline_banner');
  banner.hidden = online;
}

// -- routing -----------------------------------------------------------------------------
const ROUTES = [
  [/^#?\/?(today)?$/, () => todayScreen()],
  [/^#\/today\/(\d{4}-\d{2}-\d{2})$/, (m) => todayScreen(m[1])],
  [/^#\/tasks$/, () => tasksScreen()],
  [/^#\/task\/(\d+)(?:\/(\d+))?$/, (m) => taskScreen(Number(m[1]), m[2] === undefined ? undefined : Number(m[2]))],
  [/^#\/trend$/, () => trendScreen()],
  [/^#\/settings$/, () => settingsScreen()],
  [/^#\/summary$/, () => summaryScreen()],
  [/^#\/setup$/, () => setupScreen()],
];

let rendering = 0;

export async function render({ keepStatus = false } = {}) {
  const n = ++rendering;
  const main = document.getElementById('main');
  let screen;
  if (!state.token) {
    screen = await joinScreen();
  } else {
    const hash = location.hash || '#/today';
    const route = ROUTES.find(([re]) => re.test(hash));
    screen = route ? await route[1](hash.match(route[0])) : await todayScreen();
  }
  if (n !== rendering) return; // a newer navigation won
  if (!keepStatus) clearAnnouncement();
  fill(main, screen);
  renderChrome();
  fitBars();
  // Move focus to the new screen's heading so screen readers start there.
  const heading = main.querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: false }); }
  window.scrollTo(0, 0);
}

function renderChrome() {
  fill(document.getElementById('emergency'), emergencyText());
  document.title = t('app_name');
  const nav = document.getElementById('nav');
  nav.setAttribute('aria-label', t('nav_label'));
  if (!state.token || location.hash === '#/setup') { nav.hidden = true; return; }
  nav.hidden = false;
  const here = (location.hash || '#/today').split('/')[1] || 'today';
  const link = (href, key, name) => {
    const current = href.slice(2) === here || (here === 'task' && href === '#/tasks') || (here === 'summary' && href === '#/settings');
    return h('a', { href, 'aria-current': current ? 'page' : null, class: 'navlink' },
      icon(name), h('span', { class: 'label' }, t(key)),
      href === '#/settings' ? h('span', { class: 'badge', hidden: true }) : null);
  };
  fill(nav, link('#/today', 'nav_today', 'today'), link('#/tasks', 'nav_tasks', 'tasks'),
    link('#/trend', 'nav_trend', 'trend'), link('#/settings', 'nav_settings', 'settings'));
  updateOutboxBadge();
}

// The root font size the stylesheet sets (112.5 % of 16 px): more than 1.5 times that is large text.
const NORMAL_TEXT_PX = 18;

/** Fixed bars only while they leave the screen to the content (see app.css, bars-in-flow). */
function fitBars() {
  const body = document.body;
  const rootPx = parseFloat(getComputedStyle(document.documentElement).fontSize) || NORMAL_TEXT_PX;
  const large = rootPx >= NORMAL_TEXT_PX * 1.5;
  body.classList.toggle('large-text', large);
  const nav = document.getElementById('nav');
  const bar = document.querySelector('.savebar');
  const covered = (nav.hidden ? 0 : nav.offsetHeight) + (bar ? bar.offsetHeight : 0);
  body.classList.toggle('bars-in-flow', large || covered > window.innerHeight * 0.3);
}

/** "… bel 112 of de huisartsenpost" with 112 as a tap-to-call link. */
export function emergencyText() {
  const [before, after] = t('emergency').split('112');
  return after === undefined ? [before] : [before, h('a', { href: 'tel:112' }, '112'), after];
}

// -- start-up ----------------------------------------------------------------------------
function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js').catch(() => { /* the app works online without it */ });
  navigator.serviceWorker.addEventListener('message', (event) => {
    const msg = event.data || {};
    if (msg.type === 'open' && msg.url) {
      const url = new URL(msg.url, location.origin);
      if (url.hash && url.hash !== location.hash) location.hash = url.hash; else render();
    } else if (msg.type === 'outbox-changed') {
      updateOutboxBadge();
      document.dispatchEvent(new CustomEvent('outbox-changed', { detail: msg.summary || {} }));
    }
  });
}

async function start() {
  registerServiceWorker();
  try { if (navigator.storage && navigator.storage.persist) navigator.storage.persist(); } catch (e) { /* best effort */ }
  await loadCached();
  setOnline(navigator.onLine);
  window.addEventListener('online', () => { setOnline(true); sendOutbox(); refresh(); });
  window.addEventListener('offline', () => setOnline(false));
  window.addEventListener('hashchange', () => render());
  window.addEventListener('resize', fitBars);
  // The text size can change without a resize (browser text scaling): follow the root's size.
  if ('ResizeObserver' in window) new ResizeObserver(fitBars).observe(document.querySelector('header.top'));
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible' && state.token) sendOutbox(); });
  const firstLoad = state.token && state.questionnaires.size === 0;
  if (firstLoad) await refresh();
  await render();
  if (state.token) {
    await sendOutbox();
    renewPush();
    const langBefore = document.documentElement.lang;
    if (!firstLoad && await refresh()) {
      // Tasks or language may have changed: redraw lists, never a form being filled in.
      const hash = location.hash || '#/today';
      if (/^#\/(tasks|trend)$/.test(hash) || langBefore !== document.documentElement.lang) render({ keepStatus: true });
    }
  }
}

export { announce };
start();
