import type { EventBridgeEvent } from 'aws-lambda';
import { logger } from './logger';

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

const ID = /^[\w.:@+=/-]{1,256}$/;

function checkedId(kind: string, value: string | undefined, event: ControlPlaneEvent): string {
  if (value === undefined) {
    throw new Error(`Event ${event.id ?? '(no id)'} (${event['detail-type']}) has no ${kind} in its detail: refusing it`);
  }
  if (!ID.test(value)) {
    throw new Error(`Event ${event.id ?? '(no id)'} (${event['detail-type']}) has a ${kind} with characters outside [A-Za-z0-9_.:@+=/-] or over 256 characters`);
  }
  return value;
}

/** The tenant id of a control plane event (`detail.tenantId`, or `detail.tenant.id`); throws when absent. */
export function tenantIdOf(event: ControlPlaneEvent): string {
  const detail = (event.detail ?? {}) as ControlPlaneDetail;
  const nested = (detail.tenant ?? {}) as ControlPlaneDetail;
  return checkedId('tenantId', stringField(detail, 'tenantId', 'tenant_id') ?? stringField(nested, 'tenantId', 'id'), event);
}

/** The user id of a user event (`userId`, `userName`, `username`, `user.userId`); throws when absent. */
export function userIdOf(event: ControlPlaneEvent): string {
  const detail = (event.detail ?? {}) as ControlPlaneDetail;
  const nested = (detail.user ?? {}) as ControlPlaneDetail;
  return checkedId('userId', stringField(detail, 'userId', 'userName', 'username', 'user_id') ?? stringField(nested, 'userId', 'userName', 'id'), event);
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
