import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';

/**
 * The contract of a usage ingestor: a data stream producers write usage records
 * to, a function that aggregates them, and a store of the aggregates that the
 * usage push reads.
 */
export interface IDataIngestorAggregator extends IConstruct {
  /**
   * The data stream producers write usage records to.
   */
  readonly dataStream: kinesis.IStream;

  /**
   * The store of aggregated usage.
   */
  readonly aggregateTable: dynamodb.ITable;

  /**
   * The function that reads the data stream and writes the aggregates.
   */
  readonly aggregatorFunction: lambda.IFunction;

  /**
   * Grants a producer the right to put usage records on the data stream.
   *
   * @param grantee the producer
   */
  grantPutUsage(grantee: iam.IGrantable): iam.Grant;

  /**
   * Grants a consumer (the usage push) the right to read the aggregates.
   *
   * @param grantee the consumer
   */
  grantReadAggregates(grantee: iam.IGrantable): iam.Grant;
}
