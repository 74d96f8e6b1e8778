/**
 * Where a window is billed (src/providers/stripe-billing/shared.lambda/billing-period.ts), from data
 * alone: the anchor of a new subscription, and each window's timestamp and billing period.
 */
import { billingAnchor, FINALIZATION_SAFETY_SECONDS, placeWindow } from '../../../src/providers/stripe-billing/shared.lambda/billing-period';
import type { TenantRecord } from '../../../src/providers/stripe-billing/shared.lambda/tenants';

const s = (iso: string) => Date.parse(iso) / 1000;
const HOUR = 3600;

const tenant: TenantRecord = {
  tenantId: 'acme',
  status: 'ACTIVE',
  generation: 1,
  customerId: 'cus_1',
  subscriptionId: 'sub_1',
  subscriptionStartedAt: '2026-12-01T14:23:00Z',
  previousPeriodStart: '2026-12-01T14:23:00Z',
  periodStart: '2026-12-01T15:00:00Z',
  periodEnd: '2026-12-02T15:00:00Z',
};

describe('billingAnchor', () => {
  test('the next window boundary: the next full hour, the next UTC midnight', () => {
    expect(billingAnchor(Date.parse('2026-12-01T14:23:10Z'), 3600)).toBe(s('2026-12-01T15:00:00Z'));
    expect(billingAnchor(Date.parse('2026-12-01T14:23:10Z'), 86400)).toBe(s('2026-12-02T00:00:00Z'));
  });

  test('on a boundary, or a few seconds before it, the one after (Stripe refuses an anchor in the past)', () => {
    expect(billingAnchor(Date.parse('2026-12-01T15:00:00Z'), 3600)).toBe(s('2026-12-01T16:00:00Z'));
    expect(billingAnchor(Date.parse('2026-12-01T14:59:57Z'), 3600)).toBe(s('2026-12-01T16:00:00Z'));
  });

  test('no alignment: no anchor', () => {
    expect(billingAnchor(Date.now(), 0)).toBeUndefined();
  });
});

describe('placeWindow', () => {
  test('a window of the current period: its start, that period', () => {
    expect(placeWindow(s('2026-12-01T18:00:00Z'), tenant, s('2026-12-01T19:20:00Z'), HOUR)).toEqual({
      kind: 'bill',
      timestamp: s('2026-12-01T18:00:00Z'),
      billingPeriodStart: '2026-12-01T15:00:00Z',
      billingPeriodEnd: '2026-12-02T15:00:00Z',
      usagePeriodStart: '2026-12-01T15:00:00Z',
      carriedOver: false,
    });
  });

  test('the window the tenant was onboarded in: moved to the subscription\'s start, never before it', () => {
    const p = placeWindow(s('2026-12-01T14:00:00Z'), tenant, s('2026-12-01T15:20:00Z'), HOUR);
    expect(p).toMatchObject({ kind: 'bill', timestamp: s('2026-12-01T14:23:00Z'), billingPeriodStart: '2026-12-01T14:23:00Z', carriedOver: false });
  });

  test('a window of the previous period while its invoice still takes usage (grace minus Stripe\'s processing): that period', () => {
    const lastSend = s('2026-12-01T15:00:00Z') + HOUR - FINALIZATION_SAFETY_SECONDS - 1;
    expect(placeWindow(s('2026-12-01T14:00:00Z'), tenant, lastSend, HOUR)).toMatchObject({ billingPeriodStart: '2026-12-01T14:23:00Z', carriedOver: false });
  });

  test('a window of the previous period once its invoice is final: carried over, timestamped at the current period\'s start', () => {
    const tooLate = s('2026-12-01T15:00:00Z') + HOUR - FINALIZATION_SAFETY_SECONDS;
    expect(placeWindow(s('2026-12-01T14:00:00Z'), tenant, tooLate, HOUR)).toEqual({
      kind: 'bill',
      timestamp: s('2026-12-01T15:00:00Z'),
      billingPeriodStart: '2026-12-01T15:00:00Z',
      billingPeriodEnd: '2026-12-02T15:00:00Z',
      usagePeriodStart: '2026-12-01T14:23:00Z',
      carriedOver: true,
    });
  });

  test('a longer declared grace period keeps the previous period open longer', () => {
    const twoHoursLater = s('2026-12-01T17:00:00Z');
    expect(placeWindow(s('2026-12-01T14:00:00Z'), tenant, twoHoursLater, 3 * HOUR)).toMatchObject({ carriedOver: false });
    expect(placeWindow(s('2026-12-01T14:00:00Z'), tenant, twoHoursLater, HOUR)).toMatchObject({ carriedOver: true });
  });

  test('a window older than the periods the mapping knows: carried over, its own period unknown', () => {
    const p = placeWindow(s('2026-11-30T10:00:00Z'), { ...tenant, subscriptionStartedAt: '2026-11-20T00:00:00Z' }, s('2026-12-01T19:00:00Z'), HOUR);
    expect(p).toMatchObject({ carriedOver: true, billingPeriodStart: '2026-12-01T15:00:00Z', usagePeriodStart: undefined });
  });

  test('the current period not known yet, or a window after it: waits (the push reads the period first)', () => {
    expect(placeWindow(s('2026-12-01T18:00:00Z'), { ...tenant, periodStart: undefined, periodEnd: undefined }, s('2026-12-01T19:20:00Z'), HOUR))
      .toMatchObject({ kind: 'wait' });
    expect(placeWindow(s('2026-12-02T15:00:00Z'), tenant, s('2026-12-02T16:20:00Z'), HOUR)).toMatchObject({ kind: 'wait' });
  });

  test('no subscription: the window start, and the rounding carry per calendar month', () => {
    expect(placeWindow(s('2026-12-01T18:00:00Z'), { ...tenant, subscriptionId: undefined }, s('2026-12-01T19:20:00Z'), HOUR))
      .toEqual({ kind: 'bill', timestamp: s('2026-12-01T18:00:00Z'), billingPeriodStart: 'month:2026-12', carriedOver: false });
  });
});
