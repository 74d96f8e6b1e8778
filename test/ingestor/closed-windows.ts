/**
 * Test support for consumers of the usage read contract (a provider's push):
 * writes closed windows into a usage table exactly as the closer does, so a
 * consumer's tests can seed the windows they bill without running the ingestor,
 * and gives the environment `UsageReader.fromEnvironment()` reads.
 */
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Granularity, USAGE_READER_ENV } from '../../src/ingestor/ingestor-contract';
import { closedIndexItem, closedPageItem, MAX_PAGE_BYTES, PageEntry, paginate, TARGET_GROUP_BYTES } from '../../src/ingestor/shared.lambda/ledger';

/** A closed window to seed. */
export interface SeedWindow {
  readonly tenantId: string;
  readonly metric: string;
  /** ISO-8601 UTC to the second (`2026-11-27T02:00:00Z`). */
  readonly windowStart: string;
  readonly sum: string;
  readonly count: number;
}

/**
 * Writes closed windows as the closer writes them: the pages of each window
 * start, then its index item (which makes them readable). Seed window starts
 * in increasing order across calls, as the closer closes them.
 */
export async function seedClosedWindows(
  client: DynamoDBClient, tableName: string, windows: readonly SeedWindow[],
  opts: { granularity?: Granularity; closedAt?: string } = {},
): Promise<void> {
  const closedAt = opts.closedAt ?? new Date(Date.now()).toISOString();
  const byStart = new Map<string, PageEntry[]>();
  for (const w of windows) {
    const list = byStart.get(w.windowStart) ?? [];
    list.push([w.tenantId, w.metric, w.sum, w.count]);
    byStart.set(w.windowStart, list);
  }
  for (const [windowStart, entries] of [...byStart.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const { groups, pages } = paginate(entries, TARGET_GROUP_BYTES, MAX_PAGE_BYTES);
    for (const page of pages) await client.send(new PutItemCommand({ TableName: tableName, Item: closedPageItem(windowStart, page, closedAt) }));
    await client.send(new PutItemCommand({
      TableName: tableName, Item: closedIndexItem(windowStart, opts.granularity ?? 'HOUR', groups, entries.length, closedAt),
    }));
  }
}

/** The environment `UsageReader.fromEnvironment()` reads, for a usage table (what `bindUsageReader` sets). */
export function usageReaderEnvironment(
  tableName: string, opts: { granularity?: Granularity; allowedLatenessSeconds?: number } = {},
): Record<string, string> {
  return {
    [USAGE_READER_ENV.TABLE_NAME]: tableName,
    [USAGE_READER_ENV.WINDOW_GRANULARITY]: opts.granularity ?? 'HOUR',
    [USAGE_READER_ENV.ALLOWED_LATENESS_SECONDS]: String(opts.allowedLatenessSeconds ?? 3600),
    [USAGE_READER_ENV.MAX_CLOCK_SKEW_SECONDS]: '300',
  };
}
