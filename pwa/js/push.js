// Web Push: ask permission, subscribe with the server's VAPID key, tell the server; and undo.
import { store } from './state.js';
import { api } from './api.js';

export function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in self && 'Notification' in self;
}

/** iPhone/iPad Safari outside the home screen: push needs "Zet op beginscherm" first. */
export function needsHomeScreen() {
  const ios = /iPad|iPhone|iPod/.test(navigator.userAgent) || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
  const standalone = navigator.standalone === true || matchMedia('(display-mode: standalone)').matches;
  return ios && !standalone;
}

function keyBytes(base64url) {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function sameKey(buffer, bytes) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  return a.length === bytes.length && a.every((x, i) => x === bytes[i]);
}

/** 'on' | 'off' | 'denied' | 'unsupported' | 'homescreen'. */
export async function pushStatus() {
  if (needsHomeScreen() && !pushSupported()) return 'homescreen';
  if (!pushSupported()) return needsHomeScreen() ? 'homescreen' : 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  const reg = await navigator.serviceWorker.getRegistration();
  const sub = reg && await reg.pushManager.getSubscription();
  return sub && Notification.permission === 'granted' && (await store.get('kv', 'push_endpoint')) === sub.endpoint ? 'on' : 'off';
}

/** Ask permission and subscribe; returns the new status. Throws when the push service fails. */
export async function enablePush() {
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') return permission === 'denied' ? 'denied' : 'off';
  const reg = await navigator.serviceWorker.ready;
  const { key } = await api('GET', '/push/key');
  const applicationServerKey = keyBytes(key);
  let sub = await reg.pushManager.getSubscription();
  // Keys made anew on the server make old subscriptions useless: start over.
  if (sub && !sameKey(sub.options && sub.options.applicationServerKey, applicationServerKey)) {
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
  await api('POST', '/push/subscriptions', sub.toJSON());
  await store.put('kv', sub.endpoint, 'push_endpoint');
  await store.put('kv', true, 'push_wanted');
  return 'on';
}

export async function disablePush() {
  const reg = await navigator.serviceWorker.getRegistration();
  const sub = reg && await reg.pushManager.getSubscription();
  if (sub) {
    try { await api('DELETE', '/push/subscriptions', { endpoint: sub.endpoint }); } catch (e) {
      if (e.status === 0) throw e; // offline: keep it, so the server and the phone agree
    }
    await sub.unsubscribe();
  }
  await store.del('kv', 'push_endpoint');
  await store.put('kv', false, 'push_wanted');
  return 'off';
}

/** At app start: the browser may have replaced or dropped the subscription; renew it quietly. */
export async function renewPush() {
  if (!pushSupported() || Notification.permission !== 'granted' || !(await store.get('kv', 'push_wanted'))) return;
  if ((await pushStatus()) === 'on') return;
  try { await enablePush(); } catch (e) { /* next start tries again */ }
}
