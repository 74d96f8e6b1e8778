/**
 * docs/dashboard.svg is the example BillingDashboard drawn from its own
 * DashboardBody: it fails here when the dashboard changed and the image was
 * not drawn again (`npx projen docs:dashboard`).
 */
import * as fs from 'fs';
import { widgetAnnotations, widgetMetrics } from './dashboard-body';
import { exampleDashboard, IMAGE_FILE } from './example-image';
import { alarmTiles, renderDashboardSvg } from './render-svg';
import { scratchDir } from '../support/synth';

const example = exampleDashboard(scratchDir('dashboard-image'));

test('docs/dashboard.svg is the example dashboard as its definition draws it now (`npx projen docs:dashboard` to redraw)', () => {
  const committed = fs.readFileSync(IMAGE_FILE, 'utf8');
  // Not toEqual: a diff of the whole image would drown the message.
  if (committed !== example.svg) {
    throw new Error('docs/dashboard.svg no longer matches the example BillingDashboard\'s DashboardBody: run `npx projen docs:dashboard` and commit the image');
  }
});

test('docs/dashboard.md shows the image', () => {
  expect(fs.readFileSync(IMAGE_FILE.replace(/dashboard\.svg$/, 'dashboard.md'), 'utf8')).toMatch(/!\[[^\]]+\]\(dashboard\.svg\)/);
});

test('the image draws every widget, metric label, alarm and threshold line of the body, and nothing else', () => {
  const count = (re: RegExp) => (example.svg.match(re) ?? []).length;
  const metricWidgets = example.body.widgets.filter((w) => w.type === 'metric');
  const alarmWidgets = example.body.widgets.filter((w) => w.type === 'alarm');
  expect(count(/<g>/g)).toBe(example.body.widgets.length);
  expect(count(/stroke-dasharray="6 3"/g)).toBe(metricWidgets.flatMap(widgetAnnotations).length);
  expect(count(/<rect [^>]*height="4"/g)).toBe(metricWidgets.flatMap(widgetMetrics).length);
  expect(count(/<circle /g)).toBe(alarmWidgets.flatMap((w) => w.properties.alarms as string[]).length);
  // Each widget's title, as the body gives it (titles of this dashboard are short enough not to be cut).
  for (const w of [...metricWidgets, ...alarmWidgets]) expect(example.svg).toContain(`>${String(w.properties.title)}</text>`);
  expect(count(/stroke-dasharray="6 3"/g)).toBeGreaterThan(10);
});

test('a change to the dashboard changes the image (the check above can fail)', () => {
  const { body, template } = example;
  const last = body.widgets.length - 1;
  const changed = { ...body, widgets: body.widgets.map((w, i) => (i === last ? { ...w, properties: { ...w.properties, title: 'Renamed' } } : w)) };
  const draw = (b: typeof body) => renderDashboardSvg(b, alarmTiles(template), 'caption');
  expect(draw(changed)).not.toEqual(draw(body));
  expect(draw(changed)).toContain('>Renamed</text>');
});

test('the renderer refuses a widget type it cannot draw, rather than leaving it out', () => {
  const body = { widgets: [{ type: 'log', x: 0, y: 0, width: 6, height: 6, properties: {} }] };
  expect(() => renderDashboardSvg(body, new Map(), 'caption')).toThrow(/does not draw log widgets/);
});
