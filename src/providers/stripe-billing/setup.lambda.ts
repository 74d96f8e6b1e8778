import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import type Stripe from 'stripe';
import { MANAGED_BY, STRIPE_ENV, STRIPE_METADATA, STRIPE_SETUP_ATTRIBUTES, STRIPE_SETUP_PROPERTIES as P } from './contract';
import { stripeCall } from './shared.lambda/stripe-client';
import { sdkClient } from '../../shared.lambda/aws-clients';
import { requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/** A meter the props declare. */
interface DeclaredMeter {
  readonly eventName: string;
  readonly displayName: string;
}

/** What the custom resource asks for. */
interface SetupProps {
  readonly setupId: string;
  readonly meters: DeclaredMeter[];
  readonly webhookUrl?: string;
  readonly webhookEvents: string[];
  readonly apiVersion: string;
}

function propsOf(raw: Record<string, unknown> | undefined): SetupProps {
  const r = raw ?? {};
  return {
    setupId: String(r[P.SETUP_ID]),
    meters: JSON.parse(String(r[P.METERS] ?? '[]')),
    webhookUrl: typeof r[P.WEBHOOK_URL] === 'string' && r[P.WEBHOOK_URL] !== '' ? String(r[P.WEBHOOK_URL]) : undefined,
    webhookEvents: JSON.parse(String(r[P.WEBHOOK_EVENTS] ?? '[]')),
    apiVersion: String(r[P.API_VERSION]),
  };
}

async function allMeters(): Promise<Stripe.Billing.Meter[]> {
  const meters: Stripe.Billing.Meter[] = [];
  let startingAfter: string | undefined;
  for (;;) {
    const page = await stripeCall((s) => s.billing.meters.list({ limit: 100, ...(startingAfter ? { starting_after: startingAfter } : {}) }));
    meters.push(...page.data);
    if (!page.has_more || page.data.length === 0) return meters;
    startingAfter = page.data[page.data.length - 1].id;
  }
}

/**
 * Creates the declared meters that do not exist, reactivates inactive ones,
 * renames changed ones; refuses a meter that exists with settings the push
 * cannot feed (not a sum, other payload keys). Returns event name -> meter id.
 */
async function ensureMeters(declared: DeclaredMeter[], requestId: string): Promise<Record<string, string>> {
  const existing = await allMeters();
  const ids: Record<string, string> = {};
  for (const m of declared) {
    const same = existing.filter((x) => x.event_name === m.eventName);
    let meter = same.find((x) => x.status === 'active') ?? same.find((x) => x.status === 'inactive');
    if (!meter) {
      meter = await stripeCall((s) => s.billing.meters.create({
        display_name: m.displayName,
        event_name: m.eventName,
        default_aggregation: { formula: 'sum' },
        customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
        value_settings: { event_payload_key: 'value' },
      }, { idempotencyKey: `${requestId}-meter-${m.eventName}` }));
      logger.info('Meter created', { eventName: m.eventName, meterId: meter.id });
    } else {
      const problems = [
        meter.default_aggregation?.formula !== 'sum' ? `aggregates by ${meter.default_aggregation?.formula}, not sum` : '',
        meter.customer_mapping?.event_payload_key !== 'stripe_customer_id' ? `maps customers by '${meter.customer_mapping?.event_payload_key}', not 'stripe_customer_id'` : '',
        meter.value_settings?.event_payload_key !== 'value' ? `reads its value from '${meter.value_settings?.event_payload_key}', not 'value'` : '',
      ].filter(Boolean);
      if (problems.length) {
        throw new Error(`Stripe meter ${meter.id} (event name '${m.eventName}') exists but ${problems.join(' and ')}: the usage push sends window sums `
          + 'with payload keys stripe_customer_id and value. Choose another event name for this metric, or deactivate that meter in Stripe.');
      }
      const id = meter.id;
      if (meter.status === 'inactive') meter = await stripeCall((s) => s.billing.meters.reactivate(id));
      if (meter.display_name !== m.displayName) meter = await stripeCall((s) => s.billing.meters.update(id, { display_name: m.displayName }));
    }
    ids[m.eventName] = meter.id;
  }
  return ids;
}

async function deactivateMeters(eventNames: string[]): Promise<void> {
  if (eventNames.length === 0) return;
  for (const meter of await allMeters()) {
    if (meter.status === 'active' && eventNames.includes(meter.event_name)) {
      await stripeCall((s) => s.billing.meters.deactivate(meter.id));
      logger.info('Meter deactivated', { eventName: meter.event_name, meterId: meter.id });
    }
  }
}

async function ourEndpoints(setupId: string): Promise<Stripe.WebhookEndpoint[]> {
  const list = await stripeCall((s) => s.webhookEndpoints.list({ limit: 100 }));
  return list.data.filter((e) => e.metadata?.[STRIPE_METADATA.SETUP_ID] === setupId);
}

/** The endpoint id the stored signing secret belongs to (the setup stores `{"current", "endpointId"}`). */
async function storedEndpointId(secretArn: string): Promise<string | undefined> {
  const value = await sdkClient(SecretsManagerClient).send(new GetSecretValueCommand({ SecretId: secretArn }));
  try {
    const parsed = JSON.parse(value.SecretString ?? '') as { endpointId?: unknown };
    return typeof parsed.endpointId === 'string' ? parsed.endpointId : undefined;
  } catch {
    return undefined;
  }
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/**
 * Makes Stripe hold exactly one endpoint of this setup, for the URL and event
 * types asked, whose signing secret is the one stored. An endpoint is updated
 * in place when it can be (URL, events); it is created anew (and the stale one
 * deleted) when it is missing, its API version differs, or the stored secret
 * is not its own (Stripe returns an endpoint's secret only when creating it).
 */
async function ensureEndpoint(p: SetupProps, url: string, requestId: string): Promise<string> {
  const secretArn = requiredEnv(STRIPE_ENV.WEBHOOK_SECRET_ARN);
  const ours = await ourEndpoints(p.setupId);
  const storedId = await storedEndpointId(secretArn);
  let keep = ours.find((e) => e.id === storedId && e.api_version === p.apiVersion);
  if (keep && (keep.url !== url || !sameSet(keep.enabled_events, p.webhookEvents))) {
    const id = keep.id;
    const enabledEvents = p.webhookEvents as Stripe.WebhookEndpointUpdateParams.EnabledEvent[];
    keep = await stripeCall((s) => s.webhookEndpoints.update(id, { url, enabled_events: enabledEvents }));
    logger.info('Webhook endpoint updated', { endpointId: id });
  }
  if (!keep) {
    const created = await stripeCall((s) => s.webhookEndpoints.create({
      url,
      enabled_events: p.webhookEvents as Stripe.WebhookEndpointCreateParams.EnabledEvent[],
      api_version: p.apiVersion as Stripe.WebhookEndpointCreateParams.ApiVersion,
      description: `cdk-saas-billing ${p.setupId}`,
      metadata: { [STRIPE_METADATA.SETUP_ID]: p.setupId, [STRIPE_METADATA.MANAGED_BY]: MANAGED_BY },
    }, { idempotencyKey: `${requestId}-endpoint` }));
    if (!created.secret) throw new Error(`Stripe created webhook endpoint ${created.id} without returning its signing secret`);
    await sdkClient(SecretsManagerClient).send(new PutSecretValueCommand({
      SecretId: secretArn,
      SecretString: JSON.stringify({ current: created.secret, endpointId: created.id }),
    }));
    logger.info('Webhook endpoint created; its signing secret is stored', { endpointId: created.id });
    keep = created;
  }
  for (const stale of ours.filter((e) => e.id !== keep!.id)) await deleteEndpoint(stale.id);
  return keep.id;
}

async function deleteEndpoint(id: string): Promise<void> {
  try {
    await stripeCall((s) => s.webhookEndpoints.del(id));
    logger.info('Webhook endpoint deleted', { endpointId: id });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
}

/** What the custom resource answers. */
export interface SetupResult {
  readonly PhysicalResourceId: string;
  readonly Data: Record<string, string>;
}

/** Applies one custom resource request to Stripe. */
export async function applySetup(event: CloudFormationCustomResourceEvent): Promise<SetupResult> {
  const p = propsOf(event.ResourceProperties);
  if (event.RequestType === 'Delete') {
    // Only this setup's own resources: a Delete for another physical id (a failed create) touches nothing.
    if (event.PhysicalResourceId === p.setupId) {
      await deactivateMeters(p.meters.map((m) => m.eventName));
      for (const endpoint of await ourEndpoints(p.setupId)) await deleteEndpoint(endpoint.id);
    }
    return { PhysicalResourceId: event.PhysicalResourceId, Data: {} };
  }
  const meterIds = await ensureMeters(p.meters, event.RequestId);
  if (event.RequestType === 'Update') {
    const old = propsOf(event.OldResourceProperties);
    await deactivateMeters(old.meters.map((m) => m.eventName).filter((n) => !p.meters.some((m) => m.eventName === n)));
  }
  const endpointId = p.webhookUrl ? await ensureEndpoint(p, p.webhookUrl, event.RequestId) : '';
  if (!p.webhookUrl) for (const endpoint of await ourEndpoints(p.setupId)) await deleteEndpoint(endpoint.id);
  return {
    PhysicalResourceId: p.setupId,
    Data: { [STRIPE_SETUP_ATTRIBUTES.WEBHOOK_ENDPOINT_ID]: endpointId, [STRIPE_SETUP_ATTRIBUTES.METER_IDS]: JSON.stringify(meterIds) },
  };
}

async function respond(event: CloudFormationCustomResourceEvent, status: 'SUCCESS' | 'FAILED', result: Partial<SetupResult>, reason?: string) {
  const body = JSON.stringify({
    Status: status,
    Reason: (reason ?? 'See the function\'s log').slice(0, 3000),
    PhysicalResourceId: result.PhysicalResourceId ?? (event.RequestType === 'Create' ? `failed-${event.RequestId}` : event.PhysicalResourceId),
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    Data: result.Data ?? {},
  });
  const res = await fetch(event.ResponseURL, { method: 'PUT', body, headers: { 'content-type': '' } });
  if (!res.ok) throw new Error(`CloudFormation refused the custom resource response: HTTP ${res.status}`);
}

/**
 * The Stripe setup custom resource: the meters the props declare and the
 * webhook endpoint for the route's URL, made to exist in Stripe on create and
 * update (idempotently: an update that changes nothing writes nothing in
 * Stripe); on delete the meters are deactivated (Stripe keeps meters and their
 * history; a deactivated meter accepts no events) and the endpoint is deleted.
 * Answers CloudFormation itself, also when its time runs out.
 */
export const handler = async (event: CloudFormationCustomResourceEvent, context?: Context): Promise<void> => {
  logger.resetKeys();
  logger.appendKeys({ requestType: event.RequestType, logicalResourceId: event.LogicalResourceId });
  let answered = false;
  const answer = async (status: 'SUCCESS' | 'FAILED', result: Partial<SetupResult>, reason?: string) => {
    if (answered) return;
    answered = true;
    await respond(event, status, result, reason);
  };
  const deadline = context ? setTimeout(() => {
    void answer('FAILED', {}, 'The Stripe setup ran out of time (Stripe unavailable?); see the function\'s log').catch(() => undefined);
  }, Math.max(1000, context.getRemainingTimeInMillis() - 10_000)) : undefined;
  try {
    const result = await applySetup(event);
    await answer('SUCCESS', result);
  } catch (error) {
    logger.error('Stripe setup failed', { error: (error as Error).message });
    await answer('FAILED', {}, `Stripe setup failed: ${(error as Error).message}`);
  } finally {
    if (deadline) clearTimeout(deadline);
  }
};
