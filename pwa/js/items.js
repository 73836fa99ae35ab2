// One renderer per item type of a questionnaire definition (scale, number, count, choice, text).
// Each returns {el, get(), set(value), focus()}; `onChange(value)` fires on every answer change.
import { h, t, tx, formatNumber } from './ui.js';

let counter = 0;
const uid = (prefix) => `${prefix}-${++counter}`;

// More points than this (a 0–100 scale in steps of 1) are not buttons but a number to type or step.
const MAX_BUTTONS = 21;

export function renderItem(item, value, onChange, opts = {}) {
  const points = item.type === 'scale' ? Math.floor((item.max - item.min) / (item.step || 1)) + 1 : 0;
  const type = points > MAX_BUTTONS ? 'number' : item.type;
  const render = { scale: scaleItem, choice: choiceItem, number: stepperItem, count: stepperItem, text: textItem }[type];
  return render(item, value, onChange, opts);
}

function questionText(item, opts) {
  const parts = [tx(item.text)];
  if (item.required && opts.markRequired) parts.push(h('span', { class: 'req' }, ` ${t('required_mark')}`));
  return parts;
}

function clearButton(item, onClear) {
  if (item.required) return null;
  return h('button', { type: 'button', class: 'link clear', hidden: true, onclick: onClear, 'aria-label': `${t('clear_answer')}: ${tx(item.text)}` },
    t('clear_answer'));
}

/** Radio group of big buttons, min..max (pain NRS 0–10: eleven buttons named "6 van 10"). */
function scaleItem(item, value, onChange, opts) {
  const name = uid(item.id);
  const descId = uid('desc');
  const inputs = [];
  const step = item.step || 1;
  // Three-digit answers (0–100 %) need wider buttons than 0–10.
  const digits = Math.max(String(item.min).length, String(item.max).length);
  const grid = h('div', { class: `scale${digits > 2 ? ' digits-3' : ''}` });
  for (let v = item.min; v <= item.max; v += step) {
    const input = h('input', { type: 'radio', name, value: String(v), checked: value === v, 'data-item': item.id });
    input.addEventListener('change', () => { changed(v); });
    inputs.push(input);
    grid.append(h('label', { class: 'opt num' }, input,
      h('span', { class: 'face', 'aria-hidden': 'true' }, String(v)),
      h('span', { class: 'vh' }, t('of_n', { value: v, max: item.max }))));
  }
  const ends = item.min_label && item.max_label
    ? h('p', { class: 'ends', id: descId },
      h('span', {}, `${item.min} = ${tx(item.min_label)}`), h('span', {}, `${item.max} = ${tx(item.max_label)}`))
    : null;
  const clear = clearButton(item, () => { inputs.forEach((i) => { i.checked = false; }); changed(undefined); });
  const el = h('fieldset', { class: 'item', 'aria-describedby': ends ? descId : null, 'data-item': item.id },
    h('legend', {}, questionText(item, opts)), grid, ends, clear);
  function changed(v) { if (clear) clear.hidden = v === undefined; onChange(v); }
  if (clear) clear.hidden = value === undefined || value === null;
  return {
    el,
    get: () => { const c = inputs.find((i) => i.checked); return c ? Number(c.value) : undefined; },
    focus: () => (inputs.find((i) => i.checked) || inputs[0]).focus(),
  };
}

/** Radio group of labelled options (side effects: geen / licht / matig / ernstig). */
function choiceItem(item, value, onChange, opts) {
  const name = uid(item.id);
  const inputs = [];
  // Short options side by side (geen/licht/matig/ernstig); sentences one under the other.
  const long = item.options.length > 4 || item.options.some((o) => tx(o.text).length > 9);
  const list = h('div', { class: `choices${long ? ' long' : ''}` });
  for (const o of item.options) {
    const input = h('input', { type: 'radio', name, value: String(o.value), checked: value === o.value, 'data-item': item.id });
    input.addEventListener('change', () => { changed(o.value); });
    inputs.push(input);
    list.append(h('label', { class: 'opt text' }, input, h('span', { class: 'face' }, tx(o.text))));
  }
  const clear = clearButton(item, () => { inputs.forEach((i) => { i.checked = false; }); changed(undefined); });
  const el = h('fieldset', { class: 'item', 'data-item': item.id }, h('legend', {}, questionText(item, opts)), list, clear);
  function changed(v) { if (clear) clear.hidden = v === undefined; onChange(v); }
  if (clear) clear.hidden = value === undefined || value === null;
  return {
    el,
    get: () => { const c = inputs.find((i) => i.checked); return c ? Number(c.value) : undefined; },
    focus: () => (inputs.find((i) => i.checked) || inputs[0]).focus(),
  };
}

/** −/+ stepper with an editable field (sleep hours in 0.5 steps, rescue doses as a count). */
function stepperItem(item, value, onChange, opts) {
  const step = item.type === 'count' ? 1 : (item.step || 1);
  const id = uid(item.id);
  const unitId = uid('unit');
  const digits = step % 1 === 0 ? 0 : 2;
  let current = typeof value === 'number' ? value : undefined;
  const input = h('input', {
    id, type: 'text', inputmode: item.type === 'count' ? 'numeric' : 'decimal', autocomplete: 'off',
    class: 'stepper-value', 'aria-describedby': item.unit ? unitId : null, 'data-item': item.id,
  });
  // Unanswered, the field shows where the stepper starts (greyed): − and + step from that.
  const show = () => { input.value = current === undefined ? '' : formatNumber(current, digits); };
  if (typeof opts.start === 'number') input.placeholder = formatNumber(opts.start, digits);
  const clamp = (v) => Math.min(item.max, Math.max(item.min, Math.round((v - item.min) / step) * step + item.min));
  const set = (v) => { current = v === undefined ? undefined : clamp(v); show(); onChange(current); };
  const start = () => (typeof opts.start === 'number' ? opts.start : item.min);
  const less = h('button', { type: 'button', class: 'step', 'aria-label': t('stepper_less', { label: tx(item.text) }),
    onclick: () => set((current ?? start()) - step) }, '−');
  const more = h('button', { type: 'button', class: 'step', 'aria-label': t('stepper_more', { label: tx(item.text) }),
    onclick: () => set((current ?? start()) + step) }, '+');
  input.addEventListener('change', () => {
    const raw = input.value.trim().replace(',', '.');
    if (raw === '') { set(undefined); return; }
    const v = Number(raw);
    if (Number.isFinite(v)) set(v); else show();
  });
  show();
  // A long scale shown as a number keeps what its ends mean ("0 = ..., 100 = ...").
  const endsId = uid('desc');
  const ends = item.min_label && item.max_label
    ? h('p', { class: 'ends', id: endsId },
      h('span', {}, `${item.min} = ${tx(item.min_label)}`), h('span', {}, `${item.max} = ${tx(item.max_label)}`))
    : null;
  if (ends) input.setAttribute('aria-describedby', [item.unit ? unitId : null, endsId].filter(Boolean).join(' '));
  const el = h('div', { class: 'item stepper-item', 'data-item': item.id },
    h('label', { for: id, class: 'question' }, questionText(item, opts)),
    h('div', { class: 'stepper' }, less, input,
      item.unit ? h('span', { class: 'unit', id: unitId }, tx(item.unit)) : null, more), ends);
  return { el, get: () => current, focus: () => input.focus() };
}

/** Free text with a visible character count (the note: never for emergencies). */
function textItem(item, value, onChange, opts) {
  const id = uid(item.id);
  const countId = uid('count');
  const area = h('textarea', { id, rows: 3, maxlength: String(item.max_length), 'aria-describedby': countId, 'data-item': item.id });
  area.value = typeof value === 'string' ? value : '';
  const count = h('p', { class: 'hint', id: countId });
  const update = () => { count.textContent = t('chars_left', { n: item.max_length - area.value.length }); };
  area.addEventListener('input', () => { update(); onChange(area.value.trim() ? area.value : undefined); });
  update();
  const el = h('div', { class: 'item', 'data-item': item.id }, h('label', { for: id, class: 'question' }, questionText(item, opts)), area, count);
  return { el, get: () => (area.value.trim() ? area.value : undefined), focus: () => area.focus() };
}
