/**
 * The usage ingestor's capacity model: the AWS limits the path from producers
 * to `usageWindowClosed` events meets, the rates measured by
 * `BENCH_MODE=scale npx projen bench:ingest` (bench/closing-scale.ts), and what
 * follows from them for a given rate. The construct checks the props a user
 * gives against it at synth (`expectedRecordsPerSecond`), the closer uses its
 * thresholds, and docs/usage-ingestor.md ("Capacity model") prints its table.
 * Pure: no AWS SDK, no construct.
 */

/** The limits and measured rates the model rests on (each AWS figure with the page that states it). */
export const CAPACITY = {
  /**
   * DynamoDB: write units one partition serves per second; a ledger key is one
   * partition key. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html
   */
  partitionWriteUnits: 1_000,
  /** DynamoDB: read units one partition serves per second (strongly consistent: 4 KB each). Same page. */
  partitionReadUnits: 3_000,
  /** The share of a partition's write units a ledger key is planned at (headroom for the hash's spread: the capacity bench saw +10% on the busiest key). */
  ledgerKeyLoad: 0.8,
  /**
   * DynamoDB on-demand: read and write request units per second a table takes
   * by default (a quota you can raise).
   * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
   */
  tableQuotaUnits: 40_000,
  /**
   * Kinesis: records per second (and 1 MB/s) one shard takes; an on-demand
   * stream starts at 4 MB/s of writes.
   * https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
   */
  shardRecordsPerSecond: 1_000,
  /** Kinesis on-demand: write throughput of a new stream, in records per second of 1 KB or less (4 MB/s, as 4 shards). Same page. */
  onDemandInitialRecordsPerSecond: 4_000,
  /**
   * Lambda: concurrent executions of an account in a Region by default (aggregators, closing workers and every other function share them).
   * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
   */
  accountConcurrency: 1_000,
  /**
   * EventBridge PutEvents requests per second in us-east-1, us-west-2 and
   * eu-west-1 (2,400 or 1,200 elsewhere), each of up to 10 entries.
   * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
   */
  putEventsPerSecond: 10_000,
  /** Bytes of a ledger item (about 90 to 100: keys, metric, value, TTL). */
  ledgerItemBytes: 100,
  /** Bytes of a partial entry `[tenant, metric, units, count]`. */
  partialEntryBytes: 50,
  /**
   * One closing worker's fold (1,769 MB: one vCPU), ledger items per second,
   * the SDK's deserialization included: measured per second of CPU time on the
   * bench machine (2026-12-06: 92,000 to 100,000; bench/closing-scale.ts).
   */
  foldItemsPerSecond: 95_000,
  /** The merge, partial entries per second on one vCPU: measured likewise (1.01 to 1.05 million). */
  mergeEntriesPerSecond: 1_000_000,
  /** The closer's share of a vCPU (1,024 MB of 1,769). */
  closerCpuShare: 1024 / 1769,
  /** How long the closer folds a pass itself before it hands the window start to the fan-out (seconds). */
  inlineBudgetSeconds: 180,
  /** Fold time a fan-out segment is sized for (seconds). */
  segmentSeconds: 120,
  /** Queue, worker start and phase change, per phase of the fan-out (seconds, an allowance). */
  phaseSeconds: 5,
  /** Latency of one PutEvents request (seconds, an allowance). */
  putEventsLatencySeconds: 0.05,
  /** PutEvents requests in flight per announcing worker. */
  eventsConcurrency: 16,
  /** Most merge partitions of a job. */
  maxPartitions: 256,
  /**
   * Aggregator invocations one shard's batch slot can take a second (an allowance: the event source
   * mapping's turnaround, parsing, and one to a few rounds of 4 BatchWriteItem requests: about 200 ms).
   */
  aggregatorInvocationsPerSecond: 5,
  /**
   * Most closing workers at once: an SQS event source mapping processes at most 1,000 batches at once;
   * it starts with 5 and adds up to 300 a minute.
   * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
   */
  maxWorkers: 1_000,
  /** See `maxWorkers`. */
  queueInitialWorkers: 5,
  queueWorkersAddedPerMinute: 300,
} as const;

/**
 * When the last of `segments` pieces of work of `seconds` each is done, with
 * at most `max` workers, the queue's event source mapping starting at 5 and
 * adding 5 a second (seconds, whole).
 */
export function rampedSeconds(segments: number, seconds: number, max: number): number {
  const ends: number[] = [];
  let started = 0;
  for (let t = 0; started < segments; t++) {
    const capacity = Math.min(max, CAPACITY.queueInitialWorkers + Math.floor((t * CAPACITY.queueWorkersAddedPerMinute) / 60));
    const running = ends.filter((e) => e > t).length;
    for (let n = running; n < capacity && started < segments; n++, started++) ends.push(t + seconds);
  }
  return Math.ceil(Math.max(...ends));
}

/**
 * Ledger items from which the closer hands a window start to the fan-out
 * rather than fold it in its own run: what it folds in 80% of its budget.
 */
export const FAN_OUT_ITEMS = Math.round(CAPACITY.foldItemsPerSecond * CAPACITY.closerCpuShare * CAPACITY.inlineBudgetSeconds * 0.8);
/** Ledger items a closing worker is given to fold (its segment). */
export const SEGMENT_ITEMS = CAPACITY.foldItemsPerSecond * CAPACITY.segmentSeconds;

/** What the model is asked. */
export interface ClosingModelInput {
  readonly recordsPerSecond: number;
  readonly granularity: 'HOUR' | 'DAY';
  readonly ledgerKeys: number;
  /** Windows (tenant, metric) per window start. */
  readonly windows: number;
  /** The closer's interval (seconds): the longest wait before a closable window start is looked at. */
  readonly closingIntervalSeconds: number;
  /** @default CAPACITY.foldItemsPerSecond */
  readonly foldItemsPerSecond?: number;
  /** @default CAPACITY.mergeEntriesPerSecond */
  readonly mergeEntriesPerSecond?: number;
}

/** What the model answers, for one window start. */
export interface ClosingModel {
  readonly ledgerKeys: number;
  /** Ledger items of one window start. */
  readonly items: number;
  readonly fannedOut: boolean;
  /** Closing workers folding at once (1: the closer itself). */
  readonly workers: number;
  readonly partitions: number;
  readonly foldSeconds: number;
  /** Partial pages written and merged. */
  readonly mergeSeconds: number;
  readonly eventsSeconds: number;
  /** From the window's closesAt plus the margin to its last `usageWindowClosed` event (seconds). */
  readonly lagSeconds: number;
  /** Strongly consistent read units per second while the ledger is read. */
  readonly readUnitsPerSecond: number;
}

/** The closing of one window start at a steady rate. */
export function closingModel(input: ClosingModelInput): ClosingModel {
  const fold = input.foldItemsPerSecond ?? CAPACITY.foldItemsPerSecond;
  const merge = input.mergeEntriesPerSecond ?? CAPACITY.mergeEntriesPerSecond;
  const items = input.recordsPerSecond * (input.granularity === 'HOUR' ? 3_600 : 86_400);
  const eventRequests = Math.ceil(input.windows / 10);
  const readUnits = (items * CAPACITY.ledgerItemBytes) / 4096;
  if (items <= fold * CAPACITY.closerCpuShare * CAPACITY.inlineBudgetSeconds * 0.8) {
    const foldSeconds = items / (fold * CAPACITY.closerCpuShare);
    const eventsSeconds = eventRequests / Math.min(CAPACITY.putEventsPerSecond, 4 / CAPACITY.putEventsLatencySeconds);
    return {
      ledgerKeys: input.ledgerKeys,
      items,
      fannedOut: false,
      workers: 1,
      partitions: 0,
      foldSeconds,
      mergeSeconds: 0,
      eventsSeconds,
      lagSeconds: input.closingIntervalSeconds + foldSeconds + eventsSeconds,
      readUnitsPerSecond: readUnits / Math.max(foldSeconds, 1),
    };
  }
  const segments = Math.min(input.ledgerKeys, Math.max(1, Math.ceil(items / (fold * CAPACITY.segmentSeconds))));
  const workers = Math.min(segments, CAPACITY.maxWorkers, input.ledgerKeys);
  const perSegment = items / segments;
  // The closing queue's workers ramp up (5, then 5 more a second) to at most one per ledger key, 1,000 at most.
  const foldSeconds = rampedSeconds(segments, perSegment / fold, workers);
  const partitions = Math.min(CAPACITY.maxPartitions, segments);
  // Each segment's partial holds at most its items and at most every window.
  const partialEntries = segments * Math.min(input.windows, perSegment);
  const perPartition = partialEntries / partitions;
  // One partition key takes a partition's partial pages from every segment: 1,000 write units (KB) a second.
  const partialWriteSeconds = (perPartition * CAPACITY.partialEntryBytes) / 1024 / CAPACITY.partitionWriteUnits;
  const mergeSeconds = partialWriteSeconds + perPartition / merge;
  const eventsSeconds = Math.max(
    eventRequests / partitions / (CAPACITY.eventsConcurrency / CAPACITY.putEventsLatencySeconds),
    eventRequests / CAPACITY.putEventsPerSecond,
  );
  return {
    ledgerKeys: input.ledgerKeys,
    items,
    fannedOut: true,
    workers,
    partitions,
    foldSeconds,
    mergeSeconds,
    eventsSeconds,
    lagSeconds: input.closingIntervalSeconds + 3 * CAPACITY.phaseSeconds + foldSeconds + mergeSeconds + eventsSeconds,
    readUnitsPerSecond: readUnits / foldSeconds,
  };
}

/** Ledger keys that carry a rate at the planned load. */
export function ledgerKeysFor(recordsPerSecond: number): number {
  return Math.ceil(recordsPerSecond / (CAPACITY.partitionWriteUnits * CAPACITY.ledgerKeyLoad));
}

/** What the props say, for `capacityProblems`. */
export interface CapacityProps {
  readonly recordsPerSecond: number;
  readonly granularity: 'HOUR' | 'DAY';
  readonly ledgerKeys: number;
  /** Undefined for an on-demand stream. */
  readonly shardCount?: number;
  readonly parallelizationFactor: number;
  /** The aggregator's batch size. */
  readonly batchSize: number;
  readonly closingIntervalSeconds: number;
}

/** A problem the props have with the declared rate: an id (for the synth warning) and what to do. */
export interface CapacityProblem {
  readonly id: string;
  readonly message: string;
}

/** Where the declared rate outgrows the props (or a default quota a user must raise). */
export function capacityProblems(p: CapacityProps): CapacityProblem[] {
  const problems: CapacityProblem[] = [];
  const rate = p.recordsPerSecond;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const keysCarry = p.ledgerKeys * CAPACITY.partitionWriteUnits * CAPACITY.ledgerKeyLoad;
  if (keysCarry < rate) {
    const needed = Math.min(1024, ledgerKeysFor(rate));
    problems.push({
      id: 'ledgerKeys',
      message: `ledgerKeys ${p.ledgerKeys} carries about ${fmt(keysCarry)} records/s (each ledger key is a DynamoDB partition key, 1,000 write units a second, `
        + `planned at 80%), not the ${fmt(rate)} records/s of expectedRecordsPerSecond: set ledgerKeys to ${needed}${needed < ledgerKeysFor(rate) ? ' (the most; above that split producers over several ingestors)' : ''}. `
        + 'The number of ledger keys is fixed for the table\'s life: set it before the first deploy.',
    });
  }
  if (p.shardCount !== undefined && p.shardCount * CAPACITY.shardRecordsPerSecond < rate) {
    problems.push({
      id: 'shardCount',
      message: `shardCount ${p.shardCount} takes ${fmt(p.shardCount * CAPACITY.shardRecordsPerSecond)} records/s (1,000 per shard), not ${fmt(rate)}: `
        + `set shardCount to at least ${fmt(Math.ceil(rate / CAPACITY.shardRecordsPerSecond / CAPACITY.ledgerKeyLoad))}, or use StreamMode.ON_DEMAND.`,
    });
  }
  if (p.shardCount === undefined && rate > CAPACITY.onDemandInitialRecordsPerSecond) {
    problems.push({
      id: 'onDemandStart',
      message: `a new on-demand stream takes 4 MB/s (about ${fmt(CAPACITY.onDemandInitialRecordsPerSecond)} records/s) and grows with its traffic: to take `
        + `${fmt(rate)} records/s from the first day, warm the stream (On-demand Advantage) or start with StreamMode.PROVISIONED and `
        + `shardCount ${fmt(Math.ceil(rate / CAPACITY.shardRecordsPerSecond / CAPACITY.ledgerKeyLoad))}; producers must use a partition key that spreads `
        + 'records (the record id), since one partition key goes to one shard of 1,000 records/s.',
    });
  }
  if (rate > CAPACITY.tableQuotaUnits * CAPACITY.ledgerKeyLoad) {
    problems.push({
      id: 'tableQuota',
      message: `the usage table takes ${fmt(rate)} write units a second at this rate (one per record); on-demand tables take 40,000 a second by default: `
        + `ask for a table-level write quota of at least ${fmt(Math.ceil(rate / 0.8 / 1000) * 1000)} (Service Quotas, DynamoDB) before you reach it.`,
    });
  }
  // A shard takes up to 1,000 records/s (an on-demand stream's shards as much, with record ids as partition keys).
  const perShard = Math.min(CAPACITY.shardRecordsPerSecond, rate / (p.shardCount ?? 1));
  const perShardCapacity = p.batchSize * p.parallelizationFactor * CAPACITY.aggregatorInvocationsPerSecond;
  if (perShardCapacity < perShard) {
    problems.push({
      id: 'aggregatorBatch',
      message: `the aggregator reads one shard at about ${fmt(perShardCapacity)} records/s with batchSize ${p.batchSize} and parallelizationFactor `
        + `${p.parallelizationFactor} (about 5 invocations a second per batch slot), and a shard brings up to ${fmt(perShard)}: set batchSize to `
        + `${Math.ceil(perShard / p.parallelizationFactor / CAPACITY.aggregatorInvocationsPerSecond / 100) * 100} or more, or raise parallelizationFactor `
        + '(write units and requests per record do not change with the batch size).',
    });
  }
  const shards = p.shardCount ?? Math.ceil(rate / CAPACITY.shardRecordsPerSecond);
  const model = closingModel({
    recordsPerSecond: rate, granularity: p.granularity, ledgerKeys: p.ledgerKeys, windows: 0, closingIntervalSeconds: p.closingIntervalSeconds,
  });
  const concurrency = shards * p.parallelizationFactor + (model.fannedOut ? model.workers : 1);
  if (concurrency > CAPACITY.accountConcurrency * 0.8) {
    problems.push({
      id: 'lambdaConcurrency',
      message: `about ${fmt(shards * p.parallelizationFactor)} aggregators (a shard per ${fmt(CAPACITY.shardRecordsPerSecond)} records/s times parallelizationFactor `
        + `${p.parallelizationFactor}) and ${fmt(model.workers)} closing workers run at once: more than 80% of the 1,000 concurrent executions `
        + 'a Region allows an account by default; ask for a higher Lambda concurrency quota.',
    });
  }
  if (model.fannedOut && model.readUnitsPerSecond > CAPACITY.tableQuotaUnits) {
    problems.push({
      id: 'closingReads',
      message: `closing a ${p.granularity === 'HOUR' ? 'hourly' : 'daily'} window start at this rate reads about ${fmt(model.readUnitsPerSecond)} read units a second `
        + `for ${fmt(model.foldSeconds)} s: ask for a table-level read quota at least that high (40,000 by default), or closing takes longer.`,
    });
  }
  if (model.lagSeconds > 600) {
    problems.push({
      id: 'closingLag',
      message: `closing a window start takes about ${fmt(model.lagSeconds / 60)} minutes by the capacity model (${fmt(model.workers)} workers, `
        + `${fmt(model.items / model.workers)} ledger items each): raise ledgerKeys (up to 1,024), or lower closingInterval.`,
    });
  }
  return problems;
}

/** The modeled time a window start's closing takes once the closer starts it (seconds): the model's lag less the wait for the closer. */
export function closingRunSeconds(p: CapacityProps): number {
  const m = closingModel({
    recordsPerSecond: p.recordsPerSecond, granularity: p.granularity, ledgerKeys: p.ledgerKeys, windows: 0, closingIntervalSeconds: 0,
  });
  return m.lagSeconds;
}
