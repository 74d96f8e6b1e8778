/**
 * Contract entitlements: the bundled entitlements function against the Marketplace emulator's
 * GetEntitlements (filters, pagination) in front of moto.
 */
import { lambdaContext, MarketplaceWorld, PRODUCT_CODE, startWorld } from './support';

let world: MarketplaceWorld;

beforeAll(async () => {
  world = await startWorld({ contractEntitlements: true });
});

afterAll(async () => {
  await world?.stop();
});

test('a tenant\'s contract entitlements: its account\'s and its license\'s only, every page', async () => {
  // GIVEN a tenant with 30 entitlements (two pages of GetEntitlements), another buyer with one
  const t = await world.seedTenant();
  const other = await world.seedTenant();
  for (let i = 0; i < 30; i++) {
    world.emulator.entitlements.push({
      productCode: PRODUCT_CODE,
      dimension: `seats_${i}`,
      customerAWSAccountId: t.customer.customerAWSAccountId,
      licenseArn: t.customer.licenseArn,
      value: { IntegerValue: i },
      expirationDate: Date.parse('2027-12-31T00:00:00Z'),
    });
  }
  world.emulator.entitlements.push({ productCode: PRODUCT_CODE, dimension: 'seats_0', customerAWSAccountId: other.customer.customerAWSAccountId, value: { IntegerValue: 99 } });
  // WHEN a function of the user's invokes the entitlements function
  const result = await world.handlers.entitlements({ tenantId: t.tenantId }, lambdaContext());
  // THEN
  expect(result.tenantId).toBe(t.tenantId);
  expect(result.entitlements).toHaveLength(30);
  expect(result.entitlements[3]).toEqual({ dimension: 'seats_3', value: 3, expirationDate: '2027-12-31T00:00:00.000Z' });
  expect(world.emulator.calls.filter((c) => c.operation === 'GetEntitlements')).toHaveLength(2);
});

test('a tenant without a registration, or a call without a tenant id, is an error', async () => {
  await expect(world.handlers.entitlements({ tenantId: 'nobody' }, lambdaContext())).rejects.toThrow(/not linked to a Marketplace registration/);
  await expect(world.handlers.entitlements({}, lambdaContext())).rejects.toThrow(/Invoke with/);
});
