/**
 * BillingDashboard's template: one section per construct with every alarm the
 * construct created, a graph for every metric its handlers publish, alarm
 * thresholds on the graphs of the metrics they watch, a layout on the 24-column
 * grid, the add methods, refusals, cdk-nag and cfn-lint.
 */
import { App, CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { DashboardBody, Widget, dashboardBody, widgetAlarmIds, widgetAnnotations, widgetMetrics } from './dashboard-body';
import { controlPlaneApi } from '../../examples/control-plane-api';
import { DynamoDbBillingStack } from '../../examples/dynamodb-billing-stack';
import { StripeBillingStack } from '../../examples/stripe-billing-stack';
import { BillingDashboard, BillingProvider, DynamoDbBilling, StripeBilling, UsageIngestor } from '../../src';
import { METRICS as INGESTOR_METRICS } from '../../src/ingestor/ingestor-contract';
import { METRICS as DYNAMODB_METRICS } from '../../src/providers/dynamodb-billing/contract';
import { STRIPE_METRICS } from '../../src/providers/stripe-billing/contract';
import { cfnLintErrors, nagFindings, scratchDir } from '../support/synth';

function newApp(): App {
  return new App({ outdir: scratchDir('dashboard') });
}

/** The body of the stack's only dashboard. */
function bodyOf(stack: Stack): DashboardBody {
  return dashboardBody(Template.fromStack(stack).toJSON() as never);
}

const metricWidgets = (body: DashboardBody) => body.widgets.filter((w) => w.type === 'metric');
const graph = (body: DashboardBody, title: string): Widget => {
  const found = metricWidgets(body).filter((w) => w.properties.title === title);
  if (found.length !== 1) throw new Error(`${found.length} graphs titled ${title}: ${metricWidgets(body).map((w) => w.properties.title).join(' | ')}`);
  return found[0];
};
const namesIn = (w: Widget) => widgetMetrics(w).map((m) => m.metricName);
const logicalIds = (stack: Stack, alarms: cloudwatch.Alarm[]) => alarms.map((a) => stack.getLogicalId(a.node.defaultChild as CfnElement));

describe('BillingDashboard of the Stripe example (ingestor, StripeBilling, BillingProvider)', () => {
  const stack = new StripeBillingStack(newApp(), 'StripeBillingExample');
  const body = bodyOf(stack);

  test('matches the snapshot of its body (`npx jest --ci=false -u test/dashboard/billing-dashboard.test.ts` after an intended change)', () => {
    expect(body).toMatchSnapshot();
  });

  test('one dashboard, opening on the last 24 hours, every graph at its own period', () => {
    Template.fromStack(stack).resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    expect(body).toMatchObject({ start: '-P1D', periodOverride: 'inherit' });
  });

  test('shows every alarm of every construct once, in its construct\'s section', () => {
    const alarmWidgets = body.widgets.filter((w) => w.type === 'alarm');
    expect(alarmWidgets.map((w) => w.properties.title)).toEqual(['Usage ingestor alarms (7)', 'StripeBilling alarms (16)', 'BillingProvider alarms (3)']);
    expect(alarmWidgets.map(widgetAlarmIds)).toEqual([
      logicalIds(stack, stack.ingestor.alarms), logicalIds(stack, stack.billing.alarms), logicalIds(stack, stack.provider.alarms),
    ]);
    const everyAlarm = Object.keys(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm'));
    expect(alarmWidgets.flatMap(widgetAlarmIds).sort()).toEqual(everyAlarm.sort());
    expect(stack.dashboard.alarms).toEqual([...stack.ingestor.alarms, ...stack.billing.alarms, ...stack.provider.alarms]);
  });

  test('graphs every metric the ingestor\'s and StripeBilling\'s handlers publish', () => {
    const shown = new Set(metricWidgets(body).flatMap(namesIn));
    for (const name of [...Object.values(INGESTOR_METRICS), ...Object.values(STRIPE_METRICS)]) expect(shown).toContain(name);
  });

  test('ingest rate, records by disposition, closing lag and windows closed', () => {
    expect(namesIn(graph(body, 'Ingest rate, records per 5 min'))).toEqual(['IncomingRecords', 'RecordsCounted']);
    expect(widgetMetrics(graph(body, 'Records by disposition per 5 min')).map((m) => m.label)).toEqual(['counted', 'duplicate', 'quarantined']);
    expect(graph(body, 'Records by disposition per 5 min').properties.stacked).toBe(true);
    expect(namesIn(graph(body, 'Windows closed per 5 min'))).toEqual(['WindowsClosed', 'VoidsApplied']);
    expect(widgetAnnotations(graph(body, 'Closing lag, seconds (max)'))).toEqual([{ value: 1800, label: 'ClosingLagAlarm >= 1800', color: '#d62728', yAxis: 'left' }]);
    expect(widgetAnnotations(graph(body, 'Aggregator lag, ms (max)'))).toEqual([{ value: 300_000, label: 'IteratorAgeAlarm > 300000', color: '#d62728', yAxis: 'left' }]);
  });

  test('push outcomes, reconciliation drift with the reconciler\'s hourly alarms, provider errors, dead-letter queues', () => {
    expect(namesIn(graph(body, 'Push outcomes, windows per 5 min'))).toEqual(
      ['WindowsSent', 'WindowsCarriedOver', 'WindowsZero', 'WindowsWithoutMeter', 'WindowsAfterOffboarding', 'WindowsDeferred']);
    const drift = graph(body, 'Reconciliation drift per hour');
    expect(widgetMetrics(drift).map((m) => [m.metricName, m.period, m.yAxis])).toEqual([
      ['WindowsNotCounted', 3600, 'left'], ['WindowsResent', 3600, 'left'], ['WindowsDropped', 3600, 'left'],
      ['WindowsCarriedOver', 3600, 'left'], ['UnitsOverCounted', 3600, 'right'], ['UnitsNotInvoiced', 3600, 'right'],
    ]);
    expect(widgetAnnotations(drift).map((a) => [a.label, a.yAxis])).toEqual([['WindowsNotCountedAlarm, WindowsDroppedAlarm >= 1', 'left'], ['UnitsNotInvoicedAlarm, UnitsOverCountedAlarm >= 1', 'right']]);
    // The carried-over alarm watches 5-minute sums: its line is on the push outcomes, not on the hourly drift.
    expect(widgetAnnotations(graph(body, 'Push outcomes, windows per 5 min')).map((a) => a.label)).toEqual(['WindowsCarriedOverAlarm >= 1']);
    expect(widgetMetrics(graph(body, 'Function errors per 5 min')).map((m) => m.label)).toEqual(
      ['create customer', 'delete customer', 'webhook', 'usage push', 'reconciler', 'Stripe setup']);
    const queues = graph(body, 'Dead-letter messages (max)');
    expect(widgetMetrics(queues).map((m) => [m.metricName, m.label])).toEqual([
      ['ApproximateNumberOfMessagesVisible', 'create customer'], ['ApproximateNumberOfMessagesVisible', 'delete customer'], ['ApproximateNumberOfMessagesVisible', 'usage push'],
    ]);
    expect(widgetAnnotations(queues).map((a) => a.label)).toEqual(['3 alarms >= 1']);
    expect(namesIn(graph(body, 'Events delivered per 5 min'))).toEqual(['Invocations', 'Invocations', 'Invocations']);
  });

  test('lays the widgets out on the 24-column grid without overlap, each section a header, its alarms, then its graphs', () => {
    for (const w of body.widgets) expect(w.x + w.width).toBeLessThanOrEqual(24);
    const cells = new Set<string>();
    for (const w of body.widgets) {
      for (let x = w.x; x < w.x + w.width; x++) {
        for (let y = w.y; y < w.y + w.height; y++) {
          expect(cells.has(`${x},${y}`)).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
    const sections = body.widgets.filter((w) => w.type === 'text').map((w) => String(w.properties.markdown).split('\n')[0]);
    expect(sections).toEqual(['# Billing pipeline', '## Usage ingestor: StripeBillingExample/Ingestor',
      '## StripeBilling: StripeBillingExample/StripeBilling', '## BillingProvider: StripeBillingExample/Billing']);
    expect(body.widgets.map((w) => w.type).slice(0, 4)).toEqual(['text', 'text', 'alarm', 'metric']);
  });

  test('cfn-lint reports no errors', () => {
    expect(cfnLintErrors(stack)).toEqual([]);
  });
});

describe('BillingDashboard of the DynamoDB example', () => {
  test('push outcomes, lifecycle and errors of DynamoDbBilling, and every metric its handlers publish', () => {
    const stack = new DynamoDbBillingStack(newApp(), 'DynamoDbBillingExample');
    const body = bodyOf(stack);
    expect(namesIn(graph(body, 'Push outcomes, windows per 5 min'))).toEqual(['WindowsBilled', 'WindowsUnpriced', 'WindowsNotBilledAfterClose']);
    expect(widgetAnnotations(graph(body, 'Push outcomes, windows per 5 min')).map((a) => a.label)).toEqual(['UsageAfterCloseAlarm >= 1']);
    const shown = new Set(metricWidgets(body).flatMap(namesIn));
    for (const name of Object.values(DYNAMODB_METRICS)) expect(shown).toContain(name);
    expect(body.widgets.filter((w) => w.type === 'alarm').flatMap(widgetAlarmIds))
      .toEqual(logicalIds(stack, [...stack.ingestor.alarms, ...stack.billing.alarms, ...stack.provider.alarms]));
    // The provider wires the user functions too: five slots.
    expect(widgetMetrics(graph(body, 'Wired function errors per 5 min')).map((m) => m.label))
      .toEqual(['create customer', 'delete customer', 'create user', 'delete user', 'usage push']);
  });
});

describe('building it', () => {
  function stripeWithoutIngestor(stack: Stack) {
    return new StripeBilling(stack, 'Stripe', {
      apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'),
      manageStripeResources: false,
      webhookSigningSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'Signing', 'stripe/signing'),
    });
  }

  test('the add methods build the same dashboard as the props', () => {
    const fromProps = new Stack(newApp(), 'S');
    const ingestor = new UsageIngestor(fromProps, 'Ingestor');
    const billing = new DynamoDbBilling(fromProps, 'Billing', { ingestor });
    new BillingDashboard(fromProps, 'Dashboard', { ingestor, dynamoDbBilling: billing });

    const added = new Stack(newApp(), 'S');
    const ingestor2 = new UsageIngestor(added, 'Ingestor');
    const billing2 = new DynamoDbBilling(added, 'Billing', { ingestor: ingestor2 });
    const dashboard = new BillingDashboard(added, 'Dashboard');
    dashboard.addIngestor(ingestor2);
    dashboard.addDynamoDbBilling(billing2);

    expect(bodyOf(added)).toEqual(bodyOf(fromProps));
  });

  test('a StripeBilling without ingestor or Stripe setup: no push graphs and no setup errors, the webhook and lifecycle still', () => {
    const stack = new Stack(newApp(), 'S');
    const dashboard = new BillingDashboard(stack, 'Dashboard', { stripeBilling: stripeWithoutIngestor(stack) });
    const titles = metricWidgets(bodyOf(stack)).map((w) => w.properties.title);
    expect(titles).toEqual(['Webhook calls per 5 min', 'Lifecycle per 5 min', 'Function errors per 5 min', 'Offboarding dead letters']);
    expect(widgetMetrics(graph(bodyOf(stack), 'Function errors per 5 min')).map((m) => m.label)).toEqual(['create customer', 'delete customer', 'webhook']);
    expect(dashboard.alarms.map((a) => a.node.id)).toEqual(['OffboardingScheduleDeadLetterAlarm', 'WebhookErrorsAlarm', 'WebhookRefusedAlarm']);
  });

  test('takes a name and a default time range', () => {
    const stack = new Stack(newApp(), 'S');
    new BillingDashboard(stack, 'Dashboard', { dashboardName: 'billing-pipeline', defaultInterval: Duration.days(7), dynamoDbBilling: new DynamoDbBilling(stack, 'Billing') });
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'billing-pipeline' });
    expect(bodyOf(stack).start).toBe('-P7D');
  });

  test('fails at synth if nothing was added', () => {
    const app = newApp();
    new BillingDashboard(new Stack(app, 'S'), 'Dashboard');
    expect(() => app.synth()).toThrow(/BillingDashboard at S\/Dashboard: nothing to show\. Pass ingestor, stripeBilling, dynamoDbBilling or billingProvider/);
  });

  test('fails if a construct is added twice', () => {
    const stack = new Stack(newApp(), 'S');
    const ingestor = new UsageIngestor(stack, 'Ingestor');
    const dashboard = new BillingDashboard(stack, 'Dashboard', { ingestor });
    expect(() => dashboard.addIngestor(ingestor)).toThrow('BillingDashboard at S/Dashboard: Usage ingestor S/Ingestor is already on this dashboard; add each construct once.');
  });

  test('fails on a bad name or time range, every problem at once, with the value and the fix', () => {
    const stack = new Stack(newApp(), 'S');
    expect(() => new BillingDashboard(stack, 'Dashboard', { dashboardName: 'billing pipeline', defaultInterval: Duration.minutes(1) })).toThrow(
      'BillingDashboard at S/Dashboard: invalid props:\n'
      + '- defaultInterval (Python: default_interval) must be between 5 minutes and 455 days (given 1 minute): CloudWatch keeps metrics up to 15 months: '
      + 'give for example Duration.hours(24) or Duration.days(7)\n'
      + '- dashboardName (Python: dashboard_name) must be 1 to 255 letters, digits, - or _ (given \'billing pipeline\'): for example \'billing-pipeline\'');
  });

  test('cdk-nag finds nothing to acknowledge in a pipeline with its dashboard', () => {
    const findings = nagFindings((app) => {
      const stack = new Stack(app, 'S');
      const ingestor = new UsageIngestor(stack, 'Ingestor');
      const httpApi = controlPlaneApi(stack, 'Api');
      const billing = new DynamoDbBilling(stack, 'Billing', { ingestor });
      const provider = new BillingProvider(stack, 'Provider', { billing, httpApi });
      new BillingDashboard(stack, 'Dashboard', { ingestor, dynamoDbBilling: billing, billingProvider: provider });
    });
    expect(findings).toEqual([]);
  });
});
