/**
 * Draws a CloudWatch dashboard as an SVG from its own definition: the widgets of
 * its `DashboardBody` (positions and sizes on the 24-column grid, titles, metric
 * labels, axes, alarm annotations, the alarms of alarm status widgets) as the
 * synthesized template holds them. Nothing is drawn by hand and no data is
 * invented: graphs show their legend, axes and threshold lines, not series.
 * The output depends on the body only (no fonts measured, no dates), so the
 * committed docs/dashboard.svg can be compared with a fresh rendering.
 */
import { CfnTemplate, DashboardBody, Widget, constructPath, widgetAlarmIds, widgetAnnotations, widgetMetrics } from './dashboard-body';

/** Pixels per grid column (the grid is 24 columns wide) and per grid row. */
const COLUMN = 50;
const ROW = 32;
const MARGIN = 16;
const GAP = 4;
const FONT = 'Helvetica, Arial, sans-serif';
/** CloudWatch's default series colours (d3's category10). */
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const ALARMS_PER_LINE = 6;

/** What an alarm status tile says: the alarm's construct id and its condition. */
interface AlarmTile {
  readonly name: string;
  readonly condition: string;
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Approximate width of a text in this font (no measuring: the output must not depend on the machine). */
function textWidth(text: string, size: number, bold = false): number {
  return text.length * size * (bold ? 0.6 : 0.55);
}

/** The text, cut with an ellipsis to fit `width` pixels. */
function fit(text: string, width: number, size: number, bold = false): string {
  if (textWidth(text, size, bold) <= width) return text;
  const chars = Math.max(1, Math.floor(width / (size * (bold ? 0.6 : 0.55))) - 1);
  return `${text.slice(0, chars)}…`;
}

interface TextOptions {
  readonly size?: number;
  readonly bold?: boolean;
  readonly color?: string;
  readonly anchor?: string;
  readonly rotate?: boolean;
}

function svgText(x: number, y: number, content: string, opts: TextOptions = {}): string {
  const attrs = [`x="${x}"`, `y="${y}"`, `font-size="${opts.size ?? 11}"`];
  if (opts.bold) attrs.push('font-weight="bold"');
  if (opts.color) attrs.push(`fill="${opts.color}"`);
  if (opts.anchor) attrs.push(`text-anchor="${opts.anchor}"`);
  if (opts.rotate) attrs.push(`transform="rotate(-90 ${x} ${y})"`);
  return `<text ${attrs.join(' ')}>${esc(content)}</text>`;
}

function formatNumber(n: number): string {
  const [whole, fraction] = String(n).split('.');
  return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (fraction ? `.${fraction}` : '');
}

/** The axis maximum above a threshold: 1.5 times it, rounded up to 1, 2 or 5 times a power of ten. */
function axisMax(threshold: number): number {
  const target = threshold * 1.5;
  const power = 10 ** Math.floor(Math.log10(target));
  return [1, 2, 5, 10].map((f) => f * power).find((v) => v >= target)!;
}

function box(x: number, y: number, w: number, h: number): string {
  return `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="2" fill="#ffffff" stroke="#d5dbdb"/>`;
}

function renderText(widget: Widget, x: number, y: number, w: number, h: number): string {
  const out: string[] = [];
  if (widget.properties.background !== 'transparent') out.push(box(x, y, w, h));
  let baseline = y + 4;
  for (const line of String(widget.properties.markdown ?? '').split('\n')) {
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    const size = heading ? [22, 17, 14][heading[1].length - 1] : 12;
    const content = (heading ? heading[2] : line).replace(/[*`]/g, '');
    baseline += size + 4;
    if (baseline > y + h) break;
    out.push(svgText(x + 8, baseline, fit(content, w - 16, size, !!heading), { size, bold: !!heading, color: heading ? '#16191f' : '#545b64' }));
  }
  return out.join('');
}

function renderAlarms(widget: Widget, x: number, y: number, w: number, h: number, tiles: Map<string, AlarmTile>): string {
  const out = [box(x, y, w, h), svgText(x + 10, y + 19, fit(String(widget.properties.title ?? 'Alarm Status'), w - 20, 13, true), { size: 13, bold: true, color: '#16191f' })];
  const ids = widgetAlarmIds(widget);
  const tileW = (w - 20) / ALARMS_PER_LINE;
  ids.forEach((id, i) => {
    const tile = tiles.get(id) ?? { name: id, condition: '' };
    const tx = x + 10 + (i % ALARMS_PER_LINE) * tileW;
    const ty = y + 28 + Math.floor(i / ALARMS_PER_LINE) * ROW;
    out.push(`<rect x="${tx.toFixed(1)}" y="${ty}" width="${(tileW - 6).toFixed(1)}" height="${ROW - 4}" rx="2" fill="#f2f3f3"/>`);
    out.push(`<circle cx="${(tx + 9).toFixed(1)}" cy="${ty + 14}" r="4" fill="#879596"/>`);
    out.push(svgText(+(tx + 18).toFixed(1), ty + 12, fit(tile.name, tileW - 28, 10, true), { size: 10, bold: true, color: '#16191f' }));
    out.push(svgText(+(tx + 18).toFixed(1), ty + 24, fit(tile.condition, tileW - 28, 9), { size: 9, color: '#545b64' }));
  });
  return out.join('');
}

function renderGraph(widget: Widget, x: number, y: number, w: number, h: number): string {
  const p = widget.properties;
  const metrics = widgetMetrics(widget);
  const annotations = widgetAnnotations(widget);
  const hasRight = metrics.some((m) => m.yAxis === 'right') || annotations.some((a) => a.yAxis === 'right');
  const out = [box(x, y, w, h), svgText(x + 10, y + 19, fit(String(p.title ?? ''), w - 20, 13, true), { size: 13, bold: true, color: '#16191f' })];

  // Legend: one swatch and label per metric, flowing over as many lines as it takes.
  const legend: { lx: number; line: number; label: string; color: string; itemW: number }[] = [];
  let lx = x + 10;
  let line = 0;
  for (const [i, m] of metrics.entries()) {
    const label = `${m.label ?? m.metricName}${hasRight && m.yAxis === 'right' ? ' (right)' : ''}`;
    const itemW = Math.min(22 + textWidth(label, 10), w - 20);
    if (lx + itemW > x + w - 10 && lx > x + 10) {
      lx = x + 10;
      line += 1;
    }
    legend.push({ lx, line, label, color: m.color ?? PALETTE[i % PALETTE.length], itemW });
    lx += itemW + 10;
  }
  const legendTop = y + h - 10 - (line + 1) * 14;
  for (const item of legend) {
    const ly = legendTop + item.line * 14 + 10;
    out.push(`<rect x="${item.lx.toFixed(1)}" y="${ly - 6}" width="12" height="4" fill="${item.color}"/>`);
    out.push(svgText(+(item.lx + 16).toFixed(1), ly, fit(item.label, item.itemW - 16, 10), { size: 10, color: '#16191f' }));
  }

  // Plot area: axes from 0, three grid lines, and the alarms' threshold lines.
  const yAxis = (p.yAxis ?? {}) as { left?: { label?: string }; right?: { label?: string } };
  const left = x + 46;
  const right = x + w - (hasRight ? 46 : 14);
  const top = y + 34;
  const bottom = legendTop - 6;
  out.push(`<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#879596"/>`);
  if (p.stacked) out.push(svgText(right - 4, top + 9, 'stacked', { size: 9, color: '#879596', anchor: 'end' }));
  for (let g = 1; g <= 3; g++) {
    const gy = (bottom - ((bottom - top) * g) / 3).toFixed(1);
    out.push(`<line x1="${left}" y1="${gy}" x2="${right}" y2="${gy}" stroke="#eaeded" stroke-dasharray="3 3"/>`);
  }
  const axes: ['left' | 'right', number][] = hasRight ? [['left', left], ['right', right]] : [['left', left]];
  for (const [side, ax] of axes) {
    const lines = annotations.filter((a) => a.yAxis === side);
    const max = lines.length ? axisMax(Math.max(...lines.map((a) => a.value))) : undefined;
    const outside = side === 'left' ? ax - 5 : ax + 5;
    const anchor = side === 'left' ? 'end' : 'start';
    out.push(`<line x1="${ax}" y1="${top}" x2="${ax}" y2="${bottom}" stroke="#879596"/>`);
    out.push(svgText(outside, bottom + 3, '0', { size: 9, color: '#545b64', anchor }));
    if (max !== undefined) out.push(svgText(outside, top + 3, formatNumber(max), { size: 9, color: '#545b64', anchor }));
    const axisLabel = yAxis[side]?.label;
    if (axisLabel) {
      const lx2 = side === 'left' ? x + 12 : x + w - 6;
      out.push(svgText(lx2, (top + bottom) / 2, fit(axisLabel, bottom - top, 9), { size: 9, color: '#545b64', anchor: 'middle', rotate: true }));
    }
    for (const a of lines) {
      const ay = (bottom - ((bottom - top) * a.value) / max!).toFixed(1);
      const color = a.color ?? '#d62728';
      out.push(`<line x1="${left}" y1="${ay}" x2="${right}" y2="${ay}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 3"/>`);
      // Left-axis labels above their line at the left, right-axis labels below it at the right: they never cover each other.
      const label = a.label ?? formatNumber(a.value);
      const [tx, ty] = side === 'left' ? [left + 4, +ay - 3] : [right - 4, +ay + 10];
      out.push(svgText(tx, ty, fit(label, right - left - 8, 9), { size: 9, color, anchor: side === 'left' ? 'start' : 'end' }));
    }
  }
  return out.join('');
}

/** The alarm status tiles of a template: each alarm's construct id and condition. */
export function alarmTiles(template: CfnTemplate): Map<string, AlarmTile> {
  const ops: Record<string, string> = {
    GreaterThanOrEqualToThreshold: '>=', GreaterThanThreshold: '>', LessThanThreshold: '<', LessThanOrEqualToThreshold: '<=',
  };
  const tiles = new Map<string, AlarmTile>();
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type !== 'AWS::CloudWatch::Alarm') continue;
    const props = r.Properties as { MetricName?: string; ComparisonOperator: string; Threshold: number };
    const path = constructPath(template, id).split('/');
    tiles.set(id, { name: path[path.length - 1], condition: `${props.MetricName ?? 'expression'} ${ops[props.ComparisonOperator] ?? props.ComparisonOperator} ${formatNumber(props.Threshold)}` });
  }
  return tiles;
}

/**
 * The SVG of a dashboard body. `tiles` names the alarms of alarm status widgets;
 * `caption` is written under the dashboard.
 */
export function renderDashboardSvg(body: DashboardBody, tiles: Map<string, AlarmTile>, caption: string): string {
  const rows = Math.max(...body.widgets.map((w) => w.y + w.height));
  const width = MARGIN * 2 + 24 * COLUMN;
  const height = MARGIN * 2 + rows * ROW + 24;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<title>${esc(caption)}</title>`,
    `<rect width="${width}" height="${height}" fill="#f2f3f3"/>`,
  ];
  for (const widget of body.widgets) {
    const x = MARGIN + widget.x * COLUMN + GAP;
    const y = MARGIN + widget.y * ROW + GAP;
    const w = widget.width * COLUMN - 2 * GAP;
    const h = widget.height * ROW - 2 * GAP;
    out.push('<g>');
    if (widget.type === 'text') out.push(renderText(widget, x, y, w, h));
    else if (widget.type === 'alarm') out.push(renderAlarms(widget, x, y, w, h, tiles));
    else if (widget.type === 'metric') out.push(renderGraph(widget, x, y, w, h));
    else throw new Error(`the renderer does not draw ${widget.type} widgets yet: teach test/dashboard/render-svg.ts`);
    out.push('</g>');
  }
  out.push(svgText(MARGIN + GAP, height - MARGIN, caption, { size: 10, color: '#545b64' }));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
