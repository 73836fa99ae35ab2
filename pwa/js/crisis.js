// Shown at once, on the phone itself (offline too): crisis contacts after a safety answer, and
// what to do after severe drowsiness. Both texts are in the app shell, never fetched.
import { h, t } from './ui.js';

function contacts() {
  return [
    h('p', {}, t('crisis_text')),
    h('ul', { class: 'crisis-list' },
      h('li', {}, h('p', {}, t('crisis_113')),
        h('p', { class: 'row' }, h('a', { class: 'button primary', href: 'tel:08000113' }, t('crisis_113_call')), ' ',
          h('a', { class: 'button secondary', href: 'https://www.113.nl', rel: 'noopener' }, t('crisis_113_web')))),
      h('li', {}, h('a', { class: 'button danger', href: 'tel:112' }, t('crisis_112'))),
      h('li', {}, t('crisis_gp'))),
  ];
}

/** The contacts as a box that stays on the screen while the answer stands. */
export function crisisBox() {
  return h('section', { class: 'crisis', 'aria-labelledby': 'crisis-box-title' },
    h('h2', { id: 'crisis-box-title' }, t('crisis_title')), contacts());
}

function openDialog(id, title, body) {
  document.getElementById(id)?.remove();
  const close = h('button', { type: 'button', class: 'secondary' }, t('crisis_close'));
  const dialog = h('dialog', { id, class: 'crisis', 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title), body, close);
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

/** The contacts as a modal dialog, opened the moment the answer is given. */
export function showCrisis() {
  openDialog('crisis-dialog', t('crisis_title'), contacts());
}

// Severe drowsiness: the diary's se_drowsiness at 3 ("ernstig"), the level at which the server
// opens its urgent drowsiness_severe alert - on every pathway, and so is this advice: the
// signs of an opioid overdose are the same whatever the pathway says, many patients on any
// pathway take opioids, gabapentinoids or sleeping pills, and nobody reads the alert tonight.
// TEKST TER BEOORDELING DOOR DE KLINIEK: drowsy_* in i18n/nl.js and en.js are a draft, written
// for older patients (taalniveau B1), to be checked by the pain team before use.
export const SEVERE_DROWSINESS = 3;

export function isSevereDrowsiness(answers) {
  return answers.se_drowsiness === SEVERE_DROWSINESS;
}

/** What to do now, as a modal dialog, the moment a diary with severe drowsiness is saved. */
export function showDrowsinessAdvice() {
  openDialog('drowsy-dialog', t('drowsy_title'), [
    h('p', {}, t('drowsy_text')),
    h('h3', {}, t('drowsy_112_when')),
    h('ul', {}, ['drowsy_112_awake', 'drowsy_112_breathing', 'drowsy_112_lips', 'drowsy_112_wake']
      .map((key) => h('li', {}, t(key)))),
    h('p', {}, h('a', { class: 'button danger', href: 'tel:112' }, t('drowsy_112_call'))),
    h('p', {}, t('drowsy_gp')),
    h('ul', { class: 'crisis-list' },
      h('li', {}, t('drowsy_no_more')),
      h('li', {}, t('drowsy_stay')),
      h('li', {}, t('drowsy_team'))),
  ]);
}

/** "… bel 112 of de huisartsenpost" with 112 as a tap-to-call link (every screen's footer). */
export function emergencyText() {
  const [before, after] = t('emergency').split('112');
  return after === undefined ? [before] : [before, h('a', { href: 'tel:112' }, '112'), after];
}
