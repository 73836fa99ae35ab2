// Line and bar charts as inline SVG, drawn from plain data (no library).
const NS = 'http://www.w3.org/2000/svg';
const W = 340;
const H = 170;
const PAD = { left: 30, right: 8, top: 10, bottom: 26 };

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A chart of daily values. days: ['YYYY-MM-DD', ...] (the x axis, oldest first);
 * series: [{values: Map(day → number), kind: 'line'|'bar', cls}]; yMax: top of the axis.
 * Gaps (days without an answer) break a line rather than being drawn through.
 */
export function dailyChart({ days, series, yMax, yTicks, labelFor, describedBy }) {
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', focusable: 'false', 'aria-labelledby': describedBy });
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, days.length);
  const x = (i) => PAD.left + step * (i + 0.5);
  const y = (v) => PAD.top + plotH - (v / yMax) * plotH;
  for (const tick of yTicks) {
    svg.append(el('line', { x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick), class: 'grid' }));
    svg.append(el('text', { x: PAD.left - 5, y: y(tick) + 4, 'text-anchor': 'end', class: 'axis' }, String(tick)));
  }
  const labelIdx = [0, Math.floor((days.length - 1) / 2), days.length - 1];
  for (const i of new Set(labelIdx)) {
    svg.append(el('text', { x: x(i), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === days.length - 1 ? 'end' : 'middle', class: 'axis' }, labelFor(days[i])));
  }
  for (const s of series) {
    if (s.kind === 'bar') {
      const bw = Math.max(1, step * 0.7);
      days.forEach((d, i) => {
        const v = s.values.get(d);
        if (typeof v !== 'number') return;
        svg.append(el('rect', { x: x(i) - bw / 2, y: y(v), width: bw, height: Math.max(0.5, y(0) - y(v)), class: s.cls }));
      });
      continue;
    }
    let path = '';
    let open = false;
    days.forEach((d, i) => {
      const v = s.values.get(d);
      if (typeof v !== 'number') { open = false; return; }
      path += `${open ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      open = true;
    });
    if (path) svg.append(el('path', { d: path, class: `line ${s.cls}` }));
    days.forEach((d, i) => {
      const v = s.values.get(d);
      if (typeof v === 'number') svg.append(el('circle', { cx: x(i), cy: y(v), r: days.length > 45 ? 1.8 : 3, class: `dot ${s.cls}` }));
    });
  }
  return svg;
}
