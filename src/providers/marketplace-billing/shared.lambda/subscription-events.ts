/**
 * The subscription changed events `MarketplaceBilling` emits (`ControlPlaneEvents.billingSubscriptionChanged`,
 * `provider: 'marketplace'`, a `status` of `MARKETPLACE_SUBSCRIPTION_STATUS`).
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { sdkClient } from '../../../shared.lambda/aws-clients';
import { requiredEnv } from '../../../shared.lambda/env';
import { MARKETPLACE_ENV as E, MARKETPLACE_SUBSCRIPTION_STATUS } from '../contract';

/** A status of the subscription changed event. */
export type SubscriptionStatus = keyof typeof MARKETPLACE_SUBSCRIPTION_STATUS;

/** The detail of one subscription changed event. */
export interface SubscriptionChange {
  readonly status: SubscriptionStatus;
  /** The tenant, when one is linked to the license. */
  readonly tenantId?: string;
  readonly registrationId?: string;
  readonly licenseArn?: string;
  readonly customerAWSAccountId?: string;
  readonly agreementId?: string;
  readonly previousStatus?: string;
  readonly reason: string;
  /** ISO time of the Marketplace event (or of the refusal). */
  readonly occurredAt: string;
  /** The Marketplace event's id, or the control plane event's. */
  readonly eventId?: string;
  /** The Marketplace detail-type, when a Marketplace event caused it. */
  readonly marketplaceEvent?: string;
}

/** Puts the events on the bus; throws when EventBridge refuses one (the caller is retried). */
export async function emitSubscriptionChanges(changes: readonly SubscriptionChange[]): Promise<void> {
  if (changes.length === 0) return;
  const entries = changes.map((c) => ({
    EventBusName: requiredEnv(E.EVENT_BUS_ARN),
    Source: requiredEnv(E.SUBSCRIPTION_CHANGED_SOURCE),
    DetailType: requiredEnv(E.SUBSCRIPTION_CHANGED_DETAIL_TYPE),
    Detail: JSON.stringify({ provider: 'marketplace', ...c }),
  }));
  const out = await sdkClient(EventBridgeClient).send(new PutEventsCommand({ Entries: entries }));
  if ((out.FailedEntryCount ?? 0) > 0) {
    const first = out.Entries?.find((e) => e.ErrorCode);
    throw new Error(`EventBridge refused ${out.FailedEntryCount} subscription changed event(s): ${first?.ErrorCode} ${first?.ErrorMessage}`);
  }
}
