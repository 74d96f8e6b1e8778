/**
 * The contract between `StripeBilling` and its handlers: every name the
 * construct sets and a handler reads (environment, metrics, table layouts,
 * custom resource properties) is defined here once and imported by both.
 * No AWS SDK or Stripe SDK import: the construct library loads this module.
 */

/**
 * The Stripe API version every request is pinned to (the `Stripe-Version`
 * header) and the version the managed webhook endpoint renders its events in.
 * It is the newest version whose OpenAPI spec stripe-mock v0.197.0 validates
 * requests against, so the tests check every request the handlers send against
 * the very version they declare. The fields the handlers read are the same in
 * the SDK's own default version (2026-10-28.endive).
 */
export const STRIPE_API_VERSION = '2025-09-30.clover';

/** Environment variables of the Stripe handlers. */
export const STRIPE_ENV = {
  /** ARN of the secret holding the Stripe API key (never the key itself). */
  API_KEY_SECRET_ARN: 'STRIPE_API_KEY_SECRET_ARN',
  /** How long the API key is cached, seconds. */
  SECRET_CACHE_SECONDS: 'SECRET_CACHE_SECONDS',
  /** Per-request timeout of Stripe calls, milliseconds. */
  REQUEST_TIMEOUT_MS: 'STRIPE_REQUEST_TIMEOUT_MS',
  /**
   * Tests only: `http://127.0.0.1:<port>` of stripe-mock. The construct never sets it;
   * when it is set, the handlers talk to that endpoint instead of api.stripe.com.
   */
  TEST_ENDPOINT: 'CDK_SAAS_BILLING_STRIPE_TEST_ENDPOINT',
  /** The tenant to customer mapping table. */
  CUSTOMERS_TABLE_NAME: 'CUSTOMERS_TABLE_NAME',
  /** Pushed markers, pending windows, cursor and lease of the usage push. */
  USAGE_PUSH_TABLE_NAME: 'USAGE_PUSH_TABLE_NAME',
  /** Processed webhook event ids. */
  WEBHOOK_EVENTS_TABLE_NAME: 'WEBHOOK_EVENTS_TABLE_NAME',
  /** ARN of the secret holding the webhook signing secret(s). */
  WEBHOOK_SECRET_ARN: 'WEBHOOK_SIGNING_SECRET_ARN',
  /** JSON array of the price ids a new tenant is subscribed to. */
  PRICE_IDS: 'STRIPE_PRICE_IDS',
  /** JSON array of `MeterMapping`. */
  METERS: 'STRIPE_METERS',
  /** A `CancellationPolicy` value. */
  CANCELLATION: 'SUBSCRIPTION_CANCELLATION',
  /** `true` when offboarding deletes the Stripe customer. */
  DELETE_CUSTOMER: 'DELETE_CUSTOMER_ON_OFFBOARDING',
  /** How far back the first push reads closed windows, seconds. */
  INITIAL_LOOKBACK_SECONDS: 'INITIAL_LOOKBACK_SECONDS',
  /** Customer and meter pairs pushed at once. */
  PUSH_CONCURRENCY: 'PUSH_CONCURRENCY',
  /** Prefix of every meter event identifier: unique to one StripeBilling. */
  IDENTIFIER_PREFIX: 'METER_EVENT_IDENTIFIER_PREFIX',
  /** ARN of the bus the webhook emits billing events on. */
  EVENT_BUS_ARN: 'BILLING_EVENT_BUS_ARN',
  BILLING_SUCCESS_SOURCE: 'BILLING_SUCCESS_SOURCE',
  BILLING_SUCCESS_DETAIL_TYPE: 'BILLING_SUCCESS_DETAIL_TYPE',
  BILLING_FAILURE_SOURCE: 'BILLING_FAILURE_SOURCE',
  BILLING_FAILURE_DETAIL_TYPE: 'BILLING_FAILURE_DETAIL_TYPE',
  BILLING_SUBSCRIPTION_CHANGED_SOURCE: 'BILLING_SUBSCRIPTION_CHANGED_SOURCE',
  BILLING_SUBSCRIPTION_CHANGED_DETAIL_TYPE: 'BILLING_SUBSCRIPTION_CHANGED_DETAIL_TYPE',
  /** How long a processed webhook event id is remembered, seconds. */
  PROCESSED_EVENT_RETENTION_SECONDS: 'PROCESSED_EVENT_RETENTION_SECONDS',
  /** Powertools: service name (logger key and metric dimension). */
  SERVICE_NAME: 'POWERTOOLS_SERVICE_NAME',
  /** Powertools: metric namespace. */
  METRICS_NAMESPACE: 'POWERTOOLS_METRICS_NAMESPACE',
} as const;

/** What offboarding does to the tenant's subscriptions (values of `StripeSubscriptionCancellation`). */
export type CancellationPolicy = 'IMMEDIATELY' | 'IMMEDIATELY_INVOICE_USAGE' | 'AT_PERIOD_END';
/** How a meter value is rounded to the whole number Stripe accepts (values of `StripeMeterRounding`). */
export type MeterRoundingMode = 'HALF_UP' | 'HALF_EVEN' | 'UP' | 'DOWN';

/** One metric to meter mapping, as the construct passes it (`STRIPE_METERS`). */
export interface MeterMapping {
  /** The usage metric, as producers name it. */
  readonly metric: string;
  /** The Stripe meter's `event_name`. */
  readonly eventName: string;
  /** The window sum is multiplied by this exact decimal before rounding. */
  readonly multiplier: string;
  readonly rounding: MeterRoundingMode;
}

/** The metric namespace of every StripeBilling; the `service` dimension tells installations apart. */
export const STRIPE_METRICS_NAMESPACE = 'CdkSaasBilling/StripeBilling';

/** Metrics the handlers emit (Powertools EMF, dimension `service`). */
export const STRIPE_METRICS = {
  /** Windows sent to Stripe as meter events. */
  WINDOWS_SENT: 'WindowsSent',
  /** Windows older than Stripe accepts (35 days): never sent. Alarmed. */
  WINDOWS_TOO_OLD: 'WindowsTooOld',
  /** Windows Stripe refused with a 4xx (or whose value cannot be sent). Alarmed. */
  WINDOWS_REJECTED: 'WindowsRejected',
  /** Windows whose first attempt is older than Stripe's idempotency window with no answer recorded. Alarmed. */
  WINDOWS_UNCERTAIN: 'WindowsUncertain',
  /** Windows of metrics without a meter: recorded, not sent. */
  WINDOWS_WITHOUT_METER: 'WindowsWithoutMeter',
  /** Windows that round to 0: recorded, not sent. */
  WINDOWS_ZERO: 'WindowsZero',
  /** Windows of offboarded tenants: recorded, not sent. */
  WINDOWS_AFTER_OFFBOARDING: 'WindowsAfterOffboarding',
  /** Windows put aside to retry on the next run (no customer yet, Stripe unavailable). */
  WINDOWS_DEFERRED: 'WindowsDeferred',
  /** Age of the oldest window waiting for a retry, hours. Alarmed at 24. */
  OLDEST_PENDING_WINDOW_HOURS: 'OldestPendingWindowHours',
  /** Webhook calls refused (signature, tolerance, malformed). Alarmed on bursts. */
  WEBHOOK_REFUSED: 'WebhookRefused',
  /** Signed webhook events about a customer no tenant maps to: acknowledged, no event. */
  WEBHOOK_UNKNOWN_CUSTOMER: 'WebhookUnknownCustomer',
  /** Signed webhook events older than the state already recorded for their invoice or subscription: acknowledged, no event. */
  WEBHOOK_SUPERSEDED: 'WebhookSupersededEvents',
  /** Lifecycle events older than the tenant's latest opposite event (an onboarding older than its offboarding): ignored. */
  STALE_EVENTS: 'StaleLifecycleEvents',
} as const;

/**
 * The tenant to customer mapping table: partition key `pk` (S).
 *
 * | item     | pk                      | attributes |
 * |----------|-------------------------|------------|
 * | tenant   | `TENANT#<tenantId>`     | `status` (CREATING, ACTIVE, OFFBOARDING, OFFBOARDED), `generation`, `customerId`, `customerAttemptedAt`, `subscriptionId`, `subscriptionAttemptedAt`, `onboardedAt`, `offboardedAt`, `cancellation`, `cancelAt`, `customerDeleted` |
 * | customer | `CUSTOMER#<customerId>` | `tenantId`, `generation` (the reverse mapping the webhook reads) |
 *
 * The webhook writes three more attributes on the tenant item:
 * - `subscriptionStatus`, `subscriptionStatusAt`, `subscriptionStatusOf`: the Stripe status of the
 *   tenant's current `subscriptionId`, the `created` (epoch seconds) of the webhook event that set
 *   it and the subscription it belongs to (equal to `subscriptionId`, else the status is of an
 *   earlier subscription). Written only while `subscriptionId` is that subscription, and only by an
 *   event newer than the one that set the stored status (the order rule of `WEBHOOK_EVENTS_TABLE_LAYOUT`).
 * - `customerDeletedByStripe` (true) and `customerDeletedByStripeAt` (epoch seconds): `customer.deleted`
 *   for the tenant's current `customerId` while the tenant is not being offboarded (a deletion
 *   that is not our offboarding's).
 */
export const CUSTOMERS_TABLE_LAYOUT = {
  partitionKey: 'pk',
  tenantPrefix: 'TENANT#',
  customerPrefix: 'CUSTOMER#',
} as const;

/**
 * The usage push table: partition key `pk` (S), sort key `sk` (S).
 *
 * | item           | pk                  | sk          |
 * |----------------|---------------------|-------------|
 * | pushed marker  | `WINDOW#<windowId>` | `MARKER`    |
 * | pending window | `PENDING`           | `<windowId>`|
 * | read cursor    | `STATE`             | `CURSOR`    |
 * | run lease      | `STATE`             | `LEASE`     |
 */
export const USAGE_PUSH_TABLE_LAYOUT = {
  partitionKey: 'pk',
  sortKey: 'sk',
  markerPrefix: 'WINDOW#',
  markerSortKey: 'MARKER',
  pendingPartition: 'PENDING',
  statePartition: 'STATE',
  cursorSortKey: 'CURSOR',
  leaseSortKey: 'LEASE',
} as const;

/**
 * The webhook events table: partition key `pk` (S), TTL on `expiresAt` (epoch
 * seconds: the time written + `processedEventRetention`).
 *
 * | item               | pk                            | attributes |
 * |--------------------|-------------------------------|------------|
 * | processed event    | `EVENT#<eventId>`             | `status` (CLAIMED, DONE), `claimToken`, `claimExpiresAt`, `type`, `receivedAt`, `emitted` (detail types), `superseded`, `processedAt` |
 * | invoice state      | `INVOICE#<invoiceId>`         | `state`, `stateAt`, `eventId`, `previousState` |
 * | subscription state | `SUBSCRIPTION#<subscriptionId>` | `state`, `stateAt`, `eventId`, `previousState` |
 *
 * An object's state is the one set by the newest event about it: `state` (see
 * `STRIPE_WEBHOOK_EVENTS`; a subscription's Stripe `status`), `stateAt` (that
 * event's `created`, epoch seconds), `eventId` (that event) and `previousState`
 * (the state it replaced). Stripe does not deliver events in order
 * (https://docs.stripe.com/webhooks#event-ordering), so an event replaces the
 * stored state only when it is newer: its `created` is later, or the same second
 * and its state is terminal while the stored one is not; a terminal state (an
 * invoice `paid` or `void`, a subscription `canceled` or `incomplete_expired`) is
 * never replaced by a non-terminal one. An event that replaces nothing is
 * acknowledged and emits nothing. The items are written with a condition on the
 * `eventId` read, so that concurrent events about one object serialize.
 */
export const WEBHOOK_EVENTS_TABLE_LAYOUT = {
  partitionKey: 'pk',
  eventPrefix: 'EVENT#',
  invoicePrefix: 'INVOICE#',
  subscriptionPrefix: 'SUBSCRIPTION#',
  ttlAttribute: 'expiresAt',
} as const;

/**
 * Webhook event types the handler acts on; the managed endpoint subscribes to exactly these.
 * Each sets the state of its invoice or subscription (see `WEBHOOK_EVENTS_TABLE_LAYOUT`)
 * and emits only when that state is newer than the one recorded.
 */
export const STRIPE_WEBHOOK_EVENTS = {
  /** Invoice `paid` (terminal): the billing success event. */
  INVOICE_PAID: 'invoice.paid',
  /** Invoice `payment_failed`: the billing failure event (reason `payment_failed`). */
  INVOICE_PAYMENT_FAILED: 'invoice.payment_failed',
  /** Invoice `action_required` (the customer must authenticate): the billing failure event (reason `payment_action_required`). */
  INVOICE_PAYMENT_ACTION_REQUIRED: 'invoice.payment_action_required',
  /** Invoice `void` (terminal): recorded, so that a late failure of the invoice emits nothing; no event. */
  INVOICE_VOIDED: 'invoice.voided',
  /** Invoice `uncollectible`: recorded, so that a late failure of the invoice emits nothing; no event. */
  INVOICE_MARKED_UNCOLLECTIBLE: 'invoice.marked_uncollectible',
  /** The subscription's first status: recorded on the tenant mapping. */
  SUBSCRIPTION_CREATED: 'customer.subscription.created',
  /** A status change to `incomplete_expired`, `past_due`, `unpaid` or `canceled` becomes the subscription changed event. */
  SUBSCRIPTION_UPDATED: 'customer.subscription.updated',
  /**
   * `canceled`: the subscription changed event; also the billing failure event when Stripe
   * cancelled it for non-payment (reason `subscription_canceled_for_non_payment`).
   */
  SUBSCRIPTION_DELETED: 'customer.subscription.deleted',
  /** The subscription changed event with status `customer_deleted`; `customerDeletedByStripe` on the tenant mapping. */
  CUSTOMER_DELETED: 'customer.deleted',
} as const;

/**
 * The subscription statuses that become the subscription changed event when a
 * subscription enters them (https://docs.stripe.com/api/subscriptions/object#subscription_object-status).
 */
export const NOTIFIED_SUBSCRIPTION_STATUSES = ['incomplete_expired', 'past_due', 'unpaid', 'canceled'] as const;

/** The `status` of the subscription changed event for `customer.deleted`. */
export const CUSTOMER_DELETED_STATUS = 'customer_deleted';

/** Properties of the Stripe setup custom resource (strings: CloudFormation passes strings). */
export const STRIPE_SETUP_PROPERTIES = {
  /** Stable id of this setup; the managed endpoint carries it in its metadata. */
  SETUP_ID: 'SetupId',
  /** JSON array of `{ eventName, displayName }`. */
  METERS: 'Meters',
  WEBHOOK_URL: 'WebhookUrl',
  /** JSON array of event types. */
  WEBHOOK_EVENTS: 'WebhookEvents',
  API_VERSION: 'ApiVersion',
} as const;

/** Attributes the setup custom resource returns (`Fn::GetAtt`). */
export const STRIPE_SETUP_ATTRIBUTES = {
  WEBHOOK_ENDPOINT_ID: 'WebhookEndpointId',
  /** JSON object event name -> meter id. */
  METER_IDS: 'MeterIds',
} as const;

/** Metadata keys written on Stripe objects. */
export const STRIPE_METADATA = {
  TENANT_ID: 'tenantId',
  GENERATION: 'tenantGeneration',
  MANAGED_BY: 'managedBy',
  SETUP_ID: 'cdkSaasBillingSetupId',
} as const;

/** The value of `managedBy` on every object the library creates. */
export const MANAGED_BY = 'cdk-saas-billing';
