// Join with the enrolment code, then set language, reminder time and notifications.
import { h, t, setLanguage, language } from '../ui.js';
import { state, render } from '../state.js';
import { api, signIn, setMe, refresh } from '../api.js';
import { pushStatus, enablePush, needsHomeScreen } from '../push.js';

const CODE_CHARS = /[^ABCDEFGHJKMNPQRSTUVWXYZ23456789]/g;

/** "abcd efgh" → "ABCD-EFGH": what the patient sees; the server ignores dashes and case. */
export function formatCode(raw) {
  const c = raw.toUpperCase().replace(CODE_CHARS, '').slice(0, 8);
  return c.length > 4 ? `${c.slice(0, 4)}-${c.slice(4)}` : c;
}

export async function joinScreen() {
  // The QR link is /#code=XXXX-XXXX: a fragment never reaches the server, so no log holds the
  // code. /?code= still works for links made before.
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('code')
    || new URLSearchParams(location.search).get('code') || '';
  const removed = sessionStorage.getItem('pijnwacht-removed');
  const input = h('input', {
    id: 'code', name: 'code', autocomplete: 'one-time-code', autocapitalize: 'characters', spellcheck: 'false',
    class: 'code', 'aria-describedby': 'code-hint join-error', inputmode: 'text', maxlength: '12',
  });
  input.value = formatCode(fromLink);
  input.addEventListener('input', () => {
    const pos = input.value.length === input.selectionStart;
    input.value = formatCode(input.value);
    if (pos) input.setSelectionRange(input.value.length, input.value.length);
  });
  const error = h('p', { id: 'join-error', class: 'error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'primary big' }, t('join_button'));
  const form = h('form', { class: 'stack', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'code' }, t('join_code')),
      input,
      h('p', { id: 'code-hint', class: 'hint' }, t('join_code_hint'))),
    error, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const code = input.value.replace(/-/g, '');
    error.textContent = '';
    if (code.length !== 8) { error.textContent = t('join_code_short'); input.focus(); return; }
    button.disabled = true;
    button.textContent = t('join_busy');
    try {
      const chosen = language();
      const data = await api('POST', '/enrol', { code });
      sessionStorage.removeItem('pijnwacht-removed');
      await signIn(data.token, data.patient);
      // A language picked before joining wins (we are online: the code just worked).
      if (chosen !== data.patient.language) {
        await setMe(await api('PATCH', '/me', { language: chosen }).catch(() => data.patient));
      }
      // The code is used up: keep it out of the address bar and history.
      history.replaceState(null, '', '/#/setup');
      await refresh();
      render();
    } catch (e) {
      error.textContent = e.status === 0 ? t('join_need_online') : e.message;
      button.disabled = false;
      button.textContent = t('join_button');
      input.focus();
    }
  });
  const other = language() === 'nl' ? 'en' : 'nl';
  return h('section', { class: 'screen' },
    h('h1', {}, t('join_title')),
    state.ended
      ? h('div', { class: 'notice', role: 'status' },
        h('h2', {}, t('join_ended_title')), h('p', {}, t('join_ended')),
        h('p', {}, h('button', { type: 'button', class: 'secondary', onclick: async () => { await refresh(); render(); } }, t('join_ended_check'))))
      : removed ? h('p', { class: 'notice' }, t('join_removed')) : null,
    h('p', {}, t('join_intro')),
    form,
    h('p', {}, h('button', { type: 'button', class: 'link', lang: other, onclick: () => { setLanguage(other); render(); } }, t('other_language'))));
}

/** After joining: language, reminder time, notifications — three choices, then the diary. */
export async function setupScreen() {
  const me = state.me;
  const langGroup = languageChoice(language(), (code) => { setLanguage(code); render(); });
  const time = h('input', { id: 'reminder', type: 'time', value: me.reminder_time || '20:00', required: true, 'aria-describedby': 'reminder-hint' });
  const notif = await notificationsBlock();
  const error = h('p', { class: 'error', role: 'alert' });
  const done = h('button', { type: 'submit', class: 'primary big' }, t('setup_done'));
  const form = h('form', { class: 'stack' },
    langGroup,
    h('div', { class: 'field' }, h('label', { for: 'reminder' }, t('setup_reminder')), time,
      h('p', { class: 'hint', id: 'reminder-hint' }, t('setup_reminder_hint'))),
    notif, error, done);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    done.disabled = true;
    try {
      await setMe(await api('PATCH', '/me', { language: language(), reminder_time: time.value || '20:00' }));
      location.hash = '#/today';
    } catch (e) {
      if (e.status === 0) { location.hash = '#/today'; return; } // choices can wait; the diary cannot
      error.textContent = e.message;
      done.disabled = false;
    }
  });
  return h('section', { class: 'screen' },
    h('h1', {}, t('setup_title', { name: me.display_name || '' })),
    h('p', {}, t('setup_intro')), form);
}

export function languageChoice(current, onPick) {
  const opt = (code) => {
    const input = h('input', { type: 'radio', name: 'language', value: code, checked: current === code });
    input.addEventListener('change', () => onPick(code));
    return h('label', { class: 'opt text', lang: code }, input, h('span', { class: 'face' }, t(`lang_${code}`)));
  };
  return h('fieldset', { class: 'item' }, h('legend', {}, t('setup_language')), h('div', { class: 'choices two' }, opt('nl'), opt('en')));
}

/** Notifications: plain explanation and one button; on iPhone first "Zet op beginscherm". */
export async function notificationsBlock() {
  const status = await pushStatus();
  const message = h('p', { class: 'hint', role: 'status' });
  const box = h('section', { class: 'card', 'aria-labelledby': 'notif-title' }, h('h2', { id: 'notif-title' }, t('notif_title')),
    h('p', {}, t('notif_explain')));
  if (status === 'homescreen' || (needsHomeScreen() && status !== 'on')) {
    box.append(h('p', { class: 'notice' }, t('notif_ios')));
    return box;
  }
  if (status === 'unsupported') { box.append(h('p', {}, t('notif_unsupported'))); return box; }
  if (status === 'denied') { box.append(h('p', {}, t('notif_denied'))); return box; }
  if (status === 'on') { box.append(h('p', {}, t('notif_on'))); return box; }
  const button = h('button', { type: 'button', class: 'secondary' }, t('notif_allow'));
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const result = await enablePush();
      message.textContent = t({ on: 'notif_on', denied: 'notif_denied', off: 'notif_off' }[result]);
      if (result === 'on') button.remove(); else button.disabled = false;
    } catch (e) {
      message.textContent = e.status === 0 ? t('join_need_online') : t('notif_failed');
      button.disabled = false;
    }
  });
  box.append(button, message);
  return box;
}

