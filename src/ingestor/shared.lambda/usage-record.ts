/**
 * The usage record and its window: parsing, validation and exact decimal sums.
 * Pure functions shared by the aggregator handler, its tests and the benchmark.
 * Handler-only code: never exported from the library's entry point.
 */
import { aggregateSkOf, isoSeconds, WINDOW_LENGTH_MS } from '../layout';

/** Granularity of aggregation windows. */
export type Granularity = 'HOUR' | 'DAY';

/** Why a record was set aside in the quarantine instead of being counted. */
export type QuarantineReason =
  /** The data is not UTF-8 JSON, or not a JSON object. */
  | 'INVALID_JSON'
  /** A required field is absent. */
  | 'MISSING_FIELD'
  /** A field has the wrong type or an out-of-range value. */
  | 'INVALID_FIELD'
  /** The event time is further in the future than the allowed clock skew. */
  | 'FUTURE_TIMESTAMP'
  /** The record's window had already closed when it was processed. */
  | 'LATE';

/** The largest `value` accepted (keeps every sum within DynamoDB's 38 digits). */
export const MAX_VALUE = 1e15;
/** The most fractional digits a `value` may have. */
export const MAX_FRACTION_DIGITS = 9;
/** Longest `id`. */
export const MAX_ID_LENGTH = 256;
/** Longest `tenantId` and `metric`. */
export const MAX_NAME_LENGTH = 128;

/** A usage record that passed validation, with its window. */
export interface ValidRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly metric: string;
  /** `value` as an exact decimal string. */
  readonly value: string;
  readonly timestampMs: number;
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  /** Epoch seconds from which the window never changes (window end + allowed lateness). */
  readonly closesAt: number;
  /** The aggregate's sort key. */
  readonly aggregateSk: string;
}

/** The outcome of parsing one record's data. */
export type ParseResult =
  | { readonly ok: true; readonly record: ValidRecord }
  | { readonly ok: false; readonly reason: QuarantineReason; readonly detail: string; readonly tenantId?: string };

/** What parsing needs to know. */
export interface ParseOptions {
  readonly granularity: Granularity;
  readonly allowedLatenessSeconds: number;
  /** When the record reached the stream (epoch ms). */
  readonly arrivalMs: number;
  /** How far past its arrival an event time may be. */
  readonly maxFutureSkewMs: number;
}

function fail(reason: QuarantineReason, detail: string, tenantId?: string): ParseResult {
  return { ok: false, reason, detail, tenantId };
}

/** A JS number as an exact decimal string without exponent (`1e-7` → `0.0000001`). */
export function decimalOf(n: number): string {
  const s = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(s);
  if (!m) throw new Error(`not a finite number: ${s}`);
  const [, sign, int, frac = '', expText] = m;
  const exp = expText ? Number(expText) : 0;
  let digits = int + frac;
  let point = int.length + exp;
  if (point <= 0) {
    digits = '0'.repeat(1 - point) + digits;
    point = 1;
  } else if (point > digits.length) {
    digits = digits + '0'.repeat(point - digits.length);
  }
  const intPart = digits.slice(0, point).replace(/^0+(?=\d)/, '');
  const fracPart = digits.slice(point).replace(/0+$/, '');
  return `${sign}${intPart}${fracPart ? '.' + fracPart : ''}`;
}

/** Exact sum of non-negative decimal strings (no floating-point drift). */
export function sumDecimals(values: readonly string[]): string {
  let scale = 0;
  for (const v of values) scale = Math.max(scale, (v.split('.')[1] ?? '').length);
  let total = BigInt(0);
  for (const v of values) {
    const [i, f = ''] = v.split('.');
    total += BigInt(i + f.padEnd(scale, '0'));
  }
  const text = total.toString().padStart(scale + 1, '0');
  if (scale === 0) return text;
  const intPart = text.slice(0, text.length - scale);
  const fracPart = text.slice(text.length - scale).replace(/0+$/, '');
  return fracPart ? `${intPart}.${fracPart}` : intPart;
}

function nameField(obj: Record<string, unknown>, field: string, max: number, tenantId?: string): string | ParseResult {
  const v = obj[field];
  if (v === undefined || v === null) return fail('MISSING_FIELD', `${field} is missing`, tenantId);
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    return fail('INVALID_FIELD', `${field} must be a non-empty string of at most ${max} characters`, tenantId);
  }
  if (field !== 'id' && v.includes('#')) return fail('INVALID_FIELD', `${field} must not contain '#'`, tenantId);
  return v;
}

/** Parses an event time: an ISO-8601 string with a time zone, or epoch milliseconds. */
function parseTimestamp(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The window `[start, end)` that holds an event time. */
export function windowOf(granularity: Granularity, timestampMs: number): { startMs: number; endMs: number } {
  const len = WINDOW_LENGTH_MS[granularity];
  const startMs = Math.floor(timestampMs / len) * len;
  return { startMs, endMs: startMs + len };
}

/**
 * Parses and validates one record's data (the bytes the producer wrote).
 * Never throws: a bad record yields a quarantine reason.
 */
export function parseUsageRecord(data: Buffer, options: ParseOptions): ParseResult {
  let obj: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    obj = JSON.parse(text);
  } catch (e) {
    return fail('INVALID_JSON', `not UTF-8 JSON: ${(e as Error).message}`.slice(0, 500));
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return fail('INVALID_JSON', 'not a JSON object');
  const o = obj as Record<string, unknown>;

  const tenantId = nameField(o, 'tenantId', MAX_NAME_LENGTH);
  if (typeof tenantId !== 'string') return tenantId;
  const id = nameField(o, 'id', MAX_ID_LENGTH, tenantId);
  if (typeof id !== 'string') return id;
  const metric = nameField(o, 'metric', MAX_NAME_LENGTH, tenantId);
  if (typeof metric !== 'string') return metric;

  if (o.value === undefined || o.value === null) return fail('MISSING_FIELD', 'value is missing', tenantId);
  const value = o.value;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_VALUE) {
    return fail('INVALID_FIELD', `value must be a finite JSON number between 0 and ${MAX_VALUE} (given ${JSON.stringify(value)})`, tenantId);
  }
  const decimal = decimalOf(value);
  if ((decimal.split('.')[1] ?? '').length > MAX_FRACTION_DIGITS) {
    return fail('INVALID_FIELD', `value must have at most ${MAX_FRACTION_DIGITS} fractional digits (given ${decimal})`, tenantId);
  }

  if (o.timestamp === undefined || o.timestamp === null) return fail('MISSING_FIELD', 'timestamp is missing', tenantId);
  const timestampMs = parseTimestamp(o.timestamp);
  if (timestampMs === undefined) {
    return fail('INVALID_FIELD', `timestamp must be ISO-8601 with a time zone or epoch milliseconds (given ${JSON.stringify(o.timestamp)})`.slice(0, 500), tenantId);
  }
  if (timestampMs > options.arrivalMs + options.maxFutureSkewMs) {
    return fail('FUTURE_TIMESTAMP', `timestamp ${new Date(timestampMs).toISOString()} is more than ${options.maxFutureSkewMs / 1000} s after the record's arrival ${new Date(options.arrivalMs).toISOString()}`, tenantId);
  }

  const { startMs, endMs } = windowOf(options.granularity, timestampMs);
  const closesAt = Math.floor(endMs / 1000) + options.allowedLatenessSeconds;
  return {
    ok: true,
    record: {
      id,
      tenantId,
      metric,
      value: decimal,
      timestampMs,
      windowStartMs: startMs,
      windowEndMs: endMs,
      closesAt,
      aggregateSk: aggregateSkOf(options.granularity, isoSeconds(startMs), metric),
    },
  };
}
