import type { EventBridgeEvent } from 'aws-lambda';
import { logger } from './logger';
import { identifierProblem } from '../events/identifiers';

/** The `detail` of a control plane event, as loosely as sbt-aws and other control planes shape it. */
export type ControlPlaneDetail = Record<string, unknown>;

/** An EventBridge event delivered to a lifecycle handler. */
export type ControlPlaneEvent = EventBridgeEvent<string, ControlPlaneDetail>;

function stringField(detail: ControlPlaneDetail, ...names: string[]): string | undefined {
  for (const name of names) {
    const v = detail[name];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return undefined;
}

/** User ids: the lifecycle handlers' own rule (user ids are not billed, so not under the identifier rule). */
const USER_ID = /^[\w.:@+=/-]{1,256}$/;

function eventName(event: ControlPlaneEvent): string {
  return `Event ${event.id ?? '(no id)'} (${event['detail-type']})`;
}

function checkedUserId(value: string | undefined, event: ControlPlaneEvent): string {
  if (value === undefined) throw new Error(`${eventName(event)} has no userId in its detail: refusing it`);
  if (!USER_ID.test(value)) throw new Error(`${eventName(event)} has a userId with characters outside [A-Za-z0-9_.:@+=/-] or over 256 characters`);
  return value;
}

/** The first of the named fields that is present, as given (a string untrimmed, a finite number as its text). */
function rawField(detail: ControlPlaneDetail, ...names: string[]): unknown {
  for (const name of names) {
    const v = detail[name];
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    if (v !== undefined && v !== null && v !== '') return v;
  }
  return undefined;
}

/**
 * The tenant id of a control plane event (`detail.tenantId`, `detail.tenant_id`
 * or `detail.tenant.id`), checked against the one identifier rule
 * (`events/identifiers.ts`) that the usage ingestor and the usage API apply too:
 * a tenant onboarded here is one whose usage can be metered, and the other way
 * round. Throws when it is absent or breaks the rule (taken as given: not trimmed).
 */
export function tenantIdOf(event: ControlPlaneEvent): string {
  const detail = (event.detail ?? {}) as ControlPlaneDetail;
  const nested = (typeof detail.tenant === 'object' && detail.tenant !== null ? detail.tenant : {}) as ControlPlaneDetail;
  const value = rawField(detail, 'tenantId', 'tenant_id') ?? rawField(nested, 'tenantId', 'id');
  if (value === undefined) throw new Error(`${eventName(event)} has no tenantId in its detail: refusing it`);
  const problem = identifierProblem('tenantId', value);
  if (problem !== undefined) {
    throw new Error(`${eventName(event)}: its ${problem}; refusing it (the usage ingestor would never meter such a tenant)`);
  }
  return value as string;
}

/** The user id of a user event (`userId`, `userName`, `username`, `user.userId`); throws when absent. */
export function userIdOf(event: ControlPlaneEvent): string {
  const detail = (event.detail ?? {}) as ControlPlaneDetail;
  const nested = (detail.user ?? {}) as ControlPlaneDetail;
  return checkedUserId(stringField(detail, 'userId', 'userName', 'username', 'user_id') ?? stringField(nested, 'userId', 'userName', 'id'), event);
}

/** An optional string field of the detail (for example `tenantName`, `email`, `tier`). */
export function optionalField(event: ControlPlaneEvent, ...names: string[]): string | undefined {
  return stringField((event.detail ?? {}) as ControlPlaneDetail, ...names);
}

/** What a lifecycle handler's work receives: the event and the tenant it concerns. */
export interface LifecycleInput {
  readonly event: ControlPlaneEvent;
  /** The tenant id of the event, checked. */
  readonly tenantId: string;
}

/**
 * The one preamble of lifecycle handlers (create/delete customer or user):
 * reads and checks the tenant id (a missing or malformed one throws, so the
 * event lands in the dead-letter queue with the reason) and tags every log
 * line of the invocation with the tenant and event ids.
 */
export function lifecycleHandler<R>(work: (input: LifecycleInput) => Promise<R>): (event: ControlPlaneEvent) => Promise<R> {
  return async (event: ControlPlaneEvent) => {
    logger.resetKeys();
    const tenantId = tenantIdOf(event);
    logger.appendKeys({ tenantId, eventId: event.id, detailType: event['detail-type'] });
    return work({ event, tenantId });
  };
}
