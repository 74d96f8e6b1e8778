/**
 * The fulfillment URL and the onboarding that follows, bundled as Lambda runs them, against the
 * Marketplace emulator in front of moto: the registration matrix (valid, invalid, expired,
 * replayed, concurrent double-submit) and the link from a tenant to its registration.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { controlPlaneEvent, MarketplaceWorld, PRODUCT_CODE, REGISTRATION_PAGE, startWorld } from './support';
import { fulfillmentRequest } from '../../support/marketplace-emulator';

let world: MarketplaceWorld;
let doc: DynamoDBDocumentClient;
let seq = 0;

beforeAll(async () => {
  world = await startWorld();
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: world.moto.endpoint }));
});

afterAll(async () => {
  await world?.stop();
});

async function items(): Promise<Record<string, any>[]> {
  return (await doc.send(new ScanCommand({ TableName: world.local.names.registrations, ConsistentRead: true }))).Items ?? [];
}

function registrationIdOf(answer: { statusCode: number; headers: Record<string, string> }): string {
  expect(answer.statusCode).toBe(302);
  const location = new URL(answer.headers.location);
  expect(`${location.origin}${location.pathname}`).toBe(REGISTRATION_PAGE);
  return location.searchParams.get('marketplaceRegistrationId')!;
}

describe('fulfillment URL', () => {
  test('a valid token is resolved, stored once with its license and redirected with an opaque registration id', async () => {
    // GIVEN a buyer who subscribed
    const buyer = world.emulator.subscribe();
    // WHEN Marketplace posts the buyer's browser with its token
    const answer = await world.handlers.registration(fulfillmentRequest(world.emulator.issueToken(buyer)));
    // THEN a redirect to the registration page with an opaque id, and the registration stored with the license
    const id = registrationIdOf(answer);
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(id).not.toContain(buyer.customerAWSAccountId);
    const stored = (await items()).find((i) => i.pk === `REG#${id}`);
    expect(stored).toMatchObject({
      licenseArn: buyer.licenseArn, customerAWSAccountId: buyer.customerAWSAccountId, productCode: PRODUCT_CODE, subscriber: buyer.licenseArn,
    });
    expect((await items()).find((i) => i.pk === `SUB#${buyer.licenseArn}`)).toMatchObject({ registrationId: id, state: 'PENDING' });
  });

  test.each([
    ['an invalid token', () => 'not-a-token-Marketplace-issued', 400, 'INVALID_TOKEN'],
    ['an expired token', () => world.emulator.issueToken(world.emulator.subscribe(), -1), 400, 'EXPIRED_TOKEN'],
    ['no token', () => undefined, 400, 'NO_TOKEN'],
  ])('%s gets a clear page and no record', async (_name, token, status, reference) => {
    const before = (await items()).length;
    const answer = await world.handlers.registration(fulfillmentRequest(token()));
    expect(answer.statusCode).toBe(status);
    expect(answer.headers['content-type']).toMatch(/text\/html/);
    expect(answer.body).toContain(`Reference: ${reference}`);
    expect(answer.headers.location).toBeUndefined();
    expect((await items()).length).toBe(before);
  });

  test('a token of another product gets a clear page and no record', async () => {
    const other = world.emulator.subscribe();
    (other as { productCode: string }).productCode = 'prod-someoneElse';
    const before = (await items()).length;
    const answer = await world.handlers.registration(fulfillmentRequest(world.emulator.issueToken(other)));
    expect(answer.statusCode).toBe(403);
    expect((await items()).length).toBe(before);
  });

  test('a replayed token gets a clear page and no second record', async () => {
    const token = world.emulator.issueToken(world.emulator.subscribe());
    registrationIdOf(await world.handlers.registration(fulfillmentRequest(token)));
    const before = await items();
    const replay = await world.handlers.registration(fulfillmentRequest(token));
    expect(replay.statusCode).toBe(409);
    expect(replay.body).toContain('Reference: REPLAYED_TOKEN');
    expect(replay.headers.location).toBeUndefined();
    expect(await items()).toEqual(before);
  });

  test('a concurrent double submit of one token makes one registration: one redirect, the other submits refused', async () => {
    const buyer = world.emulator.subscribe();
    const token = world.emulator.issueToken(buyer);
    const answers = await Promise.all(Array.from({ length: 4 }, () => world.handlers.registration(fulfillmentRequest(token))));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([302, 409, 409, 409]);
    expect((await items()).filter((i) => i.pk.startsWith('REG#') && i.licenseArn === buyer.licenseArn)).toHaveLength(1);
  });

  test('a fresh token of a registered license leads to the same registration', async () => {
    const buyer = world.emulator.subscribe();
    const first = registrationIdOf(await world.handlers.registration(fulfillmentRequest(world.emulator.issueToken(buyer))));
    const again = registrationIdOf(await world.handlers.registration(fulfillmentRequest(world.emulator.issueToken(buyer))));
    expect(again).toBe(first);
    expect((await items()).filter((i) => i.pk.startsWith('REG#') && i.licenseArn === buyer.licenseArn)).toHaveLength(1);
  });

  test('Marketplace unavailable: a page asking to retry, no record, and the token still works', async () => {
    const buyer = world.emulator.subscribe();
    const token = world.emulator.issueToken(buyer);
    world.emulator.inject('ResolveCustomer', ...Array.from({ length: 8 }, () => ({ kind: 'internal' as const })));
    const before = (await items()).length;
    const answer = await world.handlers.registration(fulfillmentRequest(token));
    expect(answer.statusCode).toBe(503);
    expect((await items()).length).toBe(before);
    world.emulator.clearFaults();
    registrationIdOf(await world.handlers.registration(fulfillmentRequest(token)));
  });
});

describe('onboarding', () => {
  async function register(): Promise<{ id: string; licenseArn: string }> {
    const buyer = world.emulator.subscribe();
    const answer = await world.handlers.registration(fulfillmentRequest(world.emulator.issueToken(buyer)));
    return { id: registrationIdOf(answer), licenseArn: buyer.licenseArn! };
  }

  test('the onboarding request links the tenant to the registration its detail names, once', async () => {
    const { id, licenseArn } = await register();
    const tenantId = `tenant-${++seq}`;
    const event = controlPlaneEvent('sbt_aws_onboardingRequest', { tenantId, marketplaceRegistrationId: id });
    expect(await world.handlers.createCustomer(event)).toMatchObject({ outcome: 'LINKED', licenseArn, registrationId: id });
    expect(await world.handlers.createCustomer(event)).toMatchObject({ outcome: 'ALREADY_LINKED' });
    const all = await items();
    expect(all.find((i) => i.pk === `TENANT#${tenantId}`)).toMatchObject({ registrationId: id, subscriber: licenseArn, status: 'ACTIVE' });
    expect(all.find((i) => i.pk === `REG#${id}`)).toMatchObject({ tenantId });
    expect(all.find((i) => i.pk === `SUB#${licenseArn}`)).toMatchObject({ tenantId });
  });

  test.each([
    ['without a registration id', () => ({}), 'NO_REGISTRATION_ID'],
    ['with an unknown registration id', () => ({ marketplaceRegistrationId: 'AAAAAAAAAAAAAAAAAAAAAA' }), 'NO_REGISTRATION'],
  ])('a tenant %s is refused with a FAILED subscription changed event, and nothing is written', async (_name, detail, reason) => {
    await world.drainEvents();
    const tenantId = `tenant-${++seq}`;
    const before = (await items()).length;
    expect(await world.handlers.createCustomer(controlPlaneEvent('sbt_aws_onboardingRequest', { tenantId, ...detail() }))).toMatchObject({ outcome: 'REFUSED', reason });
    expect((await items()).length).toBe(before);
    const events = await world.bus.drain(2);
    expect(events.map((e) => e.detail)).toEqual([expect.objectContaining({ provider: 'marketplace', status: 'FAILED', tenantId })]);
    expect(events[0].detail.reason).toContain(reason);
  });

  test('a registration another tenant claimed is refused', async () => {
    const { id } = await register();
    await world.handlers.createCustomer(controlPlaneEvent('sbt_aws_onboardingRequest', { tenantId: `tenant-${++seq}`, marketplaceRegistrationId: id }));
    const second = await world.handlers.createCustomer(controlPlaneEvent('sbt_aws_onboardingRequest', { tenantId: `tenant-${++seq}`, marketplaceRegistrationId: id }));
    expect(second).toMatchObject({ outcome: 'REFUSED', reason: 'CLAIMED_BY_ANOTHER_TENANT' });
  });
});
