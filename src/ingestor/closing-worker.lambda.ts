/**
 * A closing worker: handles the messages of the closing queue, one at a time
 * (the event source mapping's batch size is 1), for the closing fan-out of a
 * window start too large for one closer run (`shared.lambda/closing-job.ts`):
 * it folds a segment of ledger keys into a partial, merges a partition of the
 * partials into closed pages, or announces a partition's windows. A failed
 * message is delivered again (up to the queue's receive count, then it goes to
 * the closing dead-letter queue); handling one twice changes nothing.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { ClosingMessage, CLOSING_WORKER_ENV, METRICS } from './ingestor-contract';
import { ClosingWork, ClosingWorkSummary } from './shared.lambda/closing-job';
import { windowSettingsFromEnv } from './shared.lambda/settings';
import { sdkClient } from '../shared.lambda/aws-clients';
import { requiredEnv } from '../shared.lambda/env';
import { logger } from '../shared.lambda/logger';

/** A FOLD worker stops reading and hands the rest on when less time than this is left (ms). */
const RESERVE_MS = 120_000;

const metrics = new Metrics();

/** The Lambda handler, invoked by the closing queue's event source mapping. */
export async function handler(event: SQSEvent, context?: Context): Promise<ClosingWorkSummary[]> {
  const work = new ClosingWork({
    ...windowSettingsFromEnv(),
    eventBusArn: requiredEnv(CLOSING_WORKER_ENV.EVENT_BUS_ARN),
  }, { db: sdkClient(DynamoDBClient), events: sdkClient(EventBridgeClient), sqs: sdkClient(SQSClient) });
  const hasTimeLeft = () => (context ? context.getRemainingTimeInMillis() > RESERVE_MS : true);
  const summaries: ClosingWorkSummary[] = [];
  for (const record of event.Records) {
    const summary = await work.handle(JSON.parse(record.body) as ClosingMessage, hasTimeLeft);
    logger.info('closing work done', { ...summary });
    if (summary.kind === 'MERGE' && !summary.skipped) metrics.addMetric(METRICS.WINDOWS_CLOSED, MetricUnit.Count, summary.windows ?? 0);
    summaries.push(summary);
  }
  metrics.publishStoredMetrics();
  return summaries;
}
