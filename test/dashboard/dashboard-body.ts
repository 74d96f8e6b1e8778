/**
 * Reads a CloudWatch dashboard's `DashboardBody` out of a synthesized template:
 * the `Fn::Join` CloudFormation would evaluate, with each intrinsic replaced by
 * a readable placeholder, parsed as the JSON CloudWatch receives. Shared by the
 * dashboard's tests and the image it is drawn as (docs/dashboard.svg).
 */

/** A CloudFormation template, as `Template.toJSON()` or `cdk synth` gives it. */
export interface CfnTemplate {
  readonly Resources: Record<string, CfnResourceJson>;
}

/** One resource of a template. */
export interface CfnResourceJson {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

/** One widget of a dashboard body (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html). */
export interface Widget {
  readonly type: string;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly properties: Record<string, unknown>;
}

/** A dashboard body: its widgets and its time settings. */
export interface DashboardBody {
  readonly widgets: Widget[];
  readonly start?: string;
  readonly periodOverride?: string;
}

/** A metric of a metric widget: `[namespace, name, dimension name, value, ..., { options }]`. */
export interface WidgetMetric {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Record<string, string>;
  readonly label?: string;
  readonly stat?: string;
  readonly period?: number;
  readonly color?: string;
  readonly yAxis: 'left' | 'right';
}

/** A horizontal annotation of a metric widget. */
export interface WidgetAnnotation {
  readonly value: number;
  readonly label?: string;
  readonly color?: string;
  readonly yAxis: 'left' | 'right';
}

/** The placeholder an intrinsic becomes inside the body: `{{Ref:X}}`, `{{GetAtt:X.Arn}}`. */
function placeholder(intrinsic: unknown): string {
  const o = intrinsic as Record<string, unknown>;
  if (typeof o?.Ref === 'string') return `{{Ref:${o.Ref}}}`;
  const getAtt = o?.['Fn::GetAtt'] as [string, string] | undefined;
  if (Array.isArray(getAtt)) return `{{GetAtt:${getAtt[0]}.${getAtt[1]}}}`;
  throw new Error(`DashboardBody holds an intrinsic the reader does not know: ${JSON.stringify(intrinsic)}`);
}

/** The logical ids of the template's dashboards. */
export function dashboardIds(template: CfnTemplate): string[] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Dashboard').map(([id]) => id);
}

/** The body of the dashboard `logicalId` (the template's only dashboard when not given). */
export function dashboardBody(template: CfnTemplate, logicalId?: string): DashboardBody {
  const ids = dashboardIds(template);
  const id = logicalId ?? (ids.length === 1 ? ids[0] : undefined);
  if (!id || !ids.includes(id)) throw new Error(`no single dashboard to read: the template has ${ids.length ? ids.join(', ') : 'none'}`);
  const raw = template.Resources[id].Properties?.DashboardBody;
  let text: string;
  if (typeof raw === 'string') {
    text = raw;
  } else {
    const join = (raw as Record<string, unknown>)['Fn::Join'] as [string, unknown[]];
    if (!Array.isArray(join) || join[0] !== '') throw new Error(`DashboardBody is neither a string nor an Fn::Join: ${JSON.stringify(raw).slice(0, 200)}`);
    text = join[1].map((part) => (typeof part === 'string' ? part : placeholder(part))).join('');
  }
  return JSON.parse(text) as DashboardBody;
}

/** The metrics of a metric widget, with the shorthand `"."` (same as the metric above) expanded. */
export function widgetMetrics(widget: Widget): WidgetMetric[] {
  const rows = (widget.properties.metrics ?? []) as unknown[][];
  const out: WidgetMetric[] = [];
  let previous: unknown[] = [];
  for (const row of rows) {
    const last = row[row.length - 1];
    const options = (typeof last === 'object' && last !== null ? last : {}) as Record<string, unknown>;
    const parts = (options === last ? row.slice(0, -1) : row).map((p, i) => (p === '.' ? previous[i] : p));
    if (options.expression !== undefined) throw new Error(`widget ${String(widget.properties.title)}: math expressions are not read`);
    previous = parts;
    const dimensions: Record<string, string> = {};
    for (let i = 2; i + 1 < parts.length; i += 2) dimensions[String(parts[i])] = String(parts[i + 1]);
    out.push({
      namespace: String(parts[0]),
      metricName: String(parts[1]),
      dimensions,
      label: options.label as string | undefined,
      stat: (options.stat as string | undefined) ?? (widget.properties.stat as string | undefined),
      period: (options.period as number | undefined) ?? (widget.properties.period as number | undefined),
      color: options.color as string | undefined,
      yAxis: options.yAxis === 'right' ? 'right' : 'left',
    });
  }
  return out;
}

/** The horizontal annotations of a metric widget. */
export function widgetAnnotations(widget: Widget): WidgetAnnotation[] {
  const horizontal = ((widget.properties.annotations as { horizontal?: Record<string, unknown>[] } | undefined)?.horizontal ?? []);
  return horizontal.map((a) => ({
    value: Number(a.value),
    label: a.label as string | undefined,
    color: a.color as string | undefined,
    yAxis: a.yAxis === 'right' ? 'right' : 'left',
  }));
}

/** The logical ids of the alarms an alarm widget shows (its ARNs are `{{GetAtt:<id>.Arn}}`). */
export function widgetAlarmIds(widget: Widget): string[] {
  return ((widget.properties.alarms ?? []) as string[]).map((arn) => {
    const m = /^\{\{GetAtt:([A-Za-z0-9]+)\.Arn\}\}$/.exec(arn);
    if (!m) throw new Error(`alarm widget ${String(widget.properties.title)}: ${arn} is not an alarm of this template`);
    return m[1];
  });
}

/** A resource's construct path (`aws:cdk:path` metadata) without the trailing `/Resource`. */
export function constructPath(template: CfnTemplate, logicalId: string): string {
  const path = template.Resources[logicalId]?.Metadata?.['aws:cdk:path'];
  if (typeof path !== 'string') throw new Error(`${logicalId}: no such resource, or no aws:cdk:path metadata`);
  return path.replace(/\/Resource$/, '');
}
