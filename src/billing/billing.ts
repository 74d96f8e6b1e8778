import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { ControlPlaneEvents, EventDefinition } from '../events/event-definition';
import { IDataIngestorAggregator } from '../ingestor/ingestor';

/**
 * A function that the billing provider invokes asynchronously when an event
 * arrives on the bus.
 *
 * The function receives the EventBridge event (`detail` holds the control
 * plane's fields, for example `tenantId`). Its return value is ignored. A throw
 * makes Lambda retry it twice; then the event goes to the provider's dead-letter
 * queue for the slot (unless the function already has an on-failure destination)
 * and that queue's alarm fires. Delivery is at least once: the function must be
 * idempotent.
 *
 * A data shape: in Python pass keyword arguments, in Java use the builder,
 * in Go a struct literal.
 *
 * @struct
 */
export interface IASyncFunction {
  /**
   * The function to invoke. It receives the EventBridge event as its payload.
   */
  readonly handler: lambda.IFunction;

  /**
   * The event that invokes the function, replacing the default event of the
   * slot this function fills in `IBilling`.
   * @default - the slot's default event (see `IBilling`)
   */
  readonly trigger?: EventDefinition;
}

/**
 * A function that the billing provider invokes on a schedule.
 *
 * The function receives EventBridge's scheduled event; its return value is
 * ignored and a throw is handled as for `IASyncFunction`. When `IBilling.ingestor`
 * is set, the provider binds the function to the ingestor's usage read contract
 * (read access, and the environment its runtime reader needs). The schedule's
 * rule is on the account's default bus, whatever bus the lifecycle rules use
 * (EventBridge runs schedules on the default bus only).
 *
 * @struct
 */
export interface IFunctionSchedule {
  /**
   * The function to invoke. It receives the scheduled EventBridge event as its payload.
   */
  readonly handler: lambda.IFunction;

  /**
   * When to invoke the function. A rate must be at least one minute.
   * @default - every 24 hours (`Schedule.rate(Duration.hours(24))`)
   */
  readonly schedule?: events.Schedule;
}

/**
 * A function that the billing provider mounts as `POST /billing/<path>` on an HTTP API.
 *
 * The function receives the API Gateway HTTP API request (payload format 2.0);
 * its return value is the HTTP response. A throw is answered with HTTP 500, and a
 * billing system retries the call.
 *
 * @struct
 */
export interface IFunctionPath {
  /**
   * The path segment under `/billing/`: letters, digits and `-._~`
   * (for example `webhook` mounts `POST /billing/webhook`). Several segments may be
   * joined by single slashes (`stripe/events`); no leading, trailing or double slash.
   */
  readonly path: string;

  /**
   * The function that answers the request (API Gateway HTTP API payload format 2.0).
   */
  readonly handler: lambda.IFunction;
}

/**
 * The contract a billing integration fulfils: the functions that create and
 * delete customers and users in the billing system, the usage ingestor, the
 * scheduled usage push and the billing system's webhook.
 *
 * A data shape: in Python pass keyword arguments, in Java use the builder,
 * in Go a struct literal; in TypeScript any object (a construct included)
 * that has these members.
 *
 * @struct
 */
export interface IBilling {
  /**
   * Creates the customer for a tenant in the billing system.
   *
   * Default trigger: the control plane's onboarding request
   * (`sbt.control.plane` / `sbt_aws_onboardingRequest`).
   */
  readonly createCustomerFunction: IASyncFunction;

  /**
   * Deletes (closes) the customer of a tenant in the billing system.
   *
   * Default trigger: the control plane's offboarding request
   * (`sbt.control.plane` / `sbt_aws_offboardingRequest`).
   */
  readonly deleteCustomerFunction: IASyncFunction;

  /**
   * Creates a user under its tenant's customer in the billing system.
   *
   * Default trigger: the control plane's tenant user created event
   * (`sbt.control.plane` / `sbt_aws_tenantUserCreated`).
   * @default - users are not sent to the billing system
   */
  readonly createUserFunction?: IASyncFunction;

  /**
   * Deletes a user from its tenant's customer in the billing system.
   *
   * Default trigger: the control plane's tenant user deleted event
   * (`sbt.control.plane` / `sbt_aws_tenantUserDeleted`).
   * @default - users are not removed from the billing system
   */
  readonly deleteUserFunction?: IASyncFunction;

  /**
   * Applies a tenant's plan change in the billing system (for Stripe: swaps the
   * subscription's items to the new plan's prices).
   *
   * Default trigger: `BillingPlans`' plan changed event
   * (`sbt.control.plane` / `cdk_saas_billing_planChanged`).
   * @default - plan changes are not sent to the billing system
   */
  readonly changePlanFunction?: IASyncFunction;

  /**
   * The usage ingestor: the data stream producers write usage to, and the usage
   * the push reads through its read contract.
   * @default - no usage ingestion
   */
  readonly ingestor?: IDataIngestorAggregator;

  /**
   * Pushes aggregated usage to the billing system on a schedule.
   * @default - usage is not pushed; when set, its schedule defaults to every 24 hours
   */
  readonly putUsageFunction?: IFunctionSchedule;

  /**
   * Receives the billing system's webhook calls on `POST /billing/<path>`.
   * Requires `BillingProviderProps.httpApi`.
   * @default - no webhook
   */
  readonly webhookFunction?: IFunctionPath;

  /**
   * The bus this billing's own functions (its webhook) put events on.
   * `BillingProvider` refuses a billing whose bus differs from its own
   * `eventBus`, so that the control plane hears the billing events on the bus
   * its rules listen to. `StripeBilling` and `DynamoDbBilling` set it.
   * @default - not declared: not checked
   */
  readonly eventBus?: events.IEventBus;

  /**
   * The event names this billing's own functions emit (and the triggers it was
   * built for). `BillingProvider` refuses a billing whose names differ from its
   * own `controlPlaneEvents`. `StripeBilling` and `DynamoDbBilling` set it.
   * @default - not declared: not checked
   */
  readonly controlPlaneEvents?: ControlPlaneEvents;
}
