/**
 * The one factory of AWS SDK clients in the library's handlers: a client per
 * SDK client class per execution environment, reused across invocations.
 * The SDK reads the region and `AWS_ENDPOINT_URL*` (tests point it at an
 * emulator) from the environment.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

const clients = new Map<unknown, unknown>();

/** How many attempts the SDK makes at a throttled or failed call. */
export const SDK_MAX_ATTEMPTS = 6;

/** The shared client of an SDK client class (`sdkClient(EventBridgeClient)`). */
export function sdkClient<T>(Ctor: new (config: { maxAttempts?: number }) => T, config: { maxAttempts?: number } = {}): T {
  let client = clients.get(Ctor) as T | undefined;
  if (!client) {
    client = new Ctor({ maxAttempts: SDK_MAX_ATTEMPTS, ...config });
    clients.set(Ctor, client);
  }
  return client;
}

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
