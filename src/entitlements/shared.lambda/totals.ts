/**
 * Running totals from the ledger's changes, exactly once per change.
 *
 * Each ledger record has a contribution item (`contributionKey`): the metric
 * and value it adds to its tenant's totals (nothing once voided), and the
 * stream sequence numbers of the last change of the record and of its void
 * that it reflects. A batch of changes is applied by reading the contributions
 * of its records (consistent reads), computing each one's new contribution, and
 * writing, in transactions of up to 100 items, the new contributions (each on
 * condition that it is still the one read: its `ver`) with the difference
 * added to every running total the record counts in (one per entitlement period
 * of its metric).
 *
 * - A redelivered change (its sequence not above the one the contribution
 *   reflects) changes nothing: a resend of a record, a batch delivered twice or
 *   ten times at once, a rerun after a crash. Two deliveries racing on a
 *   record: one transaction commits, the other's condition fails and it reads
 *   again, finding the change applied.
 * - A change older than one applied (delivered out of order after a retry) is ignored.
 * - A void takes its record's value out (whichever comes first: a void before
 *   its record leaves the record counting nothing, as the closer does); a
 *   changed resend replaces the value, or moves it to its new metric.
 * - A record of a metric without entitlements counts nothing (it is not
 *   delivered at all: the event source mapping filters it out).
 */
import { BatchGetCommand, NumberValue, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { LedgerChange } from '../../ingestor/shared.lambda/ledger-changes';
import { periodOf } from '../../plans/contract';
import { documentClient } from '../../shared.lambda/aws-clients';
import { addDecimals, compareDecimals, subtractDecimals } from '../../shared.lambda/decimal';
import { cancellationCodes } from '../../shared.lambda/dynamodb';
import { backoffMs, sleep } from '../../shared.lambda/retry';
import { contributionKey, totalKey } from '../contract';

/** A record's contribution as stored. */
interface Contribution {
  readonly tenantId: string;
  readonly windowStart: string;
  /** The record's metric and value after its last change applied. */
  readonly metric?: string;
  readonly value?: string;
  readonly voided: boolean;
  /** Stream sequences (digits) of the last record change and void applied. */
  readonly rSeq?: string;
  readonly vSeq?: string;
  /** Incremented by every write: the optimistic condition. */
  readonly ver: number;
  readonly expiresAt?: number;
}

/** A running total a batch touched: what to evaluate after. */
export interface TouchedTotal {
  readonly tenantId: string;
  readonly metric: string;
  readonly period: string;
  readonly periodStartMs: number;
  readonly periodEndMs: number;
}

/** What applying a batch did. */
export interface ApplySummary {
  /** Changes that changed a contribution. */
  readonly applied: number;
  /** Changes already applied (or older than one applied). */
  readonly alreadyApplied: number;
  /** Every total the batch's records count in (changed or not: a rerun evaluates them again). */
  readonly touched: TouchedTotal[];
}

/** What `applyChanges` needs. */
export interface ApplyOptions {
  readonly tableName: string;
  /** The entitlement periods the totals of a metric are kept for (none: its records count nothing). */
  readonly periodsOf: (metric: string) => readonly string[];
  /** A tenant's billing anchor (`BILLING_PERIOD` with `ONBOARDING` anchors), if any. */
  readonly anchorOf: (tenantId: string) => Promise<string | undefined>;
  /** How long a total is kept after its period ends (seconds). */
  readonly retentionSeconds: number;
}

const TRANSACTION_ITEMS = 100;
const ROUNDS = 10;

/** Applies a batch of ledger changes to the running totals (see the module comment). */
export async function applyChanges(changes: readonly LedgerChange[], opts: ApplyOptions): Promise<ApplySummary> {
  // The latest change of each record and of its void in the batch.
  const byRecord = new Map<string, { record?: LedgerChange; void?: LedgerChange; count: number }>();
  for (const c of changes) {
    const entry = byRecord.get(c.recordKey) ?? { count: 0 };
    entry.count++;
    if (c.kind === 'RECORD' && (!entry.record || c.sequence > entry.record.sequence)) entry.record = c;
    if (c.kind === 'VOID' && (!entry.void || c.sequence > entry.void.sequence)) entry.void = c;
    byRecord.set(c.recordKey, entry);
  }
  let applied = 0;
  let alreadyApplied = 0;
  const touched = new Map<string, TouchedTotal>();
  let pending = [...byRecord.keys()];
  for (let round = 0; pending.length > 0; round++) {
    if (round >= ROUNDS) throw new Error(`${pending.length} records' contributions kept changing under concurrent deliveries; the batch will be retried`);
    if (round > 0) await sleep(backoffMs(round, 20, 500));
    const stored = await readContributions(opts.tableName, pending);
    const writes: Array<{ key: string; next: Contribution; read?: Contribution; deltas: Map<string, { total: TouchedTotal; delta: string }> }> = [];
    for (const key of pending) {
      const entry = byRecord.get(key)!;
      const read = stored.get(key);
      const next = nextContribution(read, entry.record, entry.void);
      for (const c of [read, next]) {
        for (const t of await totalsOf(countedOf(c, opts), c, opts)) touched.set(JSON.stringify(t), t);
      }
      if (!next) {
        alreadyApplied += entry.count;
        continue;
      }
      const deltas = new Map<string, { total: TouchedTotal; delta: string }>();
      const add = async (c: Contribution | undefined, sign: 1 | -1) => {
        const counts = countedOf(c, opts);
        if (!counts) return;
        for (const total of await totalsOf(counts, c!, opts)) {
          const k = JSON.stringify(total);
          const before = deltas.get(k)?.delta ?? '0';
          deltas.set(k, { total, delta: sign > 0 ? addDecimals(before, counts.value) : subtractDecimals(before, counts.value) });
        }
      };
      await add(read, -1);
      await add(next, 1);
      writes.push({ key, next, read, deltas });
    }
    pending = [];
    for (const chunk of chunked(writes)) {
      const outcome = await writeChunk(opts, chunk);
      if (outcome === 'COMMITTED') {
        for (const w of chunk) applied += byRecord.get(w.key)!.count;
      } else {
        pending.push(...chunk.map((w) => w.key));
      }
    }
  }
  return { applied, alreadyApplied, touched: [...touched.values()] };
}

/** The contribution after the batch's changes, or undefined when they change nothing (already applied, or older). */
function nextContribution(read: Contribution | undefined, record?: LedgerChange, voided?: LedgerChange): Contribution | undefined {
  const first = record ?? voided!;
  let next: Contribution = read ?? { tenantId: first.tenantId, windowStart: first.windowStart, voided: false, ver: 0 };
  let changed = false;
  if (record && (next.rSeq === undefined || record.sequence > BigInt(next.rSeq))) {
    next = { ...next, metric: record.metric, value: record.value, rSeq: record.sequence.toString(), expiresAt: record.expiresAt ?? next.expiresAt };
    changed = true;
  }
  if (voided && (next.vSeq === undefined || voided.sequence > BigInt(next.vSeq))) {
    next = { ...next, voided: true, vSeq: voided.sequence.toString(), expiresAt: next.expiresAt ?? voided.expiresAt };
    changed = true;
  }
  return changed ? { ...next, ver: (read?.ver ?? 0) + 1 } : undefined;
}

/** What a contribution counts: its metric and value, unless voided or of a metric without entitlements. */
function countedOf(c: Contribution | undefined, opts: ApplyOptions): { metric: string; value: string } | undefined {
  if (!c || c.voided || c.metric === undefined || c.value === undefined) return undefined;
  if (opts.periodsOf(c.metric).length === 0 || compareDecimals(c.value, '0') === 0) return undefined;
  return { metric: c.metric, value: c.value };
}

/** The running totals a counted contribution adds to: one per entitlement period of its metric. */
async function totalsOf(counted: { metric: string } | undefined, c: Contribution | undefined, opts: ApplyOptions): Promise<TouchedTotal[]> {
  if (!counted || !c) return [];
  const startMs = Date.parse(c.windowStart);
  const periods = opts.periodsOf(counted.metric);
  const anchor = periods.includes('BILLING_PERIOD') ? await opts.anchorOf(c.tenantId) : undefined;
  return periods.map((period) => {
    const bounds = periodOf(period, startMs, anchor);
    return { tenantId: c.tenantId, metric: counted.metric, period, periodStartMs: bounds.startMs, periodEndMs: bounds.endMs };
  });
}

async function readContributions(tableName: string, keys: readonly string[]): Promise<Map<string, Contribution>> {
  const found = new Map<string, Contribution>();
  for (let i = 0; i < keys.length; i += 100) {
    let request = keys.slice(i, i + 100).map((k) => contributionKey(k));
    while (request.length > 0) {
      const res = await documentClient().send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: request, ConsistentRead: true } } }));
      for (const item of res.Responses?.[tableName] ?? []) {
        found.set(String(item.pk).slice(2), {
          tenantId: String(item.tenantId),
          windowStart: String(item.windowStart),
          metric: item.metric === undefined ? undefined : String(item.metric),
          value: item.value === undefined ? undefined : String(item.value),
          voided: item.voided === true,
          rSeq: item.rSeq === undefined ? undefined : String(item.rSeq),
          vSeq: item.vSeq === undefined ? undefined : String(item.vSeq),
          ver: Number(String(item.ver)),
          expiresAt: item.expiresAt === undefined ? undefined : Number(String(item.expiresAt)),
        });
      }
      request = (res.UnprocessedKeys?.[tableName]?.Keys ?? []) as typeof request;
      if (request.length > 0) await sleep(backoffMs(1, 50));
    }
  }
  return found;
}

type Write = { key: string; next: Contribution; read?: Contribution; deltas: Map<string, { total: TouchedTotal; delta: string }> };

/** Writes in groups whose contributions and totals fit one transaction. */
function* chunked(writes: readonly Write[]): Generator<Write[]> {
  let chunk: Write[] = [];
  let totals = new Set<string>();
  for (const w of writes) {
    const more = [...w.deltas.keys()].filter((k) => !totals.has(k));
    if (chunk.length > 0 && chunk.length + 1 + totals.size + more.length > TRANSACTION_ITEMS) {
      yield chunk;
      chunk = [];
      totals = new Set();
    }
    chunk.push(w);
    for (const k of w.deltas.keys()) totals.add(k);
  }
  if (chunk.length > 0) yield chunk;
}

/** One transaction: the chunk's contributions (each on condition that it is the one read) and its totals' differences. */
async function writeChunk(opts: ApplyOptions, chunk: readonly Write[]): Promise<'COMMITTED' | 'RETRY'> {
  const totals = new Map<string, { total: TouchedTotal; delta: string }>();
  for (const w of chunk) {
    for (const [k, d] of w.deltas) {
      const t = totals.get(k);
      totals.set(k, { total: d.total, delta: addDecimals(t?.delta ?? '0', d.delta) });
    }
  }
  const items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']> = chunk.map((w) => ({
    Put: {
      TableName: opts.tableName,
      Item: {
        ...contributionKey(w.key),
        tenantId: w.next.tenantId,
        windowStart: w.next.windowStart,
        ...(w.next.metric !== undefined ? { metric: w.next.metric, value: w.next.value } : {}),
        voided: w.next.voided,
        ...(w.next.rSeq !== undefined ? { rSeq: w.next.rSeq } : {}),
        ...(w.next.vSeq !== undefined ? { vSeq: w.next.vSeq } : {}),
        ver: w.next.ver,
        // Kept a day past the ledger item: a late redelivery still finds it.
        ...(w.next.expiresAt !== undefined ? { expiresAt: w.next.expiresAt + 86_400 } : {}),
      },
      ConditionExpression: w.read ? 'ver = :ver' : 'attribute_not_exists(pk)',
      ...(w.read ? { ExpressionAttributeValues: { ':ver': w.read.ver } } : {}),
    },
  }));
  for (const { total, delta } of totals.values()) {
    if (compareDecimals(delta, '0') === 0) continue;
    const periodStart = isoSeconds(total.periodStartMs);
    items.push({
      Update: {
        TableName: opts.tableName,
        Key: totalKey(total.tenantId, total.metric, total.period, periodStart),
        UpdateExpression: 'ADD used :delta, version :one SET tenantId = :t, metric = :m, period = :p, periodStart = :ps, periodEnd = :pe, expiresAt = :x',
        ExpressionAttributeValues: {
          ':delta': NumberValue.from(delta),
          ':one': 1,
          ':t': total.tenantId,
          ':m': total.metric,
          ':p': total.period,
          ':ps': periodStart,
          ':pe': isoSeconds(total.periodEndMs),
          ':x': Math.floor(total.periodEndMs / 1000) + opts.retentionSeconds,
        },
      },
    });
  }
  try {
    await documentClient().send(new TransactWriteCommand({ TransactItems: items }));
    return 'COMMITTED';
  } catch (error) {
    const codes = cancellationCodes(error);
    if (codes && codes.every((c) => c === undefined || c === 'None' || c === 'ConditionalCheckFailed' || c === 'TransactionConflict')) return 'RETRY';
    throw error;
  }
}

/** ISO-8601 UTC to the second. */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
