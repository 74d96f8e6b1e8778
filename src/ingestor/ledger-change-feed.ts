import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';

/**
 * How a consumer receives the ledger's changes (`ILedgerChangeFeed.bindConsumer`).
 */
export interface LedgerChangesOptions {
  /**
   * The metrics whose records the consumer receives (every void is received:
   * a void names its record, not the record's metric).
   */
  readonly metrics: string[];

  /**
   * Most changes per invocation.
   * @default 100
   */
  readonly batchSize?: number;

  /**
   * Longest time changes are gathered before an invocation.
   * @default Duration.seconds(1)
   */
  readonly maxBatchingWindow?: Duration;

  /**
   * Where the description of a batch that failed for good is sent.
   * @default - none: a failing batch is retried until its changes leave the stream (24 hours)
   */
  readonly onFailure?: lambda.IEventSourceDlq;

  /**
   * Retries of a failing batch.
   * @default - until its changes leave the stream
   */
  readonly retryAttempts?: number;
}

/** What `bindConsumer` created. */
export interface LedgerChangesBinding {
  /** The event source mapping from the ledger's changes to the consumer. */
  readonly eventSourceMapping: lambda.IEventSourceMapping;
}

/**
 * The ledger's change feed: each record written into the ledger, each changed
 * resend of it and each void, once per change (a resend that changes nothing is
 * no change: DynamoDB Streams writes no stream record for a put that changes
 * nothing, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html).
 * Handlers decode what they receive with `ledgerChangeOf`
 * (`ingestor/shared.lambda/ledger-changes.ts`), never by knowing the ledger's layout.
 */
export interface ILedgerChangeFeed {
  /**
   * Sends the ledger changes of `options.metrics` (and every void) to `consumer`
   * through an event source mapping, in order per ledger item, at least once.
   * Records of other metrics are filtered out before the consumer is invoked
   * (Lambda event filtering: they cost the consumer nothing). Grants the consumer
   * the stream's read access.
   *
   * @param consumer the function that reads the changes
   * @param options the metrics and the batching
   */
  bindConsumer(consumer: lambda.IFunction, options: LedgerChangesOptions): LedgerChangesBinding;
}
