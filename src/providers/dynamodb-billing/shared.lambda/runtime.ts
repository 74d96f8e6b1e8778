import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** The Powertools logger of every DynamoDB billing handler. Never log emails, names, bodies or secrets. */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'cdk-saas-billing-dynamodb' });

/** A value from the environment the construct sets; throws when it is missing. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`Environment variable ${name} is not set: the function must be created by DynamoDbBilling`);
  }
  return value;
}

let documentClient: DynamoDBDocumentClient | undefined;

/** A DynamoDB document client shared by the invocations of one execution environment. */
export function ddb(): DynamoDBDocumentClient {
  documentClient ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return documentClient;
}

/** Whether an error is DynamoDB's ConditionalCheckFailedException. */
export function isConditionalCheckFailed(error: unknown): boolean {
  return (error as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException';
}

/** The current time as ISO-8601 UTC. */
export function nowIso(): string {
  return new Date().toISOString();
}
