/**
 * The closing fan-out of one window start, spread over the closing workers
 * through the closing queue (SQS, read by the workers' event source mapping):
 *
 *   FOLD      one message per segment of ledger keys: a worker folds the
 *             segment into a partial (per merge partition), writes its pages,
 *             then the segment's done marker. A worker short of time writes the
 *             part it finished as a segment of its own and queues the rest.
 *   MERGE     when the done segments tile every ledger key, one message per
 *             partition: a worker merges, from a tiling of the done segments,
 *             each segment's pages of its partition (every ledger key once)
 *             into the closed pages of the partition's tenant groups, then marks
 *             the partition merged.
 *   ANNOUNCE  when every partition is merged, the index item is written (the
 *             window start becomes readable) and one message per partition
 *             puts its `usageWindowClosed` events.
 *   done      when every partition is announced, the closer's state moves past
 *             the window start and the job is removed.
 *
 * Each phase change is a conditional write of the job's `phase` on the closer
 * state item: exactly one worker (or the closer, tending a stalled job) moves
 * it on and queues the next phase's messages. Every message can be handled
 * twice (SQS delivers at least once) without changing what was written.
 */
import {
  AttributeValue, DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ClosingConfig, foldLedgerKey, putClosedEvents, putClosedIndex, putClosedPages, quarantineUnmatchedVoids } from './closing';
import { forEachConcurrently, Item, LedgerFold, MAX_PAGE_BYTES, Page, PageEntry, queryItems, TARGET_GROUP_BYTES } from './ledger';
import { MAX_PARTIAL_PAGE_BYTES, PartialEntry, partialPages, PartialTotals, Segment, splitSegments, tiling, uncovered } from './partials';
import { batchWriteAll, isConditionalCheckFailed } from '../../shared.lambda/dynamodb';
import { withRetry } from '../../shared.lambda/retry';
import { ClosingMessage, WINDOW_LENGTH_MS } from '../ingestor-contract';
import {
  CLOSED_ATTRIBUTES, closedPagesPk, CLOSER_STATE, CLOSER_STATE_KEY, JOB_MARKERS, jobPk, NEXT_WINDOW_START, parseSegmentKey,
  partialPageSk, partialPagesPk, partitionMarkerSk, segmentDoneSk, TABLE_KEYS, tenantGroupOf,
} from '../layout';

/** Most merge partitions of a job. */
export const MAX_PARTITIONS = 256;
/** Ledger keys a worker reads at once. */
const READ_CONCURRENCY = 8;
/** How long fan-out bookkeeping (partials, markers) is kept. */
const JOB_ITEMS_RETENTION_SECONDS = 7 * 86_400;
/** `usageWindowClosed` requests in flight per announcing worker. */
const EVENTS_CONCURRENCY = 16;

/** The fan-out job of a window start, as the closer state holds it (`CLOSER_STATE.job`). */
export interface ClosingJob {
  readonly windowStart: string;
  readonly ledgerKeys: number;
  readonly partitions: number;
  /** Ledger keys per FOLD message. */
  readonly segmentSize: number;
  readonly phase: 'FOLD' | 'MERGE' | 'ANNOUNCE';
  /** Set from MERGE on. */
  readonly groups?: number;
  /** When the job started, or was last tended (epoch ms). */
  readonly startedAt: number;
}

/** The job as a DynamoDB map. */
export function jobAttribute(job: ClosingJob): AttributeValue {
  const m: Record<string, AttributeValue> = {
    windowStart: { S: job.windowStart },
    ledgerKeys: { N: String(job.ledgerKeys) },
    partitions: { N: String(job.partitions) },
    segmentSize: { N: String(job.segmentSize) },
    phase: { S: job.phase },
    startedAt: { N: String(job.startedAt) },
  };
  if (job.groups !== undefined) m.groups = { N: String(job.groups) };
  return { M: m };
}

/** The job of a DynamoDB map, or undefined. */
export function jobOf(value: AttributeValue | undefined): ClosingJob | undefined {
  const m = value?.M;
  if (!m) return undefined;
  return {
    windowStart: m.windowStart.S!,
    ledgerKeys: Number(m.ledgerKeys.N),
    partitions: Number(m.partitions.N),
    segmentSize: Number(m.segmentSize.N),
    phase: m.phase.S as ClosingJob['phase'],
    groups: m.groups?.N !== undefined ? Number(m.groups.N) : undefined,
    startedAt: Number(m.startedAt.N),
  };
}

/** What the fan-out needs: the window settings. */
export type FanOutConfig = ClosingConfig;

/** The AWS clients of the fan-out. */
export interface FanOutClients {
  readonly db: DynamoDBClient;
  readonly events: EventBridgeClient;
  readonly sqs: SQSClient;
}

/** What a worker did with a message (for its log and the tests). */
export interface ClosingWorkSummary {
  readonly kind: ClosingMessage['kind'];
  readonly windowStart: string;
  /** The work was found done already (a message handled twice). */
  readonly skipped: boolean;
  readonly ledgerItemsRead?: number;
  /** FOLD: the keys left for another message when the worker ran short of time. */
  readonly continued?: Segment;
  readonly windows?: number;
  /** The phase this message moved the job on to, if it did. */
  readonly advancedTo?: string;
}

/** Sends messages to the closing queue, 10 per request; entries SQS refuses are sent again. */
export async function sendClosingMessages(sqs: SQSClient, queueUrl: string, messages: readonly ClosingMessage[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    let pending = messages.slice(i, i + 10).map((m, n) => ({ Id: String(n), MessageBody: JSON.stringify(m) }));
    await withRetry(async () => {
      const res = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending }));
      const failed = new Set((res.Failed ?? []).map((f) => f.Id));
      pending = pending.filter((e) => failed.has(e.Id));
      if (pending.length > 0) throw new Error(`SQS refused ${pending.length} closing messages: ${res.Failed?.[0]?.Code}`);
    }, { attempts: 6, baseDelayMs: 100 });
  }
}

/** The FOLD messages of segments. */
export function foldMessages(job: ClosingJob, segments: readonly Segment[], queueUrl: string): ClosingMessage[] {
  return segments.map((s) => ({
    kind: 'FOLD', queueUrl, windowStart: job.windowStart, ledgerKeys: job.ledgerKeys, partitions: job.partitions, from: s.from, to: s.to,
  }));
}

function partitionMessages(job: ClosingJob, kind: 'MERGE' | 'ANNOUNCE', partitions: readonly number[], queueUrl: string): ClosingMessage[] {
  return partitions.map((partition) => ({
    kind, queueUrl, windowStart: job.windowStart, ledgerKeys: job.ledgerKeys, partitions: job.partitions, partition, groups: job.groups,
  }));
}

/** The work of the closing fan-out, for one window start's job. */
export class ClosingWork {
  constructor(private readonly config: FanOutConfig, private readonly clients: FanOutClients) {}

  /** Handles one message of the closing queue; `hasTimeLeft` tells a FOLD worker when to stop and queue the rest. */
  public async handle(message: ClosingMessage, hasTimeLeft: () => boolean): Promise<ClosingWorkSummary> {
    switch (message.kind) {
      case 'FOLD':
        return this.fold(message, hasTimeLeft);
      case 'MERGE':
        return this.merge(message);
      case 'ANNOUNCE':
        return this.announce(message);
      default:
        throw new Error(`Unknown closing message kind ${JSON.stringify((message as { kind?: unknown }).kind)}`);
    }
  }

  /** Folds ledger keys `[from, to)` (in order; those done when time runs short become a segment of their own). */
  private async fold(m: ClosingMessage, hasTimeLeft: () => boolean): Promise<ClosingWorkSummary> {
    const { windowStart } = m;
    const from = m.from!;
    const to = m.to!;
    const base = { kind: m.kind, windowStart } as const;
    if (await this.exists(jobPk(windowStart), segmentDoneSk(from, to))) {
      return { ...base, skipped: true, advancedTo: await this.advanceIfFolded(windowStart, m.queueUrl) };
    }
    const startMs = Date.parse(windowStart);
    const endMs = startMs + WINDOW_LENGTH_MS[this.config.granularity];
    // One fold per ledger key (a void is matched within its key); keys are taken in order and
    // added to the partial as soon as every key before them is done, so that the finished prefix
    // can be written alone when time runs short.
    const totals = new PartialTotals();
    const done = new Map<number, LedgerFold>();
    let prefix = from;
    let items = 0;
    let voids = 0;
    const unmatched: LedgerFold['unmatchedVoids'] = [];
    let stopped = false;
    const stop = () => stopped || (stopped = !hasTimeLeft());
    await forEachConcurrently(Array.from({ length: to - from }, (_, i) => from + i), READ_CONCURRENCY, async (key) => {
      if (stop()) return;
      const fold = new LedgerFold();
      if (!(await foldLedgerKey(this.clients.db, this.config.tableName, key, startMs, endMs, fold, stop))) return;
      done.set(key, fold);
      while (done.has(prefix)) {
        const f = done.get(prefix)!;
        done.delete(prefix);
        totals.addFold(f.totals.get(windowStart) ?? new Map());
        items += f.itemsRead;
        voids += f.voidsApplied;
        unmatched.push(...f.unmatchedVoids);
        prefix++;
      }
    });
    if (prefix === from) throw new Error(`no ledger key of [${from}, ${to}) of ${windowStart} could be folded in the time left; the message will be retried`);
    await quarantineUnmatchedVoids(this.clients.db, this.config, unmatched);
    await this.writePartial(m, { from, to: prefix }, totals, items, voids);
    let continued: Segment | undefined;
    if (prefix < to) {
      continued = { from: prefix, to };
      await sendClosingMessages(this.clients.sqs, m.queueUrl, [{ ...m, from: prefix, to }]);
    }
    return { ...base, skipped: false, ledgerItemsRead: items, continued, advancedTo: await this.advanceIfFolded(windowStart, m.queueUrl) };
  }

  /** Writes a segment's partial pages, then (last) its done marker. */
  private async writePartial(m: ClosingMessage, segment: Segment, totals: PartialTotals, items: number, voids: number): Promise<void> {
    const expiresAt = { N: String(Math.floor(Date.now() / 1000) + JOB_ITEMS_RETENTION_SECONDS) };
    const pages = partialPages(totals, m.partitions, MAX_PARTIAL_PAGE_BYTES);
    const requests = pages.flatMap((list, partition) => list.map((entries, page) => ({
      PutRequest: {
        Item: {
          [TABLE_KEYS.partitionKey]: { S: partialPagesPk(m.windowStart, partition) },
          [TABLE_KEYS.sortKey]: { S: partialPageSk(segment.from, segment.to, page) },
          entries: { S: JSON.stringify(entries) },
          [TABLE_KEYS.timeToLive]: expiresAt,
        },
      },
    })));
    // Rewriting a page writes the same content (the ledger of a closable window never changes).
    await batchWriteAll(this.clients.db, this.config.tableName, requests, { concurrency: 4 });
    const bytes = totals.entries().reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e), 'utf8') + 1, 0);
    await this.clients.db.send(new PutItemCommand({
      TableName: this.config.tableName,
      Item: {
        [TABLE_KEYS.partitionKey]: { S: jobPk(m.windowStart) },
        [TABLE_KEYS.sortKey]: { S: segmentDoneSk(segment.from, segment.to) },
        pages: { S: JSON.stringify(pages.map((list) => list.length)) },
        items: { N: String(items) },
        voids: { N: String(voids) },
        bytes: { N: String(bytes) },
        [TABLE_KEYS.timeToLive]: expiresAt,
      },
    }));
  }

  /** The done segments of a window start, with their page counts per partition and sizes. */
  private async doneSegments(windowStart: string): Promise<Array<Segment & { pages: number[]; items: number; voids: number; bytes: number }>> {
    const out: Array<Segment & { pages: number[]; items: number; voids: number; bytes: number }> = [];
    for await (const item of this.markers(windowStart, JOB_MARKERS.segment)) {
      out.push({
        ...parseSegmentKey(item[TABLE_KEYS.sortKey].S!.slice(JOB_MARKERS.segment.length)),
        pages: JSON.parse(item.pages.S!) as number[],
        items: Number(item.items.N),
        voids: Number(item.voids.N),
        bytes: Number(item.bytes.N),
      });
    }
    return out;
  }

  /** Once the done segments tile every ledger key, moves the job to MERGE (one caller does) and queues the merges. */
  public async advanceIfFolded(windowStart: string, queueUrl: string): Promise<string | undefined> {
    const job = await this.job(windowStart);
    if (!job || job.phase !== 'FOLD') return undefined;
    const done = await this.doneSegments(windowStart);
    const tiles = tiling(done, job.ledgerKeys);
    if (!tiles) return undefined;
    // Tenant groups of the closed pages: a multiple of the partitions (each group is written by one
    // partition's merge), about TARGET_GROUP_BYTES each for the largest segment's windows.
    const largest = Math.max(...done.filter((s) => tiles.some((t) => t.from === s.from && t.to === s.to)).map((s) => s.bytes), 0);
    const groups = job.partitions * Math.max(1, Math.ceil(largest / (job.partitions * TARGET_GROUP_BYTES)));
    const next: ClosingJob = { ...job, phase: 'MERGE', groups };
    if (!(await this.moveJob(job, next))) return undefined;
    await sendClosingMessages(this.clients.sqs, queueUrl, partitionMessages(next, 'MERGE', [...Array(job.partitions).keys()], queueUrl));
    return 'MERGE';
  }

  /** Merges one partition of every segment of a tiling into the closed pages of its tenant groups. */
  private async merge(m: ClosingMessage): Promise<ClosingWorkSummary> {
    const { windowStart } = m;
    const partition = m.partition!;
    const groups = m.groups!;
    const base = { kind: m.kind, windowStart } as const;
    if (await this.exists(jobPk(windowStart), partitionMarkerSk('merged', partition))) {
      return { ...base, skipped: true, advancedTo: await this.advanceIfMerged(windowStart, m.queueUrl) };
    }
    const done = await this.doneSegments(windowStart);
    const tiles = tiling(done, m.ledgerKeys);
    if (!tiles) throw new Error(`the done segments of ${windowStart} do not cover every ledger key: nothing to merge yet`);
    const pagesOf = new Map(done.map((s) => [`${s.from}-${s.to}`, s.pages[partition] ?? 0]));
    const wanted = new Set(tiles.map((t) => `${t.from}-${t.to}`));
    const totals = new PartialTotals();
    let pagesRead = 0;
    for await (const item of queryItems(this.clients.db, {
      TableName: this.config.tableName,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
      ExpressionAttributeValues: { ':pk': { S: partialPagesPk(windowStart, partition) } },
      ConsistentRead: true,
    })) {
      const [segment, page] = item[TABLE_KEYS.sortKey].S!.split('#');
      const { from, to } = parseSegmentKey(segment);
      const key = `${from}-${to}`;
      // Only the segments of the tiling, and only the pages their done marker counts: a partial
      // written by a worker that stopped before its done marker, or by an earlier split, is left out.
      if (!wanted.has(key) || Number(page) >= (pagesOf.get(key) ?? 0)) continue;
      totals.addEntries(JSON.parse(item.entries.S!) as PartialEntry[]);
      pagesRead++;
    }
    const expected = tiles.reduce((n, t) => n + (pagesOf.get(`${t.from}-${t.to}`) ?? 0), 0);
    if (pagesRead !== expected) throw new Error(`partition ${partition} of ${windowStart}: read ${pagesRead} partial pages, the done segments wrote ${expected}`);
    const closedAt = new Date(Date.now()).toISOString();
    const pages = groupPages(totals.closedEntries(), groups, partition, m.partitions);
    await putClosedPages(this.clients.db, this.config.tableName, windowStart, pages, closedAt);
    await this.clients.db.send(new PutItemCommand({
      TableName: this.config.tableName,
      Item: {
        [TABLE_KEYS.partitionKey]: { S: jobPk(windowStart) },
        [TABLE_KEYS.sortKey]: { S: partitionMarkerSk('merged', partition) },
        windows: { N: String(totals.size) },
        [TABLE_KEYS.timeToLive]: { N: String(Math.floor(Date.now() / 1000) + JOB_ITEMS_RETENTION_SECONDS) },
      },
    }));
    return { ...base, skipped: false, windows: totals.size, advancedTo: await this.advanceIfMerged(windowStart, m.queueUrl) };
  }

  /** Once every partition is merged: writes the index item (the window start becomes readable), moves to ANNOUNCE and queues the announcements. */
  public async advanceIfMerged(windowStart: string, queueUrl: string): Promise<string | undefined> {
    const job = await this.job(windowStart);
    if (!job || job.phase !== 'MERGE') return undefined;
    let windows = 0;
    let merged = 0;
    for await (const item of this.markers(windowStart, JOB_MARKERS.merged)) {
      merged++;
      windows += Number(item.windows.N);
    }
    if (merged < job.partitions) return undefined;
    // Every page is written: the index item may go (written once; a second caller finds it).
    await putClosedIndex(this.clients.db, this.config, windowStart, job.groups!, windows, new Date(Date.now()).toISOString());
    const next: ClosingJob = { ...job, phase: 'ANNOUNCE' };
    if (!(await this.moveJob(job, next))) return undefined;
    await sendClosingMessages(this.clients.sqs, queueUrl, partitionMessages(next, 'ANNOUNCE', [...Array(job.partitions).keys()], queueUrl));
    return 'ANNOUNCE';
  }

  /** Puts the `usageWindowClosed` events of one partition's tenant groups. */
  private async announce(m: ClosingMessage): Promise<ClosingWorkSummary> {
    const { windowStart } = m;
    const partition = m.partition!;
    const base = { kind: m.kind, windowStart } as const;
    if (await this.exists(jobPk(windowStart), partitionMarkerSk('announced', partition))) {
      return { ...base, skipped: true, advancedTo: await this.finishIfAnnounced(windowStart) };
    }
    let windows = 0;
    for (let group = partition; group < m.groups!; group += m.partitions) {
      for await (const page of queryItems(this.clients.db, {
        TableName: this.config.tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
        ExpressionAttributeValues: { ':pk': { S: closedPagesPk(windowStart, group) } },
        ConsistentRead: true,
      })) {
        const entries = JSON.parse(page[CLOSED_ATTRIBUTES.windows].S!) as PageEntry[];
        const closedAt = page[CLOSED_ATTRIBUTES.closedAt].S!;
        await putClosedEvents(this.clients.events, this.config, Date.parse(windowStart), entries, closedAt, EVENTS_CONCURRENCY);
        windows += entries.length;
      }
    }
    await this.clients.db.send(new PutItemCommand({
      TableName: this.config.tableName,
      Item: {
        [TABLE_KEYS.partitionKey]: { S: jobPk(windowStart) },
        [TABLE_KEYS.sortKey]: { S: partitionMarkerSk('announced', partition) },
        [TABLE_KEYS.timeToLive]: { N: String(Math.floor(Date.now() / 1000) + JOB_ITEMS_RETENTION_SECONDS) },
      },
    }));
    return { ...base, skipped: false, windows, advancedTo: await this.finishIfAnnounced(windowStart) };
  }

  /** Once every partition is announced: the closer's state moves past the window start, and the job goes. */
  public async finishIfAnnounced(windowStart: string): Promise<string | undefined> {
    const job = await this.job(windowStart);
    if (!job || job.phase !== 'ANNOUNCE') return undefined;
    let announced = 0;
    for await (const _ of this.markers(windowStart, JOB_MARKERS.announced)) announced++;
    if (announced < job.partitions) return undefined;
    const items = (await this.doneSegments(windowStart)).reduce((n, s) => n + s.items, 0);
    const next = Date.parse(windowStart) + WINDOW_LENGTH_MS[this.config.granularity];
    try {
      await this.clients.db.send(new UpdateItemCommand({
        TableName: this.config.tableName,
        Key: stateKey(),
        UpdateExpression: 'SET #next = :next, #items = :items REMOVE #job',
        ConditionExpression: '#job.#w = :w AND #job.#phase = :phase',
        ExpressionAttributeNames: {
          '#next': NEXT_WINDOW_START, '#items': CLOSER_STATE.ledgerItems, '#job': CLOSER_STATE.job, '#w': 'windowStart', '#phase': 'phase',
        },
        ExpressionAttributeValues: { ':next': { N: String(next) }, ':items': { N: String(items) }, ':w': { S: windowStart }, ':phase': { S: 'ANNOUNCE' } },
      }));
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
    return 'CLOSED';
  }

  /**
   * Queues again what a stalled job still misses (a message that went to the
   * closing dead-letter queue, a phase change whose messages were never sent),
   * or moves it on when its phase is complete. Handling a message twice is
   * harmless, so it may resend work that is merely slow.
   */
  public async tend(job: ClosingJob, queueUrl: string): Promise<void> {
    if (job.phase === 'FOLD') {
      if (await this.advanceIfFolded(job.windowStart, queueUrl)) return;
      const missing = splitSegments(uncovered(await this.doneSegments(job.windowStart), job.ledgerKeys), job.segmentSize);
      await sendClosingMessages(this.clients.sqs, queueUrl, foldMessages(job, missing, queueUrl));
      return;
    }
    const kind = job.phase === 'MERGE' ? 'merged' : 'announced';
    const moved = job.phase === 'MERGE' ? await this.advanceIfMerged(job.windowStart, queueUrl) : await this.finishIfAnnounced(job.windowStart);
    if (moved) return;
    const have = new Set<number>();
    for await (const item of this.markers(job.windowStart, JOB_MARKERS[kind])) have.add(Number(item[TABLE_KEYS.sortKey].S!.slice(2)));
    const missing = [...Array(job.partitions).keys()].filter((p) => !have.has(p));
    await sendClosingMessages(this.clients.sqs, queueUrl, partitionMessages(job, job.phase, missing, queueUrl));
  }

  /** The job of the window start from the closer state, if it is that window start's. */
  private async job(windowStart: string): Promise<ClosingJob | undefined> {
    const res = await this.clients.db.send(new GetItemCommand({ TableName: this.config.tableName, Key: stateKey(), ConsistentRead: true }));
    const job = jobOf(res.Item?.[CLOSER_STATE.job]);
    return job?.windowStart === windowStart ? job : undefined;
  }

  /** Moves the job from one phase to the next; false when another caller did first. */
  private async moveJob(from: ClosingJob, to: ClosingJob): Promise<boolean> {
    try {
      await this.clients.db.send(new UpdateItemCommand({
        TableName: this.config.tableName,
        Key: stateKey(),
        UpdateExpression: 'SET #job = :job',
        ConditionExpression: '#job.#w = :w AND #job.#phase = :phase',
        ExpressionAttributeNames: { '#job': CLOSER_STATE.job, '#w': 'windowStart', '#phase': 'phase' },
        ExpressionAttributeValues: { ':job': jobAttribute(to), ':w': { S: from.windowStart }, ':phase': { S: from.phase } },
      }));
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  private markers(windowStart: string, prefix: string): AsyncGenerator<Item> {
    return queryItems(this.clients.db, {
      TableName: this.config.tableName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
      ExpressionAttributeValues: { ':pk': { S: jobPk(windowStart) }, ':prefix': { S: prefix } },
      ConsistentRead: true,
    });
  }

  private async exists(pk: string, sk: string): Promise<boolean> {
    const res = await this.clients.db.send(new GetItemCommand({
      TableName: this.config.tableName,
      Key: { [TABLE_KEYS.partitionKey]: { S: pk }, [TABLE_KEYS.sortKey]: { S: sk } },
      ConsistentRead: true,
      ProjectionExpression: '#pk',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
    }));
    return res.Item !== undefined;
  }
}

function stateKey(): Item {
  return { [TABLE_KEYS.partitionKey]: { S: CLOSER_STATE_KEY.pk }, [TABLE_KEYS.sortKey]: { S: CLOSER_STATE_KEY.sk } };
}

/**
 * The closed pages of one merge partition: its windows by tenant group (the
 * groups `g` with `g % partitions == partition`, since `partitions` divides
 * `groups`), each group cut into pages of at most `MAX_PAGE_BYTES`.
 */
export function groupPages(entries: readonly PageEntry[], groups: number, partition: number, partitions: number): Page[] {
  const byGroup = new Map<number, PageEntry[]>();
  for (const e of entries) {
    const g = tenantGroupOf(e[0], groups);
    if (g % partitions !== partition) throw new Error(`tenant ${JSON.stringify(e[0])} is in group ${g}, not in partition ${partition} of ${partitions}`);
    const list = byGroup.get(g) ?? [];
    list.push(e);
    byGroup.set(g, list);
  }
  const pages: Page[] = [];
  for (const [group, list] of [...byGroup.entries()].sort(([a], [b]) => a - b)) {
    let current: PageEntry[] = [];
    let bytes = 0;
    let page = 0;
    for (const e of list) {
      const size = Buffer.byteLength(JSON.stringify(e), 'utf8') + 1;
      if (current.length > 0 && bytes + size > MAX_PAGE_BYTES) {
        pages.push({ group, page: page++, entries: current });
        current = [];
        bytes = 0;
      }
      current.push(e);
      bytes += size;
    }
    if (current.length > 0) pages.push({ group, page, entries: current });
  }
  return pages;
}
