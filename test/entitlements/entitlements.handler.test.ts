/**
 * Entitlements on the bundled handlers against moto: usage records through the
 * ingestor's aggregator into the ledger, the ledger's changes (read from moto's
 * stream, filtered by the synthesized event source mapping's patterns) through
 * the ledger consumer, plans through BillingPlans' handler and the plan sync, and
 * threshold event items to the bus through a stand-in for the pipes.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBStreamEvent, KinesisStreamEvent } from 'aws-lambda';
import { bundled, createWorld, LedgerFeed, PipesStandIn, synthesize, Synthesized, World } from './support';
import { BillingPlan, EntitlementPeriod, LimitAction } from '../../src';
import { accessKey, accessOf, totalKey } from '../../src/entitlements/contract';
import { kinesisEvent, kinesisRecord, lambdaContext, TestClock, toRecords, Usage } from '../ingestor/support';
import { controlPlaneEvent } from '../plans/support';
import { FaultProxy } from '../providers/handlers/harness';
import { startMoto, Moto } from '../support/emulators';
import { bodyOf, configureApi, httpEvent, IAM, tokenOf, usageApiHandler } from '../usage-api/support';

const PLANS: BillingPlan[] = [
  {
    name: 'basic',
    metrics: [
      { metric: 'apiCalls', entitlements: [{ limit: '1000', period: EntitlementPeriod.DAY, thresholds: [50, 80], onLimit: LimitAction.BLOCK }] },
      { metric: 'exports', entitlements: [{ limit: '10', period: EntitlementPeriod.CALENDAR_MONTH, thresholds: [90] }] },
    ],
  },
  {
    name: 'premium',
    metrics: [{ metric: 'apiCalls', entitlements: [{ limit: '5000', period: EntitlementPeriod.DAY, thresholds: [80], onLimit: LimitAction.BLOCK }] }],
  },
];
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 4, 4, 9, 0, 0); // a Monday morning, UTC

let moto: Moto;
let proxy: FaultProxy;
let doc: DynamoDBDocumentClient;
let client: DynamoDBClient;
let s: Synthesized;
let world: World;
let feed: LedgerFeed;
let pipes: PipesStandIn;
let clock: TestClock;
let tenantSeq = 0;
const aggregate = bundled<KinesisStreamEvent>('ingestor/aggregator.lambda');
const consume = bundled<DynamoDBStreamEvent>('entitlements/consume.lambda');
const planEvents = bundled('plans/plan-events.lambda');
const planSync = bundled('entitlements/plan-sync.lambda');

beforeAll(async () => {
  moto = await startMoto();
  proxy = new FaultProxy(moto.endpoint, { serialize: true });
  process.env.AWS_ENDPOINT_URL = await proxy.start();
  client = new DynamoDBClient({ endpoint: moto.endpoint });
  doc = DynamoDBDocumentClient.from(client);
  s = synthesize(PLANS);
  clock = new TestClock(T0);
}, 60_000);

afterAll(async () => {
  clock?.restore();
  await proxy?.stop();
  await moto?.stop();
});

beforeEach(async () => {
  proxy.arm();
  clock.set(T0);
  world = await createWorld(client, s);
  feed = await LedgerFeed.open(moto.endpoint, client, world, s);
  pipes = await PipesStandIn.open(moto.endpoint, client, world, s);
});

/** A tenant onboarded on a plan, its plan recorded for the entitlements (the planChanged event delivered to the plan sync). */
async function onboard(tier: string): Promise<string> {
  const tenantId = `t${++tenantSeq}`;
  await changePlan(tenantId, tier, 'sbt_aws_onboardingRequest');
  return tenantId;
}

async function changePlan(tenantId: string, tier: string, detailType = 'cdk_saas_billing_planChangeRequest') {
  const result = await planEvents(controlPlaneEvent(detailType, { tenantId, tier }, { time: new Date(Date.now()) }));
  for (const e of result.emitted.filter((x: any) => x.kind === 'PLAN_CHANGED')) await planSync(controlPlaneEvent('cdk_saas_billing_planChanged', e.detail));
}

let recordSeq = 0;
/** Usage records of a tenant, through the aggregator (they arrive now). */
async function use(tenantId: string, metric: string, values: number[], at = Date.now()): Promise<Usage[]> {
  const records = values.map((value) => ({ id: `r${++recordSeq}`, tenantId, metric, value, timestamp: new Date(at).toISOString() }));
  await aggregate(kinesisEvent(toRecords(records)), lambdaContext());
  return records;
}

async function voidRecord(r: Usage) {
  await aggregate(kinesisEvent([kinesisRecord({ data: { id: `void-${r.id}`, tenantId: r.tenantId, voids: r.id, timestamp: r.timestamp } })]), lambdaContext());
}

/** Delivers the ledger's new changes to the consumer, batch after batch. */
async function deliver(opts: { keepUnchanged?: boolean } = {}) {
  for (const batch of await feed.batches(opts)) await consume(batch);
}

async function used(tenantId: string, metric: string, period: string, startMs: number): Promise<string | undefined> {
  const iso = new Date(startMs).toISOString().replace('.000Z', 'Z');
  const key = totalKey(tenantId, metric, period, iso);
  const { Item } = await doc.send(new GetCommand({ TableName: world.entitlementsTable, Key: key, ConsistentRead: true }));
  return Item === undefined ? undefined : String(Item.used);
}

async function access(tenantId: string, metric = 'apiCalls') {
  const { Item } = await doc.send(new GetCommand({ TableName: world.entitlementsTable, Key: accessKey(tenantId), ConsistentRead: true }));
  return accessOf(Item, metric, Math.floor(Date.now() / 1000));
}

const dayStart = (ms: number) => Math.floor(ms / DAY) * DAY;

describe('running totals', () => {
  test('exactly the ledger\'s: resends never advance a total, a void takes its record out; metrics without entitlements are never delivered', async () => {
    const t = await onboard('basic');
    const records = await use(t, 'apiCalls', [100, 150]);
    await use(t, 'storageGb', [7]); // no entitlement on storageGb
    await deliver();
    expect(await used(t, 'apiCalls', 'DAY', dayStart(T0))).toBe('250');
    // The producer resends both records, the same: DynamoDB writes no stream record; moto does, so the stand-in drops them.
    await aggregate(kinesisEvent(toRecords(records)), lambdaContext());
    await deliver();
    expect(feed.unchangedDropped).toBe(2);
    // Even delivered (as moto writes them), a resend changes nothing.
    await aggregate(kinesisEvent(toRecords(records)), lambdaContext());
    await deliver({ keepUnchanged: true });
    expect(await used(t, 'apiCalls', 'DAY', dayStart(T0))).toBe('250');
    await voidRecord(records[0]);
    await deliver();
    expect(await used(t, 'apiCalls', 'DAY', dayStart(T0))).toBe('150');
    const items = (await doc.send(new ScanCommand({ TableName: world.entitlementsTable }))).Items ?? [];
    expect(items.filter((i) => String(i.pk).startsWith('C#'))).toHaveLength(2); // contributions of the two apiCalls records only
    expect(items.some((i) => String(i.pk).includes('storageGb'))).toBe(false);
  });

  test('a changed resend replaces the value; a void that arrives before its record leaves it uncounted', async () => {
    const t = await onboard('basic');
    const [r] = await use(t, 'apiCalls', [100]);
    await deliver();
    await aggregate(kinesisEvent(toRecords([{ ...r, value: 40 }])), lambdaContext());
    await deliver();
    expect(await used(t, 'apiCalls', 'DAY', dayStart(T0))).toBe('40');
    const late = { id: 'comes-later', tenantId: t, metric: 'apiCalls', value: 500, timestamp: r.timestamp };
    await voidRecord(late);
    await deliver();
    await aggregate(kinesisEvent(toRecords([late])), lambdaContext());
    await deliver();
    expect(await used(t, 'apiCalls', 'DAY', dayStart(T0))).toBe('40');
  });
});

describe('threshold events: once per tenant, metric, period and threshold', () => {
  test('10 concurrent deliveries of the batch that crosses a threshold give exactly 1 event', async () => {
    const t = await onboard('basic');
    await use(t, 'apiCalls', [300]);
    await deliver();
    await use(t, 'apiCalls', [250]); // 550: crosses 50%
    const [batch] = await feed.batches();
    await Promise.all(Array.from({ length: 10 }, () => consume(batch)));
    const events = await pipes.run();
    expect(events.map((e) => [e.detailType, e.detail.tenantId, e.detail.threshold])).toEqual([['usageThresholdCrossed', t, 50]]);
    expect(events[0].detail).toMatchObject({
      metric: 'apiCalls',
      plan: 'basic',
      period: 'DAY',
      limit: '1000',
      thresholdValue: '500',
      total: '550',
      onLimit: 'BLOCK',
      periodStart: new Date(dayStart(T0)).toISOString().replace('.000Z', 'Z'),
    });
    expect(await used(t, 'apiCalls', 'DAY', dayStart(T0))).toBe('550');
  });

  test('a crash at each request, then a rerun: exactly 1 event per threshold, none lost', async () => {
    // How many requests one delivery of the crossing batch makes.
    const probe = await onboard('basic');
    await use(probe, 'apiCalls', [850, 200]);
    const [probeBatch] = await feed.batches();
    proxy.arm();
    await consume(probeBatch);
    const requests = proxy.requests;
    const probeEvents = await pipes.run();
    expect(probeEvents.map((e) => e.detail.threshold)).toEqual([50, 80, 100]);
    expect(requests).toBeGreaterThan(5);
    for (let crashAt = 1; crashAt <= requests; crashAt++) {
      const t = await onboard('basic');
      await use(t, 'apiCalls', [850, 200]);
      const [batch] = await feed.batches();
      proxy.arm(crashAt);
      await expect(consume(batch)).rejects.toThrow();
      proxy.arm();
      await consume(batch);
      const events = (await pipes.run()).filter((e) => e.detail.tenantId === t);
      expect({ crashAt, thresholds: events.map((e) => [e.detailType, e.detail.threshold]) })
        .toEqual({ crashAt, thresholds: [['usageThresholdCrossed', 50], ['usageThresholdCrossed', 80], ['usageLimitReached', 100]] });
      expect({ crashAt, used: await used(t, 'apiCalls', 'DAY', dayStart(T0)) }).toEqual({ crashAt, used: '1050' });
      expect({ crashAt, access: await access(t) }).toEqual({ crashAt, access: 'BLOCKED' });
    }
  }, 300_000);
});

describe('blocked state', () => {
  test('a void that brings the total under a blocking limit unblocks; the period rolling over unblocks without a write', async () => {
    const t = await onboard('basic');
    expect(await access(t)).toBe('ALLOWED');
    const records = await use(t, 'apiCalls', [600, 450]);
    await deliver();
    expect(await access(t)).toBe('BLOCKED');
    expect((await pipes.run()).map((e) => e.detail.threshold)).toEqual([50, 80, 100]);
    await voidRecord(records[1]); // 600: under the limit
    await deliver();
    expect(await access(t)).toBe('ALLOWED');
    await use(t, 'apiCalls', [500]); // 1100: over again, the same day
    await deliver();
    expect(await access(t)).toBe('BLOCKED');
    expect(await pipes.run()).toEqual([]); // each threshold announced once per period

    // The next day: a new period. Allowed at once (the block ends at the period's end), the total starts again.
    clock.set(dayStart(T0) + DAY + 60_000);
    expect(await access(t)).toBe('ALLOWED');
    await use(t, 'apiCalls', [520]);
    await deliver();
    expect(await used(t, 'apiCalls', 'DAY', dayStart(T0) + DAY)).toBe('520');
    expect((await pipes.run()).map((e) => [e.detail.threshold, e.detail.periodStart])).toEqual([[50, new Date(dayStart(T0) + DAY).toISOString().replace('.000Z', 'Z')]]);
  });

  test('a plan change mid-period switches the limits at once: blocked under basic, allowed under premium, usage kept', async () => {
    const t = await onboard('basic');
    await use(t, 'apiCalls', [1200]);
    await deliver();
    expect(await access(t)).toBe('BLOCKED');
    await pipes.run();
    clock.advance(60_000);
    await changePlan(t, 'premium');
    expect(await access(t)).toBe('ALLOWED');
    expect(await used(t, 'apiCalls', 'DAY', dayStart(T0))).toBe('1200'); // the period's usage counts toward the new limit
    await use(t, 'apiCalls', [2900]); // 4100 of 5000: premium's 80%
    await deliver();
    expect((await pipes.run()).map((e) => [e.detail.plan, e.detail.limit, e.detail.threshold])).toEqual([['premium', '5000', 80]]);
    // Back to basic: over its limit at once, blocked, and its events (already sent this period) not sent again.
    await changePlan(t, 'basic');
    expect(await access(t)).toBe('BLOCKED');
    expect(await pipes.run()).toEqual([]);
  });

  test('unknown and offboarded tenants are told apart from blocked ones', async () => {
    expect(await access('never-onboarded')).toBe('UNKNOWN');
    const t = await onboard('basic');
    await planEvents(controlPlaneEvent('sbt_aws_offboardingRequest', { tenantId: t }, { time: new Date(Date.now() + 1000) }))
      .then(async (r: any) => {
        for (const e of r.emitted) await planSync(controlPlaneEvent('cdk_saas_billing_planChanged', e.detail));
      });
    expect(await access(t)).toBe('OFFBOARDED');
    const items = await doc.send(new QueryCommand({ TableName: world.entitlementsTable, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `A#${t}` } }));
    expect(items.Items?.[0]).toMatchObject({ status: 'OFFBOARDED' });
  });
});

describe('reading balances', () => {
  test('the usage API\'s entitlements route: used, limit, remaining and thresholds crossed in the current period; a tenant token reads only its own', async () => {
    const t = await onboard('basic');
    await use(t, 'apiCalls', [850]);
    await deliver();
    configureApi({ mode: 'TENANT_TOKEN', claim: 'custom:tenantId' });
    const api = usageApiHandler();
    const res = await api(httpEvent({ route: 'ENTITLEMENTS', tenantId: t, caller: tokenOf(t) }));
    expect(res.statusCode).toBe(200);
    const body = bodyOf(res);
    expect(body).toMatchObject({ tenantId: t, access: 'ALLOWED', plan: 'basic' });
    const dayStartIso = new Date(dayStart(T0)).toISOString().replace('.000Z', 'Z');
    expect(body.entitlements).toEqual(expect.arrayContaining([
      {
        metric: 'apiCalls',
        period: 'DAY',
        periodStart: dayStartIso,
        periodEnd: new Date(dayStart(T0) + DAY).toISOString().replace('.000Z', 'Z'),
        limit: '1000',
        used: '850',
        remaining: '150',
        thresholds: [50, 80],
        thresholdsCrossed: [50, 80],
        onLimit: 'BLOCK',
        blocked: false,
      },
      expect.objectContaining({ metric: 'exports', period: 'CALENDAR_MONTH', used: '0', remaining: '10', thresholdsCrossed: [] }),
    ]));
    expect((await api(httpEvent({ route: 'ENTITLEMENTS', tenantId: t, caller: tokenOf('someone-else') }))).statusCode).toBe(403);
    configureApi({ mode: 'IAM' });
    expect((await api(httpEvent({ route: 'ENTITLEMENTS', tenantId: t, caller: IAM }))).statusCode).toBe(200);
  });
});
