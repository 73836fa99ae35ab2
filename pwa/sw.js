/* Pijnwacht service worker: the app shell offline, the outbox by Background Sync, Web Push.
 * The shell is cache-first under a versioned name: change VERSION whenever a shell file
 * changes, so phones fetch the new shell once and drop the old one. This cache is the app's
 * long-lived cache: sw.js itself is never cached (the browser checks it on every start), and
 * the shell is fetched as `<file>?v=VERSION`, which the server marks cacheable for a year
 * (a new VERSION is a new address, so an update always reaches the phone).
 */
importScripts('/js/core.js');

const VERSION = 'pijnwacht-shell-v11';
const SHELL = [
  '/', '/manifest.webmanifest', '/css/app.css',
  '/js/main.js', '/js/state.js', '/js/api.js', '/js/core.js', '/js/ui.js', '/js/items.js', '/js/chart.js', '/js/crisis.js', '/js/push.js', '/js/later.js',
  '/js/i18n/nl.js', '/js/i18n/en.js',
  '/js/screens/join.js', '/js/screens/today.js', '/js/screens/tasks.js', '/js/screens/trend.js', '/js/screens/settings.js', '/js/screens/summary.js',
  '/icons/icon-192.png', '/icons/icon-512.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL.map((u) => `${u}?v=${VERSION}`))).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== VERSION) await caches.delete(name);
    await self.clients.claim();
    // App start without a page: send what waits (covers browsers without Background Sync).
    await sendOutbox();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  // The API is never cached here: the app keeps last-known data per patient in IndexedDB.
  if (req.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/api/')) return;
  // The clinic pages and the API docs share the origin but are not the app: leave them alone.
  if (/^\/(clinic|schema|healthz)(\/|$)/.test(url.pathname)) return;
  if (req.mode === 'navigate') {
    // Any page of the app (also /?code=...) is the shell; the router reads the URL.
    event.respondWith(caches.match('/', { ignoreSearch: true }).then((hit) => hit || fetch(req)));
    return;
  }
  event.respondWith(caches.match(req, { ignoreSearch: true }).then((hit) => hit || fetch(req)));
});

async function sendOutbox() {
  const summary = await self.Pijnwacht.flush();
  const windows = await self.clients.matchAll({ type: 'window' });
  for (const client of windows) client.postMessage({ type: 'outbox-changed', summary });
  return summary;
}

self.addEventListener('sync', (event) => {
  if (event.tag !== self.Pijnwacht.SYNC_TAG) return;
  event.waitUntil(sendOutbox().then((s) => {
    // Throwing tells the browser to retry later (with its own back-off).
    if (s.offline || s.serverError) throw new Error('outbox not sent yet');
  }));
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'flush') event.waitUntil(sendOutbox());
});

// "Herinner me later" on a task's reminder, in the patient's language (from the profile kept here).
const LATER = {
  nl: [{ action: 'snooze-1', title: 'Over 1 uur' }, { action: 'snooze-3', title: 'Over 3 uur' }],
  en: [{ action: 'snooze-1', title: 'In 1 hour' }, { action: 'snooze-3', title: 'In 3 hours' }],
};

/** The task a reminder is about: its tag is `task-<id>`. */
function taskOf(tag) {
  const m = /^task-(\d+)$/.exec(tag || '');
  return m ? Number(m[1]) : null;
}

/** The notification to show for a push message {title, body, url, tag} (no health data in it). */
function notificationFor(data, language = 'nl') {
  const task = taskOf(data.tag);
  return {
    title: data.title || 'Pijnwacht',
    options: {
      body: data.body || '',
      tag: data.tag || 'pijnwacht',
      renotify: Boolean(data.tag),
      icon: '/icons/icon-192.png',
      badge: '/icons/icon-192.png',
      lang: language,
      actions: task ? LATER[language] || LATER.nl : [],
      data: { url: data.url || '/#/today', task },
    },
  };
}

/** Tell the server a reminder was shown or opened: its tag and the event, nothing else. */
async function receipt(tag, event) {
  const token = await self.Pijnwacht.store.get('kv', 'token').catch(() => null);
  if (!token || !taskOf(tag)) return;
  try {
    await fetch('/api/v1/push/receipts', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ tag, event }),
      cache: 'no-store',
    });
  } catch (e) { /* offline: the count misses one, the reminder itself is there */ }
}

/** From the notification: remind again in `hours` (the server re-arms one reminder). */
async function snoozeFromNotification(notification, hours) {
  const token = await self.Pijnwacht.store.get('kv', 'token');
  const task = notification.data && notification.data.task;
  if (!token || !task) return;
  try {
    await fetch(`/api/v1/tasks/${task}/snooze`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ hours }),
      cache: 'no-store',
    });
  } catch (e) { /* offline: the planned reminders still come */ }
}
self.snoozeFromNotification = snoozeFromNotification;

self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data ? event.data.text() : '' }; }
  event.waitUntil((async () => {
    const me = await self.Pijnwacht.store.get('kv', 'me').catch(() => null);
    const { title, options } = notificationFor(data, (me && me.language) || 'nl');
    await self.registration.showNotification(title, options);
    await receipt(options.tag, 'shown');
  })());
});

/** Bring the app to the front on the notification's screen, or open it there. */
async function openFromNotification(notification) {
  const target = new URL((notification.data && notification.data.url) || '/#/today', self.location.origin);
  if (target.origin !== self.location.origin) target.href = new URL('/#/today', self.location.origin).href;
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const client = windows.find((c) => new URL(c.url).origin === self.location.origin);
  if (client) {
    client.postMessage({ type: 'open', url: target.href });
    return client.focus().catch(() => client);
  }
  return self.clients.openWindow(target.href);
}
self.openFromNotification = openFromNotification;

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const later = /^snooze-(\d+)$/.exec(event.action || '');
  event.waitUntil(Promise.all([receipt(event.notification.tag, 'opened'),
    later ? snoozeFromNotification(event.notification, Number(later[1])) : openFromNotification(event.notification)]));
});

self.addEventListener('pushsubscriptionchange', (event) => {
  // The browser replaced the subscription: the page re-subscribes at its next start
  // (it needs the server's key and the device token), so only forget the old endpoint here.
  event.waitUntil(self.Pijnwacht.store.del('kv', 'push_endpoint'));
});
