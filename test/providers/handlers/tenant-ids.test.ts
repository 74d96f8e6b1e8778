/**
 * The one identifier rule at the providers' door: every lifecycle handler of
 * both ready providers (bundled as Lambda runs them) refuses a tenant id the
 * usage ingestor would not meter, before it writes anything or calls Stripe,
 * and accepts every character the rule allows. moto's DynamoDB behind them.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { bundledHandler, eventBridgeEvent, synthesizedSchemas } from './harness';
import { stripeHandlerModule } from '../../../examples/stripe-local';
import { startMoto, Moto } from '../../support/emulators';
import { createTable } from '../support';

type Handler = (event: unknown, context?: unknown) => Promise<Record<string, unknown>>;

const TABLE = 'billing-tenant-ids';
let moto: Moto;
let doc: DynamoDBDocumentClient;
let handlers: Record<string, Handler>;

beforeAll(async () => {
  moto = await startMoto();
  process.env.AWS_ENDPOINT_URL = moto.endpoint;
  process.env.BILLING_TABLE_NAME = TABLE;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_METRICS_NAMESPACE = 'CdkSaasBilling/DynamoDbBilling';
  process.env.POWERTOOLS_SERVICE_NAME = 'tenant-ids-test';
  await createTable(synthesizedSchemas().billing(TABLE));
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  handlers = {
    'DynamoDbBilling createCustomer': bundledHandler('create-customer'),
    'DynamoDbBilling deleteCustomer': bundledHandler('delete-customer'),
    'DynamoDbBilling createUser': bundledHandler('create-user'),
    'DynamoDbBilling deleteUser': bundledHandler('delete-user'),
    'StripeBilling createCustomer': stripeHandlerModule<{ handler: Handler }>('create-customer').handler,
    'StripeBilling deleteCustomer': stripeHandlerModule<{ handler: Handler }>('delete-customer').handler,
  };
});

afterAll(async () => {
  await moto?.stop();
});

async function itemCount(): Promise<number> {
  return (await doc.send(new ScanCommand({ TableName: TABLE, Select: 'COUNT' }))).Count ?? 0;
}

const DETAIL_TYPES: Record<string, string> = {
  createCustomer: 'sbt_aws_onboardingRequest',
  deleteCustomer: 'sbt_aws_offboardingRequest',
  createUser: 'sbt_aws_tenantUserCreated',
  deleteUser: 'sbt_aws_tenantUserDeleted',
};

function eventFor(name: string, detail: Record<string, unknown>) {
  const slot = name.split(' ')[1];
  return eventBridgeEvent(DETAIL_TYPES[slot], { ...detail, userId: 'user-1', email: 'payer@acme.example' });
}

const REFUSED: Array<[string, Record<string, unknown>, RegExp]> = [
  ['a space', { tenantId: 'tenant 7' }, /holds a space/],
  ['a leading space (not trimmed away)', { tenantId: ' tenant-7' }, /holds a space/],
  ['non-ASCII', { tenantId: 'tenant-\u00e9' }, /holds U\+00E9/],
  ['a quote (Stripe search)', { tenantId: "acme's" }, /holds '''/],
  ['# (DynamoDB keys)', { tenantId: 'acme#eu' }, /holds '#'/],
  ['/ (usage API paths)', { tenant: { id: 'acme/eu' } }, /holds '\/'/],
  ['129 characters', { tenant_id: 't'.repeat(129) }, /\(it has 129\)/],
];

describe.each([
  'DynamoDbBilling createCustomer', 'DynamoDbBilling deleteCustomer', 'DynamoDbBilling createUser', 'DynamoDbBilling deleteUser',
  'StripeBilling createCustomer', 'StripeBilling deleteCustomer',
])('%s', (name) => {
  test.each(REFUSED)('refuses a tenant id with %s before doing anything, naming the rule', async (_what, detail, why) => {
    const before = await itemCount();
    await expect(handlers[name](eventFor(name, detail))).rejects.toThrow(
      new RegExp(`its tenantId must be 1 to 128 characters of ASCII letters, digits and _ - \\. : @ \\+ = .*${why.source}.*refusing it`),
    );
    expect(await itemCount()).toBe(before);
  });
});

test('DynamoDbBilling onboards a tenant id made of every character the rule allows, 128 long', async () => {
  const tenantId = 'Az09_-.:@+='.padEnd(128, 'x');
  const result = await handlers['DynamoDbBilling createCustomer'](eventFor('DynamoDbBilling createCustomer', { tenantId }));
  expect(result).toMatchObject({ tenantId, outcome: 'CREATED' });
});
