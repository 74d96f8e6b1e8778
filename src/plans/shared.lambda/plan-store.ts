/**
 * What the plan event handler does with one control plane event: decides from
 * the tenant's plan item what the event means (a plan recorded, a refusal, a
 * stale or repeated event), writes it in one transaction with the event's
 * processed item, and returns the event to emit.
 *
 * Exactly once per control plane event: the processed item (`EVENT#<id>`) is
 * put on condition that it does not exist, in the transaction that changes the
 * tenant's plan (on condition that its version is the one the decision read).
 * A redelivery, a concurrent delivery or a rerun after a crash finds the
 * processed item and emits the event it holds again: every event the handler
 * emits is emitted at least once, and the same each time.
 */
import { GetCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../../shared.lambda/aws-clients';
import { cancellationCodes } from '../../shared.lambda/dynamodb';
import {
  AnchorKind, billingAnchorOf, PLAN_CHANGE_SK_PREFIX, PlanChangedDetail, PlanChangeFailureDetail, PlanChangeRecord, planChangeKey,
  PlanRefusalReason, processedEventKey, TenantPlanRecord, tenantPlanKey,
} from '../contract';

/** The kind of control plane event. */
export type PlanEventKind = 'ONBOARDING' | 'OFFBOARDING' | 'PLAN_CHANGE';

/** One event to handle. */
export interface PlanEventInput {
  readonly kind: PlanEventKind;
  readonly tenantId: string;
  readonly eventId: string;
  readonly detailType: string;
  /** The event's time (ISO-8601). */
  readonly eventTime: string;
  /** The plan the event names (onboarding, plan change), as given. */
  readonly requestedPlan?: string;
}

/** Where and how the store works. */
export interface PlanStoreOptions {
  readonly tableName: string;
  /** The plans' names. */
  readonly planNames: ReadonlySet<string>;
  readonly defaultPlan?: string;
  readonly anchor: AnchorKind;
  readonly anchorAlignmentSeconds: number;
  /** The instant now (epoch ms). */
  readonly now: () => number;
}

/** The event the handler emits for an input. */
export type Emitted =
  | { readonly kind: 'PLAN_CHANGED'; readonly detail: PlanChangedDetail }
  | { readonly kind: 'FAILURE'; readonly detail: PlanChangeFailureDetail };

/** What became of an event. */
export type Outcome =
  /** A plan (or the offboarding) was recorded. */
  | 'RECORDED'
  /** The plan was refused (a failure event). */
  | 'REFUSED'
  /** The onboarding was recorded without a plan (a failure event says why). */
  | 'RECORDED_WITHOUT_PLAN'
  /** Nothing to change (already onboarded, already offboarded, the same plan). */
  | 'UNCHANGED'
  /** Older than the tenant's latest change of state: ignored. */
  | 'STALE'
  /** Processed before (a redelivery): its event is emitted again. */
  | 'REPEATED';

/** The result of handling one event. */
export interface HandledEvent {
  readonly outcome: Outcome;
  readonly emitted: Emitted[];
}

type Write = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];

interface Decision {
  readonly outcome: Exclude<Outcome, 'REPEATED'>;
  readonly emitted: Emitted[];
  readonly writes: Write[];
}

const ROUNDS = 6;

/** The plan item of a tenant (consistent read). */
export async function readTenantPlan(tableName: string, tenantId: string): Promise<TenantPlanRecord | undefined> {
  const { Item } = await documentClient().send(new GetCommand({ TableName: tableName, Key: tenantPlanKey(tenantId), ConsistentRead: true }));
  return Item ? recordOf(Item) : undefined;
}

function recordOf(item: Record<string, unknown>): TenantPlanRecord {
  return { ...(item as unknown as TenantPlanRecord), version: Number(String(item.version)) };
}

/** A tenant's plan changes, oldest first. */
export async function readPlanHistory(tableName: string, tenantId: string): Promise<PlanChangeRecord[]> {
  const changes: PlanChangeRecord[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient().send(new QueryCommand({
      TableName: tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': tenantPlanKey(tenantId).pk, ':prefix': PLAN_CHANGE_SK_PREFIX },
      ConsistentRead: true,
      ExclusiveStartKey: startKey,
    }));
    for (const item of page.Items ?? []) changes.push(item as unknown as PlanChangeRecord);
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return changes.sort((a, b) => (a.effectiveAt < b.effectiveAt ? -1 : a.effectiveAt > b.effectiveAt ? 1 : 0));
}

/** Handles one event (see the module comment). */
export async function handlePlanEvent(opts: PlanStoreOptions, input: PlanEventInput): Promise<HandledEvent> {
  for (let round = 0; round < ROUNDS; round++) {
    const repeated = await processed(opts.tableName, input.eventId);
    if (repeated) return repeated;
    const current = await readTenantPlan(opts.tableName, input.tenantId);
    const decision = decide(opts, input, current);
    const marker: Write = {
      Put: {
        TableName: opts.tableName,
        Item: {
          ...processedEventKey(input.eventId),
          tenantId: input.tenantId,
          detailType: input.detailType,
          outcome: decision.outcome,
          emitted: JSON.stringify(decision.emitted),
          processedAt: new Date(opts.now()).toISOString(),
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
    try {
      await documentClient().send(new TransactWriteCommand({ TransactItems: [marker, ...decision.writes] }));
      return { outcome: decision.outcome, emitted: decision.emitted };
    } catch (error) {
      const codes = cancellationCodes(error);
      if (!codes) throw error;
      // The marker failed: another delivery processed the event (read it next round). The tenant
      // changed under the decision, or a concurrent transaction: decide again.
      if (!codes.some((c) => c === 'ConditionalCheckFailed' || c === 'TransactionConflict')) throw error;
    }
  }
  throw new Error(`Tenant ${input.tenantId}: its plan kept changing under concurrent events; the event will be retried`);
}

/** A processed event's outcome and events, if it was processed before. */
async function processed(tableName: string, eventId: string): Promise<HandledEvent | undefined> {
  const { Item } = await documentClient().send(new GetCommand({ TableName: tableName, Key: processedEventKey(eventId), ConsistentRead: true }));
  if (!Item) return undefined;
  return { outcome: 'REPEATED', emitted: JSON.parse(String(Item.emitted)) as Emitted[] };
}

function refusal(input: PlanEventInput, reason: PlanRefusalReason, message: string): Emitted {
  return {
    kind: 'FAILURE',
    detail: {
      tenantId: input.tenantId,
      ...(input.requestedPlan !== undefined ? { requestedPlan: input.requestedPlan } : {}),
      reason,
      message,
      requestEventId: input.eventId,
      requestDetailType: input.detailType,
    },
  };
}

/** The conditional write of the tenant's plan item, from the version read (none: it must not exist). */
function putTenant(opts: PlanStoreOptions, record: TenantPlanRecord, readVersion: number | undefined): Write {
  return {
    Put: {
      TableName: opts.tableName,
      Item: { ...tenantPlanKey(record.tenantId), ...record, updatedAt: new Date(opts.now()).toISOString() },
      ConditionExpression: readVersion === undefined ? 'attribute_not_exists(pk)' : 'version = :v',
      ...(readVersion === undefined ? {} : { ExpressionAttributeValues: { ':v': readVersion } }),
    },
  };
}

function putChange(opts: PlanStoreOptions, change: PlanChangeRecord): Write {
  return {
    Put: {
      TableName: opts.tableName,
      Item: { ...planChangeKey(change.tenantId, change.effectiveAt, change.eventId), ...change },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  };
}

/** Without any write but the processed item. */
function only(outcome: Decision['outcome'], emitted: Emitted[] = []): Decision {
  return { outcome, emitted, writes: [] };
}

/** What the event means for the tenant's plan item as it is. */
function decide(opts: PlanStoreOptions, input: PlanEventInput, current: TenantPlanRecord | undefined): Decision {
  const now = new Date(opts.now()).toISOString();
  const known = input.requestedPlan !== undefined && opts.planNames.has(input.requestedPlan);
  switch (input.kind) {
    case 'PLAN_CHANGE': {
      if (!known) {
        return only('REFUSED', [refusal(input, 'UNKNOWN_PLAN', input.requestedPlan === undefined
          ? 'the plan change request names no plan'
          : `no plan is named ${JSON.stringify(input.requestedPlan)}: plans are ${[...opts.planNames].map((n) => JSON.stringify(n)).join(', ')}`)]);
      }
      if (!current) return only('REFUSED', [refusal(input, 'UNKNOWN_TENANT', 'the tenant has not been onboarded (no onboarding event was recorded for it)')]);
      if (current.status === 'OFFBOARDED') return only('REFUSED', [refusal(input, 'TENANT_OFFBOARDED', `the tenant was offboarded at ${current.offboardedAt}`)]);
      if (current.plan === input.requestedPlan) return only('UNCHANGED');
      const version = current.version + 1;
      const record: TenantPlanRecord = { ...current, plan: input.requestedPlan, effectiveAt: now, version };
      return {
        outcome: 'RECORDED',
        emitted: [changed(input, record, current.plan, 'CHANGE')],
        writes: [
          putTenant(opts, record, current.version),
          putChange(opts, { tenantId: input.tenantId, plan: input.requestedPlan!, effectiveAt: now, eventId: input.eventId }),
        ],
      };
    }
    case 'ONBOARDING': {
      if (current?.status === 'ACTIVE') return only('UNCHANGED');
      if (current?.status === 'OFFBOARDED' && current.offboardedAt !== undefined && Date.parse(input.eventTime) <= Date.parse(current.offboardedAt)) {
        return only('STALE');
      }
      const plan = known ? input.requestedPlan : opts.defaultPlan;
      const version = (current?.version ?? 0) + 1;
      const anchor = opts.anchor === 'ONBOARDING'
        ? new Date(billingAnchorOf(Date.parse(input.eventTime), opts.anchorAlignmentSeconds)).toISOString()
        : undefined;
      const record: TenantPlanRecord = {
        tenantId: input.tenantId,
        ...(plan !== undefined ? { plan, effectiveAt: now } : {}),
        status: 'ACTIVE',
        version,
        onboardedAt: input.eventTime,
        ...(anchor ? { billingAnchor: anchor } : {}),
      };
      const writes = [putTenant(opts, record, current?.version)];
      if (plan !== undefined) writes.push(putChange(opts, { tenantId: input.tenantId, plan, effectiveAt: now, eventId: input.eventId }));
      const emitted: Emitted[] = [];
      if (!known) {
        const why = input.requestedPlan === undefined ? 'the onboarding event names no plan' : `no plan is named ${JSON.stringify(input.requestedPlan)}`;
        emitted.push(refusal(input, input.requestedPlan === undefined ? 'NO_PLAN' : 'UNKNOWN_PLAN',
          plan !== undefined ? `${why}: the tenant gets the default plan ${JSON.stringify(plan)}` : `${why} and there is no default plan: the tenant has no plan`));
      }
      if (plan !== undefined) emitted.push(changed(input, record, current?.plan, 'ONBOARDING'));
      return { outcome: plan !== undefined ? 'RECORDED' : 'RECORDED_WITHOUT_PLAN', emitted, writes };
    }
    case 'OFFBOARDING': {
      if (current?.status === 'OFFBOARDED') return only('UNCHANGED');
      if (current && Date.parse(input.eventTime) < Date.parse(current.onboardedAt)) return only('STALE');
      const version = (current?.version ?? 0) + 1;
      const record: TenantPlanRecord = {
        ...(current ?? { tenantId: input.tenantId, onboardedAt: input.eventTime }),
        status: 'OFFBOARDED',
        offboardedAt: input.eventTime,
        version,
      } as TenantPlanRecord;
      return {
        outcome: 'RECORDED',
        emitted: current ? [changed(input, { ...record, plan: undefined, effectiveAt: now }, current.plan, 'OFFBOARDING')] : [],
        writes: [putTenant(opts, record, current?.version)],
      };
    }
  }
}

function changed(input: PlanEventInput, record: TenantPlanRecord, previousPlan: string | undefined, reason: PlanChangedDetail['reason']): Emitted {
  return {
    kind: 'PLAN_CHANGED',
    detail: {
      tenantId: input.tenantId,
      ...(record.plan !== undefined ? { plan: record.plan } : {}),
      ...(previousPlan !== undefined ? { previousPlan } : {}),
      effectiveAt: record.effectiveAt!,
      reason,
      version: record.version,
      requestEventId: input.eventId,
    },
  };
}
