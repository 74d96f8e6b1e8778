/**
 * Test support for the DynamoDB billing provider: a stand-in usage ingestor with
 * the documented aggregate table layout, and DynamoDB CreateTable inputs taken
 * from a synthesized template, so the emulator's tables have exactly the schema
 * the construct deploys.
 */
import { CreateTableCommandInput, DynamoDBClient, CreateTableCommand, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { IDataIngestorAggregator } from '../../src/ingestor/ingestor';
import { AGGREGATE_LAYOUT } from '../../src/ingestor/layout';

/** An IDataIngestorAggregator with the documented aggregate table layout (src/ingestor/layout.ts). */
export class LayoutIngestor extends Construct implements IDataIngestorAggregator {
  public readonly dataStream: kinesis.IStream;
  public readonly aggregateTable: dynamodb.ITable;
  public readonly aggregatorFunction: lambda.IFunction;
  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.dataStream = new kinesis.Stream(this, 'Stream', { encryption: kinesis.StreamEncryption.MANAGED });
    const table = new dynamodb.Table(this, 'Aggregates', {
      partitionKey: { name: AGGREGATE_LAYOUT.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: AGGREGATE_LAYOUT.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: AGGREGATE_LAYOUT.ttlAttribute,
    });
    table.addGlobalSecondaryIndex({
      indexName: AGGREGATE_LAYOUT.closeIndexName,
      partitionKey: { name: AGGREGATE_LAYOUT.closeIndexPartitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: AGGREGATE_LAYOUT.closeIndexSortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.aggregateTable = table;
    this.aggregatorFunction = new lambda.Function(this, 'Aggregator', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {};'),
    });
  }
  grantPutUsage(grantee: iam.IGrantable): iam.Grant {
    return this.dataStream.grantWrite(grantee);
  }
  grantReadAggregates(grantee: iam.IGrantable): iam.Grant {
    return this.aggregateTable.grantReadData(grantee);
  }
}

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
