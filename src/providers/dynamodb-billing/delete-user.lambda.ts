import { LIFECYCLE_ENV, METRICS, STATUS, userKey } from './contract';
import { deactivate, eventTimeOf } from './shared.lambda/lifecycle';
import { publishCounts } from './shared.lambda/metrics';
import { lifecycleHandler, userIdOf } from '../../shared.lambda/control-plane-event';
import { requiredEnv } from '../../shared.lambda/env';
import { logger } from '../../shared.lambda/logger';

/** The result of a delete user invocation. */
export interface DeleteUserResult {
  readonly tenantId: string;
  readonly userId: string;
  /** `DELETED` (now or by an earlier delivery), or `STALE`: the user was created again by a newer event. */
  readonly outcome: 'DELETED' | 'STALE';
  readonly deletedAt?: string;
}

/**
 * Marks a user DELETED under its tenant's customer (kept, with `deletedAt` from the
 * first delivery). Idempotent; a deletion that arrives before the creation leaves
 * a DELETED user that an older creation does not revive.
 */
export const handler = lifecycleHandler(async ({ event, tenantId }): Promise<DeleteUserResult> => {
  const table = requiredEnv(LIFECYCLE_ENV.BILLING_TABLE_NAME);
  const userId = userIdOf(event);
  logger.appendKeys({ userId });
  const deleted = await deactivate(table, userKey(tenantId, userId), STATUS.DELETED, eventTimeOf(event), { tenantId, userId });
  if (!deleted) {
    logger.warn('User deletion older than the user\'s creation: ignored');
    publishCounts({ [METRICS.STALE_LIFECYCLE_EVENTS]: 1 });
    return { tenantId, userId, outcome: 'STALE' };
  }
  logger.info('User deleted');
  return { tenantId, userId, outcome: 'DELETED', deletedAt: deleted.since };
});
