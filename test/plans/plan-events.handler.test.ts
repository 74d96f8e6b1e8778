/**
 * BillingPlans' plan event handler, bundled as Lambda runs it, against moto:
 * plans recorded from onboarding events, changed by plan change requests,
 * refused with a planChangeFailure event (unknown plan, unknown or offboarded
 * tenant), each event counted once under redelivery, concurrency and a crash at
 * every request.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { controlPlaneEvent, freshPlansTable, planEventsHandler } from './support';
import { BusCapture } from '../../examples/local-flow/bus';
import { ControlPlaneEvents } from '../../src/events';
import { PlanReader } from '../../src/plans/shared.lambda/plan-reader';
import { FaultProxy } from '../providers/handlers/harness';
import { startMoto, Moto } from '../support/emulators';

const CPE = ControlPlaneEvents.SBT_AWS;
const ONBOARD = CPE.onboardingRequest.detailType;
const OFFBOARD = CPE.offboardingRequest.detailType;
const CHANGE = CPE.planChangeRequest.detailType;

let moto: Moto;
let proxy: FaultProxy;
let doc: DynamoDBDocumentClient;
let bus: BusCapture;
let table: string;
let handle: (event: ReturnType<typeof controlPlaneEvent>) => Promise<any>;

beforeAll(async () => {
  moto = await startMoto();
  proxy = new FaultProxy(moto.endpoint, { serialize: true });
  const endpoint = await proxy.start();
  process.env.AWS_ENDPOINT_URL = endpoint;
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: moto.endpoint }));
  bus = await BusCapture.start('plan-events', { 'source': [CPE.planChanged.source], 'detail-type': [CPE.planChanged.detailType, CPE.planChangeFailure.detailType] }, moto.endpoint);
  handle = planEventsHandler();
}, 60_000);

afterAll(async () => {
  await bus?.stop();
  await proxy?.stop();
  await moto?.stop();
});

beforeEach(async () => {
  proxy.arm();
  table = await freshPlansTable();
  await bus.drain(0);
});

async function changes(tenantId: string) {
  const r = await doc.send(new QueryCommand({
    TableName: table, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :c)', ExpressionAttributeValues: { ':pk': `TENANT#${tenantId}`, ':c': 'CHANGE#' },
  }));
  return r.Items ?? [];
}

describe('recording plans', () => {
  test('the onboarding event\'s tier is the tenant\'s plan; a plan change takes effect when recorded', async () => {
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't1', tier: 'basic', tenantName: 'T1' }));
    const before = Date.now();
    const result = await handle(controlPlaneEvent(CHANGE, { tenantId: 't1', tier: 'premium' }));
    const after = Date.now();
    expect(result.outcome).toBe('RECORDED');
    const events = await bus.drain();
    expect(events.map((e) => [e['detail-type'], e.detail.reason, e.detail.plan, e.detail.previousPlan])).toEqual([
      [CPE.planChanged.detailType, 'ONBOARDING', 'basic', undefined],
      [CPE.planChanged.detailType, 'CHANGE', 'premium', 'basic'],
    ]);
    const effectiveAt = Date.parse(events[1].detail.effectiveAt);
    expect(effectiveAt).toBeGreaterThanOrEqual(before);
    expect(effectiveAt).toBeLessThanOrEqual(after);

    const reader = PlanReader.fromEnvironment();
    const history = await reader.history('t1');
    expect(history.map((h) => h.plan)).toEqual(['basic', 'premium']);
    expect(PlanReader.planAt(history, effectiveAt - 1)).toBe('basic');
    expect(PlanReader.planAt(history, effectiveAt)).toBe('premium');
    expect(PlanReader.planAt(history, 0)).toBe('basic'); // before the first change: the first plan
    expect((await reader.tenant('t1'))).toMatchObject({ plan: 'premium', status: 'ACTIVE', version: 2 });
  });

  test('the plan field is also read from detail.tenantData; a change to the same plan changes nothing', async () => {
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't2', tenantData: { tier: 'premium' } }));
    const same = await handle(controlPlaneEvent(CHANGE, { tenantId: 't2', tier: 'premium' }));
    expect(same.outcome).toBe('UNCHANGED');
    expect((await bus.drain()).map((e) => e.detail.reason)).toEqual(['ONBOARDING']);
  });
});

describe('refusals: a planChangeFailure event, never a silent drop', () => {
  test('an unknown plan is refused and the plan stays', async () => {
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't3', tier: 'basic' }));
    await bus.drain();
    const result = await handle(controlPlaneEvent(CHANGE, { tenantId: 't3', tier: 'platinum' }));
    expect(result.outcome).toBe('REFUSED');
    const [failure] = await bus.drain();
    expect(failure['detail-type']).toBe(CPE.planChangeFailure.detailType);
    expect(failure.detail).toMatchObject({ tenantId: 't3', requestedPlan: 'platinum', reason: 'UNKNOWN_PLAN', requestDetailType: CHANGE });
    expect(failure.detail.message).toMatch(/no plan is named "platinum": plans are "basic", "premium"/);
    expect((await PlanReader.fromEnvironment().tenant('t3'))?.plan).toBe('basic');
  });

  test('a tenant never onboarded, and an offboarded tenant, are refused', async () => {
    await handle(controlPlaneEvent(CHANGE, { tenantId: 'ghost', tier: 'premium' }));
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't4', tier: 'basic' }, { time: new Date(Date.now() - 60_000) }));
    await handle(controlPlaneEvent(OFFBOARD, { tenantId: 't4' }));
    await handle(controlPlaneEvent(CHANGE, { tenantId: 't4', tier: 'premium' }));
    const events = await bus.drain();
    expect(events.map((e) => [e.detail.tenantId, e.detail.reason])).toEqual([
      ['ghost', 'UNKNOWN_TENANT'], ['t4', 'ONBOARDING'], ['t4', 'OFFBOARDING'], ['t4', 'TENANT_OFFBOARDED'],
    ]);
  });

  test('an onboarding without a known plan: the default plan, or none and a failure event', async () => {
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't5' }));
    expect((await bus.drain()).map((e) => e.detail.reason)).toEqual(['NO_PLAN']);
    expect(await PlanReader.fromEnvironment().tenant('t5')).toMatchObject({ status: 'ACTIVE', version: 1 });
    expect((await PlanReader.fromEnvironment().tenant('t5'))?.plan).toBeUndefined();

    table = await freshPlansTable({ defaultPlan: 'basic' });
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't6', tier: 'gold' }));
    const events = await bus.drain();
    expect(events.map((e) => e.detail.reason)).toEqual(['UNKNOWN_PLAN', 'ONBOARDING']);
    expect(events[0].detail.message).toMatch(/gets the default plan "basic"/);
    expect((await PlanReader.fromEnvironment().tenant('t6'))?.plan).toBe('basic');
  });
});

describe('each event counts once', () => {
  test('a redelivered event changes nothing more and emits the same event again', async () => {
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't7', tier: 'basic' }));
    const change = controlPlaneEvent(CHANGE, { tenantId: 't7', tier: 'premium' });
    await handle(change);
    const again = await handle(change);
    expect(again.outcome).toBe('REPEATED');
    const events = (await bus.drain()).filter((e) => e.detail.reason === 'CHANGE');
    expect(events).toHaveLength(2);
    expect(events[1].detail).toEqual(events[0].detail);
    expect(await changes('t7')).toHaveLength(2);
  });

  test('10 concurrent deliveries of a plan change record it once', async () => {
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't8', tier: 'basic' }));
    const change = controlPlaneEvent(CHANGE, { tenantId: 't8', tier: 'premium' });
    const results = await Promise.all(Array.from({ length: 10 }, () => handle(change)));
    expect(results.filter((r) => r.outcome === 'RECORDED')).toHaveLength(1);
    expect(await changes('t8')).toHaveLength(2);
    const versions = new Set((await bus.drain()).filter((e) => e.detail.reason === 'CHANGE').map((e) => e.detail.version));
    expect([...versions]).toEqual([2]);
  });

  test('a crash at each request, then a rerun: the change recorded once and announced', async () => {
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 'probe', tier: 'basic' }));
    proxy.arm();
    await handle(controlPlaneEvent(CHANGE, { tenantId: 'probe', tier: 'premium' }));
    const requests = proxy.requests;
    expect(requests).toBeGreaterThanOrEqual(4); // GetItem (processed), GetItem (plan), TransactWriteItems, PutEvents
    for (let crashAt = 1; crashAt <= requests; crashAt++) {
      const tenantId = `crash-${crashAt}`;
      proxy.arm();
      await handle(controlPlaneEvent(ONBOARD, { tenantId, tier: 'basic' }));
      await bus.drain(0);
      const change = controlPlaneEvent(CHANGE, { tenantId, tier: 'premium' });
      proxy.arm(crashAt);
      await expect(handle(change)).rejects.toThrow();
      proxy.arm();
      await handle(change);
      const announced = (await bus.drain()).filter((e) => e.detail.reason === 'CHANGE' && e.detail.tenantId === tenantId);
      expect(announced.length).toBeGreaterThanOrEqual(1);
      expect(new Set(announced.map((e) => JSON.stringify(e.detail))).size).toBe(1);
      expect((await changes(tenantId)).map((c) => c.plan)).toEqual(['basic', 'premium']);
    }
  }, 120_000);

  test('an onboarding older than the offboarding is stale; a newer one onboards again', async () => {
    const t0 = Date.now() - 3_600_000;
    await handle(controlPlaneEvent(ONBOARD, { tenantId: 't9', tier: 'basic' }, { time: new Date(t0) }));
    await handle(controlPlaneEvent(OFFBOARD, { tenantId: 't9' }, { time: new Date(t0 + 60_000) }));
    const stale = await handle(controlPlaneEvent(ONBOARD, { tenantId: 't9', tier: 'premium' }, { time: new Date(t0 + 30_000) }));
    expect(stale.outcome).toBe('STALE');
    const again = await handle(controlPlaneEvent(ONBOARD, { tenantId: 't9', tier: 'premium' }, { time: new Date(t0 + 120_000) }));
    expect(again.outcome).toBe('RECORDED');
    expect(await PlanReader.fromEnvironment().tenant('t9')).toMatchObject({ status: 'ACTIVE', plan: 'premium', version: 3 });
    const all = await doc.send(new ScanCommand({ TableName: table }));
    expect(all.Items?.filter((i) => String(i.pk).startsWith('EVENT#'))).toHaveLength(4);
  });
});
