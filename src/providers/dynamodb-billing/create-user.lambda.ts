import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { customerPk, STATUS, userSk } from './shared.lambda/layout';
import { ddb, isConditionalCheckFailed, logger, nowIso, requiredEnv } from './shared.lambda/runtime';
import { ControlPlaneEvent, optionalField, tenantIdOf, userIdOf } from '../../shared.lambda/control-plane-event';

/** The result of a create user invocation. */
export interface CreateUserResult {
  readonly tenantId: string;
  readonly userId: string;
  readonly outcome: 'CREATED' | 'EXISTS';
}

/**
 * Keeps a user under its tenant's customer. Idempotent (a conditional put): a
 * redelivery, or a user deletion that arrived first, leaves the existing item as is.
 */
export const handler = async (event: ControlPlaneEvent): Promise<CreateUserResult> => {
  const table = requiredEnv('BILLING_TABLE_NAME');
  const tenantId = tenantIdOf(event);
  const userId = userIdOf(event);
  logger.appendKeys({ tenantId, eventId: event.id });
  try {
    await ddb().send(new PutCommand({
      TableName: table,
      Item: {
        pk: customerPk(tenantId),
        sk: userSk(userId),
        tenantId,
        userId,
        status: STATUS.ACTIVE,
        createdAt: nowIso(),
        // Stored (encrypted at rest), never logged.
        email: optionalField(event, 'email', 'userEmail'),
        userRole: optionalField(event, 'userRole', 'role'),
        sourceEventId: event.id,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }));
    logger.info('User created');
    return { tenantId, userId, outcome: 'CREATED' };
  } catch (error) {
    if (!isConditionalCheckFailed(error)) throw error;
    logger.info('User already exists: nothing to do');
    return { tenantId, userId, outcome: 'EXISTS' };
  }
};
