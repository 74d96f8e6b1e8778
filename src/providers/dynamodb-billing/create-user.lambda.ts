import { LIFECYCLE_ENV, METRICS, STATUS, userKey } from './contract';
import { eventTimeOf, putIfAbsent, reactivate } from './shared.lambda/lifecycle';
import { publishCounts } from './shared.lambda/metrics';
import { lifecycleHandler, optionalField, userIdOf } from '../../shared.lambda/control-plane-event';
import { requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/** The result of a create user invocation. */
export interface CreateUserResult {
  readonly tenantId: string;
  readonly userId: string;
  /** `CREATED`; `REACTIVATED` (closed or deleted by an older event); `EXISTS` (nothing to do). */
  readonly outcome: 'CREATED' | 'REACTIVATED' | 'EXISTS';
}

/**
 * Keeps a user under its tenant's customer. Idempotent (a conditional put). A
 * user closed (by an offboarding) or deleted by an event older than this one is
 * made active again; a deletion newer than this creation is not undone.
 */
export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<CreateUserResult> => {
  const table = requiredEnv(LIFECYCLE_ENV.BILLING_TABLE_NAME);
  const userId = userIdOf(event);
  const eventTime = eventTimeOf(event);
  logger.appendKeys({ userId });
  const created = await putIfAbsent(table, {
    ...userKey(tenantId, userId),
    tenantId,
    userId,
    status: STATUS.ACTIVE,
    activeSince: eventTime,
    createdAt: new Date().toISOString(),
    // Stored (encrypted at rest), never logged.
    email: optionalField(event, 'email', 'userEmail'),
    userRole: optionalField(event, 'userRole', 'role'),
    sourceEventId: event.id,
  });
  if (created) {
    logger.info('User created');
    return { tenantId, userId, outcome: 'CREATED' };
  }
  const { outcome } = await reactivate(table, userKey(tenantId, userId), eventTime);
  if (outcome === 'REACTIVATED') {
    logger.info('User made active again after an older closing or deletion');
    return { tenantId, userId, outcome: 'REACTIVATED' };
  }
  if (outcome === 'STALE') publishCounts({ [METRICS.STALE_LIFECYCLE_EVENTS]: 1 });
  logger.info(outcome === 'STALE' ? 'User creation older than its deletion: ignored' : 'User already exists: nothing to do');
  return { tenantId, userId, outcome: 'EXISTS' };
});
