/**
 * An EventBridge event that a function reacts to: the `source` and `detail-type`
 * that a rule matches.
 *
 * The defaults of this library match the events of the SaaS Builder Toolkit for
 * AWS (sbt-aws) control plane; see `ControlPlaneEvents`.
 */
export interface EventDefinition {
  /**
   * The event `source` to match, for example `sbt.control.plane`.
   */
  readonly source: string;

  /**
   * The event `detail-type` to match, for example `sbt_aws_onboardingRequest`.
   */
  readonly detailType: string;
}

/**
 * Names of the control plane events a billing provider listens to and emits.
 *
 * Every member is optional: what is not given keeps the sbt-aws default.
 */
export interface ControlPlaneEventsProps {
  /**
   * The `source` of the events the control plane emits.
   * @default 'sbt.control.plane'
   */
  readonly source?: string;

  /**
   * The `detail-type` of a tenant onboarding request.
   * @default 'sbt_aws_onboardingRequest'
   */
  readonly onboardingRequest?: string;

  /**
   * The `detail-type` of a tenant offboarding request.
   * @default 'sbt_aws_offboardingRequest'
   */
  readonly offboardingRequest?: string;

  /**
   * The `detail-type` of a tenant user created event.
   * @default 'sbt_aws_tenantUserCreated'
   */
  readonly tenantUserCreated?: string;

  /**
   * The `detail-type` of a tenant user deleted event.
   * @default 'sbt_aws_tenantUserDeleted'
   */
  readonly tenantUserDeleted?: string;

  /**
   * The `source` of the events the billing provider emits (billing success and failure).
   * @default - the control plane `source`
   */
  readonly billingSource?: string;

  /**
   * The `detail-type` emitted when the billing system reports a successful payment.
   * @default 'sbt_aws_billingSuccess'
   */
  readonly billingSuccess?: string;

  /**
   * The `detail-type` emitted when the billing system reports a failed payment.
   * @default 'sbt_aws_billingFailure'
   */
  readonly billingFailure?: string;

  /**
   * The `detail-type` emitted when a tenant's subscription in the billing system
   * enters a status that stops or endangers billing (Stripe: `incomplete_expired`,
   * `past_due`, `unpaid`, `canceled`), or its customer is deleted. The sbt-aws
   * control plane defines no such event: this one is this library's own.
   *
   * Its `detail`: `tenantId`, `provider` (`'stripe'`), `subscriptionId`,
   * `customerId`, `status` (the new status, or `customer_deleted`),
   * `previousStatus` (when known), `reason`, `occurredAt` (ISO time of the
   * billing system's event), `eventId` (the billing system's event id),
   * `webhookType`. See `docs/stripe-billing.md`.
   *
   * `MarketplaceBilling` emits it too, with `provider: 'marketplace'` and a `status` of
   * `CONFIRMED`, `FAILED`, `CANCELLATION_PENDING`, `CANCELLED` or `ENTITLEMENT_CHANGED`
   * (see `docs/marketplace-billing.md`).
   * @default 'cdk_saas_billing_subscriptionChanged'
   */
  readonly billingSubscriptionChanged?: string;

  /**
   * The `detail-type` of a request to change a tenant's plan, which `BillingPlans`
   * listens to (source: the control plane `source`). The sbt-aws control plane
   * emits no event when a tenant's tier changes (its tenant update is an API call
   * that puts nothing on the bus), so this one is this library's own.
   *
   * Its `detail`: `tenantId` and the new plan's name in the plan field
   * (`BillingPlans`' `planField`, SBT's `tier` by default). See `docs/plans-and-limits.md`.
   * @default 'cdk_saas_billing_planChangeRequest'
   */
  readonly planChangeRequest?: string;

  /**
   * The `detail-type` `BillingPlans` emits once it has recorded a tenant's plan
   * (at its onboarding, at a plan change, and at its offboarding); the providers
   * (`changePlanFunction`) and `Entitlements` react to it. This library's own event.
   *
   * Its `detail`: `tenantId`, `plan` (absent once offboarded), `previousPlan`,
   * `effectiveAt` (ISO-8601: when the plan took effect), `reason`
   * (`ONBOARDING`, `CHANGE` or `OFFBOARDING`), `version`, `requestEventId`.
   * @default 'cdk_saas_billing_planChanged'
   */
  readonly planChanged?: string;

  /**
   * The `detail-type` `BillingPlans` emits when it refuses a plan: a plan change
   * for an unknown plan, an unknown or offboarded tenant, or an onboarding that
   * names no known plan while there is no default plan. This library's own event.
   *
   * Its `detail`: `tenantId`, `requestedPlan`, `reason` (`UNKNOWN_PLAN`,
   * `UNKNOWN_TENANT`, `TENANT_OFFBOARDED`, `NO_PLAN`), `message`, `requestEventId`,
   * `requestDetailType`.
   * @default 'cdk_saas_billing_planChangeFailure'
   */
  readonly planChangeFailure?: string;
}

/**
 * The control plane's event contract: which events create and delete customers
 * and users, and which events billing emits.
 *
 * `ControlPlaneEvents.SBT_AWS` matches the SaaS Builder Toolkit for AWS control
 * plane as it emits events today (source `sbt.control.plane`, detail types
 * prefixed `sbt_aws_`). `ControlPlaneEvents.SBT_AWS_LEGACY` matches releases of
 * sbt-aws that emitted unprefixed detail types (`onboardingRequest`, ...).
 * `new ControlPlaneEvents({...})` describes any other control plane.
 */
export class ControlPlaneEvents {
  /** The default `source` of sbt-aws control plane events. */
  public static readonly DEFAULT_SOURCE = 'sbt.control.plane';

  /** The default `detail-type` of the subscription changed event (this library's own, not an sbt-aws event). */
  public static readonly DEFAULT_SUBSCRIPTION_CHANGED_DETAIL_TYPE = 'cdk_saas_billing_subscriptionChanged';

  /** The default `detail-type` of a plan change request (this library's own: sbt-aws emits none when a tier changes). */
  public static readonly DEFAULT_PLAN_CHANGE_REQUEST_DETAIL_TYPE = 'cdk_saas_billing_planChangeRequest';

  /** The default `detail-type` of the event `BillingPlans` emits once it recorded a tenant's plan. */
  public static readonly DEFAULT_PLAN_CHANGED_DETAIL_TYPE = 'cdk_saas_billing_planChanged';

  /** The default `detail-type` of the event `BillingPlans` emits when it refuses a plan. */
  public static readonly DEFAULT_PLAN_CHANGE_FAILURE_DETAIL_TYPE = 'cdk_saas_billing_planChangeFailure';

  /** The events of the sbt-aws control plane as it emits them today. */
  public static readonly SBT_AWS = new ControlPlaneEvents();

  /** The events of sbt-aws releases that used unprefixed detail types (`onboardingRequest`, ...). */
  public static readonly SBT_AWS_LEGACY = new ControlPlaneEvents({
    onboardingRequest: 'onboardingRequest',
    offboardingRequest: 'offboardingRequest',
    tenantUserCreated: 'tenantUserCreated',
    tenantUserDeleted: 'tenantUserDeleted',
    billingSuccess: 'billingSuccess',
    billingFailure: 'billingFailure',
  });

  /** Triggers the create customer function by default. */
  public readonly onboardingRequest: EventDefinition;
  /** Triggers the delete customer function by default. */
  public readonly offboardingRequest: EventDefinition;
  /** Triggers the create user function by default. */
  public readonly tenantUserCreated: EventDefinition;
  /** Triggers the delete user function by default. */
  public readonly tenantUserDeleted: EventDefinition;
  /** Emitted when the billing system reports a successful payment. */
  public readonly billingSuccess: EventDefinition;
  /** Emitted when the billing system reports a failed payment. */
  public readonly billingFailure: EventDefinition;
  /**
   * Emitted when a tenant's subscription enters a status that stops or
   * endangers billing, or its customer is deleted.
   *
   * This library's own event, with the billing source.
   */
  public readonly billingSubscriptionChanged: EventDefinition;
  /** A request to change a tenant's plan: `BillingPlans` listens to it (source: the control plane source). */
  public readonly planChangeRequest: EventDefinition;
  /** Emitted by `BillingPlans` once it recorded a tenant's plan (source: the billing source). */
  public readonly planChanged: EventDefinition;
  /** Emitted by `BillingPlans` when it refuses a plan (source: the billing source). */
  public readonly planChangeFailure: EventDefinition;

  constructor(props: ControlPlaneEventsProps = {}) {
    const source = props.source ?? ControlPlaneEvents.DEFAULT_SOURCE;
    const billingSource = props.billingSource ?? source;
    this.onboardingRequest = { source, detailType: props.onboardingRequest ?? 'sbt_aws_onboardingRequest' };
    this.offboardingRequest = { source, detailType: props.offboardingRequest ?? 'sbt_aws_offboardingRequest' };
    this.tenantUserCreated = { source, detailType: props.tenantUserCreated ?? 'sbt_aws_tenantUserCreated' };
    this.tenantUserDeleted = { source, detailType: props.tenantUserDeleted ?? 'sbt_aws_tenantUserDeleted' };
    this.billingSuccess = { source: billingSource, detailType: props.billingSuccess ?? 'sbt_aws_billingSuccess' };
    this.billingFailure = { source: billingSource, detailType: props.billingFailure ?? 'sbt_aws_billingFailure' };
    this.billingSubscriptionChanged = {
      source: billingSource,
      detailType: props.billingSubscriptionChanged ?? ControlPlaneEvents.DEFAULT_SUBSCRIPTION_CHANGED_DETAIL_TYPE,
    };
    this.planChangeRequest = { source, detailType: props.planChangeRequest ?? ControlPlaneEvents.DEFAULT_PLAN_CHANGE_REQUEST_DETAIL_TYPE };
    this.planChanged = { source: billingSource, detailType: props.planChanged ?? ControlPlaneEvents.DEFAULT_PLAN_CHANGED_DETAIL_TYPE };
    this.planChangeFailure = {
      source: billingSource,
      detailType: props.planChangeFailure ?? ControlPlaneEvents.DEFAULT_PLAN_CHANGE_FAILURE_DETAIL_TYPE,
    };
  }
}
