import type { EventBridgeEvent } from 'aws-lambda';

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
