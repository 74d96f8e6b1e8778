/**
 * The ledger change feed's records as a consumer reads them: one DynamoDB
 * stream record of the usage table (a ledger record or void written,
 * `ILedgerChangeFeed.bindConsumer`) decoded into what changed, without the
 * consumer knowing the ledger's layout.
 *
 * - Each change names its record (`recordKey`: the same for a record and the
 *   voids of it) and the change's `sequence`: DynamoDB assigns each stream
 *   record a sequence number "reflecting the order in which the record was
 *   published to the stream" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html),
 *   so two changes of one ledger item are ordered by it, whatever order they are delivered in.
 * - A record's change carries its metric and value after the change; a void's
 *   carries only that the record is voided (a void names no metric).
 *
 * Handler-side module; no AWS SDK.
 */
import type { AttributeValue, DynamoDBRecord } from 'aws-lambda';
import { LEDGER_ATTRIBUTES, parseLedgerSk, TABLE_KEYS, VOID_SUFFIX } from '../layout';

/** One change of the ledger. */
export interface LedgerChange {
  /** `RECORD`: a record written or changed by a resend; `VOID`: a void of a record written. */
  readonly kind: 'RECORD' | 'VOID';
  /** The record it concerns (a void: the record it voids), unique in the ledger. */
  readonly recordKey: string;
  readonly tenantId: string;
  /** The record's window start, ISO-8601 to the second. */
  readonly windowStart: string;
  /** The record's id (a void: the voided record's). */
  readonly recordId: string;
  /** The stream sequence number of the change: later changes of the same ledger item have greater ones. */
  readonly sequence: bigint;
  /** A record: its metric after the change. */
  readonly metric?: string;
  /** A record: its value after the change (exact decimal string). */
  readonly value?: string;
  /** When the ledger item expires (epoch seconds): the change means nothing after it. */
  readonly expiresAt?: number;
}

/** The ledger change a stream record describes; undefined for anything else (a removal by TTL, another item). */
export function ledgerChangeOf(record: DynamoDBRecord): LedgerChange | undefined {
  if (record.eventName !== 'INSERT' && record.eventName !== 'MODIFY') return undefined;
  const keys = record.dynamodb?.Keys as Record<string, AttributeValue> | undefined;
  const image = record.dynamodb?.NewImage as Record<string, AttributeValue> | undefined;
  const pk = keys?.[TABLE_KEYS.partitionKey]?.S;
  const sk = keys?.[TABLE_KEYS.sortKey]?.S;
  const sequence = record.dynamodb?.SequenceNumber;
  if (!pk?.startsWith('L#') || sk === undefined || !image || sequence === undefined || !/^\d+$/.test(sequence)) return undefined;
  const key = parseLedgerSk(sk);
  const recordSk = key.isVoid ? sk.slice(0, -VOID_SUFFIX.length) : sk;
  const expires = image[TABLE_KEYS.timeToLive]?.N;
  const common = {
    recordKey: `${pk}|${recordSk}`,
    tenantId: key.tenantId,
    windowStart: key.windowStart,
    recordId: key.recordId,
    sequence: BigInt(sequence),
    ...(expires !== undefined ? { expiresAt: Number(expires) } : {}),
  };
  if (key.isVoid) return { kind: 'VOID', ...common };
  const metric = image[LEDGER_ATTRIBUTES.metric]?.S;
  const value = image[LEDGER_ATTRIBUTES.value]?.N;
  if (metric === undefined || value === undefined) return undefined;
  return { kind: 'RECORD', ...common, metric, value };
}
