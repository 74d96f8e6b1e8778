/**
 * One-time EventBridge Scheduler schedules that invoke the offboarding function again later: when
 * the tenant's last windows are closed (the final push and the cancellation wait for them), and
 * to retry a customer deletion that waits for the customer's invoices to settle.
 *
 * An `at(...)` schedule invokes its target once; with `ActionAfterCompletion: DELETE` "EventBridge
 * Scheduler deletes the schedule after its last target invocation. For one-time schedules, this
 * occurs after the schedule has invoked its target once"
 * (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-delete.html). The name
 * is derived from what it does and when, so a repeated request creates nothing new (a
 * `ConflictException` means it exists already).
 */
import { createHash } from 'node:crypto';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { sdkClient } from '../../../shared.lambda/aws-clients';
import { requiredEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { STRIPE_ENV } from '../contract';

/** What a one-time schedule asks the offboarding function to do. */
export type ScheduledWork =
  | { readonly finalizeOffboarding: { readonly tenantId: string; readonly generation: number } }
  | { readonly deleteCustomerWhenSettled: { readonly tenantId: string; readonly generation: number; readonly attempt: number } };

/** Whether an invocation is a one-time schedule's. */
export function isScheduledWork(event: unknown): event is ScheduledWork {
  const e = event as Record<string, unknown> | undefined;
  return typeof e === 'object' && e !== null && ('finalizeOffboarding' in e || 'deleteCustomerWhenSettled' in e);
}

/** `at(yyyy-mm-ddThh:mm:ss)`, UTC, rounded up to the second. */
function atExpression(atMs: number): string {
  return `at(${new Date(Math.ceil(atMs / 1000) * 1000).toISOString().slice(0, 19)})`;
}

/**
 * Asks EventBridge Scheduler to invoke `targetArn` (this function) with `work` at `atMs`. Names are
 * at most 64 characters of `[0-9a-zA-Z-_.]`.
 */
export async function scheduleOnce(work: ScheduledWork, atMs: number, targetArn: string): Promise<string> {
  const [kind, detail] = Object.entries(work)[0] as [string, Record<string, unknown>];
  const name = `${kind.slice(0, 20)}-${createHash('sha256').update(JSON.stringify(detail)).digest('hex').slice(0, 24)}-${Math.ceil(atMs / 1000)}`;
  const dlq = process.env[STRIPE_ENV.SCHEDULER_DLQ_ARN];
  try {
    await sdkClient(SchedulerClient).send(new CreateScheduleCommand({
      Name: name,
      GroupName: requiredEnv(STRIPE_ENV.SCHEDULE_GROUP),
      ScheduleExpression: atExpression(atMs),
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      ActionAfterCompletion: 'DELETE',
      Description: `cdk-saas-billing: ${kind} of a tenant (see the offboarding function's log)`,
      Target: {
        Arn: targetArn,
        RoleArn: requiredEnv(STRIPE_ENV.SCHEDULER_ROLE_ARN),
        Input: JSON.stringify(work),
        // Retried for a day; then the dead-letter queue (alarmed) keeps the request.
        RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 },
        ...(dlq ? { DeadLetterConfig: { Arn: dlq } } : {}),
      },
    }));
    logger.info('One-time schedule created', { schedule: name, at: new Date(atMs).toISOString(), kind });
  } catch (error) {
    if ((error as { name?: string }).name !== 'ConflictException') throw error;
    logger.info('One-time schedule exists already', { schedule: name });
  }
  return name;
}
