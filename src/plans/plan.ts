/**
 * A billing plan: what a user writes once, in props, for each plan (SBT tier)
 * it sells. Plain data (jsii structs and enums): every provider and the
 * entitlements read the part that concerns them.
 */

/**
 * The period an entitlement's limit counts usage over. Periods are in UTC and
 * made of whole usage windows: a record counts in the period of its window's
 * start (a late record counts in the period its window belongs to).
 */
export enum EntitlementPeriod {
  /** A UTC hour (needs an ingestor with hourly windows). */
  HOUR = 'HOUR',
  /** A UTC day. */
  DAY = 'DAY',
  /** A calendar month, UTC. */
  CALENDAR_MONTH = 'CALENDAR_MONTH',
  /**
   * The tenant's billing period: `DynamoDbBilling` bills calendar months (UTC), so
   * with it this is `CALENDAR_MONTH`. With `BillingPlans`' `billingPeriodAnchor`
   * set to `ONBOARDING`, it is the month that starts on the day and time of the
   * tenant's billing anchor (the first usage window boundary after its
   * onboarding, as `StripeBilling` anchors its subscriptions).
   */
  BILLING_PERIOD = 'BILLING_PERIOD',
}

/** What reaching an entitlement's limit does. */
export enum LimitAction {
  /** A `usageLimitReached` event only: usage goes on. */
  NOTIFY = 'NOTIFY',
  /**
   * A `usageLimitReached` event, and the tenant is blocked for the metric until
   * the period rolls over, its plan changes to one whose limit it is under, or a
   * void brings its total back under the limit (`EntitlementAuthorizer` refuses it meanwhile).
   */
  BLOCK = 'BLOCK',
}

/**
 * A limit on a metric's usage per period, with soft thresholds.
 */
export interface Entitlement {
  /**
   * The limit: the usage (sum of the metric's record values) per period at which
   * `usageLimitReached` is emitted (and a `BLOCK` limit blocks). A non-negative
   * decimal string, for example `'100000'`.
   */
  readonly limit: string;

  /**
   * The period the limit counts usage over.
   */
  readonly period: EntitlementPeriod;

  /**
   * Soft thresholds, as whole percentages of the limit between 1 and 99: each
   * emits one `usageThresholdCrossed` event per tenant, metric and period when
   * the total reaches it (for example `[80, 90]`).
   * @default - none: only the limit is announced
   */
  readonly thresholds?: number[];

  /**
   * What reaching the limit does.
   * @default LimitAction.NOTIFY
   */
  readonly onLimit?: LimitAction;
}

/**
 * One tier of a graduated price.
 */
export interface PriceTier {
  /**
   * The last unit of this tier, counted in billable units of the billing period
   * (after the free quantity), as a decimal string. The last tier has none.
   * @default - no upper bound: the last tier
   */
  readonly upTo?: string;

  /**
   * The price of one unit in this tier: a non-negative decimal string with at most 12 decimal places.
   */
  readonly unitPrice: string;
}

/**
 * How `DynamoDbBilling` prices a metric under a plan, per billing period
 * (calendar month): the first `freeQuantity` units are free, the units after
 * them cost `unitPrice` each, or follow `tiers` (graduated: each unit at the
 * price of the tier it falls in), and the period's charge for the metric is at
 * least `minimumCharge`. Give `unitPrice` or `tiers`, not both.
 *
 * For "first 10,000 free, next 90,000 at 0.002, beyond at 0.001":
 * `{ freeQuantity: '10000', tiers: [{ upTo: '90000', unitPrice: '0.002' }, { unitPrice: '0.001' }] }`.
 */
export interface MetricPrice {
  /**
   * The price of each billable unit: a non-negative decimal string with at most 12 decimal places.
   * @default - `tiers` price the units
   */
  readonly unitPrice?: string;

  /**
   * Graduated tiers, in order; every tier but the last has `upTo`, increasing.
   * @default - `unitPrice` prices the units
   */
  readonly tiers?: PriceTier[];

  /**
   * The units of each billing period that are free (the allowance), as a decimal string.
   * @default '0'
   */
  readonly freeQuantity?: string;

  /**
   * The least the metric costs in a billing period in which the tenant used it (a
   * decimal string): when its charges add up to less, a minimum charge line adds
   * the difference. The plan in effect at the period's end decides it.
   * @default - no minimum
   */
  readonly minimumCharge?: string;

  /**
   * The ISO 4217 currency code of the price.
   * @default 'USD'
   */
  readonly currency?: string;
}

/**
 * What a plan says about one metric.
 */
export interface PlanMetric {
  /**
   * The metric, exactly as producers write it in usage records (for example `apiCalls`).
   */
  readonly metric: string;

  /**
   * How `DynamoDbBilling` prices the metric under this plan.
   * @default - no plan price: `DynamoDbBilling` uses its `unitPrices`, else the window is `UNPRICED`
   */
  readonly price?: MetricPrice;

  /**
   * The limits of the metric under this plan (at most one per period).
   * @default - no limit
   */
  readonly entitlements?: Entitlement[];
}

/**
 * A billing plan: the name a tenant's plan is known by (the SBT tier, for
 * example `basic` or `premium`) and what it means for each metric and each provider.
 */
export interface BillingPlan {
  /**
   * The plan's name, as the onboarding and plan change events name it (SBT's `tier`).
   *
   * 1 to 64 characters of letters, digits and `_ - . : @ + =`.
   */
  readonly name: string;

  /**
   * Prices and limits per metric.
   * @default - none: no plan price and no limit
   */
  readonly metrics?: PlanMetric[];

  /**
   * The Stripe price ids a `StripeBilling` subscription of this plan holds
   * (its items), for example `['price_1PQbase', 'price_1PQcalls']`.
   * @default - none: `StripeBilling` subscribes the tenant to its own `prices`
   */
  readonly stripePriceIds?: string[];
}
