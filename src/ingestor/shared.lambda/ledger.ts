/**
 * Reading the ledger and the closed windows: shared by the closer (which folds
 * the ledger into final totals and writes closed window pages) and the usage
 * reader (which folds a tenant's open windows and reads the pages). One fold,
 * so a running total and the final total are computed the same way.
 */
import { createHash } from 'crypto';
import { AttributeValue, DynamoDBClient, QueryCommand, QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { parseDecimal } from '../../shared.lambda/decimal';
import { RECORD_LIMITS, Granularity } from '../ingestor-contract';
import {
  CLOSED_ATTRIBUTES, CLOSED_INDEX_PK, closedPageSk, closedPagesPk, LEDGER_ATTRIBUTES, parseLedgerSk, TABLE_KEYS, tenantGroupOf, VOID_SUFFIX,
} from '../layout';

/** A DynamoDB item in the low-level client's shape. */
export type Item = Record<string, AttributeValue>;

const SCALE = BigInt(10) ** BigInt(RECORD_LIMITS.MAX_FRACTION_DIGITS);

/** A value's units of 10^-9 (values have at most 9 fraction digits). */
function unitsOf(value: string): bigint {
  const [whole, fraction = ''] = value.split('.');
  return BigInt(whole) * SCALE + BigInt(fraction.padEnd(RECORD_LIMITS.MAX_FRACTION_DIGITS, '0'));
}

/** The exact SUM and COUNT of a window's records. */
export class WindowTotal {
  /** A total of `units` (10^-9) and `count` records. */
  public static fromUnits(units: bigint, count: number): WindowTotal {
    const t = new WindowTotal();
    t.units = units;
    t.n = count;
    return t;
  }

  private units = BigInt(0);
  private n = 0;

  /** Counts a record in. */
  public add(value: string): void {
    this.units += unitsOf(value);
    this.n++;
  }

  /** Takes a voided record out. */
  public remove(value: string): void {
    this.units -= unitsOf(value);
    this.n--;
  }

  /** The sum, an exact normalized decimal string. */
  public get sum(): string {
    const negative = this.units < BigInt(0);
    const abs = negative ? -this.units : this.units;
    const whole = abs / SCALE;
    const fraction = (abs % SCALE).toString().padStart(RECORD_LIMITS.MAX_FRACTION_DIGITS, '0');
    const text = parseDecimal(`${whole}.${fraction}`);
    return negative && text !== '0' ? `-${text}` : text;
  }

  /** The sum in units of 10^-9 (exact). */
  public get exactUnits(): bigint {
    return this.units;
  }

  /** The number of records counted. */
  public get count(): number {
    return this.n;
  }
}

/** A void whose voided record was not in its window. */
export interface UnmatchedVoid {
  readonly pk: string;
  readonly sk: string;
  readonly windowStart: string;
  readonly tenantId: string;
  /** The id of the record it was meant to void. */
  readonly voids: string;
  /** The void's own id. */
  readonly voidId: string;
}

/** Key of a window's total within a window start: `[tenantId, metric]` as JSON (injective). */
export function totalKey(tenantId: string, metric: string): string {
  return JSON.stringify([tenantId, metric]);
}

/**
 * Folds ledger items into per-window totals. Items of one shard must come in
 * sort key order (as Query returns them); shards may interleave. A void's key
 * follows its record's key immediately, so a void is matched with the record
 * read just before it in its shard.
 */
export class LedgerFold {
  /** windowStart -> totalKey(tenant, metric) -> total. */
  public readonly totals = new Map<string, Map<string, WindowTotal>>();
  public readonly unmatchedVoids: UnmatchedVoid[] = [];
  public voidsApplied = 0;
  public itemsRead = 0;
  /** Ledger items read per window start. */
  public readonly itemsByWindowStart = new Map<string, number>();
  /** The last record read of each shard. */
  private readonly last = new Map<string, { sk: string; total: WindowTotal; value: string }>();

  /** Folds the next item of a shard. */
  public add(item: Item): void {
    this.itemsRead++;
    const pk = item[TABLE_KEYS.partitionKey].S!;
    const sk = item[TABLE_KEYS.sortKey].S!;
    const key = parseLedgerSk(sk);
    this.itemsByWindowStart.set(key.windowStart, (this.itemsByWindowStart.get(key.windowStart) ?? 0) + 1);
    const last = this.last.get(pk);
    this.last.delete(pk);
    if (key.isVoid) {
      if (last && `${last.sk}${VOID_SUFFIX}` === sk) {
        last.total.remove(last.value);
        this.voidsApplied++;
      } else {
        this.unmatchedVoids.push({
          pk,
          sk,
          windowStart: key.windowStart,
          tenantId: key.tenantId,
          voids: key.recordId,
          voidId: item[LEDGER_ATTRIBUTES.voidId]?.S ?? '',
        });
      }
      return;
    }
    const metric = item[LEDGER_ATTRIBUTES.metric].S!;
    const value = item[LEDGER_ATTRIBUTES.value].N!;
    let window = this.totals.get(key.windowStart);
    if (!window) this.totals.set(key.windowStart, (window = new Map()));
    const tk = totalKey(key.tenantId, metric);
    let total = window.get(tk);
    if (!total) window.set(tk, (total = new WindowTotal()));
    total.add(value);
    this.last.set(pk, { sk, total, value });
  }
}

/** Every item a query returns, page after page. */
export async function* queryItems(client: DynamoDBClient, input: QueryCommandInput): AsyncGenerator<Item> {
  let startKey: Item | undefined;
  do {
    const page = await client.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    for (const item of page.Items ?? []) yield item;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** Runs `work` over `items`, at most `limit` at a time. */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

/** A tenant group's share of a window start's closed windows (bytes) before they are split into more groups. */
export const TARGET_GROUP_BYTES = 96 * 1024;
/** Largest page (bytes of window entries); DynamoDB items hold 400 KB. */
export const MAX_PAGE_BYTES = 300 * 1024;

/** One window of a closed window page: `[tenantId, metric, sum, count]`. */
export type PageEntry = [string, string, string, number];

/** A closed window page as the closer writes it. */
export interface Page {
  readonly group: number;
  readonly page: number;
  readonly entries: PageEntry[];
}

/**
 * Splits a window start's closed windows into pages: `groups` groups by tenant
 * hash (so that one tenant's windows are in one group), each cut into pages
 * of at most `maxPageBytes`. Deterministic: the same windows give the same pages.
 */
export function paginate(entries: readonly PageEntry[], targetGroupBytes: number, maxPageBytes: number): { groups: number; pages: Page[] } {
  const sorted = [...entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const sizeOf = (e: PageEntry) => Buffer.byteLength(JSON.stringify(e), 'utf8') + 1;
  const total = sorted.reduce((n, e) => n + sizeOf(e), 0);
  const groups = Math.max(1, Math.ceil(total / targetGroupBytes));
  const byGroup: PageEntry[][] = Array.from({ length: groups }, () => []);
  for (const e of sorted) byGroup[tenantGroupOf(e[0], groups)].push(e);
  const pages: Page[] = [];
  byGroup.forEach((list, group) => {
    let current: PageEntry[] = [];
    let bytes = 0;
    let page = 0;
    for (const e of list) {
      if (current.length > 0 && bytes + sizeOf(e) > maxPageBytes) {
        pages.push({ group, page: page++, entries: current });
        current = [];
        bytes = 0;
      }
      current.push(e);
      bytes += sizeOf(e);
    }
    if (current.length > 0) pages.push({ group, page, entries: current });
  });
  return { groups, pages };
}

/**
 * The deterministic id of a window (tenant, metric, granularity, start):
 * SHA-256, base64url, 43 characters of `[A-Za-z0-9_-]`. Use it as the
 * idempotency key of whatever you do once per window (a charge, a meter event).
 */
export function windowIdOf(tenantId: string, metric: string, granularity: string, windowStart: string): string {
  return createHash('sha256').update(JSON.stringify([tenantId, metric, granularity, windowStart])).digest('base64url');
}

/** The item of a closed window page. */
export function closedPageItem(windowStart: string, page: Page, closedAt: string): Item {
  return {
    [TABLE_KEYS.partitionKey]: { S: closedPagesPk(windowStart, page.group) },
    [TABLE_KEYS.sortKey]: { S: closedPageSk(page.page) },
    [CLOSED_ATTRIBUTES.windows]: { S: JSON.stringify(page.entries) },
    [CLOSED_ATTRIBUTES.closedAt]: { S: closedAt },
  };
}

/** The index item of a closed window start: written after its pages, it makes them readable. */
export function closedIndexItem(windowStart: string, granularity: Granularity, groups: number, windowCount: number, closedAt: string): Item {
  return {
    [TABLE_KEYS.partitionKey]: { S: CLOSED_INDEX_PK },
    [TABLE_KEYS.sortKey]: { S: windowStart },
    [CLOSED_ATTRIBUTES.granularity]: { S: granularity },
    [CLOSED_ATTRIBUTES.groups]: { N: String(groups) },
    [CLOSED_ATTRIBUTES.windowCount]: { N: String(windowCount) },
    [CLOSED_ATTRIBUTES.closedAt]: { S: closedAt },
  };
}
