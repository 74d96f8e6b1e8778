import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';
import { ILedgerChangeFeed } from './ledger-change-feed';

/**
 * What a usage ingestor provides: a data stream producers write usage records
 * to, and the usage read contract through which consumers (a billing
 * provider's usage push, for one) read closed windows and open running totals.
 *
 * A consumer never reads the ingestor's tables itself: it calls
 * `bindUsageReader(fn)` and, in its handler, `UsageReader.fromEnvironment()`
 * (`cdk-saas-billing`'s runtime module `ingestor/shared.lambda/usage-reader`).
 */
export interface IDataIngestorAggregator extends IConstruct {
  /**
   * The data stream producers write usage records to.
   */
  readonly dataStream: kinesis.IStream;

  /**
   * The store of the ingestor's usage (for outputs and operators). Consumers
   * read usage through `bindUsageReader`, never from this table directly.
   */
  readonly aggregateTable: dynamodb.ITable;

  /**
   * The function that reads the data stream.
   */
  readonly aggregatorFunction: lambda.IFunction;

  /**
   * When the ingestor's windows are final: their length and the longest time
   * after a window's end until its closed total is readable through the usage
   * read contract. A consumer with a deadline (a billing period's invoice, an
   * offboarding) checks its timing against it.
   *
   * @default - not known: consumers cannot check their timing and say so at synth
   */
  readonly closingTimes?: UsageClosingTimes;

  /**
   * The ledger's change feed: each record, changed resend and void as it is
   * written, for consumers that keep running totals (`Entitlements`). A
   * consumer binds with `ledgerChanges.bindConsumer(fn, { metrics })`; its records
   * are the ledger's stream records, filtered to those metrics.
   *
   * @default - no change feed: `Entitlements` refuses this ingestor
   */
  readonly ledgerChanges?: ILedgerChangeFeed;

  /**
   * Grants a producer the right to put usage records on the data stream.
   *
   * @param grantee the producer
   */
  grantPutUsage(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets a consumer read usage through the usage read contract: grants it read
   * access and, when it is a `lambda.Function` of this app, sets the
   * environment the runtime `UsageReader` reads. Returns that environment, for
   * a consumer it cannot set it on.
   *
   * @param consumer the function that reads usage
   */
  bindUsageReader(consumer: lambda.IFunction): UsageReaderBinding;
}

/**
 * What `bindUsageReader` did: the environment the consumer's `UsageReader` reads.
 */
export interface UsageReaderBinding {
  /**
   * Environment variables for `UsageReader.fromEnvironment()`; already set on
   * the consumer when it is a `lambda.Function` of this app.
   */
  readonly environment: { [name: string]: string };
}

/**
 * When a usage ingestor's windows are final (see `IDataIngestorAggregator.closingTimes`).
 */
export interface UsageClosingTimes {
  /**
   * The length of a window, in seconds (3600 for hourly windows, 86400 for daily ones).
   * Windows start at whole multiples of it (UTC).
   */
  readonly windowSeconds: number;

  /**
   * The longest time from a window's end until its closed total is readable
   * through the usage read contract: the allowed lateness, the closing margin,
   * the closer's interval and the closer's longest run.
   */
  readonly maxClosingDelay: Duration;
}
