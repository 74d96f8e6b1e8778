import { isConditionalCheckFailed } from '../../../shared.lambda/dynamodb';

/**
 * Runs a conditional write: true when it was written, false when its
 * condition did not hold (ConditionalCheckFailedException); other failures are thrown.
 */
export async function writtenIf(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return false;
    throw error;
  }
}
