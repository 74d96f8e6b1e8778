import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct, IConstruct } from 'constructs';
import { BillingFunctionSlot, BillingProvider } from '../billing/billing-provider';
import { UsageIngestor } from '../ingestor/usage-ingestor';
import { functionErrorsMetric } from '../private/alarms';
import { PropsValidator } from '../private/validation';
import { DynamoDbBilling } from '../providers/dynamodb-billing/dynamodb-billing';
import { StripeBilling } from '../providers/stripe-billing/stripe-billing';

/**
 * Properties of a `BillingDashboard`. Every construct is optional: pass the
 * ones your pipeline has, or add them later with the `addXxx()` methods.
 */
export interface BillingDashboardProps {
  /**
   * Name of the dashboard: letters, digits, `-` and `_`.
   *
   * @default - a name CloudFormation generates
   */
  readonly dashboardName?: string;

  /**
   * The time range the dashboard opens on.
   *
   * @default Duration.hours(24)
   */
  readonly defaultInterval?: Duration;

  /**
   * A usage ingestor to show: ingest rate, records by disposition, windows closed,
   * closing lag, aggregator lag, errors and dead letters, and its alarms.
   *
   * @default - none; add one with `addIngestor()`
   */
  readonly ingestor?: UsageIngestor;

  /**
   * A `StripeBilling` to show: push outcomes, windows not billed, pending windows,
   * reconciliation drift, webhook calls, lifecycle, function errors, and its alarms.
   *
   * @default - none; add one with `addStripeBilling()`
   */
  readonly stripeBilling?: StripeBilling;

  /**
   * A `DynamoDbBilling` to show: push outcomes, lifecycle, function errors, and its alarms.
   *
   * @default - none; add one with `addDynamoDbBilling()`
   */
  readonly dynamoDbBilling?: DynamoDbBilling;

  /**
   * A `BillingProvider` to show: events delivered and failed per function, function
   * errors, dead-letter queue depths, and its alarms.
   *
   * @default - none; add one with `addBillingProvider()`
   */
  readonly billingProvider?: BillingProvider;
}

/** Height of a graph, in grid units. */
const GRAPH_HEIGHT = 6;
/** The dashboard grid is 24 units wide. */
const FULL_WIDTH = 24;
/**
 * An alarm status widget shows about six alarms per line at full width
 * (cdk-monitoring-constructs' AlarmMatrixWidget sizes it the same way).
 */
const ALARMS_PER_LINE = 6;

/** What one graph shows. */
interface GraphSpec {
  readonly title: string;
  readonly left: cloudwatch.IMetric[];
  readonly right?: cloudwatch.IMetric[];
  readonly leftLabel: string;
  readonly rightLabel?: string;
  readonly stacked?: boolean;
}

/**
 * A CloudWatch dashboard of the whole billing pipeline, built from the
 * library's constructs: one section per construct, each opening with the
 * status of every alarm the construct created, then its metrics (through the
 * constructs' typed `metricXxx()` methods). A graph that shows an alarmed metric
 * carries the alarm's threshold as a horizontal line.
 *
 * - `UsageIngestor`: ingest rate, records by disposition, windows closed,
 *   closing lag, aggregator lag, errors and dead letters.
 * - `StripeBilling`: push outcomes, windows not billed, the oldest pending
 *   window, reconciliation drift (the hourly reconciler), webhook calls,
 *   lifecycle, function errors, the offboarding schedules' dead letters.
 * - `DynamoDbBilling`: push outcomes, lifecycle, function errors.
 * - `BillingProvider`: events delivered and failed per function, function
 *   errors, dead-letter queue depths.
 *
 * Graphs keep their own period (`PeriodOverride.INHERIT`), so that an alarm's
 * line is compared with the statistic it watches.
 */
export class BillingDashboard extends Construct {
  /** The CloudWatch dashboard: add your own widgets with `dashboard.addWidgets()`. */
  public readonly dashboard: cloudwatch.Dashboard;
  /** Every alarm shown on the dashboard, section by section. */
  public readonly alarms: cloudwatch.Alarm[] = [];

  private readonly shown = new Set<IConstruct>();

  constructor(scope: Construct, id: string, props: BillingDashboardProps = {}) {
    super(scope, id);
    validate(this, props);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: props.defaultInterval ?? Duration.hours(24),
      periodOverride: cloudwatch.PeriodOverride.INHERIT,
    });
    this.dashboard.addWidgets(new cloudwatch.TextWidget({
      markdown: '# Billing pipeline\nOne section per construct: the status of its alarms, then its metrics. '
        + 'Red lines mark the thresholds of the alarms that watch a graph\'s metrics.',
      width: FULL_WIDTH,
      height: 2,
      // Explicit: aws-cdk-lib's default background changed between versions (the Python and Java registries lag npm's).
      background: cloudwatch.TextWidgetBackground.TRANSPARENT,
    }));
    if (props.ingestor) this.addIngestor(props.ingestor);
    if (props.stripeBilling) this.addStripeBilling(props.stripeBilling);
    if (props.dynamoDbBilling) this.addDynamoDbBilling(props.dynamoDbBilling);
    if (props.billingProvider) this.addBillingProvider(props.billingProvider);
    this.node.addValidation({
      validate: () => (this.shown.size > 0 ? [] : [`BillingDashboard at ${this.node.path}: nothing to show. Pass ingestor, stripeBilling, `
        + 'dynamoDbBilling or billingProvider, or call addIngestor(), addStripeBilling(), addDynamoDbBilling() or addBillingProvider().']),
    });
  }

  /**
   * Adds a section for a usage ingestor: records in (the stream's incoming records and
   * those counted), records by disposition, windows closed and voids applied, closing
   * lag, aggregator lag, errors and dead letters, and the status of its alarms.
   */
  public addIngestor(ingestor: UsageIngestor): void {
    this.addSection(ingestor, 'Usage ingestor', 'records in, their dispositions, windows closed', ingestor.alarms, [
      {
        title: 'Ingest rate, records per 5 min',
        left: [ingestor.metricIncomingRecords({ label: 'put on the stream' }), ingestor.metricRecordsCounted({ label: 'counted' })],
        leftLabel: 'records',
      },
      {
        title: 'Records by disposition per 5 min',
        left: [
          ingestor.metricRecordsCounted({ label: 'counted' }),
          ingestor.metricDuplicateRecords({ label: 'duplicate' }),
          ingestor.metricQuarantinedRecords({ label: 'quarantined' }),
        ],
        leftLabel: 'records',
        stacked: true,
      },
      {
        title: 'Windows closed per 5 min',
        left: [ingestor.metricWindowsClosed({ label: 'windows closed' }), ingestor.metricVoidsApplied({ label: 'voids applied' })],
        leftLabel: 'count',
      },
      {
        title: 'Closing lag, seconds (max)',
        left: [ingestor.metricClosingLag({ label: 'oldest window not yet closed' })],
        leftLabel: 'seconds',
      },
      {
        title: 'Aggregator lag, ms (max)',
        left: [ingestor.metricIteratorAge({ label: 'iterator age' })],
        leftLabel: 'milliseconds',
      },
      {
        title: 'Errors and dead letters',
        left: [ingestor.metricErrors({ label: 'aggregator errors' }), ingestor.metricCloserErrors({ label: 'closer errors' })],
        leftLabel: 'errors per 5 min',
        right: [ingestor.metricDeadLetterQueueDepth({ label: 'dead-letter messages' })],
        rightLabel: 'messages',
      },
    ]);
  }

  /**
   * Adds a section for a `StripeBilling`.
   *
   * With an ingestor: push outcomes, windows not billed, the oldest pending window
   * and reconciliation drift. Always: webhook calls, lifecycle, function errors, the
   * offboarding schedules' dead letters and the status of its alarms.
   */
  public addStripeBilling(billing: StripeBilling): void {
    const graphs: GraphSpec[] = [];
    if (billing.putUsageFunction) {
      graphs.push(
        {
          title: 'Push outcomes, windows per 5 min',
          left: [
            billing.metricWindowsSent({ label: 'sent' }),
            billing.metricWindowsCarriedOver({ label: 'carried over' }),
            billing.metricWindowsZero({ label: 'zero' }),
            billing.metricWindowsWithoutMeter({ label: 'without meter' }),
            billing.metricWindowsAfterOffboarding({ label: 'after offboarding' }),
            billing.metricWindowsDeferred({ label: 'deferred' }),
          ],
          leftLabel: 'windows',
          stacked: true,
        },
        {
          title: 'Windows not billed per 5 min',
          left: [
            billing.metricWindowsTooOld({ label: 'too old' }),
            billing.metricWindowsRejected({ label: 'rejected' }),
            billing.metricWindowsUncertain({ label: 'uncertain' }),
            billing.metricWindowsNoSubscription({ label: 'no subscription' }),
          ],
          leftLabel: 'windows',
        },
        {
          title: 'Oldest pending window, hours (max)',
          left: [billing.metricOldestPendingWindowHours({ label: 'oldest window waiting' })],
          leftLabel: 'hours',
        },
        {
          title: 'Reconciliation drift per hour',
          left: [
            billing.metricWindowsNotCounted({ label: 'not counted' }),
            billing.metricWindowsResent({ label: 'resent' }),
            billing.metricWindowsDropped({ label: 'dropped' }),
            billing.metricWindowsCarriedOver({ label: 'carried over', period: Duration.hours(1) }),
          ],
          leftLabel: 'windows',
          right: [billing.metricUnitsOverCounted({ label: 'units over-counted' }), billing.metricUnitsNotInvoiced({ label: 'units not invoiced' })],
          rightLabel: 'units',
        },
      );
    }
    const errors = [
      functionErrorsMetric(billing.createCustomerFunction.handler, { label: 'create customer' }),
      functionErrorsMetric(billing.deleteCustomerFunction.handler, { label: 'delete customer' }),
      billing.metricWebhookErrors({ label: 'webhook' }),
    ];
    if (billing.putUsageFunction) {
      errors.push(billing.metricPutUsageErrors({ label: 'usage push' }), billing.metricReconcileErrors({ label: 'reconciler', period: Duration.minutes(5) }));
    }
    if (billing.stripeSetup) errors.push(billing.metricSetupErrors({ label: 'Stripe setup', period: Duration.minutes(5) }));
    graphs.push(
      {
        title: 'Webhook calls per 5 min',
        left: [
          billing.metricWebhookRefused({ label: 'refused' }),
          billing.metricWebhookUnknownCustomer({ label: 'unknown customer' }),
          billing.metricWebhookSupersededEvents({ label: 'superseded' }),
        ],
        leftLabel: 'calls',
      },
      {
        title: 'Lifecycle per 5 min',
        left: [
          billing.metricOffboardingsWaiting({ label: 'offboardings waiting' }),
          billing.metricCustomerDeletionsDeferred({ label: 'customer deletions deferred' }),
          billing.metricStaleLifecycleEvents({ label: 'stale events ignored' }),
        ],
        leftLabel: 'count',
      },
      { title: 'Function errors per 5 min', left: errors, leftLabel: 'errors' },
      {
        title: 'Offboarding dead letters',
        left: [billing.metricOffboardingScheduleDeadLetterQueueDepth({ label: 'dead-letter messages' })],
        leftLabel: 'messages',
      },
    );
    this.addSection(billing, 'StripeBilling', 'usage pushed to Stripe, what Stripe counted, webhook calls', billing.alarms, graphs);
  }

  /**
   * Adds a section for a `DynamoDbBilling`.
   *
   * With an ingestor: push outcomes. Always: lifecycle, function errors and the
   * status of its alarms.
   */
  public addDynamoDbBilling(billing: DynamoDbBilling): void {
    const graphs: GraphSpec[] = [];
    if (billing.putUsageFunction) {
      graphs.push({
        title: 'Push outcomes, windows per 5 min',
        left: [
          billing.metricWindowsBilled({ label: 'billed' }),
          billing.metricWindowsUnpriced({ label: 'unpriced' }),
          billing.metricWindowsNotBilledAfterClose({ label: 'not billed after close' }),
        ],
        leftLabel: 'windows',
        stacked: true,
      });
    }
    const errors = [
      functionErrorsMetric(billing.createCustomerFunction.handler, { label: 'create customer' }),
      functionErrorsMetric(billing.deleteCustomerFunction.handler, { label: 'delete customer' }),
      functionErrorsMetric(billing.createUserFunction.handler, { label: 'create user' }),
      functionErrorsMetric(billing.deleteUserFunction.handler, { label: 'delete user' }),
      billing.metricWebhookErrors({ label: 'webhook' }),
    ];
    if (billing.putUsageFunction) errors.push(billing.metricPutUsageErrors({ label: 'usage push' }));
    graphs.push(
      {
        title: 'Lifecycle per 5 min',
        left: [billing.metricCustomersReopened({ label: 'customers reopened' }), billing.metricStaleLifecycleEvents({ label: 'stale events ignored' })],
        leftLabel: 'count',
      },
      { title: 'Function errors per 5 min', left: errors, leftLabel: 'errors' },
    );
    this.addSection(billing, 'DynamoDbBilling', 'charge lines priced from closed windows, lifecycle', billing.alarms, graphs);
  }

  /**
   * Adds a section for a `BillingProvider`: events delivered and failed per function
   * (its EventBridge rules), function errors, dead-letter queue depths and the status
   * of its alarms.
   */
  public addBillingProvider(provider: BillingProvider): void {
    const slots: [BillingFunctionSlot, string, unknown][] = [
      [BillingFunctionSlot.CREATE_CUSTOMER, 'create customer', provider.createCustomer],
      [BillingFunctionSlot.DELETE_CUSTOMER, 'delete customer', provider.deleteCustomer],
      [BillingFunctionSlot.CREATE_USER, 'create user', provider.createUser],
      [BillingFunctionSlot.DELETE_USER, 'delete user', provider.deleteUser],
      [BillingFunctionSlot.PUT_USAGE, 'usage push', provider.putUsage],
    ];
    const wired = slots.filter(([, , wiring]) => wiring !== undefined).map(([slot, label]) => ({ slot, label }));
    const per = (f: (slot: BillingFunctionSlot, label: string) => cloudwatch.IMetric) => wired.map(({ slot, label }) => f(slot, label));
    this.addSection(provider, 'BillingProvider', 'control plane events delivered to the billing functions', provider.alarms, [
      {
        title: 'Events delivered per 5 min',
        left: per((slot, label) => provider.metricInvocations(slot, { label })),
        leftLabel: 'invocations',
      },
      {
        title: 'Failed deliveries per 5 min',
        left: per((slot, label) => provider.metricFailedInvocations(slot, { label })),
        leftLabel: 'invocations',
      },
      {
        title: 'Wired function errors per 5 min',
        left: per((slot, label) => provider.metricErrors(slot, { label })),
        leftLabel: 'errors',
      },
      {
        title: 'Dead-letter messages (max)',
        left: per((slot, label) => provider.metricDeadLetterQueueDepth(slot, { label })),
        leftLabel: 'messages',
      },
    ]);
  }

  /** A header, the status of the construct's alarms, then its graphs in rows. */
  private addSection(construct: IConstruct, kind: string, what: string, alarms: cloudwatch.Alarm[], graphs: GraphSpec[]): void {
    if (this.shown.has(construct)) {
      throw new Error(`BillingDashboard at ${this.node.path}: ${kind} ${construct.node.path} is already on this dashboard; add each construct once.`);
    }
    this.shown.add(construct);
    this.alarms.push(...alarms);
    this.dashboard.addWidgets(new cloudwatch.TextWidget({
      markdown: `## ${kind}: ${construct.node.path}\n${what}`,
      width: FULL_WIDTH,
      height: 2,
      background: cloudwatch.TextWidgetBackground.TRANSPARENT,
    }));
    if (alarms.length > 0) {
      this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({
        title: `${kind} alarms (${alarms.length})`,
        alarms,
        sortBy: cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
        width: FULL_WIDTH,
        height: 1 + Math.ceil(alarms.length / ALARMS_PER_LINE),
      }));
    }
    const perRow = graphs.length <= 3 ? graphs.length : graphs.length % 4 === 0 ? 4 : 3;
    for (let i = 0; i < graphs.length; i += perRow) {
      this.dashboard.addWidgets(...graphs.slice(i, i + perRow).map((g) => this.graph(g, alarms, FULL_WIDTH / perRow)));
    }
  }

  private graph(spec: GraphSpec, alarms: cloudwatch.Alarm[], width: number): cloudwatch.GraphWidget {
    const axis = (label?: string): cloudwatch.YAxisProps => ({ min: 0, label, showUnits: false });
    return new cloudwatch.GraphWidget({
      title: spec.title,
      left: spec.left,
      right: spec.right,
      leftYAxis: axis(spec.leftLabel),
      rightYAxis: spec.right ? axis(spec.rightLabel) : undefined,
      leftAnnotations: this.annotations(spec.left, alarms),
      rightAnnotations: spec.right ? this.annotations(spec.right, alarms) : undefined,
      stacked: spec.stacked,
      width,
      height: GRAPH_HEIGHT,
    });
  }

  /**
   * One horizontal line per threshold of the alarms that watch one of these metrics
   * (same namespace, name, dimensions, statistic and period); alarms with the same
   * threshold share a line.
   */
  private annotations(metrics: cloudwatch.IMetric[], alarms: cloudwatch.Alarm[]): cloudwatch.HorizontalAnnotation[] | undefined {
    const shown = new Set(metrics.map((m) => this.metricKey(m)));
    const lines = new Map<string, { value: number; op: string; ids: string[] }>();
    for (const alarm of alarms) {
      if (!shown.has(this.metricKey(alarm.metric))) continue;
      const cfn = alarm.node.defaultChild as cloudwatch.CfnAlarm;
      const value = Number(cfn.threshold);
      const op = cfn.comparisonOperator === cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD ? '>' : '>=';
      const line = lines.get(`${op}${value}`) ?? { value, op, ids: [] };
      line.ids.push(alarm.node.id);
      lines.set(`${op}${value}`, line);
    }
    if (lines.size === 0) return undefined;
    return [...lines.values()].map(({ value, op, ids }) => ({
      value,
      label: `${ids.join(', ').length <= 48 ? ids.join(', ') : `${ids.length} alarms`} ${op} ${value}`,
      color: cloudwatch.Color.RED,
    }));
  }

  /** What makes two metrics the same series: namespace, name, dimensions, statistic, period, account and region. */
  private metricKey(metric: cloudwatch.IMetric): string {
    const stat = metric.toMetricConfig().metricStat;
    if (!stat) return `expression:${JSON.stringify(Stack.of(this).resolve(metric.toMetricConfig().mathExpression?.expression))}`;
    const dimensions = [...(stat.dimensions ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    return JSON.stringify(Stack.of(this).resolve({
      namespace: stat.namespace,
      metricName: stat.metricName,
      dimensions,
      statistic: stat.statistic,
      period: stat.period.toSeconds(),
      account: stat.account,
      region: stat.region,
    }));
  }
}

function validate(scope: Construct, props: BillingDashboardProps): void {
  const v = new PropsValidator(scope, 'BillingDashboard');
  v.durationRange('defaultInterval', props.defaultInterval, Duration.minutes(5), Duration.days(455),
    'CloudWatch keeps metrics up to 15 months: give for example Duration.hours(24) or Duration.days(7)');
  const name = props.dashboardName;
  if (name !== undefined && !Token.isUnresolved(name) && !/^[A-Za-z0-9_-]{1,255}$/.test(name)) {
    v.add('dashboardName', name, 'must be 1 to 255 letters, digits, - or _', 'for example \'billing-pipeline\'');
  }
  v.throwIfInvalid();
}
