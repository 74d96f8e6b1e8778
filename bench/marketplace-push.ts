/**
 * `npx projen bench:marketplace-push`: meters 10,000 tenant-hours (2,000 tenants x 5 hours, one
 * dimension) through MarketplaceBilling's bundled push handler, against the local AWS Marketplace
 * emulator in front of moto, and prints what a run costs:
 *
 * - BatchMeterUsage requests per hour metered (at most 25 records a request: 0.04 at best),
 * - DynamoDB requests per hour metered, by operation,
 * - wall time of the run, and hours metered per second;
 * - the same for a second run over the same windows (all metered already).
 *
 * BENCH_TENANT_HOURS (default 10000) changes the number of tenant-hours; BENCH_MARKETPLACE_LATENCY_MS
 * (default 0) adds a latency to every Marketplace answer. The figures are written to
 * bench/out/marketplace-push-<tenant-hours>-l<latency>.json.
 */
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { BatchWriteItemCommand, DeleteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { closedWindow, hourStart, lambdaContext, MemoryUsageReader, PRODUCT_CODE, startWorld } from '../test/providers/marketplace-billing/support';

const TENANT_HOURS = Number(process.env.BENCH_TENANT_HOURS ?? 10_000);
const LATENCY_MS = Number(process.env.BENCH_MARKETPLACE_LATENCY_MS ?? 0);
const HOURS = 5;
const OUT = path.join(__dirname, 'out');

async function main(): Promise<void> {
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  // Requests reach moto as the push sends them (its lookups and reservations run 8 at a time).
  const world = await startWorld({}, { serialize: false });
  world.emulator.latencyMs = LATENCY_MS;
  try {
    const tenants = Math.ceil(TENANT_HOURS / HOURS);
    const client = new DynamoDBClient({ endpoint: world.moto.endpoint });
    const items: unknown[] = [];
    const reader = new MemoryUsageReader();
    for (let i = 0; i < tenants; i++) {
      const c = world.emulator.subscribe();
      const tenantId = `bench-${i}`;
      const identity = { licenseArn: { S: c.licenseArn! }, customerAWSAccountId: { S: c.customerAWSAccountId } };
      items.push(
        { PutRequest: { Item: { pk: { S: `TENANT#${tenantId}` }, tenantId: { S: tenantId }, registrationId: { S: `r${i}` }, subscriber: { S: c.licenseArn! }, status: { S: 'ACTIVE' }, onboardedAt: { S: hourStart(24) }, ...identity } } },
        { PutRequest: { Item: { pk: { S: `SUB#${c.licenseArn}` }, subscriber: { S: c.licenseArn! }, registrationId: { S: `r${i}` }, tenantId: { S: tenantId }, state: { S: 'ACTIVE' } } } },
        { PutRequest: { Item: { pk: { S: `REG#r${i}` }, registrationId: { S: `r${i}` }, subscriber: { S: c.licenseArn! }, productCode: { S: PRODUCT_CODE }, tenantId: { S: tenantId }, ...identity } } },
      );
      for (let h = 1; h <= HOURS && reader.windows.length < TENANT_HOURS; h++) reader.windows.push(closedWindow(tenantId, 'storageGb', hourStart(h), String((i * 7 + h) % 100 + 1)));
    }
    for (let i = 0; i < items.length; i += 25) {
      await client.send(new BatchWriteItemCommand({ RequestItems: { [world.local.names.registrations]: items.slice(i, i + 25) as never } }));
    }
    world.overrides.METERING_TABLE_NAME = world.local.names.metering;
    const push = world.handlers.pushWith(() => reader);
    const results: Record<string, unknown>[] = [];
    for (const label of ['first run', 'second run (every hour metered already)']) {
      // The second run reads the same windows again (its cursor removed): the markers hold.
      if (results.length > 0) await client.send(new DeleteItemCommand({ TableName: world.local.names.metering, Key: { pk: { S: 'STATE' }, sk: { S: 'CURSOR' } } }));
      world.proxy.arm(undefined);
      const calls = world.emulator.calls.length;
      const started = performance.now();
      const result = await push({ id: `bench-${label}` }, { ...lambdaContext(), getRemainingTimeInMillis: () => 3_600_000 });
      const seconds = (performance.now() - started) / 1000;
      const metering = world.emulator.calls.slice(calls).filter((c) => c.operation === 'BatchMeterUsage');
      const dynamodb: Record<string, number> = {};
      for (const op of world.proxy.operations.filter((o) => !o.startsWith('AWSMP'))) dynamodb[op] = (dynamodb[op] ?? 0) + 1;
      const dynamodbTotal = Object.values(dynamodb).reduce((a, b) => a + b, 0);
      const figures = {
        label,
        tenantHours: reader.windows.length,
        outcome: result.outcome,
        sent: result.SENT,
        alreadyMetered: result.alreadyMetered,
        batchMeterUsageRequests: metering.length,
        batchMeterUsageRequestsPerHourMetered: Number((metering.length / reader.windows.length).toFixed(4)),
        largestRequest: Math.max(0, ...metering.map((c) => c.records)),
        dynamodbRequests: dynamodbTotal,
        dynamodbRequestsPerHourMetered: Number((dynamodbTotal / reader.windows.length).toFixed(2)),
        dynamodbByOperation: dynamodb,
        wallSeconds: Number(seconds.toFixed(1)),
        hoursPerSecond: Math.round(reader.windows.length / seconds),
      };
      results.push(figures);
      console.log(JSON.stringify(figures, null, 2));
    }
    const metered = world.emulator.metered.size;
    console.log(`Marketplace holds ${metered} usage records for ${reader.windows.length} tenant-hours (each once: ${metered === reader.windows.length})`);
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(path.join(OUT, `marketplace-push-${reader.windows.length}-l${LATENCY_MS}.json`), JSON.stringify({ latencyMs: LATENCY_MS, results, metered }, null, 2));
  } finally {
    await world.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
