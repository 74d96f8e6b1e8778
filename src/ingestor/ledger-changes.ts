import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LEDGER_ATTRIBUTES, TABLE_KEYS } from './layout';
import { ILedgerChangeFeed, LedgerChangesBinding, LedgerChangesOptions } from './ledger-change-feed';
import { acknowledgeNag } from '../private/nag';

/** The prefix of every ledger partition key (`L#00`, ...): see `layout.ts`. */
const LEDGER_PK_PREFIX = 'L#';
/** Lambda allows 4,096 characters per filter pattern (https://docs.aws.amazon.com/lambda/latest/api/API_Filter.html). */
export const MAX_FILTER_PATTERN_LENGTH = 4096;

/**
 * The event filter patterns of the ledger changes of `metrics` and of every
 * void: inserts and modifications of ledger items (never the TTL's removals)
 * whose new image is a record of one of the metrics, whose old image was one (a
 * changed resend that moved a record to another metric), or that are voids.
 * Lambda ORs the patterns (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html,
 * https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html).
 */
export function ledgerChangeFilters(metrics: readonly string[]): Array<{ [key: string]: any }> {
  const ledgerKey = { Keys: { [TABLE_KEYS.partitionKey]: { S: [{ prefix: LEDGER_PK_PREFIX }] } } };
  return [
    { eventName: ['INSERT', 'MODIFY'], dynamodb: { ...ledgerKey, NewImage: { [LEDGER_ATTRIBUTES.metric]: { S: [...metrics] } } } },
    { eventName: ['MODIFY'], dynamodb: { ...ledgerKey, OldImage: { [LEDGER_ATTRIBUTES.metric]: { S: [...metrics] } } } },
    { eventName: ['INSERT', 'MODIFY'], dynamodb: { ...ledgerKey, NewImage: { [LEDGER_ATTRIBUTES.voidId]: { S: [{ exists: true }] } } } },
  ];
}

/**
 * The ledger change feed of a usage table: turns its stream on (new and old
 * images) when a consumer binds, and wires the consumer.
 */
export class LedgerChangeFeed implements ILedgerChangeFeed {
  private bindings = 0;

  constructor(private readonly table: dynamodb.Table, private readonly encryptionKey?: kms.IKey) {}

  public bindConsumer(consumer: lambda.IFunction, options: LedgerChangesOptions): LedgerChangesBinding {
    const cfn = this.table.node.defaultChild as dynamodb.CfnTable;
    cfn.streamSpecification = { streamViewType: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES };
    const streamArn = cfn.attrStreamArn;
    consumer.addToRolePolicy(new iam.PolicyStatement({
      actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
      resources: [streamArn],
    }));
    // ListStreams takes no resource (what table.grantStreamRead grants too).
    consumer.addToRolePolicy(new iam.PolicyStatement({ actions: ['dynamodb:ListStreams'], resources: ['*'] }));
    if (consumer.role) {
      acknowledgeNag(consumer.role, 'AwsSolutions-IAM5[Resource::*]',
        'dynamodb:ListStreams (read by the event source mapping on the usage ledger\'s stream) takes no resource; the stream\'s reads are scoped to its ARN.');
    }
    this.encryptionKey?.grantDecrypt(consumer);
    const filters = ledgerChangeFilters(options.metrics).map((pattern) => lambda.FilterCriteria.filter(pattern));
    const eventSourceMapping = consumer.addEventSourceMapping(`LedgerChanges${this.bindings++ || ''}`, {
      eventSourceArn: streamArn,
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: options.batchSize ?? 100,
      maxBatchingWindow: options.maxBatchingWindow ?? Duration.seconds(1),
      // One batch per shard at a time: the changes of one ledger item reach the consumer in order the first time.
      parallelizationFactor: 1,
      bisectBatchOnError: true,
      reportBatchItemFailures: true,
      retryAttempts: options.retryAttempts,
      onFailure: options.onFailure,
      filters,
    });
    return { eventSourceMapping };
  }
}
