/**
 * The lifecycle handlers, bundled as Lambda runs them, against moto's DynamoDB
 * with the real AWS SDK v3.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { bundledHandler, captureOutput, eventBridgeEvent, FaultProxy, synthesizedSchemas } from './harness';
import { startMoto, Moto } from '../../support/emulators';
import { createTable } from '../support';

type Handler = (event: unknown) => Promise<Record<string, unknown>>;

const TABLE = 'billing-lifecycle';
const EMAIL = 'alice.payer@example.com';
let moto: Moto;
let proxy: FaultProxy;
let doc: DynamoDBDocumentClient;
let createCustomer: Handler;
let deleteCustomer: Handler;
let createUser: Handler;
let deleteUser: Handler;

beforeAll(async () => {
  moto = await startMoto();
  // Concurrent deliveries reach moto one request at a time, as DynamoDB makes each conditional write atomic (see FaultProxy).
  proxy = new FaultProxy(moto.endpoint, { serialize: true });
  process.env.AWS_ENDPOINT_URL = await proxy.start();
  process.env.BILLING_TABLE_NAME = TABLE;
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  process.env.POWERTOOLS_METRICS_NAMESPACE = 'CdkSaasBilling/DynamoDbBilling';
  process.env.POWERTOOLS_SERVICE_NAME = 'billing-test';
  await createTable(synthesizedSchemas().billing(TABLE));
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  createCustomer = bundledHandler('create-customer');
  deleteCustomer = bundledHandler('delete-customer');
  createUser = bundledHandler('create-user');
  deleteUser = bundledHandler('delete-user');
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

async function customersOf(tenantId: string) {
  const r = await doc.send(new QueryCommand({
    TableName: TABLE,
    KeyConditionExpression: 'pk = :pk AND sk = :sk',
    ExpressionAttributeValues: { ':pk': `CUSTOMER#${tenantId}`, ':sk': 'CUSTOMER' },
  }));
  return r.Items ?? [];
}

async function itemCount(): Promise<number> {
  return (await doc.send(new ScanCommand({ TableName: TABLE, Select: 'COUNT' }))).Count ?? 0;
}

const onboarding = (tenantId: string) => eventBridgeEvent('sbt_aws_onboardingRequest', {
  tenantId, tenantName: 'Acme', email: EMAIL, tier: 'basic',
});

describe('create customer', () => {
  test('onboarding delivered twice in sequence: customers created = 1', async () => {
    const event = onboarding('tenant-seq');
    const first = await createCustomer(event);
    const second = await createCustomer(event);
    expect([first.outcome, second.outcome]).toEqual(['CREATED', 'EXISTS']);
    expect(first.customerId).toBe(second.customerId);
    expect(await customersOf('tenant-seq')).toHaveLength(1);
  });

  test('onboarding delivered twice concurrently, and 20 times concurrently with different event ids: customers created = 1', async () => {
    const twice = await Promise.all([onboarding('tenant-con2'), onboarding('tenant-con2')].map((e) => createCustomer(e)));
    expect(twice.filter((r) => r.outcome === 'CREATED')).toHaveLength(1);
    expect(await customersOf('tenant-con2')).toHaveLength(1);

    const many = await Promise.all(Array.from({ length: 20 }, () => createCustomer(onboarding('tenant-con20'))));
    expect(many.filter((r) => r.outcome === 'CREATED')).toHaveLength(1);
    expect(new Set(many.map((r) => r.customerId)).size).toBe(1);
    expect(await customersOf('tenant-con20')).toHaveLength(1);
  });

  test('the customer keeps the billing contact but no log line carries the email: emails in logs = 0', async () => {
    const { result, output } = await captureOutput(() => createCustomer(onboarding('tenant-log')));
    expect(result?.outcome).toBe('CREATED');
    expect(output).toMatch(/Customer created/);
    expect(output).not.toContain(EMAIL);
    const [customer] = await customersOf('tenant-log');
    expect(customer).toMatchObject({ tenantId: 'tenant-log', status: 'ACTIVE', billingEmail: EMAIL, tenantName: 'Acme', tier: 'basic' });
  });

  test('an event without tenantId is refused (the handler throws) and writes nothing', async () => {
    const before = await itemCount();
    await expect(createCustomer(eventBridgeEvent('sbt_aws_onboardingRequest', { tenantName: 'NoId', email: EMAIL })))
      .rejects.toThrow(/has no tenantId/);
    await expect(createCustomer(eventBridgeEvent('sbt_aws_onboardingRequest', { tenantId: 'bad id with spaces' })))
      .rejects.toThrow(/its tenantId must be 1 to 128 characters .*; it holds a space; refusing it/);
    expect(await itemCount()).toBe(before);
  });

  test('a DynamoDB failure is thrown, not swallowed', async () => {
    process.env.BILLING_TABLE_NAME = 'no-such-table';
    try {
      await expect(createCustomer(onboarding('tenant-err'))).rejects.toThrow(/not found|ResourceNotFound|non-existent/i);
    } finally {
      process.env.BILLING_TABLE_NAME = TABLE;
    }
  });
});

describe('delete customer and users', () => {
  const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
  const offboarding = (tenantId: string, time: Date) => eventBridgeEvent('sbt_aws_offboardingRequest', { tenantId }, undefined, time);
  const onboardingAt = (tenantId: string, time: Date) => eventBridgeEvent('sbt_aws_onboardingRequest', { tenantId }, undefined, time);

  test('offboarding closes the customer and its active users, and a redelivery keeps the first closedAt', async () => {
    await createCustomer(onboardingAt('tenant-off', at(60)));
    for (const userId of ['u1', 'u2', 'u3']) {
      await createUser(eventBridgeEvent('sbt_aws_tenantUserCreated', { tenantId: 'tenant-off', userId, email: EMAIL }, undefined, at(50)));
    }
    await deleteUser(eventBridgeEvent('sbt_aws_tenantUserDeleted', { tenantId: 'tenant-off', userId: 'u3' }, undefined, at(40)));

    const event = offboarding('tenant-off', at(30));
    const first = await deleteCustomer(event);
    const again = await deleteCustomer(event);
    expect(first).toMatchObject({ outcome: 'CLOSED', usersClosed: 2, closedAt: event.time.replace('Z', '.000Z') });
    expect(again).toMatchObject({ outcome: 'CLOSED', usersClosed: 0, closedAt: first.closedAt });
    const items = (await doc.send(new QueryCommand({
      TableName: TABLE, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'CUSTOMER#tenant-off' },
    }))).Items ?? [];
    expect(items.map((i) => [i.sk, i.status])).toEqual([
      ['CUSTOMER', 'CLOSED'], ['USER#u1', 'CLOSED'], ['USER#u2', 'CLOSED'], ['USER#u3', 'DELETED'],
    ]);
  });

  test('re-onboarding after an offboarding reopens the customer (same id, the closed span kept), counted in CustomersReopened', async () => {
    // GIVEN a tenant onboarded, then offboarded
    const created = await createCustomer(onboardingAt('tenant-re', at(60)));
    const closed = await deleteCustomer(offboarding('tenant-re', at(30)));
    // WHEN it is onboarded again, by a newer event
    const reonboarding = onboardingAt('tenant-re', at(10));
    const { result, output } = await captureOutput(() => createCustomer(reonboarding));
    // THEN the customer is active again, with the same id, and the span it was closed is recorded for the push
    expect(result).toMatchObject({ outcome: 'REOPENED', status: 'ACTIVE', customerId: created.customerId });
    const [customer] = await customersOf('tenant-re');
    expect(customer).toMatchObject({
      status: 'ACTIVE',
      customerId: created.customerId,
      closedPeriods: [{ from: closed.closedAt, until: new Date(reonboarding.time).toISOString() }],
    });
    expect(customer.closedAt).toBeUndefined();
    expect(output).toMatch(/"CustomersReopened":1/);
    // a redelivery of the re-onboarding changes nothing
    expect(await createCustomer(reonboarding)).toMatchObject({ outcome: 'EXISTS', status: 'ACTIVE' });
  });

  test('an old offboarding redelivered after the re-onboarding is stale: the customer stays active; a newer one closes it again', async () => {
    await createCustomer(onboardingAt('tenant-late', at(60)));
    const oldOffboarding = offboarding('tenant-late', at(30));
    await deleteCustomer(oldOffboarding);
    await createCustomer(onboardingAt('tenant-late', at(10)));
    const { result, output } = await captureOutput(() => deleteCustomer(oldOffboarding));
    expect(result).toMatchObject({ outcome: 'STALE', usersClosed: 0 });
    expect(output).toMatch(/"StaleLifecycleEvents":1/);
    expect((await customersOf('tenant-late'))[0].status).toBe('ACTIVE');

    const second = offboarding('tenant-late', at(5));
    expect(await deleteCustomer(second)).toMatchObject({ outcome: 'CLOSED', closedAt: new Date(second.time).toISOString() });
    const [customer] = await customersOf('tenant-late');
    expect(customer.status).toBe('CLOSED');
    expect(customer.closedPeriods).toHaveLength(1);
  });

  test('an onboarding older than the offboarding (delivered after it) leaves one CLOSED customer, counted as stale', async () => {
    await deleteCustomer(offboarding('tenant-early', at(10)));
    const { result, output } = await captureOutput(() => createCustomer(onboardingAt('tenant-early', at(20))));
    expect(result).toMatchObject({ outcome: 'EXISTS', status: 'CLOSED' });
    expect(output).toMatch(/"StaleLifecycleEvents":1/);
    expect(await customersOf('tenant-early')).toHaveLength(1);
  });

  test('a user closed by the offboarding is made active again by a newer creation', async () => {
    await createCustomer(onboardingAt('tenant-ru', at(60)));
    await createUser(eventBridgeEvent('sbt_aws_tenantUserCreated', { tenantId: 'tenant-ru', userId: 'admin' }, undefined, at(55)));
    await deleteCustomer(offboarding('tenant-ru', at(30)));
    await createCustomer(onboardingAt('tenant-ru', at(10)));
    const again = await createUser(eventBridgeEvent('sbt_aws_tenantUserCreated', { tenantId: 'tenant-ru', userId: 'admin' }, undefined, at(9)));
    expect(again.outcome).toBe('REACTIVATED');
    const user = await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: 'CUSTOMER#tenant-ru', sk: 'USER#admin' } }));
    expect(user.Item).toMatchObject({ status: 'ACTIVE' });
  });

  test('create user twice (and concurrently) keeps one user; a deleted user is not revived by a late creation', async () => {
    const event = eventBridgeEvent('sbt_aws_tenantUserCreated', { tenantId: 'tenant-u', userName: 'bob', email: EMAIL });
    const results = await Promise.all([createUser(event), createUser(event), createUser(event)]);
    expect(results.filter((r) => r.outcome === 'CREATED')).toHaveLength(1);
    await deleteUser(eventBridgeEvent('sbt_aws_tenantUserDeleted', { tenantId: 'tenant-u', userName: 'bob' }));
    await createUser(event);
    const user = await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: 'CUSTOMER#tenant-u', sk: 'USER#bob' } }));
    expect(user.Item).toMatchObject({ status: 'DELETED', userId: 'bob' });
  });

  test('user events without a user id are refused', async () => {
    await expect(createUser(eventBridgeEvent('sbt_aws_tenantUserCreated', { tenantId: 't' }))).rejects.toThrow(/has no userId/);
    await expect(deleteUser(eventBridgeEvent('sbt_aws_tenantUserDeleted', { userId: 'x' }))).rejects.toThrow(/has no tenantId/);
  });
});
