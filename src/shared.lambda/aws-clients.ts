/**
 * The AWS SDK clients of the library's handlers: `sdkClient` (sdk-client.ts: a
 * client per SDK client class per execution environment, reused across
 * invocations) and the shared DynamoDB document client.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { sdkClient } from './sdk-client';

export { SDK_MAX_ATTEMPTS, sdkClient } from './sdk-client';

let document: DynamoDBDocumentClient | undefined;

/**
 * The shared DynamoDB document client. Numbers come back as exact
 * `NumberValue`s (never binary floats); undefined attributes are dropped.
 */
export function documentClient(): DynamoDBDocumentClient {
  document ??= DynamoDBDocumentClient.from(sdkClient(DynamoDBClient), {
    marshallOptions: { removeUndefinedValues: true },
    unmarshallOptions: { wrapNumbers: true },
  });
  return document;
}
