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
  /**
   * Tests and benches only: requests per second a process sends with a test-mode key
   * (default 20, under the sandbox's 25). The construct never sets it; stripe-mock has no limit.
   */
  SANDBOX_REQUESTS_PER_SECOND: 'CDK_SAAS_BILLING_STRIPE_SANDBOX_REQUESTS_PER_SECOND',
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

/** The webhook events table: partition key `pk` (S) = `EVENT#<id>`, TTL on `expiresAt`. */
export const WEBHOOK_EVENTS_TABLE_LAYOUT = {
  partitionKey: 'pk',
  eventPrefix: 'EVENT#',
  ttlAttribute: 'expiresAt',
} as const;

/** Webhook event types the handler acts on; the managed endpoint subscribes to exactly these. */
export const STRIPE_WEBHOOK_EVENTS = {
  /** Becomes the billing success event. */
  INVOICE_PAID: 'invoice.paid',
  /** Becomes the billing failure event. */
  INVOICE_PAYMENT_FAILED: 'invoice.payment_failed',
  /** Becomes the billing failure event when Stripe cancelled it for non-payment; otherwise acknowledged. */
  SUBSCRIPTION_DELETED: 'customer.subscription.deleted',
} as const;

/**
 * Properties of the Stripe setup custom resource (strings: CloudFormation passes strings).
 *
 * CloudFormation calls a custom resource only when its properties change
 * (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html),
 * so every input of what the setup makes in Stripe is a property: a change of
 * any of them runs it, and nothing else does.
 */
export const STRIPE_SETUP_PROPERTIES = {
  /** Stable id of this setup; the managed endpoint carries it in its metadata. */
  SETUP_ID: 'SetupId',
  /** JSON array of `{ eventName, displayName }`. */
  METERS: 'Meters',
  WEBHOOK_URL: 'WebhookUrl',
  /** JSON array of event types. */
  WEBHOOK_EVENTS: 'WebhookEvents',
  API_VERSION: 'ApiVersion',
  /** The API key secret: another secret may hold another account's (or mode's) key, where the setup must run again. */
  API_KEY_SECRET_ARN: 'ApiKeySecretArn',
  /** The secret the setup stores the signing secret in: a new secret must be filled. */
  WEBHOOK_SIGNING_SECRET_ARN: 'WebhookSigningSecretArn',
  /** `webhookSigningSecretRotation` (empty when not set): a new label makes a new webhook endpoint. */
  SIGNING_SECRET_ROTATION: 'SigningSecretRotation',
  /** `STRIPE_SETUP_VERSION`: a library version whose setup does more runs it on the first deploy. */
  SETUP_VERSION: 'SetupVersion',
} as const;

/**
 * What the setup does, as a version: raise it whenever the setup's effect in
 * Stripe or the attributes it returns change, so that the first deploy with the
 * new library runs it (its properties change). 2: meter ownership on the
 * endpoint, signing secret rotation, `MeterId<n>` attributes.
 */
export const STRIPE_SETUP_VERSION = '2';

/** Attributes the setup custom resource returns (`Fn::GetAtt`). */
export const STRIPE_SETUP_ATTRIBUTES = {
  WEBHOOK_ENDPOINT_ID: 'WebhookEndpointId',
  /** JSON object event name -> meter id. */
  METER_IDS: 'MeterIds',
  /** `MeterId<n>`: the id of the n-th meter of the `Meters` property (from 0). */
  METER_ID_PREFIX: 'MeterId',
} as const;

/**
 * How long the previous webhook endpoint and its signing secret live after a
 * new endpoint replaced them (a rotation): Stripe retries a failed delivery
 * for up to 3 days in live mode (https://docs.stripe.com/webhooks#retries), and
 * an event created before the new endpoint existed is delivered to the old one
 * only. One hour of margin.
 */
export const SIGNING_SECRET_OVERLAP_HOURS = 73;

/**
 * The event the setup's hourly rule sends its function: `{ [STRIPE_SETUP_SWEEP]: <setupId> }`.
 * The run removes a previous endpoint whose overlap is over (and its secret from the store).
 */
export const STRIPE_SETUP_SWEEP = 'cdkSaasBillingSetupSweep';

/** Metadata keys written on Stripe objects. */
export const STRIPE_METADATA = {
  TENANT_ID: 'tenantId',
  GENERATION: 'tenantGeneration',
  MANAGED_BY: 'managedBy',
  SETUP_ID: 'cdkSaasBillingSetupId',
  /** On a managed endpoint: the CloudFormation stack (ARN) of its setup. */
  STACK_ID: 'cdkSaasBillingStackId',
  /** On a managed endpoint: the rotation label it was created for (absent: none). */
  ROTATION: 'cdkSaasBillingRotation',
  /**
   * On a managed endpoint: the meters its setup uses (`<prefix>`, `<prefix>1`, ...: comma-separated
   * ids, at most 500 characters each). Billing meters have no metadata of their own.
   */
  METERS_USED: 'cdkSaasBillingMeters',
  /** On a managed endpoint: the meters its setup (or its stack) made active, which Delete may deactivate. */
  METERS_OWNED: 'cdkSaasBillingOwnedMeters',
} as const;

/** The value of `managedBy` on every object the library creates. */
export const MANAGED_BY = 'cdk-saas-billing';
