/**
 * The closing fan-out's partial sums, pure (no AWS SDK): what a closing worker
 * writes after folding a segment of ledger keys, and the exact merge of them.
 *
 * A partial is the SUM (in units of 10^-9, as an integer) and COUNT of every
 * window (tenant, metric) a segment of ledger keys `[from, to)` holds, split by
 * merge partition (a hash of the tenant). The merge of a partition takes, from
 * the segments marked done, a set whose ledger key ranges tile `[0, ledgerKeys)`
 * exactly (`tiling`), and only the pages each of them wrote: every ledger key,
 * so every record, is counted once, however often a segment was folded, written
 * or split again after a worker stopped.
 */
import { RECORD_LIMITS } from '../ingestor-contract';
import { tenantGroupOf } from '../layout';
import { PageEntry, totalKey, WindowTotal } from './ledger';

const SCALE = BigInt(10) ** BigInt(RECORD_LIMITS.MAX_FRACTION_DIGITS);

/** One window of a partial page: `[tenantId, metric, units (integer string), count]`. */
export type PartialEntry = [string, string, string, number];

/** Largest partial page (bytes of entries); DynamoDB items hold 400 KB. */
export const MAX_PARTIAL_PAGE_BYTES = 300 * 1024;

/** Exact sums of windows, by `totalKey(tenant, metric)`. */
export class PartialTotals {
  private readonly sums = new Map<string, { tenantId: string; metric: string; units: bigint; count: number }>();

  /** Adds a window's units and count. */
  public add(tenantId: string, metric: string, units: bigint, count: number): void {
    const k = totalKey(tenantId, metric);
    const t = this.sums.get(k);
    if (t) {
      t.units += units;
      t.count += count;
    } else {
      this.sums.set(k, { tenantId, metric, units, count });
    }
  }

  /** Adds the windows of a ledger fold (one window start). */
  public addFold(totals: ReadonlyMap<string, WindowTotal>): void {
    for (const [k, total] of totals) {
      const [tenantId, metric] = JSON.parse(k) as [string, string];
      this.add(tenantId, metric, total.exactUnits, total.count);
    }
  }

  /** Adds the entries of a partial page. */
  public addEntries(entries: readonly PartialEntry[]): void {
    for (const [tenantId, metric, units, count] of entries) this.add(tenantId, metric, BigInt(units), count);
  }

  public get size(): number {
    return this.sums.size;
  }

  /** The partial entries, sorted by tenant then metric. */
  public entries(): PartialEntry[] {
    return [...this.sums.values()]
      .sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0))
      .map((t) => [t.tenantId, t.metric, t.units.toString(), t.count]);
  }

  /** The closed window entries `[tenantId, metric, sum, count]`, sorted by tenant then metric. */
  public closedEntries(): PageEntry[] {
    return this.entries().map(([tenantId, metric, units, count]) => [tenantId, metric, sumOfUnits(BigInt(units)), count]);
  }
}

/** A sum in units of 10^-9 as the exact, normalized decimal string `WindowTotal.sum` gives. */
export function sumOfUnits(units: bigint): string {
  return WindowTotal.fromUnits(units, 0).sum;
}

/** The merge partition of a tenant, for a job with `partitions` partitions. */
export function partitionOf(tenantId: string, partitions: number): number {
  return tenantGroupOf(tenantId, partitions);
}

/**
 * The partial pages of a segment's totals: per partition, pages of at most
 * `maxPageBytes`. Deterministic: the same totals give the same pages.
 */
export function partialPages(totals: PartialTotals, partitions: number, maxPageBytes = MAX_PARTIAL_PAGE_BYTES): PartialEntry[][][] {
  const byPartition: PartialEntry[][][] = Array.from({ length: partitions }, () => []);
  const current: PartialEntry[][] = Array.from({ length: partitions }, () => []);
  const bytes: number[] = Array.from({ length: partitions }, () => 0);
  for (const e of totals.entries()) {
    const p = partitionOf(e[0], partitions);
    const size = Buffer.byteLength(JSON.stringify(e), 'utf8') + 1;
    if (current[p].length > 0 && bytes[p] + size > maxPageBytes) {
      byPartition[p].push(current[p]);
      current[p] = [];
      bytes[p] = 0;
    }
    current[p].push(e);
    bytes[p] += size;
  }
  current.forEach((page, p) => {
    if (page.length > 0) byPartition[p].push(page);
  });
  return byPartition;
}

/** A segment of ledger keys `[from, to)`. */
export interface Segment {
  readonly from: number;
  readonly to: number;
}

/**
 * A set of the given segments whose ranges tile `[0, keys)` exactly (each
 * ledger key in one segment), or undefined when none does. Deterministic: at
 * each position the longest segment that still leads to a tiling is taken.
 */
export function tiling(segments: readonly Segment[], keys: number): Segment[] | undefined {
  const startingAt = new Map<number, Segment[]>();
  for (const s of segments) {
    if (s.from < 0 || s.to > keys || s.to <= s.from) continue;
    const list = startingAt.get(s.from) ?? [];
    if (!list.some((o) => o.to === s.to)) list.push(s);
    startingAt.set(s.from, list);
  }
  for (const list of startingAt.values()) list.sort((a, b) => b.to - a.to);
  const dead = new Set<number>();
  const path: Segment[] = [];
  const walk = (at: number): boolean => {
    if (at === keys) return true;
    if (dead.has(at)) return false;
    for (const s of startingAt.get(at) ?? []) {
      path.push(s);
      if (walk(s.to)) return true;
      path.pop();
    }
    dead.add(at);
    return false;
  };
  return walk(0) ? path : undefined;
}

/** The ledger keys of `[0, keys)` that no segment of `done` covers, as segments (in order). */
export function uncovered(done: readonly Segment[], keys: number): Segment[] {
  const covered = Array.from({ length: keys }, () => false);
  for (const s of done) for (let k = Math.max(0, s.from); k < Math.min(keys, s.to); k++) covered[k] = true;
  const out: Segment[] = [];
  for (let k = 0; k < keys; k++) {
    if (covered[k]) continue;
    const from = k;
    while (k < keys && !covered[k]) k++;
    out.push({ from, to: k });
  }
  return out;
}

/** Splits segments into segments of at most `size` keys. */
export function splitSegments(segments: readonly Segment[], size: number): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) for (let from = s.from; from < s.to; from += size) out.push({ from, to: Math.min(s.to, from + size) });
  return out;
}

/** `units` as a BigInt of a value's decimal string (at most 9 fraction digits). */
export function unitsOfValue(value: string): bigint {
  const negative = value.startsWith('-');
  const [whole, fraction = ''] = value.replace(/^-/, '').split('.');
  const units = BigInt(whole) * SCALE + BigInt(fraction.padEnd(RECORD_LIMITS.MAX_FRACTION_DIGITS, '0'));
  return negative ? -units : units;
}
