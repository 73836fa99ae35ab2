// Crisis contacts shown at once, on the phone itself (offline too), after a safety answer.
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

/** The contacts as a modal dialog, opened the moment the answer is given. */
export function showCrisis() {
  document.getElementById('crisis-dialog')?.remove();
  const close = h('button', { type: 'button', class: 'secondary' }, t('crisis_close'));
  const dialog = h('dialog', { id: 'crisis-dialog', class: 'crisis', 'aria-labelledby': 'crisis-title' },
    h('h2', { id: 'crisis-title' }, t('crisis_title')), contacts(), close);
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();

}
