// The patient app's start: the router between screens, the frame around them (navigation,
// offline banner, emergency line), the service worker. Nothing imports this module.
import { h, t, fill, icon, clearAnnouncement } from './ui.js';
import { state, loadCached, setOnline, onRender, outboxItems } from './state.js';
import { refresh, sendOutbox } from './api.js';
import { emergencyText } from './crisis.js';
import { renewPush } from './push.js';
import { joinScreen, setupScreen } from './screens/join.js';
import { todayScreen } from './screens/today.js';
import { tasksScreen, taskScreen } from './screens/tasks.js';
import { trendScreen } from './screens/trend.js';
import { settingsScreen } from './screens/settings.js';
import { summaryScreen } from './screens/summary.js';

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

/** Draw the screen the address names (the join screen until this device has joined). */
async function render({ keepStatus = false } = {}) {
  const n = ++rendering;
  const main = document.getElementById('main');
  let screen;
  if (!state.token || state.ended) {
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

// -- the frame ---------------------------------------------------------------------------
function renderChrome() {
  fill(document.getElementById('emergency'), emergencyText());
  document.title = t('app_name');
  showOnline();
  const nav = document.getElementById('nav');
  nav.setAttribute('aria-label', t('nav_label'));
  if (!state.token || state.ended || location.hash === '#/setup') { nav.hidden = true; return; }
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

/** "U bent offline" while the server cannot be reached. */
function showOnline() {
  const banner = document.getElementById('offline');
  banner.textContent = t('offline_banner');
  banner.hidden = state.online;
}

/** The number of answers waiting to be sent, on the settings tab. */
async function updateOutboxBadge() {
  const badge = document.querySelector('#nav .badge');
  if (!badge) return;
  const n = (await outboxItems()).length;
  badge.textContent = n ? String(n) : '';
  badge.hidden = !n;
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
      document.dispatchEvent(new CustomEvent('outbox-changed', { detail: msg.summary || {} }));
    }
  });
}

async function start() {
  onRender(render);
  document.addEventListener('online-changed', showOnline);
  document.addEventListener('outbox-changed', updateOutboxBadge);
  registerServiceWorker();
  try { if (navigator.storage && navigator.storage.persist) navigator.storage.persist(); } catch (e) { /* best effort */ }
  await loadCached();
  setOnline(navigator.onLine);
  window.addEventListener('online', async () => {
    setOnline(true);
    sendOutbox();
    // Definitions that never came (offline since joining): draw the screen again with them.
    const had = state.questionnaires.size;
    if (await refresh() && !had && state.token) render({ keepStatus: true });
  });
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

start();
