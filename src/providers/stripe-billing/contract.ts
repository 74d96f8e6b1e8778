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
  /** With plans: JSON object, plan name -> the price ids of its subscriptions (absent: `PRICE_IDS`). */
  PLAN_PRICE_IDS: 'STRIPE_PLAN_PRICE_IDS',
  /** With plans: the onboarding event's detail field that names the plan. */
  PLAN_FIELD: 'STRIPE_PLAN_FIELD',
  /** With plans: the plan of a tenant whose onboarding names no known plan ('' for none). */
  DEFAULT_PLAN: 'STRIPE_DEFAULT_PLAN',
  /** The `proration_behavior` of a plan change's item swap. */
  PLAN_CHANGE_PRORATION: 'STRIPE_PLAN_CHANGE_PRORATION',
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
  /**
   * Subscriptions are anchored on a window boundary: `billing_cycle_anchor` is the
   * next whole multiple of this many seconds (UTC). `0`: no anchor.
   */
  BILLING_ANCHOR_SECONDS: 'BILLING_ANCHOR_SECONDS',
  /** The invoice finalization grace period the user declares (Stripe's default 1 hour), seconds. */
  INVOICE_GRACE_SECONDS: 'INVOICE_GRACE_SECONDS',
  /**
   * How long after its end a window is closed and readable (the ingestor's worst-case closing delay),
   * seconds: an offboarding's final push and cancellation wait that long after the end of the window
   * holding the offboarding time. `0`: no wait.
   */
  OFFBOARDING_WAIT_SECONDS: 'OFFBOARDING_WAIT_SECONDS',
  /** The length of the ingestor's windows, seconds (the window holding an offboarding ends on a multiple of it). */
  WINDOW_SECONDS: 'USAGE_WINDOW_SECONDS',
  /** The EventBridge Scheduler schedule group of this installation's one-time schedules. */
  SCHEDULE_GROUP: 'SCHEDULE_GROUP_NAME',
  /** The role EventBridge Scheduler assumes to invoke the offboarding function. */
  SCHEDULER_ROLE_ARN: 'SCHEDULER_ROLE_ARN',
  /** The dead-letter queue of the one-time schedules. */
  SCHEDULER_DLQ_ARN: 'SCHEDULER_DEAD_LETTER_QUEUE_ARN',
  /** How long after sending the reconciler trusts Stripe's meter event summaries, seconds. */
  RECONCILE_LAG_SECONDS: 'RECONCILE_LAG_SECONDS',
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
  /**
   * Windows whose period's invoice was already finalized when they reached Stripe: billed on the
   * next invoice (with an invoice item that says so). Alarmed.
   */
  WINDOWS_CARRIED_OVER: 'WindowsCarriedOver',
  /** Windows of tenants whose subscription never started or ended outside an offboarding (incomplete_expired, canceled, customer deleted in Stripe): not sent. Alarmed. */
  WINDOWS_NO_SUBSCRIPTION: 'WindowsNoSubscription',
  /** Sent windows that Stripe's meter event summaries show it did not count (reconciler). Alarmed. */
  WINDOWS_NOT_COUNTED: 'WindowsNotCounted',
  /** Windows not counted that the reconciler sent again (in their period, or carried to the next invoice). */
  WINDOWS_RESENT: 'WindowsResent',
  /** Windows Stripe did not count after a resend either (customer deleted, meter inactive): not billed. Alarmed. */
  WINDOWS_DROPPED: 'WindowsDropped',
  /** Units counted in a period whose subscription Stripe ended outside an offboarding (customer deleted in Stripe): on no invoice. Alarmed. */
  UNITS_NOT_INVOICED: 'UnitsNotInvoiced',
  /** Units Stripe counted beyond what was sent, per reconciled period (events from elsewhere on the meter). Alarmed. */
  UNITS_OVER_COUNTED: 'UnitsOverCounted',
  /** Offboardings waiting for the tenant's last windows to close before the final push and the cancellation. */
  OFFBOARDINGS_WAITING: 'OffboardingsWaiting',
  /** Customers kept although deletion was asked, because an invoice was still open or unpaid (retried daily). */
  CUSTOMER_DELETIONS_DEFERRED: 'CustomerDeletionsDeferred',
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
 * | tenant   | `TENANT#<tenantId>`     | `status` (CREATING, ACTIVE, OFFBOARDING, OFFBOARDED), `generation`, `customerId`, `customerAttemptedAt`, `subscriptionId`, `subscriptionAttemptedAt`, `onboardedAt`, `offboardedAt`, `finalizeAt`, `cancellation`, `cancelAt`, `customerDeleted`, `customerDeletion` (PENDING, DONE, GAVE_UP); the subscription as last read: `subscriptionStartedAt`, `periodStart`, `periodEnd`, `previousPeriodStart`, `currency`, `subscriptionStatus`, `subscriptionStatusAt` (epoch seconds of the Stripe event or read that set it); `customerDeletedByStripe` |
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
 * | reconciler's lease | `STATE`         | `RECONCILER_LEASE` |
 * | rounding carry | `CARRY#<tenantId>`  | `<eventName>#<billing period start>` |
 * | reconciliation | `RECON#<tenantId>`  | `<eventName>#<billing period start>` |
 *
 * A pushed marker holds the window (`windowData`), its `status` (a disposition, or SENDING while
 * it is being sent), and once reserved: `value` (the whole units sent), `exactValue` (the window's
 * sum times the multiplier), `timestamp` (the meter event's, epoch seconds), `billingPeriodStart`
 * (the period whose invoice bills it) and `usagePeriodStart` (the period the usage belongs to;
 * differs when it was carried over), `identifier`, `customerId`, `eventName`.
 *
 * The rounding carry of a tenant, meter and billing period holds `exact` (the sum of the exact
 * values reserved in that period) and `units` (the whole units reserved: always the rounding of
 * `exact`), `version`: each window sends `round(exact + its exact) - units`, so a period bills the
 * rounding of its total, not the total of roundings.
 *
 * The reconciliation record of a tenant, meter and billing period: see `ReconciliationRecord`.
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
  reconcilerLeaseSortKey: 'RECONCILER_LEASE',
  carryPrefix: 'CARRY#',
  reconciliationPrefix: 'RECON#',
} as const;

/**
 * A billing period's reconciliation record (`RECON#<tenantId>` / `<eventName>#<periodStart>`), written
 * by the reconciler. Usage in the meter's units (after the multiplier): `metered`, `carriedOver`,
 * `rejected` and `pending` are exact decimals of the windows whose usage falls in the period; `sent`
 * and `counted` are whole units of meter events timestamped in the period.
 *
 * - `metered = billedHere + carriedOver + rejected + pending`, where `billedHere` is the exact usage
 *   of the period sent into it; `carriedIn` is the exact usage of earlier periods sent into it.
 * - `sent = round(billedHere + carriedIn)` as the rounding carry makes it (to the unit);
 * - `counted` is what Stripe's meter event summaries show for the period; `difference = counted - sent`.
 *
 * `FINAL` once the period's invoice is finalized and nothing of it is pending.
 */
export interface ReconciliationRecord {
  readonly tenantId: string;
  readonly metric: string;
  readonly eventName: string;
  readonly periodStart: string;
  readonly periodEnd?: string;
  readonly status: 'OPEN' | 'FINAL';
  readonly metered: string;
  readonly billedHere: string;
  readonly carriedIn: string;
  readonly carriedOver: string;
  readonly rejected: string;
  readonly pending: string;
  readonly sent: string;
  readonly counted: string;
  readonly difference: string;
  readonly updatedAt: string;
}

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
