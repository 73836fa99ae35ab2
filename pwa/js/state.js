// What the screens share, kept on this device: profile, definitions, tasks, the sign-in token,
// and whether the server can be reached. No module here talks to the server (api.js) or draws
// a screen (main.js); a screen asks for a redraw through render(), which the router registers.
import './core.js';
import { setLanguage } from './ui.js';

export const PW = self.Pijnwacht;
export const store = PW.store;

/** Profile, definitions and tasks (last known, kept in IndexedDB). */
export const state = {
  token: null,
  me: null,
  questionnaires: new Map(),
  tasks: [],
  online: navigator.onLine,
  // The team discharged this patient ("afgemeld"): the join screen says the diary has ended.
  // The device keeps its sign-in and what it holds, so a resume brings it back as it was.
  ended: false,
};

/** The last known copies, for a start without a connection. */
export async function loadCached() {
  state.token = (await store.get('kv', 'token')) || null;
  state.ended = Boolean(await store.get('kv', 'ended'));
  const me = await store.get('kv', 'me');
  if (me) { state.me = me; setLanguage(me.language || 'nl'); }
  const defs = (await store.get('kv', 'questionnaires')) || [];
  state.questionnaires = new Map(defs.map((q) => [q.id, q]));
  state.tasks = (await store.get('kv', 'tasks')) || [];
}

/** The answers waiting to be sent (and those the server refused, until removed). */
export async function outboxItems() { return store.all('outbox'); }

/** Reachable or not; the app's frame shows it (event `online-changed`). */
export function setOnline(online) {
  state.online = online;
  document.dispatchEvent(new CustomEvent('online-changed', { detail: { online } }));
}

// -- redrawing ---------------------------------------------------------------------------
let drawer = async () => {};

/** The router (main.js) says here how the current screen is drawn. */
export function onRender(draw) { drawer = draw; }

/** Draw the current screen again ({keepStatus: true} keeps the message shown). */
export function render(options) { return drawer(options); }

/** The server said the team ended the diary (or, `false`, that it goes on again). */
export async function setEnded(ended) {
  if (state.ended === ended) return;
  state.ended = ended;
  await store.put('kv', ended, 'ended');
  if (ended) location.hash = '#/join';
  render();
}

/** Forget this device's sign-in and everything kept for it; back to the join screen. */
export async function signOut(reason) {
  state.token = null;
  state.me = null;
  state.tasks = [];
  await store.clearAll();
  if (reason === 'removed') sessionStorage.setItem('pijnwacht-removed', '1');
  location.hash = '#/join';
  render();
}
