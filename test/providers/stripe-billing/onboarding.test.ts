/**
 * Onboarding and offboarding, bundled as Lambda runs them, against moto and
 * stripe-mock (behind the state-keeping proxy, which counts what Stripe would
 * hold: customers, subscriptions, meter events).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { bundle, captured, closedWindow, lambdaContext, lifecycleEvent, MemoryUsageReader, startWorld, StripeWorld } from './support';
import { STRIPE_API_VERSION, STRIPE_ENV } from '../../../src/providers/stripe-billing/contract';

type Handler = (event: unknown, context?: unknown) => Promise<Record<string, unknown>>;

let world: StripeWorld;
let doc: DynamoDBDocumentClient;
let onboard: Handler;
let offboardWith: (reader: () => MemoryUsageReader | undefined) => Handler;
let seq = 0;

beforeAll(async () => {
  world = await startWorld();
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: world.moto.endpoint }));
  onboard = bundle<{ handler: Handler }>('create-customer').handler;
  offboardWith = bundle<{ offboardingHandler: (r: () => MemoryUsageReader | undefined) => Handler }>('delete-customer').offboardingHandler;
});

afterAll(async () => {
  await world?.stop();
});

beforeEach(() => {
  world.crash.arm(undefined);
  world.stripe.clearRecording();
  world.useFunction('CreateCustomer');
});

function minutesAgo(m: number): string {
  return new Date(Date.now() - m * 60_000).toISOString();
}

function tenant(): string {
  return `tenant-${++seq}-${Date.now()}`;
}

function onboardingEvent(tenantId: string, time?: string) {
  return lifecycleEvent('sbt_aws_onboardingRequest', { tenantId, tenantName: `Acme ${tenantId}`, email: `billing+${seq}@acme.example` }, time);
}

const customersOf = (tenantId: string) => [...world.stripe.state.customers.values()]
  .filter((c) => (c.metadata as Record<string, string>).tenantId === tenantId && !c.deleted);
const subscriptionsOf = (customerId: string) => [...world.stripe.state.subscriptions.values()].filter((s) => s.customer === customerId);

async function mapping(tenantId: string) {
  return (await doc.send(new GetCommand({ TableName: world.names.customers, Key: { pk: `TENANT#${tenantId}` }, ConsistentRead: true }))).Item;
}

/** Moves the tenant's recorded attempts two days into the past and Stripe's clock two days on: Stripe's idempotency keys have expired. */
async function twoDaysLater(tenantId: string) {
  const old = new Date(Date.now() - 48 * 3600_000).toISOString();
  const item = await mapping(tenantId);
  const set = ['customerAttemptedAt', 'subscriptionAttemptedAt'].filter((k) => item?.[k]);
  if (set.length) {
    await doc.send(new UpdateCommand({
      TableName: world.names.customers,
      Key: { pk: `TENANT#${tenantId}` },
      UpdateExpression: `SET ${set.map((_, i) => `#a${i} = :old`).join(', ')}`,
      ExpressionAttributeNames: Object.fromEntries(set.map((k, i) => [`#a${i}`, k])),
      ExpressionAttributeValues: { ':old': old },
    }));
  }
  world.stripe.clockOffsetMs += 48 * 3600_000;
}

describe('onboarding', () => {
  test('a new tenant gets one customer (tenant id in metadata, name and e-mail from the event) and one subscription to the prices', async () => {
    // GIVEN a tenant never seen
    const tenantId = tenant();
    // WHEN it is onboarded
    const result = await onboard(onboardingEvent(tenantId));
    // THEN Stripe holds one customer and one subscription, and the mapping names both
    const customers = customersOf(tenantId);
    expect(customers).toHaveLength(1);
    expect(customers[0]).toMatchObject({ name: `Acme ${tenantId}`, metadata: { tenantId, tenantGeneration: '1', managedBy: 'cdk-saas-billing' } });
    expect(String(customers[0].email)).toMatch(/^billing\+\d+@acme\.example$/);
    const subs = subscriptionsOf(String(customers[0].id));
    expect(subs).toHaveLength(1);
    expect(subs[0].prices).toEqual(['price_base', 'price_api_calls']);
    expect(result).toMatchObject({ outcome: 'CREATED', customerId: customers[0].id, subscriptionId: subs[0].id, generation: 1 });
    expect(await mapping(tenantId)).toMatchObject({ status: 'ACTIVE', customerId: customers[0].id, subscriptionId: subs[0].id });
    const reverse = await doc.send(new GetCommand({ TableName: world.names.customers, Key: { pk: `CUSTOMER#${customers[0].id}` } }));
    expect(reverse.Item).toMatchObject({ tenantId });
    // AND every request was pinned to the API version and valid against stripe-mock's spec of it
    expect(world.stripe.requests.every((r) => r.stripeVersion === STRIPE_API_VERSION && r.status === 200)).toBe(true);
  });

  test('a second delivery creates nothing in Stripe', async () => {
    const tenantId = tenant();
    await onboard(onboardingEvent(tenantId));
    world.stripe.clearRecording();
    const again = await onboard(onboardingEvent(tenantId));
    expect(again.outcome).toBe('EXISTS');
    expect(world.stripe.requests).toHaveLength(0);
    expect(customersOf(tenantId)).toHaveLength(1);
  });

  test('10 concurrent deliveries give 1 customer and 1 subscription, every create carrying the same Idempotency-Key', async () => {
    const tenantId = tenant();
    const event = onboardingEvent(tenantId);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => onboard(event)));
    // Deliveries that lost a race may fail and be retried by Lambda: retry them as Lambda would.
    for (const r of results) if (r.status === 'rejected') await onboard(event);
    const customers = customersOf(tenantId);
    expect(customers).toHaveLength(1);
    expect(subscriptionsOf(String(customers[0].id))).toHaveLength(1);
    const keys = new Set(world.stripe.recorded('POST', /^\/v1\/customers$/).map((r) => r.idempotencyKey));
    expect(keys.size).toBe(1);
    expect(await mapping(tenantId)).toMatchObject({ status: 'ACTIVE', customerId: customers[0].id });
  });

  test('beyond Stripe\'s 24-hour idempotency window the mapping still prevents a duplicate', async () => {
    const tenantId = tenant();
    await onboard(onboardingEvent(tenantId));
    await twoDaysLater(tenantId);
    world.stripe.clearRecording();
    const again = await onboard(onboardingEvent(tenantId));
    expect(again.outcome).toBe('EXISTS');
    expect(world.stripe.recorded('POST', /^\/v1\/(customers|subscriptions)$/)).toHaveLength(0);
    expect(customersOf(tenantId)).toHaveLength(1);
  });

  describe('a crash between Stripe\'s create and the mapping write is recovered', () => {
    /** Kills the onboarding of `tenantId` right after Stripe created its customer (the answer is lost). */
    async function crashAfterCustomerCreate(tenantId: string) {
      // The position of the customer create among all requests of a clean onboarding.
      const trace: string[] = [];
      world.crash.onRequest = (what) => trace.push(what);
      await onboard(onboardingEvent(tenant()));
      world.crash.onRequest = undefined;
      world.crash.arm(trace.indexOf('POST /v1/customers') + 1);
      const { error } = await captured(() => onboard(onboardingEvent(tenantId)));
      world.crash.arm(undefined);
      expect(error).toBeDefined();
      expect(customersOf(tenantId)).toHaveLength(1);
      expect((await mapping(tenantId))?.customerId).toBeUndefined();
    }

    test('rerun within 24 hours: the same Idempotency-Key gets the same customer', async () => {
      const tenantId = tenant();
      await crashAfterCustomerCreate(tenantId);
      await onboard(onboardingEvent(tenantId));
      expect(customersOf(tenantId)).toHaveLength(1);
      expect((await mapping(tenantId))?.customerId).toBe(customersOf(tenantId)[0].id);
    });

    test('rerun after 48 hours: the customer is found by its metadata, none is created', async () => {
      const tenantId = tenant();
      await crashAfterCustomerCreate(tenantId);
      await twoDaysLater(tenantId);
      world.stripe.clearRecording();
      await onboard(onboardingEvent(tenantId));
      expect(world.stripe.recorded('GET', /^\/v1\/customers\/search$/)).toHaveLength(1);
      expect(world.stripe.recorded('POST', /^\/v1\/customers$/)).toHaveLength(0);
      expect(customersOf(tenantId)).toHaveLength(1);
      expect((await mapping(tenantId))?.customerId).toBe(customersOf(tenantId)[0].id);
    });
  });
});

describe('onboarding killed at every request in turn, then rerun', () => {
  async function matrix(later: boolean) {
    const trace: string[] = [];
    world.crash.onRequest = (what) => trace.push(what);
    await onboard(onboardingEvent(tenant()));
    world.crash.onRequest = undefined;
    const figures = { requestsPerRun: trace.length, crashPoints: 0, customersNot1: 0, subscriptionsNot1: 0, mappingWrong: 0 };
    for (let k = 1; k <= trace.length; k++) {
      const tenantId = tenant();
      world.crash.arm(k);
      await captured(() => onboard(onboardingEvent(tenantId)));
      world.crash.arm(undefined);
      if (later) await twoDaysLater(tenantId);
      await captured(() => onboard(onboardingEvent(tenantId)));
      world.stripe.clockOffsetMs = 0;
      figures.crashPoints++;
      const customers = customersOf(tenantId);
      const subs = customers.length === 1 ? subscriptionsOf(String(customers[0].id)) : [];
      if (customers.length !== 1) figures.customersNot1++;
      if (subs.length !== 1) figures.subscriptionsNot1++;
      const m = await mapping(tenantId);
      if (m?.status !== 'ACTIVE' || m.customerId !== customers[0]?.id || m.subscriptionId !== subs[0]?.id) figures.mappingWrong++;
    }
    return figures;
  }

  test('rerun within 24 hours: 1 customer, 1 subscription, the mapping naming both, for every crash point', async () => {
    const figures = await matrix(false);
    console.log(`onboarding crash matrix, rerun within 24 h: ${JSON.stringify(figures)}`);
    expect(figures).toMatchObject({ customersNot1: 0, subscriptionsNot1: 0, mappingWrong: 0 });
    expect(figures.crashPoints).toBeGreaterThan(8);
  });

  test('rerun 48 hours later (Stripe has forgotten the keys): still 1 customer and 1 subscription', async () => {
    const figures = await matrix(true);
    console.log(`onboarding crash matrix, rerun after 48 h: ${JSON.stringify(figures)}`);
    expect(figures).toMatchObject({ customersNot1: 0, subscriptionsNot1: 0, mappingWrong: 0 });
  });
});

describe('offboarding', () => {
  test('pushes the tenant\'s closed windows, then cancels its subscription and keeps the customer', async () => {
    // GIVEN a tenant onboarded 3 hours ago, offboarded 2 hours ago (its last windows are closed by now)
    const tenantId = tenant();
    await onboard(onboardingEvent(tenantId, minutesAgo(180)));
    const customerId = String(customersOf(tenantId)[0].id);
    const reader = new MemoryUsageReader();
    const hour = new Date(Math.floor(Date.now() / 3600_000) * 3600_000 - 2 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    reader.windows.push(closedWindow(tenantId, 'apiCalls', hour, '12'));
    world.stripe.clearRecording();
    world.useFunction('DeleteCustomer');
    const result = await offboardWith(() => reader)(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId }, minutesAgo(120)), lambdaContext());
    expect(result).toMatchObject({ outcome: 'OFFBOARDED', windowsPushed: 1 });
    const paths = world.stripe.requests.map((r) => `${r.method} ${r.path}`);
    const sent = paths.indexOf('POST /v1/billing/meter_events');
    const cancelled = paths.findIndex((p) => p.startsWith('DELETE /v1/subscriptions/'));
    expect(sent).toBeGreaterThanOrEqual(0);
    expect(cancelled).toBeGreaterThan(sent);
    const sub = subscriptionsOf(customerId)[0];
    expect(sub).toMatchObject({ status: 'canceled', invoiceNow: true, prorate: true });
    expect(customersOf(tenantId)).toHaveLength(1);
    expect(await mapping(tenantId)).toMatchObject({ status: 'OFFBOARDED', cancellation: 'IMMEDIATELY_INVOICE_USAGE', customerDeleted: false });
  });

  test('waits for the tenant\'s last windows: a one-time schedule, then the final push (with what closed meanwhile) and the cancellation; '
    + 'the window holding the offboarding is billed whole', async () => {
    // GIVEN a tenant offboarded now, with IMMEDIATELY_INVOICE_USAGE (the default) and the ingestor's 32-minute closing delay
    const tenantId = tenant();
    await onboard(onboardingEvent(tenantId, minutesAgo(180)));
    const customerId = String(customersOf(tenantId)[0].id);
    const reader = new MemoryUsageReader();
    const hourStart = Math.floor(Date.now() / 3600_000) * 3600_000;
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    reader.windows.push(closedWindow(tenantId, 'apiCalls', iso(hourStart - 3600_000), '5'));
    world.useFunction('DeleteCustomer');
    const offboardedAt = new Date().toISOString();
    const realNow = Date.now;
    try {
      // WHEN the offboarding arrives
      const first = await offboardWith(() => reader)(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId }, offboardedAt),
        { ...lambdaContext(), invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:local-delete-customer' });
      // THEN nothing is cancelled yet: it waits until the window holding the offboarding time is closed
      // (the end of the window holding the offboarding, plus the ingestor's 32-minute closing delay and a minute)
      expect(first).toMatchObject({ outcome: 'WAITING', finalizeAt: new Date(hourStart + 3600_000 + (1920 + 60) * 1000).toISOString() });
      expect(subscriptionsOf(customerId)[0]).toMatchObject({ status: 'active' });
      expect(await mapping(tenantId)).toMatchObject({ status: 'OFFBOARDING' });
      // WHEN the window of the offboarding's hour closes meanwhile (billed whole), and the schedule is due
      reader.windows.push(closedWindow(tenantId, 'apiCalls', iso(hourStart), '7'));
      const early = await world.local.runDueSchedules(lambdaContext(), {}, offboardWith(() => reader));
      expect(early).toEqual([]);
      Date.now = () => hourStart + 3600_000 + 34 * 60_000;
      const ran = await world.local.runDueSchedules(lambdaContext(), {}, offboardWith(() => reader));
      // THEN the final push sent the windows up to the offboarding, then the subscription was cancelled
      expect(ran).toEqual([{ finalizeOffboarding: { tenantId, generation: 1 } }]);
      expect(subscriptionsOf(customerId)[0]).toMatchObject({ status: 'canceled', invoiceNow: true });
      const sent = world.stripe.state.meterEvents.filter((e) => e.customer === customerId).map((e) => e.value).sort();
      expect(sent).toEqual(['5', '7']);
      expect(await mapping(tenantId)).toMatchObject({ status: 'OFFBOARDED' });
    } finally {
      Date.now = realNow;
    }
  });

  test.each([
    ['IMMEDIATELY', { status: 'canceled', invoiceNow: false, prorate: false }],
    ['AT_PERIOD_END', { status: 'active', cancel_at_period_end: true }],
  ])('cancellation policy %s', async (policy, expected) => {
    const tenantId = tenant();
    await onboard(onboardingEvent(tenantId));
    const customerId = String(customersOf(tenantId)[0].id);
    world.useFunction('DeleteCustomer', { SUBSCRIPTION_CANCELLATION: policy });
    await offboardWith(() => new MemoryUsageReader())(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId }), lambdaContext());
    expect(subscriptionsOf(customerId)[0]).toMatchObject(expected);
    const m = await mapping(tenantId);
    expect(m).toMatchObject({ status: 'OFFBOARDED', cancellation: policy });
    if (policy === 'AT_PERIOD_END') expect(Date.parse(String(m?.cancelAt))).toBeGreaterThan(Date.now());
  });

  test('deleteCustomerOnOffboarding deletes the customer after cancelling', async () => {
    const tenantId = tenant();
    await onboard(onboardingEvent(tenantId));
    world.useFunction('DeleteCustomer', { DELETE_CUSTOMER_ON_OFFBOARDING: 'true', SUBSCRIPTION_CANCELLATION: 'IMMEDIATELY' });
    await offboardWith(() => new MemoryUsageReader())(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId }), lambdaContext());
    expect(customersOf(tenantId)).toHaveLength(0);
    expect(await mapping(tenantId)).toMatchObject({ status: 'OFFBOARDED', customerDeleted: true });
  });

  test('a repeated offboarding does nothing more', async () => {
    const tenantId = tenant();
    await onboard(onboardingEvent(tenantId, minutesAgo(180)));
    world.useFunction('DeleteCustomer');
    const off = offboardWith(() => new MemoryUsageReader());
    await off(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId }, minutesAgo(120)), lambdaContext());
    world.stripe.clearRecording();
    expect(await off(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId }, minutesAgo(120)), lambdaContext())).toMatchObject({ outcome: 'ALREADY' });
    expect(world.stripe.requests).toHaveLength(0);
  });

  test('re-onboarding after an offboarding reopens the tenant: the kept customer, a new subscription; an onboarding older than the offboarding is ignored', async () => {
    const tenantId = tenant();
    const t0 = Date.now();
    await onboard(onboardingEvent(tenantId, new Date(t0 - 3000).toISOString()));
    // This test is about generations: the offboarding does not wait for the tenant's last windows.
    world.useFunction('DeleteCustomer', { [STRIPE_ENV.OFFBOARDING_WAIT_SECONDS]: '0' });
    await offboardWith(() => new MemoryUsageReader())(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId }, new Date(t0 - 2000).toISOString()), lambdaContext());
    world.useFunction('CreateCustomer');
    // A late, stale onboarding (older than the offboarding): nothing in Stripe.
    world.stripe.clearRecording();
    expect(await onboard(onboardingEvent(tenantId, new Date(t0 - 2500).toISOString()))).toMatchObject({ outcome: 'STALE' });
    expect(world.stripe.requests).toHaveLength(0);
    // A new onboarding: generation 2, same customer, a second subscription.
    const again = await onboard(onboardingEvent(tenantId, new Date(t0).toISOString()));
    const customerId = String(customersOf(tenantId)[0].id);
    expect(again).toMatchObject({ outcome: 'CREATED', generation: 2, customerId });
    expect(customersOf(tenantId)).toHaveLength(1);
    expect(subscriptionsOf(customerId).map((sub) => sub.status).sort()).toEqual(['active', 'canceled']);
    expect(await mapping(tenantId)).toMatchObject({ status: 'ACTIVE', generation: expect.anything(), subscriptionId: again.subscriptionId });
  });

  test('offboarding a tenant never onboarded records it, and a later older onboarding is ignored', async () => {
    const tenantId = tenant();
    world.useFunction('DeleteCustomer');
    const now = Date.now();
    expect(await offboardWith(() => undefined)(lifecycleEvent('sbt_aws_offboardingRequest', { tenantId }, new Date(now).toISOString()), lambdaContext()))
      .toMatchObject({ outcome: 'NO_CUSTOMER' });
    world.useFunction('CreateCustomer');
    expect(await onboard(onboardingEvent(tenantId, new Date(now - 1000).toISOString()))).toMatchObject({ outcome: 'STALE' });
    expect(customersOf(tenantId)).toHaveLength(0);
  });

  test('no secret, name or e-mail in the logs', async () => {
    const tenantId = tenant();
    const { output } = await captured(() => onboard(onboardingEvent(tenantId)));
    expect(output.length).toBeGreaterThan(0);
    expect(output).not.toContain('sk_test_51LocalTestKey0123456789');
    expect(output).not.toContain(`Acme ${tenantId}`);
    expect(output).not.toMatch(/acme\.example/);
  });
});
