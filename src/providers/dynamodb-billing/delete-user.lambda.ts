import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { customerPk, STATUS, userSk } from './shared.lambda/layout';
import { ddb, logger, nowIso, requiredEnv } from './shared.lambda/runtime';
import { ControlPlaneEvent, tenantIdOf, userIdOf } from '../../shared.lambda/control-plane-event';

/** The result of a delete user invocation. */
export interface DeleteUserResult {
  readonly tenantId: string;
  readonly userId: string;
  readonly deletedAt: string;
}

/**
 * Marks a user DELETED under its tenant's customer (kept, with `deletedAt` from the
 * first delivery). Idempotent; a deletion that arrives before the creation leaves
 * a DELETED user that the creation does not revive.
 */
export const handler = async (event: ControlPlaneEvent): Promise<DeleteUserResult> => {
  const table = requiredEnv('BILLING_TABLE_NAME');
  const tenantId = tenantIdOf(event);
  const userId = userIdOf(event);
  logger.appendKeys({ tenantId, eventId: event.id });
  const result = await ddb().send(new UpdateCommand({
    TableName: table,
    Key: { pk: customerPk(tenantId), sk: userSk(userId) },
    UpdateExpression: 'SET #status = :deleted, deletedAt = if_not_exists(deletedAt, :now), tenantId = :tenantId, userId = :userId',
    ExpressionAttributeNames: { '#status': 'status' },
    ExpressionAttributeValues: { ':deleted': STATUS.DELETED, ':now': nowIso(), ':tenantId': tenantId, ':userId': userId },
    ReturnValues: 'ALL_NEW',
  }));
  const deletedAt = String(result.Attributes?.deletedAt);
  logger.info('User deleted');
  return { tenantId, userId, deletedAt };
};
