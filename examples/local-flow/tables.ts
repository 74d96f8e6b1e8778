/**
 * A synthesized template brought to the emulator: DynamoDB CreateTable inputs, so the
 * emulator's tables have exactly the schema the construct deploys, and the functions'
 * environment resolved as CloudFormation would resolve it.
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

/**
 * A function's environment from the template, as CloudFormation would resolve it for this
 * emulator: literal values as they are; a reference to a resource by `refs` (logical id ->
 * name); the default event bus's ARN as `default`; any other token by `refs` keyed by the
 * variable's name.
 */
export function resolveEnvironment(vars: Record<string, unknown>, refs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(vars)) {
    if (typeof value === 'string') {
      out[name] = value;
      continue;
    }
    const json = JSON.stringify(value);
    const ref = Object.keys(refs).find((id) => json.includes(`"${id}"`));
    if (ref) out[name] = refs[ref];
    else if (json.includes(':event-bus/default')) out[name] = 'default';
    else if (refs[name] !== undefined) out[name] = refs[name];
    else throw new Error(`cannot resolve ${name} for the emulator: ${json}`);
  }
  return out;
}
