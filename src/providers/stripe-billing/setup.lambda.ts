import { createHash } from 'node:crypto';
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import type Stripe from 'stripe';
import {
  MANAGED_BY, SIGNING_SECRET_OVERLAP_HOURS, STRIPE_ENV, STRIPE_METADATA as MD, STRIPE_SETUP_ATTRIBUTES,
  STRIPE_SETUP_PROPERTIES as P, STRIPE_SETUP_SWEEP,
} from './contract';
import { stripeCall } from './shared.lambda/stripe-client';
import { sdkClient } from '../../shared.lambda/aws-clients';
import { requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/*
 * The state the setup keeps, and where:
 *
 * - In Stripe, on each webhook endpoint it manages (metadata: https://docs.stripe.com/api/metadata, 50 keys
 *   of at most 40 characters, values of at most 500): its setup id, stack, rotation label, the meters the
 *   setup uses and the meters it owns. Billing meters have no metadata field
 *   (https://docs.stripe.com/api/billing/meter/object), so the endpoint is where ownership lives; every
 *   installation on the account can read every other's, so none deactivates a meter another still uses.
 * - In the signing secret (JSON): `current` and `endpointId`, and during a rotation's overlap `previous`,
 *   `previousEndpointId` and `previousUntil` (ISO). The webhook verifies with `current` and `previous`.
 */

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
  /** The rotation label ('' when none is set). */
  readonly rotation: string;
}

function propsOf(raw: Record<string, unknown> | undefined): SetupProps {
  const r = raw ?? {};
  return {
    setupId: String(r[P.SETUP_ID]),
    meters: JSON.parse(String(r[P.METERS] ?? '[]')),
    webhookUrl: typeof r[P.WEBHOOK_URL] === 'string' && r[P.WEBHOOK_URL] !== '' ? String(r[P.WEBHOOK_URL]) : undefined,
    webhookEvents: JSON.parse(String(r[P.WEBHOOK_EVENTS] ?? '[]')),
    apiVersion: String(r[P.API_VERSION]),
    rotation: typeof r[P.SIGNING_SECRET_ROTATION] === 'string' ? String(r[P.SIGNING_SECRET_ROTATION]) : '',
  };
}

const OVERLAP_MS = SIGNING_SECRET_OVERLAP_HOURS * 3600_000;
/** Metadata values hold at most 500 characters (https://docs.stripe.com/api/metadata). */
const MAX_METADATA_VALUE = 500;
/** Keys per id list: 2 lists x 20 + 5 other keys stay within Stripe's 50 keys. */
const MAX_CHUNKS = 20;

// ---------------------------------------------------------------- Stripe reads

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

/** Every webhook endpoint of the account that a cdk-saas-billing setup manages (any installation). */
async function managedEndpoints(): Promise<Stripe.WebhookEndpoint[]> {
  const endpoints: Stripe.WebhookEndpoint[] = [];
  let startingAfter: string | undefined;
  for (;;) {
    const page = await stripeCall((s) => s.webhookEndpoints.list({ limit: 100, ...(startingAfter ? { starting_after: startingAfter } : {}) }));
    endpoints.push(...page.data);
    if (!page.has_more || page.data.length === 0) break;
    startingAfter = page.data[page.data.length - 1].id;
  }
  return endpoints.filter((e) => e.metadata?.[MD.MANAGED_BY] === MANAGED_BY && typeof e.metadata?.[MD.SETUP_ID] === 'string');
}

const setupOf = (e: Stripe.WebhookEndpoint) => e.metadata?.[MD.SETUP_ID];

// ---------------------------------------------------------------- id lists in metadata

/** The ids an endpoint lists under `prefix` (`prefix`, `prefix1`, ...). */
function idsOf(e: Stripe.WebhookEndpoint, prefix: string): string[] {
  const ids: string[] = [];
  for (let i = 0; i < MAX_CHUNKS; i++) {
    const value = e.metadata?.[i === 0 ? prefix : `${prefix}${i}`];
    if (value) ids.push(...value.split(',').filter(Boolean));
  }
  return ids;
}

function union(endpoints: Stripe.WebhookEndpoint[], prefix: string): Set<string> {
  return new Set(endpoints.flatMap((e) => idsOf(e, prefix)));
}

/** `ids` as metadata under `prefix`, in chunks of at most 500 characters; unused chunk keys set to '' (unset). */
function idsMetadata(prefix: string, ids: Iterable<string>): Record<string, string> {
  const chunks: string[] = [];
  for (const id of [...ids].sort()) {
    const last = chunks.length - 1;
    if (last >= 0 && chunks[last].length + 1 + id.length <= MAX_METADATA_VALUE) chunks[last] += `,${id}`;
    else chunks.push(id);
  }
  if (chunks.length > MAX_CHUNKS) throw new Error(`Too many meters to record on the webhook endpoint (${chunks.length} metadata values of ${MAX_CHUNKS})`);
  const out: Record<string, string> = {};
  for (let i = 0; i < MAX_CHUNKS; i++) out[i === 0 ? prefix : `${prefix}${i}`] = chunks[i] ?? '';
  return out;
}

/** The metadata changes that make `e` hold `wanted` ('' unsets a key: https://docs.stripe.com/metadata). */
function metadataChanges(e: Stripe.WebhookEndpoint | undefined, wanted: Record<string, string>): Record<string, string> {
  const changes: Record<string, string> = {};
  for (const [k, v] of Object.entries(wanted)) {
    const now = e?.metadata?.[k] ?? '';
    if (now !== v && !(v === '' && e === undefined)) changes[k] = v;
  }
  return changes;
}

// ---------------------------------------------------------------- meters

/**
 * Why an existing meter would miscount what the push sends (raw events whose
 * values are summed per customer, payload keys stripe_customer_id and value);
 * empty when it fits. Meters cannot be changed except their display name
 * (https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage).
 */
function meterProblems(meter: Stripe.Billing.Meter): string[] {
  const formula = meter.default_aggregation?.formula;
  const window = meter.event_time_window;
  const mapping = meter.customer_mapping;
  return [
    formula !== 'sum' ? `aggregates by ${formula}, not sum (${formula === 'count' ? 'it would count events, not add their values'
      : formula === 'last' ? 'it would keep the last value, not add them' : 'it would not add the values sent'})` : '',
    // Pre-aggregated meters keep only the most recent event of each hour or day:
    // https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage#event-ingestion
    window ? `is pre-aggregated per ${window} (event_time_window '${window}'): Stripe keeps only the most recent event of each ${window} and customer, `
      + `so a second event in the same ${window} (another window, a correction, a carried remainder) would replace the first instead of adding to it` : '',
    mapping?.type !== 'by_id' || mapping?.event_payload_key !== 'stripe_customer_id'
      ? `maps customers by ${mapping?.type} '${mapping?.event_payload_key}', not by_id 'stripe_customer_id'` : '',
    meter.value_settings?.event_payload_key !== 'value' ? `reads its value from '${meter.value_settings?.event_payload_key}', not 'value'` : '',
  ].filter(Boolean);
}

/** The meters of this setup: event name -> id, and the ids this setup owns (made active). */
interface MeterState {
  readonly ids: Record<string, string>;
  readonly owned: Set<string>;
}

/**
 * Creates the declared meters that do not exist, reactivates inactive ones,
 * renames changed ones; refuses a meter that exists with settings that would
 * miscount. A meter this setup creates or reactivates is owned (Delete may
 * deactivate it again); one it finds active is owned only when this setup, or
 * another setup of the same stack (a replacement), owned it before.
 */
async function ensureMeters(declared: DeclaredMeter[], requestId: string, ownedBefore: Set<string>): Promise<MeterState> {
  const existing = await allMeters();
  const ids: Record<string, string> = {};
  const owned = new Set<string>();
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
      owned.add(meter.id);
    } else {
      const problems = meterProblems(meter);
      if (problems.length) {
        throw new Error(`Stripe meter ${meter.id} (event name '${m.eventName}') exists but ${problems.join('; and ')}. The usage push sends raw events `
          + 'whose values must be summed, with payload keys stripe_customer_id and value, and a meter cannot be changed (except its display name). '
          + 'Choose another event name for this metric, or deactivate that meter in Stripe.');
      }
      const id = meter.id;
      if (meter.status === 'inactive') {
        meter = await stripeCall((s) => s.billing.meters.reactivate(id));
        logger.info('Meter reactivated', { eventName: m.eventName, meterId: id });
        owned.add(id);
      } else if (ownedBefore.has(id)) {
        owned.add(id);
      } else {
        logger.info('Meter adopted (not created by this stack: never deactivated by it)', { eventName: m.eventName, meterId: id });
      }
      if (meter.display_name !== m.displayName) meter = await stripeCall((s) => s.billing.meters.update(id, { display_name: m.displayName }));
    }
    ids[m.eventName] = meter.id;
  }
  return { ids, owned };
}

/** Deactivates the active meters among `ids` (Stripe keeps them and their history; an inactive meter accepts no events). */
async function deactivateMeters(ids: Set<string>): Promise<void> {
  if (ids.size === 0) return;
  for (const meter of await allMeters()) {
    if (meter.status === 'active' && ids.has(meter.id)) {
      await stripeCall((s) => s.billing.meters.deactivate(meter.id));
      logger.info('Meter deactivated', { eventName: meter.event_name, meterId: meter.id });
    }
  }
}

// ---------------------------------------------------------------- the signing secret

/** What the signing secret holds (the webhook reads `current` and `previous`). */
interface StoredSecret {
  readonly current?: string;
  readonly endpointId?: string;
  readonly previous?: string;
  readonly previousEndpointId?: string;
  /** ISO time after which the previous endpoint is removed. */
  readonly previousUntil?: string;
}

async function readSecret(arn: string): Promise<{ value: StoredSecret; versionId?: string }> {
  const res = await sdkClient(SecretsManagerClient).send(new GetSecretValueCommand({ SecretId: arn }));
  let value: StoredSecret = {};
  try {
    const parsed = JSON.parse(res.SecretString ?? '') as Record<string, unknown>;
    if (parsed && typeof parsed === 'object') {
      const str = (k: string) => (typeof parsed[k] === 'string' && parsed[k] !== '' ? String(parsed[k]) : undefined);
      value = { current: str('current'), endpointId: str('endpointId'), previous: str('previous'), previousEndpointId: str('previousEndpointId'), previousUntil: str('previousUntil') };
    }
  } catch {
    value = {}; // a placeholder, or a plain secret put by hand: not an endpoint's of this setup
  }
  return { value, versionId: res.VersionId };
}

const secretJson = (v: StoredSecret) => JSON.stringify(Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined)));

/**
 * Stores `value` as the version that follows `baseVersionId`, the version it
 * was computed from: the new version's id (`ClientRequestToken`) is derived
 * from the base, and Secrets Manager refuses a token already used with other
 * content (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html).
 * So of two runs that read the same version, the second to write fails
 * instead of undoing the first: a compare-and-set. False when it lost.
 */
async function putSecretAfter(arn: string, value: StoredSecret, baseVersionId: string | undefined): Promise<boolean> {
  const hash = createHash('sha256').update(`cdk-saas-billing:${baseVersionId ?? ''}`).digest('hex');
  const token = `${hash.slice(0, 8)}-${hash.slice(8, 12)}-${hash.slice(12, 16)}-${hash.slice(16, 20)}-${hash.slice(20, 32)}`;
  try {
    const put = new PutSecretValueCommand({ SecretId: arn, SecretString: secretJson(value), ClientRequestToken: token });
    await sdkClient(SecretsManagerClient).send(put);
    return true;
  } catch (error) {
    if ((error as Error).name === 'ResourceExistsException') return false;
    throw error;
  }
}

// ---------------------------------------------------------------- the webhook endpoint

async function deleteEndpoint(id: string, why: string): Promise<void> {
  try {
    await stripeCall((s) => s.webhookEndpoints.del(id));
    logger.info('Webhook endpoint deleted', { endpointId: id, why });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** Brings an endpoint's URL, event types and metadata to what is asked; writes nothing when they are. */
async function reconcileEndpoint(e: Stripe.WebhookEndpoint, url: string, events: string[], metadata: Record<string, string>): Promise<void> {
  const changes = metadataChanges(e, metadata);
  const params: Stripe.WebhookEndpointUpdateParams = {
    ...(e.url !== url ? { url } : {}),
    ...(!sameSet(e.enabled_events, events) ? { enabled_events: events as Stripe.WebhookEndpointUpdateParams.EnabledEvent[] } : {}),
    ...(Object.keys(changes).length ? { metadata: changes } : {}),
  };
  if (Object.keys(params).length === 0) return;
  await stripeCall((s) => s.webhookEndpoints.update(e.id, params));
  logger.info('Webhook endpoint updated', { endpointId: e.id, fields: Object.keys(params) });
}

/**
 * Makes Stripe hold this setup's endpoint for the URL, event types, API version
 * and rotation label asked, whose signing secret is stored as `current`:
 *
 * - the stored current endpoint fits: kept (URL, events and metadata updated in place);
 * - the label (or API version) changed: a new endpoint is created and becomes
 *   `current`; the endpoint it replaces stays, with its secret as `previous`,
 *   for `SIGNING_SECRET_OVERLAP_HOURS` (Stripe retries a failed delivery for up
 *   to 3 days, and events created before the new endpoint existed go to the old
 *   one only); the hourly sweep removes it after that. A rotation during an
 *   overlap keeps the older `previous` (it received every event the
 *   intermediate one did) for a new overlap and deletes the intermediate one;
 *   going back to the previous label (a rollback) makes `previous` current again;
 * - the stored secret is not an endpoint's of this setup (first deploy, a
 *   secret put by hand): a new endpoint is created.
 *
 * Any other endpoint of this setup is deleted: its secret is unknown, or every
 * event it received was also sent to an endpoint that is kept. The secret is
 * stored before anything is deleted.
 */
async function ensureEndpoint(p: SetupProps, url: string, ctx: { requestId: string; stackId: string; now: number },
  mine: Stripe.WebhookEndpoint[], meters: MeterState): Promise<string> {
  const secretArn = requiredEnv(STRIPE_ENV.WEBHOOK_SECRET_ARN);
  const { value: stored, versionId } = await readSecret(secretArn);
  const byId = (id?: string) => mine.find((e) => e.id === id);
  const current = stored.current ? byId(stored.endpointId) : undefined;
  const inOverlap = stored.previous !== undefined && Date.parse(stored.previousUntil ?? '') > ctx.now;
  const previous = inOverlap ? byId(stored.previousEndpointId) : undefined;
  const fits = (e: Stripe.WebhookEndpoint) => (e.metadata?.[MD.ROTATION] ?? '') === p.rotation && e.api_version === p.apiVersion;
  const shared = {
    [MD.SETUP_ID]: p.setupId,
    [MD.MANAGED_BY]: MANAGED_BY,
    [MD.STACK_ID]: ctx.stackId,
    ...idsMetadata(MD.METERS_USED, Object.values(meters.ids)),
    ...idsMetadata(MD.METERS_OWNED, meters.owned),
  };

  let keep: Stripe.WebhookEndpoint;
  let next: StoredSecret;
  if (current && fits(current)) {
    keep = current;
    next = previous ? stored : { current: stored.current, endpointId: current.id };
  } else if (current && previous && fits(previous)) {
    keep = previous;
    next = { current: stored.previous, endpointId: previous.id };
    logger.info('Back to the previous webhook endpoint (its rotation label is asked again)', { endpointId: previous.id });
  } else {
    const created = await stripeCall((s) => s.webhookEndpoints.create({
      url,
      enabled_events: p.webhookEvents as Stripe.WebhookEndpointCreateParams.EnabledEvent[],
      api_version: p.apiVersion as Stripe.WebhookEndpointCreateParams.ApiVersion,
      description: `cdk-saas-billing ${p.setupId}`,
      metadata: { ...metadataChanges(undefined, shared), ...(p.rotation ? { [MD.ROTATION]: p.rotation } : {}) },
    }, { idempotencyKey: `${ctx.requestId}-endpoint` }));
    if (!created.secret) throw new Error(`Stripe created webhook endpoint ${created.id} without returning its signing secret`);
    // The oldest endpoint whose secret is known keeps receiving its retries until the overlap ends.
    const survivor = previous ?? current;
    const survivorSecret = previous ? stored.previous : stored.current;
    keep = created;
    next = survivor
      ? {
        current: created.secret,
        endpointId: created.id,
        previous: survivorSecret,
        previousEndpointId: survivor.id,
        previousUntil: new Date(ctx.now + OVERLAP_MS).toISOString(),
      }
      : { current: created.secret, endpointId: created.id };
    logger.info('Webhook endpoint created', { endpointId: created.id, replaces: survivor?.id, previousUntil: next.previousUntil });
  }
  if (secretJson(next) !== secretJson(stored)) {
    // Only the hourly sweep can have written meanwhile, and only to drop a `previous` whose overlap is over,
    // which `next` drops too: store `next` after whatever it wrote.
    let base = versionId;
    for (let attempt = 1; !(await putSecretAfter(secretArn, next, base)); attempt++) {
      if (attempt === 3) throw new Error('The signing secret kept changing while the setup stored it');
      base = (await readSecret(secretArn)).versionId;
    }
    logger.info('Signing secret stored', { endpointId: next.endpointId, previousEndpointId: next.previousEndpointId });
  }
  for (const e of mine) {
    if (e.id !== keep.id && e.id !== next.previousEndpointId) await deleteEndpoint(e.id, 'not the current or the previous endpoint of this setup');
  }
  for (const e of [keep, byId(next.previousEndpointId)]) if (e) await reconcileEndpoint(e, url, p.webhookEvents, shared);
  return keep.id;
}

// ---------------------------------------------------------------- requests

/** What the custom resource answers. */
export interface SetupResult {
  readonly PhysicalResourceId: string;
  readonly Data: Record<string, string>;
}

/**
 * Delete: deactivates the meters this setup owns that no other live setup
 * (any installation on the account, a replacement of this one included) uses,
 * then deletes this setup's endpoints. Meters first: the ownership record is on
 * the endpoints.
 */
async function removeSetup(setupId: string): Promise<void> {
  const endpoints = await managedEndpoints();
  const mine = endpoints.filter((e) => setupOf(e) === setupId);
  const usedElsewhere = union(endpoints.filter((e) => setupOf(e) !== setupId), MD.METERS_USED);
  const owned = union(mine, MD.METERS_OWNED);
  const kept = [...owned].filter((id) => usedElsewhere.has(id));
  if (kept.length) logger.info('Meters kept active: another setup uses them', { meterIds: kept });
  await deactivateMeters(new Set([...owned].filter((id) => !usedElsewhere.has(id))));
  for (const e of mine) await deleteEndpoint(e.id, 'the setup is deleted');
}

/** Applies one custom resource request to Stripe. */
export async function applySetup(event: CloudFormationCustomResourceEvent): Promise<SetupResult> {
  const p = propsOf(event.ResourceProperties);
  if (event.RequestType === 'Delete') {
    // Only this setup's own resources: a Delete for another physical id (a failed create) touches nothing.
    if (event.PhysicalResourceId === p.setupId) await removeSetup(p.setupId);
    return { PhysicalResourceId: event.PhysicalResourceId, Data: {} };
  }
  if (!p.webhookUrl) throw new Error('The setup has no webhook URL: the endpoint is where it records what it manages');
  const now = Date.now();
  const endpoints = await managedEndpoints();
  const mine = endpoints.filter((e) => setupOf(e) === p.setupId);
  const others = endpoints.filter((e) => setupOf(e) !== p.setupId);
  const ownedBefore = union(mine, MD.METERS_OWNED);
  // A replacement (a new setup id in the same stack, created before the old one is deleted) takes over what the old one owned.
  const ownedByStack = union(others.filter((e) => e.metadata?.[MD.STACK_ID] === event.StackId), MD.METERS_OWNED);
  const meters = await ensureMeters(p.meters, event.RequestId, new Set([...ownedBefore, ...ownedByStack]));
  const declared = new Set(Object.values(meters.ids));
  const usedElsewhere = union(others, MD.METERS_USED);
  await deactivateMeters(new Set([...ownedBefore].filter((id) => !declared.has(id) && !usedElsewhere.has(id))));
  const endpointId = await ensureEndpoint(p, p.webhookUrl, { requestId: event.RequestId, stackId: event.StackId, now }, mine, meters);
  return {
    PhysicalResourceId: p.setupId,
    Data: {
      [STRIPE_SETUP_ATTRIBUTES.WEBHOOK_ENDPOINT_ID]: endpointId,
      [STRIPE_SETUP_ATTRIBUTES.METER_IDS]: JSON.stringify(meters.ids),
      ...Object.fromEntries(p.meters.map((m, i) => [`${STRIPE_SETUP_ATTRIBUTES.METER_ID_PREFIX}${i}`, meters.ids[m.eventName]])),
    },
  };
}

/** What a sweep did. */
export interface SweepResult {
  readonly retiredEndpointId?: string;
  readonly waitingUntil?: string;
}

/**
 * The hourly sweep: once the overlap of a rotation is over, deletes the
 * previous endpoint, then removes its secret from the store (only if no other
 * run stored something meanwhile). Without an overlap it reads the secret only.
 */
export async function sweep(setupId: string): Promise<SweepResult> {
  const secretArn = requiredEnv(STRIPE_ENV.WEBHOOK_SECRET_ARN);
  const { value, versionId } = await readSecret(secretArn);
  if (!value.previousUntil) return {}; // no overlap this setup started
  if (Date.parse(value.previousUntil ?? '') > Date.now()) return { waitingUntil: value.previousUntil };
  const id = value.previousEndpointId;
  if (id && (await managedEndpoints()).some((e) => e.id === id && setupOf(e) === setupId)) await deleteEndpoint(id, 'its rotation overlap is over');
  const stored = await putSecretAfter(secretArn, { current: value.current, endpointId: value.endpointId }, versionId);
  logger.info(stored ? 'Rotation finished: the previous signing secret is removed' : 'The signing secret changed meanwhile: left as it is', { previousEndpointId: id });
  return { retiredEndpointId: id };
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

/** The event of the setup's hourly rule. */
type SweepEvent = { readonly [STRIPE_SETUP_SWEEP]: string };

/**
 * The Stripe setup: as a custom resource, the meters the props declare and the
 * webhook endpoint for the route's URL, made to exist in Stripe on create and
 * update (idempotently: an update that changes nothing writes nothing in
 * Stripe); on delete the meters it owns and no other setup uses are
 * deactivated (Stripe keeps meters and their history; a deactivated meter
 * accepts no events) and its endpoints are deleted. Answers CloudFormation
 * itself, also when its time runs out. Invoked by its hourly rule, it ends a
 * rotation's overlap (`sweep`).
 */
export const handler = async (event: CloudFormationCustomResourceEvent | SweepEvent, context?: Context): Promise<SweepResult | void> => {
  logger.resetKeys();
  if (STRIPE_SETUP_SWEEP in event) {
    logger.appendKeys({ requestType: 'Sweep' });
    return sweep(String(event[STRIPE_SETUP_SWEEP]));
  }
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
