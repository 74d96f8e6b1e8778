/**
 * The contract between `MarketplaceBilling` and its handlers: every name the construct sets and a
 * handler reads (environment, metrics, table layouts, the statuses of the events it emits) is
 * defined here once and imported by both. Plain values only (no AWS SDK): the construct library
 * loads this module.
 *
 * AWS rules the handlers and the construct rely on (each cited where it is used):
 * - BatchMeterUsage: at most 25 usage records per request, identical records are idempotent,
 *   a record for the same customer, dimension and hour with another quantity is a `DuplicateRecord`,
 *   usage is refused some hours after the hour it belongs to
 *   (https://docs.aws.amazon.com/marketplace/latest/APIReference/API_marketplace-metering_BatchMeterUsage.html).
 * - SaaS subscription events reach the default event bus of us-east-1 only, from source
 *   `aws.agreement-marketplace` (https://docs.aws.amazon.com/marketplace/latest/userguide/saas-eventbridge-integration.html).
 */

/** The AWS Marketplace source of agreement and license events on EventBridge. */
export const MARKETPLACE_EVENT_SOURCE = 'aws.agreement-marketplace';

/**
 * The SaaS events the lifecycle function listens to: the manufacturer's copy of each (an ISV
 * selling directly receives both the manufacturer's and the proposer's copy of agreement events;
 * the license events are sent to the manufacturer only), so each change arrives once.
 * https://docs.aws.amazon.com/marketplace/latest/userguide/saas-eventbridge-integration.html
 */
export const MARKETPLACE_DETAIL_TYPES = {
  AGREEMENT_CREATED: 'Purchase Agreement Created - Manufacturer',
  AGREEMENT_AMENDED: 'Purchase Agreement Amended - Manufacturer',
  AGREEMENT_ENDED: 'Purchase Agreement Ended - Manufacturer',
  LICENSE_UPDATED: 'License Updated - Manufacturer',
  LICENSE_DEPROVISIONED: 'License Deprovisioned - Manufacturer',
} as const;

/** Region whose default bus receives the SaaS subscription events (see `MARKETPLACE_DETAIL_TYPES`). */
export const MARKETPLACE_EVENTS_REGION = 'us-east-1';

/**
 * "The AWS Marketplace Entitlement Service is available only in the US East (N. Virginia) Region"
 * (https://docs.aws.amazon.com/marketplace/latest/userguide/checking-entitlements.html).
 */
export const ENTITLEMENT_SERVICE_REGION = 'us-east-1';

/** Environment of the Marketplace handlers. */
export const MARKETPLACE_ENV = {
  /** Powertools: service name (logger key and metric dimension). */
  SERVICE_NAME: 'POWERTOOLS_SERVICE_NAME',
  /** Powertools: metric namespace. */
  METRICS_NAMESPACE: 'POWERTOOLS_METRICS_NAMESPACE',
  /** The product code of the SaaS product. */
  PRODUCT_CODE: 'MARKETPLACE_PRODUCT_CODE',
  /** Registrations, tokens, tenants, licenses, agreements and processed events. */
  REGISTRATIONS_TABLE_NAME: 'REGISTRATIONS_TABLE_NAME',
  /** Metering markers, monthly remainders, pending records, cursor and lease. */
  METERING_TABLE_NAME: 'METERING_TABLE_NAME',
  /** The user's registration page (https URL) the fulfillment URL redirects to. */
  REGISTRATION_PAGE_URL: 'REGISTRATION_PAGE_URL',
  /** The query parameter and onboarding detail field carrying the registration id. */
  REGISTRATION_ID_FIELD: 'REGISTRATION_ID_FIELD',
  /** JSON array of `DimensionMapping`. */
  DIMENSIONS: 'MARKETPLACE_DIMENSIONS',
  /** How long after its hour Marketplace accepts a usage record, seconds. */
  ACCEPTANCE_WINDOW_SECONDS: 'ACCEPTANCE_WINDOW_SECONDS',
  /** A record still unsent this long before its deadline counts as near its deadline, seconds. */
  DEADLINE_WARNING_SECONDS: 'DEADLINE_WARNING_SECONDS',
  /** `true`: hours without usage of an active license are metered as 0. */
  REPORT_ZERO_HOURS: 'REPORT_ZERO_USAGE_HOURS',
  /** An hour is metered as 0 only this long after its end (the ingestor's closing delay), seconds. */
  ZERO_HOUR_DELAY_SECONDS: 'ZERO_HOUR_DELAY_SECONDS',
  /** How far back the first push reads closed windows, seconds. */
  INITIAL_LOOKBACK_SECONDS: 'INITIAL_LOOKBACK_SECONDS',
  /** How long after a cancellation starts the final metering is still accepted, seconds. */
  FINAL_METERING_SECONDS: 'FINAL_METERING_SECONDS',
  /** ARN of the bus the subscription changed events go to. */
  EVENT_BUS_ARN: 'BILLING_EVENT_BUS_ARN',
  SUBSCRIPTION_CHANGED_SOURCE: 'BILLING_SUBSCRIPTION_CHANGED_SOURCE',
  SUBSCRIPTION_CHANGED_DETAIL_TYPE: 'BILLING_SUBSCRIPTION_CHANGED_DETAIL_TYPE',
  /** How long processed Marketplace event ids are remembered, seconds. */
  PROCESSED_EVENT_RETENTION_SECONDS: 'PROCESSED_EVENT_RETENTION_SECONDS',
} as const;

/** How a dimension's multiplied value is rounded (values of `MarketplaceRounding`). */
export type DimensionRoundingMode = 'HALF_UP' | 'HALF_EVEN' | 'UP' | 'DOWN';

/** One metric to dimension mapping, as the construct passes it (`MARKETPLACE_DIMENSIONS`). */
export interface DimensionMapping {
  /** The usage metric, as producers name it. */
  readonly metric: string;
  /** The product's pricing dimension (its API name in AWS Marketplace). */
  readonly dimension: string;
  /** The window sum is multiplied by this exact decimal before rounding. */
  readonly multiplier: string;
  readonly rounding: DimensionRoundingMode;
}

/**
 * The status of the subscription changed event (`ControlPlaneEvents.billingSubscriptionChanged`)
 * `MarketplaceBilling` emits, with `provider: 'marketplace'`.
 */
export const MARKETPLACE_SUBSCRIPTION_STATUS = {
  /** The buyer's agreement was created (or its license granted): bill the tenant. */
  CONFIRMED: 'CONFIRMED',
  /** The tenant cannot be billed through Marketplace (no registration, or Marketplace says it is not subscribed). */
  FAILED: 'FAILED',
  /** The agreement ended: its last usage is being metered (Marketplace accepts it for one more hour). */
  CANCELLATION_PENDING: 'CANCELLATION_PENDING',
  /** The final metering is done (or its time is over): revoke access. */
  CANCELLED: 'CANCELLED',
  /** The agreement was amended or the license's entitlements changed: read them again (GetEntitlements). */
  ENTITLEMENT_CHANGED: 'ENTITLEMENT_CHANGED',
} as const;

/** The metric namespace of every MarketplaceBilling; the `service` dimension tells installations apart. */
export const MARKETPLACE_METRICS_NAMESPACE = 'CdkSaasBilling/MarketplaceBilling';

/** Metrics the handlers emit (Powertools EMF, dimension `service`). */
export const MARKETPLACE_METRICS = {
  /** Usage records Marketplace accepted (`Success`). */
  RECORDS_SENT: 'RecordsSent',
  /** Windows whose share of the month's rounded total is 0: recorded, not sent (unless zero hours are reported). */
  RECORDS_ZERO: 'RecordsZero',
  /** Hours without usage metered as 0 (`reportZeroUsageHours`). */
  ZERO_HOURS_SENT: 'ZeroHoursSent',
  /** Windows of metrics without a dimension: recorded, not sent. */
  WINDOWS_WITHOUT_DIMENSION: 'WindowsWithoutDimension',
  /** Windows of tenants without a Marketplace registration: recorded, not sent. */
  WINDOWS_WITHOUT_REGISTRATION: 'WindowsWithoutRegistration',
  /** Windows of licenses whose final metering is over: recorded, not sent. */
  WINDOWS_AFTER_CANCELLATION: 'WindowsAfterCancellation',
  /** Records Marketplace answered `CustomerNotSubscribed`. Alarmed. */
  RECORDS_NOT_SUBSCRIBED: 'RecordsNotSubscribed',
  /** Records Marketplace answered `DuplicateRecord` (another quantity was metered for that hour). Alarmed. */
  RECORDS_DUPLICATE: 'RecordsDuplicate',
  /** Records past the acceptance window before they could be sent. Alarmed. */
  RECORDS_TOO_LATE: 'RecordsTooLate',
  /** Records Marketplace refused with a client error (dimension, license, value). Alarmed. */
  RECORDS_REJECTED: 'RecordsRejected',
  /** Records sent without an answer whose acceptance window is over: whether they counted is unknown. Alarmed. */
  RECORDS_UNCERTAIN: 'RecordsUncertain',
  /** Records put aside for the next run (Marketplace unavailable, unprocessed, tenant not ready). */
  RECORDS_DEFERRED: 'RecordsDeferred',
  /** Records still unsent with less than the warning time left before their deadline. Alarmed. */
  RECORDS_NEAR_DEADLINE: 'RecordsNearDeadline',
  /** BatchMeterUsage requests made. */
  METERING_REQUESTS: 'MeteringRequests',
  /** Records Marketplace left in `UnprocessedRecords` and that were sent again. */
  UNPROCESSED_RETRIES: 'UnprocessedRetries',
  /** Usage of a window that closed after its license's final metering had sent its running total: not billed. */
  USAGE_AFTER_FINAL_METERING: 'UsageAfterFinalMetering',
  /** Registrations created by the fulfillment URL. */
  REGISTRATIONS_CREATED: 'RegistrationsCreated',
  /** Fulfillment calls refused (invalid, expired or replayed token, another product). Alarmed on bursts. */
  REGISTRATIONS_REFUSED: 'RegistrationsRefused',
  /** Onboardings refused (no or unknown registration, a registration another tenant claimed). Alarmed. */
  ONBOARDINGS_REFUSED: 'OnboardingsRefused',
  /** Marketplace events older than the state already recorded for their license: no effect. */
  LIFECYCLE_EVENTS_SUPERSEDED: 'LifecycleEventsSuperseded',
  /** Marketplace events for licenses no registration knows yet: kept until the registration arrives. */
  LIFECYCLE_EVENTS_UNMATCHED: 'LifecycleEventsUnmatched',
} as const;

/**
 * The registrations table: partition key `pk` (S), TTL on `expiresAt` (processed events and token
 * markers only).
 *
 * | item         | pk                          | attributes |
 * |--------------|-----------------------------|------------|
 * | registration | `REG#<registrationId>`      | `licenseArn`, `customerAWSAccountId`, `customerIdentifier`, `productCode`, `subscriber`, `createdAt`, `tenantId` (once claimed), `claimedAt` |
 * | token        | `TOKEN#<sha256 of token>`   | `registrationId`, `usedAt`, `expiresAt` (a token is redeemed once: a replay is refused) |
 * | subscriber   | `SUB#<subscriber>`          | `registrationId`, `tenantId`; the subscription: `state` (PENDING, ACTIVE, CANCELLATION_PENDING, CANCELLED), `stateAt` (the time of the Marketplace event that set it), `stateRank`, `stateEventId`, `agreementId`, `meterUntil` (ISO: end of the final metering), `finalMeteredAt` |
 * | agreement    | `AGREEMENT#<agreementId>`   | `subscriber` (from a license event), `pendingState`, `pendingStateAt`, `pendingStateRank`, `pendingEventId` (an agreement event that arrived before its license was known) |
 * | tenant       | `TENANT#<tenantId>`         | `registrationId`, `subscriber`, `licenseArn`, `customerAWSAccountId`, `customerIdentifier`, `status` (ACTIVE, OFFBOARDED), `onboardedAt`, `offboardedAt` |
 * | event        | `EVENT#<eventId>`           | `status` (APPLIED, SUPERSEDED), `emitted` (true once its control-plane event is on the bus), `detailType`, `expiresAt` |
 *
 * `subscriber` is the license ARN, or `customer:<CustomerIdentifier>` for a registration that has no
 * license (products integrated before concurrent agreements). One subscriber has one registration,
 * and one registration one tenant: Marketplace deduplicates usage per license, dimension and hour.
 */
export const REGISTRATIONS_TABLE_LAYOUT = {
  partitionKey: 'pk',
  ttlAttribute: 'expiresAt',
  registrationPrefix: 'REG#',
  tokenPrefix: 'TOKEN#',
  subscriberPrefix: 'SUB#',
  agreementPrefix: 'AGREEMENT#',
  tenantPrefix: 'TENANT#',
  eventPrefix: 'EVENT#',
  customerSubscriberPrefix: 'customer:',
} as const;

/**
 * The metering table: partition key `pk` (S), sort key `sk` (S).
 *
 * | item           | pk                                   | sk                  |
 * |----------------|--------------------------------------|---------------------|
 * | record marker  | `RECORD#<subscriber>#<dimension>`    | `<hour start ISO>`  |
 * | monthly carry  | `CARRY#<tenantId>`                   | `<dimension>#<YYYY-MM>` |
 * | pending record | `PENDING`                            | `<window id>`       |
 * | zero-hour mark | `ZERO#<subscriber>`                  | `<dimension>`       |
 * | read cursor    | `STATE`                              | `CURSOR`            |
 * | run lease      | `STATE`                              | `LEASE`             |
 *
 * A record marker is the one usage record of a license (or customer), dimension and hour: `status`
 * (a disposition, or SENDING once its quantity is reserved and until Marketplace's answer is
 * recorded), `quantity` (the whole units sent), `exact` (the window's sum times the multiplier),
 * `windowId`, `tenantId`, `metric`, `timestamp` (the record's, ISO), `deadline` (ISO),
 * `customerAWSAccountId`, `licenseArn` or `customerIdentifier`, `meteringRecordId`, `partial`
 * (true when the final metering of a cancellation sent the running total of an open hour),
 * `firstAttemptAt`, `attempts`, `reason`.
 *
 * The monthly carry of a tenant and dimension holds `exact` (the exact usage reserved in that
 * month) and `units` (the whole units reserved: always the rounding of `exact`), `version`: each
 * window sends `round(exact + its exact) - units`, so a month bills the rounding of its total.
 */
export const METERING_TABLE_LAYOUT = {
  partitionKey: 'pk',
  sortKey: 'sk',
  recordPrefix: 'RECORD#',
  carryPrefix: 'CARRY#',
  pendingPartition: 'PENDING',
  zeroPrefix: 'ZERO#',
  statePartition: 'STATE',
  cursorSortKey: 'CURSOR',
  leaseSortKey: 'LEASE',
} as const;
