/**
 * `npx projen bench:stripe-push`: pushes 10,000 closed windows through
 * StripeBilling's bundled push handler to stripe-mock (behind the recording
 * proxy), with DynamoDB on moto, and prints what a run costs:
 *
 * - Stripe requests per window (meter events and every other call),
 * - DynamoDB requests per window, by operation,
 * - wall time of the whole run at the push's concurrency (the construct's default, 8,
 *   or BENCH_CONCURRENCY), and windows per second;
 * - the same for a second run over the same windows (all already pushed).
 *
 * BENCH_WINDOWS (default 10000) changes the number of windows: 2 metrics x 10 hours per tenant;
 * BENCH_STRIPE_LATENCY_MS (default 0) adds a latency to every Stripe answer (Stripe's own is
 * in the 100s of ms, stripe-mock's about 1 ms).
 * The figures are written to bench/out/stripe-push-<windows>-c<concurrency>-l<latency>.json.
 */
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { BatchWriteItemCommand, DeleteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { STRIPE_ENV } from '../src/providers/stripe-billing/contract';
import { bundle, closedWindow, lambdaContext, MemoryUsageReader, startWorld } from '../test/providers/stripe-billing/support';

const WINDOWS = Number(process.env.BENCH_WINDOWS ?? 10_000);
const CONCURRENCY = process.env.BENCH_CONCURRENCY;
/** Stripe's own latency, added to every answer of stripe-mock (which answers in about a millisecond). */
const STRIPE_LATENCY_MS = Number(process.env.BENCH_STRIPE_LATENCY_MS ?? 0);
const HOURS = 10;
const METRICS = ['apiCalls', 'storageGb'];
const OUT = path.join(__dirname, 'out');

type Push = (event: unknown, context?: unknown) => Promise<Record<string, unknown>>;

function hoursAgo(h: number): string {
  return new Date(Math.floor(Date.now() / 3600_000) * 3600_000 - h * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

async function main(): Promise<void> {
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  const world = await startWorld();
  world.stripe.latencyMs = STRIPE_LATENCY_MS;
  try {
    const tenants = Math.ceil(WINDOWS / (METRICS.length * HOURS));
    const client = new DynamoDBClient({ endpoint: world.moto.endpoint });
    const items = Array.from({ length: tenants }, (_, i) => ({
      PutRequest: { Item: { pk: { S: `TENANT#bench-${i}` }, tenantId: { S: `bench-${i}` }, status: { S: 'ACTIVE' }, generation: { N: '1' }, customerId: { S: `cus_Bench${i}` } } },
    }));
    for (let i = 0; i < items.length; i += 25) {
      await client.send(new BatchWriteItemCommand({ RequestItems: { [world.names.customers]: items.slice(i, i + 25) } }));
    }
    const reader = new MemoryUsageReader();
    for (let t = 0; t < tenants && reader.windows.length < WINDOWS; t++) {
      for (let h = 2; h < 2 + HOURS && reader.windows.length < WINDOWS; h++) {
        for (const metric of METRICS) if (reader.windows.length < WINDOWS) reader.windows.push(closedWindow(`bench-${t}`, metric, hoursAgo(h), String((t * 7 + h) % 1000 + 1)));
      }
    }

    world.useFunction('PutUsage', CONCURRENCY ? { [STRIPE_ENV.PUSH_CONCURRENCY]: CONCURRENCY } : {});
    const concurrency = Number(process.env[STRIPE_ENV.PUSH_CONCURRENCY]);
    const push = bundle<{ pushHandler: (r: () => MemoryUsageReader) => Push }>('put-usage').pushHandler(() => reader);

    const measure = async (label: string) => {
      const counts = new Map<string, number>();
      const busy = { stripe: 0, dynamodb: 0 };
      world.crash.arm(undefined);
      world.crash.onRequest = (what) => counts.set(what, (counts.get(what) ?? 0) + 1);
      world.crash.onAnswer = (what, ms) => {
        if (what.startsWith('AWS DynamoDB')) busy.dynamodb += ms;
        else if (!what.startsWith('AWS ')) busy.stripe += ms;
      };
      world.stripe.clearRecording();
      const started = performance.now();
      const result = await push({ id: label }, lambdaContext(label, 900_000));
      const seconds = (performance.now() - started) / 1000;
      world.crash.onRequest = undefined;
      world.crash.onAnswer = undefined;
      const stripe = [...counts].filter(([k]) => !k.startsWith('AWS ')).reduce((n, [, v]) => n + v, 0);
      const meterEvents = counts.get('POST /v1/billing/meter_events') ?? 0;
      const dynamo = Object.fromEntries([...counts].filter(([k]) => k.startsWith('AWS DynamoDB')).map(([k, v]) => [k.replace(/^AWS DynamoDB_\d+\./, ''), v]));
      const dynamoTotal = Object.values(dynamo).reduce((a, b) => a + b, 0);
      return {
        run: label,
        windows: WINDOWS,
        concurrency,
        stripeLatencyMs: STRIPE_LATENCY_MS,
        seconds: Number(seconds.toFixed(2)),
        windowsPerSecond: Math.round(WINDOWS / seconds),
        stripeRequestsPerWindow: Number((stripe / WINDOWS).toFixed(4)),
        meterEventsPerWindow: Number((meterEvents / WINDOWS).toFixed(4)),
        dynamoRequestsPerWindow: Number((dynamoTotal / WINDOWS).toFixed(4)),
        // Sum of the time requests spent in each service (they overlap up to the concurrency).
        stripeMsPerRequest: Number((busy.stripe / Math.max(1, stripe)).toFixed(1)),
        dynamoMsPerRequest: Number((busy.dynamodb / Math.max(1, dynamoTotal)).toFixed(1)),
        dynamo,
        maxCallsInFlightPerCustomerMeter: world.stripe.maxConcurrentPerCustomerMeter,
        maxMeterEventsInFlight: world.stripe.maxConcurrentMeterEvents,
        result,
      };
    };

    const first = await measure('first run');
    // The same windows read again (the cursor forgotten): every window is skipped by its pushed marker.
    await client.send(new DeleteItemCommand({ TableName: world.names.push, Key: { pk: { S: 'STATE' }, sk: { S: 'CURSOR' } } }));
    const second = await measure('second run (same windows, all pushed)');
    const counted = world.stripe.state.meterEvents.length;
    const distinct = new Set(world.stripe.state.meterEvents.map((e) => e.identifier)).size;
    const figures = { first, second, meterEventsCountedByStripe: counted, distinctIdentifiers: distinct };
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(path.join(OUT, `stripe-push-${WINDOWS}-c${concurrency}-l${STRIPE_LATENCY_MS}.json`), JSON.stringify(figures, null, 2));
    for (const r of [first, second]) {
      console.log(`${r.run}: ${r.windows} windows, concurrency ${r.concurrency}, Stripe latency ${r.stripeLatencyMs} ms: ${r.seconds} s (${r.windowsPerSecond} windows/s); `
        + `Stripe requests/window ${r.stripeRequestsPerWindow} (meter events ${r.meterEventsPerWindow}); DynamoDB requests/window ${r.dynamoRequestsPerWindow} ${JSON.stringify(r.dynamo)}; `
        + `answer time per request: Stripe ${r.stripeMsPerRequest} ms, DynamoDB (moto) ${r.dynamoMsPerRequest} ms; `
        + `max calls in flight per customer and meter ${r.maxCallsInFlightPerCustomerMeter}, in all ${r.maxMeterEventsInFlight}`);
    }
    console.log(`Stripe counted ${counted} meter events for ${distinct} identifiers (windows: ${WINDOWS})`);
    if (counted !== WINDOWS || distinct !== WINDOWS) throw new Error('the bench did not count every window exactly once');
  } finally {
    await world.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
