/**
 * Hours without usage, metered as quantity 0 (`reportZeroUsageHours`): for each active tenant whose
 * subscription Marketplace confirmed, and each dimension, every hour since the last one covered
 * whose windows are closed (its end plus the ingestor's closing delay is past) and that has no
 * record yet. A zero goes through the same markers as usage (one record per license, dimension and
 * hour), so it never replaces a real record; a window that closes later than the closing delay
 * finds the hour metered and is counted as `UsageAfterFinalMetering`.
 */
import { paginateScan, PutCommand } from '@aws-sdk/lib-dynamodb';
import { windowIdOf, type ClosedWindow } from '../../../ingestor/shared.lambda/usage-reader';
import { documentClient } from '../../../shared.lambda/aws-clients';
import { numberEnv } from '../../../shared.lambda/env';
import { MARKETPLACE_ENV, METERING_TABLE_LAYOUT as L, REGISTRATIONS_TABLE_LAYOUT as R } from '../contract';
import { deadlineOf, MeterRun, meterWindows, SEND_MARGIN_MS } from './metering';
import { getItem, getSubscriber, TenantRecord } from './registrations';

const HOUR_MS = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');

/** Meters the zero hours due; returns false when the run stopped early. */
export async function meterZeroHours(run: MeterRun): Promise<boolean> {
  const delayMs = numberEnv(MARKETPLACE_ENV.ZERO_HOUR_DELAY_SECONDS, { min: 0, integer: true, fallback: 3600 }) * 1000;
  const now = run.nowMs();
  const lastClosedHour = Math.floor((now - delayMs - HOUR_MS) / HOUR_MS) * HOUR_MS;
  for await (const page of paginateScan({ client: documentClient() }, {
    TableName: run.config.registrationsTable,
    FilterExpression: 'begins_with(#pk, :t) AND #s = :active',
    ExpressionAttributeNames: { '#pk': R.partitionKey, '#s': 'status' },
    ExpressionAttributeValues: { ':t': R.tenantPrefix, ':active': 'ACTIVE' },
  })) {
    for (const item of page.Items ?? []) {
      if (!run.hasTimeLeft() || run.tally.abort) return false;
      const tenant = item as unknown as TenantRecord;
      const subscriber = await getSubscriber(run.config.registrationsTable, tenant.subscriber);
      if (subscriber?.state !== 'ACTIVE') continue;
      for (const d of run.config.dimensions.values()) {
        const zeroKey = { [L.partitionKey]: `${L.zeroPrefix}${tenant.subscriber}`, [L.sortKey]: d.dimension };
        const last = (await getItem<{ lastHour?: string }>(run.config.meteringTable, zeroKey))?.lastHour;
        // From the hour after the last covered (or the tenant's onboarding), within the acceptance window.
        const earliest = Math.ceil((now - run.config.acceptanceSeconds * 1000 + SEND_MARGIN_MS + HOUR_MS) / HOUR_MS) * HOUR_MS;
        const from = Math.max(last ? Date.parse(last) + HOUR_MS : Math.ceil(Date.parse(tenant.onboardedAt) / HOUR_MS) * HOUR_MS, earliest);
        const windows: ClosedWindow[] = [];
        for (let h = from; h <= lastClosedHour && now < deadlineOf(h, run.config.acceptanceSeconds) - SEND_MARGIN_MS; h += HOUR_MS) {
          windows.push({
            tenantId: tenant.tenantId,
            metric: d.metric,
            granularity: 'HOUR',
            windowStart: iso(h),
            windowEnd: iso(h + HOUR_MS),
            closedAt: iso(now),
            sum: '0',
            count: 0,
            windowId: windowIdOf(tenant.tenantId, d.metric, 'HOUR', iso(h)),
          });
        }
        if (windows.length === 0) continue;
        const sentBefore = run.tally.dispositions.SENT;
        if (!(await meterWindows(run, windows))) return false;
        run.tally.zeroHoursSent += run.tally.dispositions.SENT - sentBefore;
        const lastHour = windows[windows.length - 1].windowStart;
        await documentClient().send(new PutCommand({ TableName: run.config.meteringTable, Item: { ...zeroKey, lastHour } }));
      }
    }
  }
  return true;
}
