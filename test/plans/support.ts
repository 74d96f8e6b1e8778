/**
 * Test support for BillingPlans' handler (and what reads its table): moto behind a
 * fault proxy that serves one request at a time (moto's conditional writes are not
 * atomic across its threads; DynamoDB's are), the plans table with its synthesized
 * schema, the bundled handler and the events EventBridge delivers.
 */
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { EventBridgeEvent } from 'aws-lambda';
import { BillingPlan, BillingPlans, BillingPlansProps } from '../../src/plans';
import { PLAN_READER_ENV, PLANS_ENV } from '../../src/plans/contract';
import { createTable, tableSchema } from '../providers/support';
import { scratchDir } from '../support/synth';

const ASSETS = path.resolve(__dirname, '..', '..', 'assets', 'plans');

/** The bundled plan event handler (run `npx projen bundle` first). */
export function planEventsHandler<R = any>(): (event: EventBridgeEvent<string, Record<string, unknown>>) => Promise<R> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ASSETS, 'plan-events.lambda', 'index.js')).handler;
}

/** Two plans used across the tests. */
export const PLANS: BillingPlan[] = [
  { name: 'basic', metrics: [{ metric: 'apiCalls', price: { freeQuantity: '1000', unitPrice: '0.01' } }], stripePriceIds: ['price_basic'] },
  { name: 'premium', metrics: [{ metric: 'apiCalls', price: { unitPrice: '0.005' } }], stripePriceIds: ['price_premium'] },
];

let tables = 0;

/**
 * Creates a plans table with BillingPlans' synthesized schema and sets the handler's
 * environment (and the plan reader's) as the construct sets them.
 */
export async function freshPlansTable(props: Partial<BillingPlansProps> = {}): Promise<string> {
  const stack = new Stack(new App({ outdir: scratchDir('plans') }), 'Plans');
  const plans = new BillingPlans(stack, 'Plans', { plans: PLANS, ...props });
  const name = `plans-${process.pid}-${++tables}`;
  await createTable(tableSchema(stack, 'PlansPlansTable', name));
  const fn = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'))
    .find((f: any) => f.Properties.Environment?.Variables?.[PLANS_ENV.PLAN_DEFINITIONS]) as any;
  const vars = fn.Properties.Environment.Variables as Record<string, unknown>;
  for (const [k, v] of Object.entries(vars)) if (typeof v === 'string') process.env[k] = v;
  process.env[PLANS_ENV.TABLE_NAME] = name;
  process.env[PLANS_ENV.EVENT_BUS_ARN] = 'default';
  process.env[PLAN_READER_ENV.TABLE_NAME] = name;
  process.env[PLAN_READER_ENV.PLAN_DEFINITIONS] = vars[PLANS_ENV.PLAN_DEFINITIONS] as string;
  process.env[PLAN_READER_ENV.BILLING_PERIOD_ANCHOR] = plans.billingPeriodAnchor;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  return name;
}

let eventCounter = 0;

/** A control plane event as a rule's Lambda target receives it. */
export function controlPlaneEvent(detailType: string, detail: Record<string, unknown>, opts: { id?: string; time?: Date } = {}):
EventBridgeEvent<string, Record<string, unknown>> {
  eventCounter++;
  return {
    'version': '0',
    'id': opts.id ?? `plan-evt-${process.pid}-${eventCounter}`,
    'detail-type': detailType,
    'source': 'sbt.control.plane',
    'account': '123456789012',
    'time': (opts.time ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'region': 'us-east-1',
    'resources': [],
    detail,
  };
}
