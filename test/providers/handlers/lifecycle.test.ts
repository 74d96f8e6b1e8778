/**
 * The lifecycle handlers, bundled as Lambda runs them, against moto's DynamoDB
 * with the real AWS SDK v3.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { bundledHandler, captureOutput, eventBridgeEvent, synthesizedSchemas } from './harness';
import { startMoto, Moto } from '../../support/emulators';
import { createTable } from '../support';

type Handler = (event: unknown) => Promise<Record<string, unknown>>;

const TABLE = 'billing-lifecycle';
const EMAIL = 'alice.payer@example.com';
let moto: Moto;
let doc: DynamoDBDocumentClient;
let createCustomer: Handler;
let deleteCustomer: Handler;
let createUser: Handler;
let deleteUser: Handler;

beforeAll(async () => {
  moto = await startMoto();
  process.env.BILLING_TABLE_NAME = TABLE;
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  await createTable(synthesizedSchemas().billing(TABLE));
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  createCustomer = bundledHandler('create-customer');
  deleteCustomer = bundledHandler('delete-customer');
  createUser = bundledHandler('create-user');
  deleteUser = bundledHandler('delete-user');
});

afterAll(async () => {
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
      .rejects.toThrow(/tenantId with characters outside/);
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
  test('offboarding closes the customer and its users, keeps the first closedAt, and onboarding does not reopen it', async () => {
    await createCustomer(onboarding('tenant-off'));
    for (const userId of ['u1', 'u2', 'u3']) {
      await createUser(eventBridgeEvent('sbt_aws_tenantUserCreated', { tenantId: 'tenant-off', userId, email: EMAIL }));
    }
    await deleteUser(eventBridgeEvent('sbt_aws_tenantUserDeleted', { tenantId: 'tenant-off', userId: 'u3' }));

    const first = await deleteCustomer(eventBridgeEvent('sbt_aws_offboardingRequest', { tenantId: 'tenant-off' }));
    const again = await deleteCustomer(eventBridgeEvent('sbt_aws_offboardingRequest', { tenantId: 'tenant-off' }));
    expect(first.usersClosed).toBe(2);
    expect(again.usersClosed).toBe(0);
    expect(again.closedAt).toBe(first.closedAt);

    const reonboard = await createCustomer(onboarding('tenant-off'));
    expect(reonboard).toMatchObject({ outcome: 'EXISTS', status: 'CLOSED' });
    const items = (await doc.send(new QueryCommand({
      TableName: TABLE, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'CUSTOMER#tenant-off' },
    }))).Items ?? [];
    expect(items.map((i) => [i.sk, i.status])).toEqual([
      ['CUSTOMER', 'CLOSED'], ['USER#u1', 'CLOSED'], ['USER#u2', 'CLOSED'], ['USER#u3', 'DELETED'],
    ]);
  });

  test('an offboarding that arrives before the onboarding leaves one CLOSED customer', async () => {
    await deleteCustomer(eventBridgeEvent('sbt_aws_offboardingRequest', { tenantId: 'tenant-early' }));
    const created = await createCustomer(onboarding('tenant-early'));
    expect(created).toMatchObject({ outcome: 'EXISTS', status: 'CLOSED' });
    expect(await customersOf('tenant-early')).toHaveLength(1);
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
