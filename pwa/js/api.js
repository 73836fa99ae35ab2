// Talking to the server: the patient API, refreshing what the device knows, and the outbox.
import { t, setLanguage, language } from './ui.js';
import { PW, state, store, setOnline, signOut, setEnded } from './state.js';

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
    // Discharged ("afgemeld"): the team ended the diary; the join screen says so plainly.
    if (res.headers.get('X-Pijnwacht-Ended') === 'discharged') {
      await setEnded(true);
      throw new ApiError(401, t('join_ended_title'));
    }
    await signOut('removed');
    throw new ApiError(401, t('join_removed'));
  }
  const type = res.headers.get('Content-Type') || '';
  const data = res.status === 204 ? null : type.includes('json') ? await res.json().catch(() => null) : await res.blob();
  if (!res.ok) throw new ApiError(res.status, (data && data.detail) || `HTTP ${res.status}`, data && data.extra);
  return data;
}

// -- the profile and what the device knows -------------------------------------------------
/** Keep the profile the server sent (its language applies at once). */
export async function setMe(me) {
  state.me = me;
  if (state.ended) await setEnded(false); // resumed by the team, or joined with a new code
  await store.put('kv', me, 'me');
  setLanguage(me.language || 'nl');
  await healRestoredServer(me.generation);
}

export async function signIn(token, me) {
  state.token = token;
  await store.put('kv', token, 'token');
  await setMe(me);
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

/** Send what waits; tells the page (event `outbox-changed`) what happened. */
export async function sendOutbox() {
  clearTimeout(retryTimer);
  const summary = await PW.flush();
  if (summary.unauthorized) {
    if (summary.ended) await setEnded(true); else await signOut('removed');
    return summary;
  }
  if (summary.offline) setOnline(false); else if (summary.sent || summary.serverError) setOnline(true);
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
