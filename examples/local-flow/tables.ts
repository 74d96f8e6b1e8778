/**
 * DynamoDB CreateTable inputs
 * taken from a synthesized template, so the emulator's tables have exactly the schema
 * the construct deploys.
 */
import { CreateTableCommandInput, DynamoDBClient, CreateTableCommand, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

/** A table's synthesized schema as a CreateTable input (named `tableName`), plus its TTL attribute. */
export interface TableSchema {
  readonly input: CreateTableCommandInput;
  readonly ttlAttribute?: string;
}

/** The schema of the one AWS::DynamoDB::Table in `stack` whose logical id starts with `logicalIdPrefix`. */
export function tableSchema(stack: Stack, logicalIdPrefix: string, tableName: string): TableSchema {
  const resources = Template.fromStack(stack).findResources('AWS::DynamoDB::Table');
  const ids = Object.keys(resources).filter((id) => id.startsWith(logicalIdPrefix));
  if (ids.length !== 1) throw new Error(`Expected one table with logical id ${logicalIdPrefix}*, found ${ids.join(', ') || 'none'}`);
  const p = resources[ids[0]].Properties;
  return {
    input: {
      TableName: tableName,
      KeySchema: p.KeySchema,
      AttributeDefinitions: p.AttributeDefinitions,
      BillingMode: p.BillingMode,
      GlobalSecondaryIndexes: p.GlobalSecondaryIndexes,
    },
    ttlAttribute: p.TimeToLiveSpecification?.AttributeName,
  };
}

/** Creates a table in the emulator from its synthesized schema. */
export async function createTable(schema: TableSchema): Promise<void> {
  const client = new DynamoDBClient({});
  await client.send(new CreateTableCommand(schema.input));
  if (schema.ttlAttribute) {
    await client.send(new UpdateTimeToLiveCommand({
      TableName: schema.input.TableName,
      TimeToLiveSpecification: { Enabled: true, AttributeName: schema.ttlAttribute },
    }));
  }
}
