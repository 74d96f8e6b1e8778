/**
 * Harness for the DynamoDB billing handler tests: loads the bundled handlers
 * (exactly the code Lambda runs), takes table schemas from the synthesized
 * template, builds the events the services deliver, and puts the fault-injecting
 * proxy (test/support/aws-fault-proxy.ts) between a handler and the emulator.
 */
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import type { EventBridgeEvent } from 'aws-lambda';
import { UsageIngestor } from '../../../src';
import { DynamoDbBilling } from '../../../src/providers';
import { scratchDir } from '../../support/synth';
import { tableSchema, TableSchema } from '../support';

const ASSETS = path.resolve(__dirname, '..', '..', '..', 'assets', 'providers', 'dynamodb-billing');

/** The bundled handler of one DynamoDB billing function (run `npx projen bundle` first). */
export function bundledHandler<E, R>(name: 'create-customer' | 'delete-customer' | 'create-user' | 'delete-user' | 'put-usage' | 'webhook'):
(event: E, context?: unknown) => Promise<R> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ASSETS, `${name}.lambda`, 'index.js')).handler;
}

/** The schemas of the tables as the construct (and the UsageIngestor) synthesize them. */
export interface Schemas {
  readonly billing: (tableName: string) => TableSchema;
  readonly webhookEvents: (tableName: string) => TableSchema;
  readonly aggregates: (tableName: string) => TableSchema;
}

/** Synthesizes DynamoDbBilling with a UsageIngestor and returns its table schemas. */
export function synthesizedSchemas(): Schemas {
  const stack = new Stack(new App({ outdir: scratchDir('schemas') }), 'Schemas');
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  new DynamoDbBilling(stack, 'Billing', { ingestor });
  return {
    billing: (name) => tableSchema(stack, 'BillingBillingTable', name),
    webhookEvents: (name) => tableSchema(stack, 'BillingWebhookEventsTable', name),
    aggregates: (name) => tableSchema(stack, 'IngestorAggregateTable', name),
  };
}

let eventCounter = 0;

/** An EventBridge event as a rule's Lambda target receives it. */
export function eventBridgeEvent(
  detailType: string,
  detail: Record<string, unknown>,
  id?: string,
  time: Date = new Date(),
): EventBridgeEvent<string, Record<string, unknown>> {
  eventCounter++;
  return {
    'version': '0',
    'id': id ?? `00000000-0000-4000-8000-${String(eventCounter).padStart(12, '0')}`,
    'detail-type': detailType,
    'source': 'sbt.control.plane',
    'account': '123456789012',
    'time': time.toISOString().replace(/\.\d{3}Z$/, 'Z'), // EventBridge: seconds
    'region': process.env.AWS_REGION ?? 'us-east-1',
    'resources': [],
    detail,
  };
}

/** A Lambda context with enough time left. */
export const lambdaContext = { getRemainingTimeInMillis: () => 600_000 };

/** The one fault-injection proxy of the handler tests (test/support/aws-fault-proxy.ts), by the name these tests use. */
export { AwsFaultProxy as FaultProxy } from '../../support/aws-fault-proxy';

/** Captures what a block writes to stdout and stderr (the handlers' logs). */
export async function captureOutput<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: unknown; output: string }> {
  const out: string[] = [];
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  const capture = (chunk: unknown) => {
    out.push(String(chunk));
    return true;
  };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  try {
    return { result: await fn(), output: out.join('') };
  } catch (error) {
    return { error, output: out.join('') };
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
  }
}
