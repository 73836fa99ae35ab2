/* Pijnwacht core: IndexedDB store, the outbox and sending it to the server.
 *
 * Shared by the page (imported as a module for its side effect) and by the service worker
 * (importScripts) — so it is written as a plain script that puts one object on `self`.
 * Outbox rule (design.md, "Idempotent sync"): an answer is written here first, with its UUID,
 * and removed only after the server confirmed it (created or duplicate). Network errors and
 * 5xx keep it for the next try; a conflict or invalid answer is kept, marked, and shown to the
 * patient, who decides to remove it — nothing a patient entered disappears silently.
 */
(function (scope) {
  'use strict';
  const DB_NAME = 'pijnwacht';
  const DB_VERSION = 1;
  // kv: token, me, questionnaires, tasks (last known); outbox: unsent responses;
  // drafts: partial questionnaire answers; history: responses known on this device.
  const STORES = ['kv', 'outbox', 'drafts', 'history'];
  const BATCH_MAX = 500;
  // Kept history: the trend shows 90 days; the rest is margin for sending again what a
  // restored server lost (resendHistory).
  const HISTORY_DAYS = 120;
  let dbPromise = null;

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains('kv')) db.createObjectStore('kv');
        if (!db.objectStoreNames.contains('outbox')) db.createObjectStore('outbox', { keyPath: 'id' });
        if (!db.objectStoreNames.contains('drafts')) db.createObjectStore('drafts', { keyPath: 'key' });
        if (!db.objectStoreNames.contains('history')) db.createObjectStore('history', { keyPath: 'id' });
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab upgrading the schema: let it, and reopen next time.
        db.onversionchange = () => { db.close(); dbPromise = null; };
        resolve(db);
      };
      req.onerror = () => { dbPromise = null; reject(req.error); };
    });
    return dbPromise;
  }

  async function tx(store, mode, fn) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const s = t.objectStore(store);
      let result;
      const r = fn(s);
      if (r && 'onsuccess' in r) r.onsuccess = () => { result = r.result; };
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error || new Error('transaction aborted'));
    });
  }

  const store = {
    get: (name, key) => tx(name, 'readonly', (s) => s.get(key)),
    all: (name) => tx(name, 'readonly', (s) => s.getAll()),
    put: (name, value, key) => tx(name, 'readwrite', (s) => (key === undefined ? s.put(value) : s.put(value, key))),
    del: (name, key) => tx(name, 'readwrite', (s) => s.delete(key)),
    clear: (name) => tx(name, 'readwrite', (s) => s.clear()),
    async clearAll() { for (const n of STORES) await store.clear(n); },
  };

  function uuid() {
    if (scope.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** Put a response in the outbox (and in local history, so trend and edits work offline). */
  async function enqueue(response) {
    const item = { id: response.id || uuid(), body: { ...response }, queued_at: new Date().toISOString(), state: 'pending', attempts: 0, error: null };
    delete item.body.id;
    await store.put('outbox', item);
    await store.put('history', { id: item.id, ...item.body, received_at: null });
    return item;
  }

  let flushing = null;

  /** Send every pending outbox item in one batch; returns {sent, kept, failed, offline, unauthorized}. */
  function flush() {
    if (flushing) return flushing;
    const run = async () => {
      // Page and service worker may both try: the Web Lock keeps it to one at a time.
      if (scope.navigator && navigator.locks) {
        return navigator.locks.request('pijnwacht-outbox', () => sendPending());
      }
      return sendPending();
    };
    flushing = run().finally(() => { flushing = null; });
    return flushing;
  }

  async function sendPending() {
    const summary = { sent: 0, kept: 0, failed: 0, offline: false, unauthorized: false, serverError: false };
    const token = await store.get('kv', 'token');
    const items = (await store.all('outbox')).filter((i) => i.state === 'pending');
    items.sort((a, b) => a.queued_at.localeCompare(b.queued_at));
    if (!token || items.length === 0) { summary.kept = items.length; return summary; }
    const chunks = [];
    for (let start = 0; start < items.length; start += BATCH_MAX) chunks.push(items.slice(start, start + BATCH_MAX));
    const left = (chunk) => chunks.reduce((n, c) => n + c.length, chunk.length);
    while (chunks.length) {
      const chunk = chunks.shift();
      let res;
      try {
        res = await fetch('/api/v1/responses:batch', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({ responses: chunk.map((i) => ({ id: i.id, ...i.body })) }),
          cache: 'no-store',
        });
      } catch (err) {
        summary.offline = true;
        summary.kept += left(chunk);
        await markAttempt(chunk, 'network');
        return summary;
      }
      if (res.status === 401) {
        summary.unauthorized = true;
        summary.ended = res.headers.get('X-Pijnwacht-Ended') === 'discharged';
        summary.kept += left(chunk);
        return summary;
      }
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        // The server refused the request as a whole (too large, or an item it cannot even
        // read): sent again unchanged it would be refused for ever. Halve it until the item
        // at fault stands alone; that one is kept, marked, for the patient to see.
        if (chunk.length > 1) {
          const half = Math.ceil(chunk.length / 2);
          chunks.unshift(chunk.slice(0, half), chunk.slice(half));
          continue;
        }
        let detail = null;
        try { detail = (await res.json()).detail; } catch (e) { detail = null; }
        const [item] = chunk;
        item.state = 'invalid';
        item.error = detail || `HTTP ${res.status}`;
        await store.put('outbox', item);
        await store.del('history', item.id);
        summary.failed += 1;
        continue;
      }
      if (!res.ok) {
        // 5xx and anything unexpected: keep everything for a later try.
        summary.serverError = true;
        summary.kept += left(chunk);
        await markAttempt(chunk, `HTTP ${res.status}`);
        return summary;
      }
      let data;
      try { data = await res.json(); } catch (e) { data = null; }
      const results = new Map(((data && data.results) || []).map((r) => [r.id, r]));
      for (const item of chunk) {
        const r = results.get(item.id);
        if (!r) { summary.kept += 1; continue; }
        if (r.status === 'created' || r.status === 'duplicate') {
          await store.del('outbox', item.id);
          const h = await store.get('history', item.id);
          if (h) { h.received_at = new Date().toISOString(); await store.put('history', h); }
          summary.sent += 1;
        } else {
          // conflict or invalid: keep it, marked, for the patient to see and remove.
          item.state = r.status;
          item.error = r.error || r.status;
          await store.put('outbox', item);
          if (r.status === 'invalid' || r.status === 'conflict') await store.del('history', item.id);
          summary.failed += 1;
        }
      }
    }
    return summary;
  }

  /** The server was restored (its generation id changed): put every kept response back in the
   * outbox, exactly as first sent (same UUID, same content). The server stores those the
   * restore lost and answers "duplicate" for the rest, which flush() then takes out again. */
  async function resendHistory() {
    const queued = new Set((await store.all('outbox')).map((i) => i.id));
    let count = 0;
    for (const r of await store.all('history')) {
      if (queued.has(r.id)) continue;
      const body = { questionnaire: r.questionnaire, version: r.version, authored_at: r.authored_at,
        local_date: r.local_date, task_id: r.task_id ?? null, answers: r.answers };
      await store.put('outbox', { id: r.id, body, queued_at: new Date(Date.parse(r.authored_at)).toISOString(),
        state: 'pending', attempts: 0, error: null });
      count += 1;
    }
    return count;
  }

  /** Forget responses older than HISTORY_DAYS (by diary day): the store stays bounded. */
  async function pruneHistory(now = new Date()) {
    const oldest = new Date(now.getTime() - HISTORY_DAYS * 86400e3).toISOString().slice(0, 10);
    for (const r of await store.all('history')) if (r.local_date < oldest) await store.del('history', r.id);
  }

  async function markAttempt(chunk, why) {
    for (const item of chunk) {
      item.attempts = (item.attempts || 0) + 1;
      item.last_try = new Date().toISOString();
      item.last_error = why;
      await store.put('outbox', item);
    }
  }

  scope.Pijnwacht = { openDb, store, uuid, enqueue, flush, resendHistory, pruneHistory, SYNC_TAG: 'pijnwacht-outbox' };
})(self);
