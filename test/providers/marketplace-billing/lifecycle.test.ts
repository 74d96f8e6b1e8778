/**
 * AWS Marketplace's SaaS subscription events through the bundled lifecycle function, against the
 * Marketplace emulator in front of moto: the lifecycle matrix (each event's control-plane event,
 * duplicates, out of order, a cancellation with usage not metered yet).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { closedWindow, controlPlaneEvent, hourStart, lambdaContext, MarketplaceWorld, MemoryUsageReader, PRODUCT_CODE, SeededTenant, startWorld } from './support';
import { MARKETPLACE_DETAIL_TYPES as T, MARKETPLACE_ENV } from '../../../src/providers/marketplace-billing/contract';
import { fulfillmentRequest, marketplaceEvent } from '../../support/marketplace-emulator';

let world: MarketplaceWorld;
let doc: DynamoDBDocumentClient;
let reader: MemoryUsageReader;
let seq = 0;

beforeAll(async () => {
  world = await startWorld();
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: world.moto.endpoint }));
});

afterAll(async () => {
  await world?.stop();
});

beforeEach(async () => {
  world.emulator.clearFaults();
  const table = `mp-metering-l${++seq}`;
  await world.local.createMeteringTable(table);
  world.overrides[MARKETPLACE_ENV.METERING_TABLE_NAME] = table;
  reader = new MemoryUsageReader();
  await world.drainEvents();
});

const lifecycle = (event: unknown) => world.handlers.lifecycleWith(() => reader)(event, lambdaContext());

/** An event about a seeded tenant's agreement, `secondsAgo` before now. */
function eventOf(t: SeededTenant, detailType: string, secondsAgo: number, extra: { status?: string; license?: boolean; productCode?: string } = {}) {
  return marketplaceEvent(detailType, {
    agreementId: `agmt-${t.tenantId}`,
    accountId: t.customer.customerAWSAccountId,
    productCode: extra.productCode ?? PRODUCT_CODE,
    licenseArn: extra.license === false ? undefined : t.customer.licenseArn,
    status: extra.status,
  }, new Date(Date.now() - secondsAgo * 1000));
}

async function subscriber(t: SeededTenant): Promise<Record<string, any>> {
  return (await doc.send(new GetCommand({ TableName: world.local.names.registrations, Key: { pk: `SUB#${t.subscriber}` }, ConsistentRead: true }))).Item!;
}

async function statuses(): Promise<string[]> {
  return (await world.bus.drain(2)).map((e) => `${e.detail.status}:${e.detail.tenantId}`);
}

test('License Updated confirms a registered license: CONFIRMED once, however often it is delivered', async () => {
  const t = await world.seedTenant({ state: 'PENDING' });
  const event = eventOf(t, T.LICENSE_UPDATED, 60);
  expect(await lifecycle(event)).toMatchObject({ outcome: 'APPLIED', emitted: ['CONFIRMED'] });
  expect(await lifecycle(event)).toMatchObject({ outcome: 'DUPLICATE', emitted: [] });
  expect(await lifecycle(event)).toMatchObject({ outcome: 'DUPLICATE' });
  expect(await statuses()).toEqual([`CONFIRMED:${t.tenantId}`]);
  expect(await subscriber(t)).toMatchObject({ state: 'ACTIVE', agreementId: `agmt-${t.tenantId}` });
});

test('an agreement event is applied to the license a license event linked it to; amended and later license updates are entitlement changes', async () => {
  const t = await world.seedTenant({ state: 'PENDING' });
  expect(await lifecycle(eventOf(t, T.LICENSE_UPDATED, 300))).toMatchObject({ emitted: ['CONFIRMED'] });
  expect(await lifecycle(eventOf(t, T.AGREEMENT_AMENDED, 200, { license: false }))).toMatchObject({ outcome: 'APPLIED', emitted: ['ENTITLEMENT_CHANGED'] });
  expect(await lifecycle(eventOf(t, T.LICENSE_UPDATED, 100))).toMatchObject({ outcome: 'APPLIED', emitted: ['ENTITLEMENT_CHANGED'] });
  expect(await statuses()).toEqual([`CONFIRMED:${t.tenantId}`, `ENTITLEMENT_CHANGED:${t.tenantId}`, `ENTITLEMENT_CHANGED:${t.tenantId}`]);
});

test('an agreement event before any license event names no license yet: it fails, so EventBridge and Lambda deliver it again', async () => {
  const t = await world.seedTenant({ state: 'PENDING' });
  const created = eventOf(t, T.AGREEMENT_CREATED, 300, { license: false });
  await expect(lifecycle(created)).rejects.toThrow(/no license event has linked/);
  expect(await lifecycle(eventOf(t, T.LICENSE_UPDATED, 200))).toMatchObject({ emitted: ['CONFIRMED'] });
  // The redelivered agreement event is older than the confirmation: no second effect.
  expect(await lifecycle(created)).toMatchObject({ outcome: 'SUPERSEDED', emitted: [] });
  expect(await statuses()).toEqual([`CONFIRMED:${t.tenantId}`]);
});

test('out of order: an end delivered before the creation it follows leaves the subscription cancelled', async () => {
  const t = await world.seedTenant({ state: 'PENDING' });
  const created = eventOf(t, T.AGREEMENT_CREATED, 600);
  const ended = eventOf(t, T.AGREEMENT_ENDED, 60, { status: 'CANCELLED' });
  expect(await lifecycle(ended)).toMatchObject({ outcome: 'APPLIED', emitted: ['CANCELLATION_PENDING', 'CANCELLED'] });
  expect(await lifecycle(created)).toMatchObject({ outcome: 'SUPERSEDED', emitted: [] });
  expect(await lifecycle(ended)).toMatchObject({ outcome: 'DUPLICATE' });
  expect(await statuses()).toEqual([`CANCELLATION_PENDING:${t.tenantId}`, `CANCELLED:${t.tenantId}`]);
  expect(await subscriber(t)).toMatchObject({ state: 'CANCELLED' });
});

test('License Deprovisioned after Purchase Agreement Ended changes nothing more', async () => {
  const t = await world.seedTenant();
  await lifecycle(eventOf(t, T.AGREEMENT_ENDED, 120, { status: 'EXPIRED' }));
  expect(await lifecycle(eventOf(t, T.LICENSE_DEPROVISIONED, 60))).toMatchObject({ outcome: 'SUPERSEDED', emitted: [] });
  expect(await statuses()).toEqual([`CANCELLATION_PENDING:${t.tenantId}`, `CANCELLED:${t.tenantId}`]);
});

test('an agreement renewed or replaced (a new agreement follows), or another product\'s event, has no effect', async () => {
  const t = await world.seedTenant();
  expect(await lifecycle(eventOf(t, T.AGREEMENT_ENDED, 60, { status: 'RENEWED' }))).toMatchObject({ outcome: 'IGNORED' });
  expect(await lifecycle(eventOf(t, T.AGREEMENT_CREATED, 30, { productCode: 'prod-other' }))).toMatchObject({ outcome: 'IGNORED' });
  expect(await statuses()).toEqual([]);
  expect(await subscriber(t)).toMatchObject({ state: 'ACTIVE' });
});

test('a cancellation with usage not metered yet: the closed hours and the open hour\'s running total are metered before CANCELLED, each once', async () => {
  // GIVEN a tenant with two closed hours the push has not sent yet, and usage in the current hour
  const t = await world.seedTenant();
  reader.windows = [closedWindow(t.tenantId, 'apiCalls', hourStart(2), '2000'), closedWindow(t.tenantId, 'apiCalls', hourStart(1), '3000')];
  reader.open = [{
    tenantId: t.tenantId, metric: 'apiCalls', granularity: 'HOUR', windowStart: hourStart(0), windowEnd: hourStart(-1), closesAt: hourStart(-1), sum: '4000', count: 3,
  }];
  // WHEN the agreement ends
  const result = await lifecycle(eventOf(t, T.AGREEMENT_ENDED, 5, { status: 'CANCELLED' }));
  // THEN its usage so far is metered, then the subscription is cancelled
  expect(result).toMatchObject({ outcome: 'APPLIED', emitted: ['CANCELLATION_PENDING', 'CANCELLED'], finalRecordsSent: 3 });
  expect(world.emulator.recordsOf(t.subscriber).map((r) => [r.timestamp, r.quantity])).toEqual([
    [Date.parse(hourStart(2)), 2], [Date.parse(hourStart(1)), 3], [Date.parse(hourStart(0)), 4],
  ]);
  expect(await statuses()).toEqual([`CANCELLATION_PENDING:${t.tenantId}`, `CANCELLED:${t.tenantId}`]);
  // AND the scheduled push, reading the same windows, meters nothing twice
  const push = world.handlers.pushWith(() => reader);
  expect(await push({ id: 'after-cancel' }, lambdaContext())).toMatchObject({ SENT: 0, alreadyMetered: 2 });
  // AND the current hour's window, closing later with more usage, is not metered again: counted as usage after the final metering
  reader.windows.push(closedWindow(t.tenantId, 'apiCalls', hourStart(0), '4500'));
  expect(await push({ id: 'later' }, lambdaContext())).toMatchObject({ SENT: 0, alreadyMetered: 1, usageAfterFinalMetering: 1 });
  expect(world.emulator.recordsOf(t.subscriber)).toHaveLength(3);
});

test('after the final metering\'s hour, the license\'s windows are recorded AFTER_CANCELLATION and not sent', async () => {
  const t = await world.seedTenant();
  await lifecycle(eventOf(t, T.AGREEMENT_ENDED, 2 * 3600, { status: 'CANCELLED' }));
  reader.windows = [closedWindow(t.tenantId, 'apiCalls', hourStart(1), '1000')];
  expect(await world.handlers.pushWith(() => reader)({ id: 'p' }, lambdaContext())).toMatchObject({ AFTER_CANCELLATION: 1, SENT: 0 });
});

test('an onboarding after Marketplace confirmed the license tells the control plane CONFIRMED for the tenant', async () => {
  const buyer = world.emulator.subscribe();
  const redirect = await world.handlers.registration(fulfillmentRequest(world.emulator.issueToken(buyer)));
  const id = new URL(redirect.headers.location).searchParams.get('marketplaceRegistrationId')!;
  const fake = { tenantId: 'x', registrationId: id, customer: buyer, subscriber: buyer.licenseArn! };
  await lifecycle(eventOf(fake, T.LICENSE_UPDATED, 30));
  expect(await statuses()).toEqual(['CONFIRMED:undefined']);
  const tenantId = `late-tenant-${++seq}`;
  expect(await world.handlers.createCustomer(controlPlaneEvent('sbt_aws_onboardingRequest', { tenantId, marketplaceRegistrationId: id })))
    .toMatchObject({ outcome: 'LINKED', subscriptionState: 'ACTIVE' });
  expect(await statuses()).toEqual([`CONFIRMED:${tenantId}`]);
});

test('a crash at each request of a cancellation, then the redelivery: the usage metered once, the subscription CANCELLED, both events emitted', async () => {
  const scenario = async () => {
    const t = await world.seedTenant();
    const r = new MemoryUsageReader();
    r.windows = [closedWindow(t.tenantId, 'apiCalls', hourStart(2), '2000')];
    r.open = [{
      tenantId: t.tenantId, metric: 'apiCalls', granularity: 'HOUR', windowStart: hourStart(0), windowEnd: hourStart(-1), closesAt: hourStart(-1), sum: '1000', count: 1,
    }];
    return { t, r, event: eventOf(t, T.AGREEMENT_ENDED, 5, { status: 'CANCELLED' }) };
  };
  const deliver = (r: MemoryUsageReader, event: unknown) => world.handlers.lifecycleWith(() => r)(event, lambdaContext());
  const dry = await scenario();
  world.proxy.arm(undefined);
  await deliver(dry.r, dry.event);
  const requests = world.proxy.requests;
  await world.bus.drain(1);
  const failures: string[] = [];
  for (let crashAt = 1; crashAt <= requests; crashAt++) {
    const { t, r, event } = await scenario();
    world.proxy.arm(crashAt);
    await deliver(r, event).catch(() => undefined);
    world.proxy.arm(undefined);
    // Lambda's retries (and EventBridge's redelivery) deliver the same event again
    await deliver(r, event);
    await deliver(r, event);
    const records = world.emulator.recordsOf(t.subscriber);
    if (records.length !== 2) failures.push(`crash at ${crashAt}: ${records.length} records (expected 2)`);
    const state = (await subscriber(t)).state;
    if (state !== 'CANCELLED') failures.push(`crash at ${crashAt}: subscription ${state}`);
    const emitted = new Set((await world.bus.drain(1)).filter((e) => e.detail.tenantId === t.tenantId).map((e) => e.detail.status));
    if (!emitted.has('CANCELLATION_PENDING') || !emitted.has('CANCELLED')) failures.push(`crash at ${crashAt}: emitted ${[...emitted]}`);
  }
  expect(requests).toBeGreaterThan(10);
  expect(failures).toEqual([]);
}, 600_000);
