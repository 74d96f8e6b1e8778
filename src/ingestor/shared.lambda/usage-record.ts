/**
 * The usage record: parsing and validation, from the bytes a producer wrote.
 * Numbers are read from the record's text (lossless-json), never through a
 * binary float; a value beyond the documented digits is refused, not rounded.
 * Never throws: whatever cannot be counted gets a quarantine reason and a
 * short, well-formed detail.
 */
import { parse as parseJson } from 'lossless-json';
import { identifierProblem, IdentifierKind } from '../../events/identifiers';
import { DecimalError, parseDecimal } from '../../shared.lambda/decimal';
import { RECORD_LIMITS } from '../ingestor-contract';

/** Why a record was set aside in the quarantine instead of being counted. */
export type QuarantineReason =
  /** Not UTF-8, not JSON, or not a JSON object. */
  | 'INVALID_JSON'
  /** A required field is absent. */
  | 'MISSING_FIELD'
  /** A field has the wrong type, form or range. */
  | 'INVALID_FIELD'
  /**
   * The tenant id breaks the identifier rule (`events/identifiers.ts`): no
   * billing provider could onboard that tenant, so its usage could never be billed.
   */
  | 'INVALID_TENANT_ID'
  /** The event time is further after the record's arrival than the allowed clock skew. */
  | 'FUTURE_TIMESTAMP'
  /** The record's window was closed (or closing) when the record was written. */
  | 'LATE'
  /** A void whose voided record is not in the void's window when the window closes. */
  | 'VOID_UNMATCHED';

/** A usage record that passed validation. */
export interface UsageRecord {
  readonly kind: 'RECORD';
  readonly id: string;
  readonly tenantId: string;
  readonly metric: string;
  /** An exact, normalized decimal string. */
  readonly value: string;
  readonly timestampMs: number;
}

/** A void that passed validation: it cancels the record `voids` of its tenant in its window. */
export interface VoidRecord {
  readonly kind: 'VOID';
  readonly id: string;
  readonly tenantId: string;
  /** The id of the record it voids. */
  readonly voids: string;
  readonly timestampMs: number;
}

/** The outcome of parsing one record's data. */
export type ParseResult =
  | { readonly ok: true; readonly record: UsageRecord | VoidRecord }
  | { readonly ok: false; readonly reason: QuarantineReason; readonly detail: string; readonly tenantId?: string };

/** What parsing needs to know. */
export interface ParseOptions {
  /** When the record reached the stream (epoch ms). */
  readonly arrivalMs: number;
  /** How far past its arrival an event time may be (ms). */
  readonly maxClockSkewMs: number;
}

/** Latest event time accepted: 9999-12-31T23:59:59.999Z. */
const MAX_TIMESTAMP_MS = 253_402_300_799_999;
/** Longest detail kept (characters). */
const MAX_DETAIL = 500;
/** Largest exponent a JSON number may have before its digits are even looked at. */
const MAX_EXPONENT = 100;

/** A number as it was written in the JSON text. */
class NumberText {
  constructor(readonly text: string) {}
}

function fail(reason: QuarantineReason, detail: string, tenantId?: string): ParseResult {
  return { ok: false, reason, detail: detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}...` : detail, tenantId };
}

/** A value as a detail shows it: short, and always well-formed text. */
export function describe(v: unknown): string {
  if (v instanceof NumberText) return v.text.length > 60 ? `a number of ${v.text.length} characters` : v.text;
  if (typeof v === 'string') {
    if (v.length > 60) return `a string of ${v.length} characters`;
    return JSON.stringify(v); // escapes control characters and lone surrogates
  }
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** A UTF-16 surrogate without its pair: text DynamoDB cannot store. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text with every lone surrogate replaced by U+FFFD (what `String.prototype.toWellFormed` does). */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * Checks an identifier (tenant id, metric, record id) against the one identifier
 * rule; the problem shows the value, shortened and escaped.
 */
function checkIdentifier(v: unknown, field: string, kind: IdentifierKind): string | { problem: string } {
  const problem = identifierProblem(kind, v);
  if (problem === undefined) return v as string;
  return { problem: `${field}${problem.slice(kind.length)} (given ${describe(v)})` };
}

/** A JSON number's text as a plain decimal (`1.5e3` -> `1500`); undefined when its exponent is absurd. */
function plainDecimal(text: string): string | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return undefined;
  const [, sign, whole, fraction = '', expText] = m;
  const exp = expText === undefined ? 0 : Number(expText);
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > MAX_EXPONENT) return undefined;
  const digits = whole + fraction;
  let point = whole.length + exp;
  let padded = digits;
  if (point <= 0) {
    padded = '0'.repeat(1 - point) + digits;
    point = 1;
  } else if (point > digits.length) {
    padded = digits + '0'.repeat(point - digits.length);
  }
  const intPart = padded.slice(0, point);
  const fracPart = padded.slice(point);
  return `${sign}${intPart}${fracPart ? `.${fracPart}` : ''}`;
}

/** The value: a JSON number with at most the documented digits, 0 or more. */
function checkValue(v: unknown): string | { problem: string } {
  const rule = `a JSON number from 0 with at most ${RECORD_LIMITS.MAX_INTEGER_DIGITS} digits before the decimal point and ${RECORD_LIMITS.MAX_FRACTION_DIGITS} after`;
  if (!(v instanceof NumberText)) return { problem: `value must be ${rule} (given ${describe(v)})` };
  const plain = plainDecimal(v.text);
  if (plain === undefined) return { problem: `value must be ${rule} (given ${describe(v)})` };
  try {
    return parseDecimal(plain, { maxIntegerDigits: RECORD_LIMITS.MAX_INTEGER_DIGITS, maxFractionDigits: RECORD_LIMITS.MAX_FRACTION_DIGITS });
  } catch (e) {
    if (!(e instanceof DecimalError)) throw e;
    return { problem: `value must be ${rule} (given ${describe(v)})` };
  }
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):(\d{2}))$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
}

/** An event time: ISO-8601 with a time zone and real calendar fields, or epoch milliseconds, from 1970 to 9999. */
export function parseTimestamp(v: unknown): number | undefined {
  let ms: number;
  if (v instanceof NumberText) {
    if (!/^\d{1,15}$/.test(v.text)) return undefined;
    ms = Number(v.text);
  } else if (typeof v === 'string') {
    const m = ISO.exec(v);
    if (!m) return undefined;
    const [year, month, day, hour, minute] = [1, 2, 3, 4, 5].map((i) => Number(m[i]));
    const second = m[6] === undefined ? 0 : Number(m[6]);
    const millis = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0').slice(0, 3));
    const offsetMinutes = m[8] === 'Z' ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
    if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return undefined;
    if (m[8] !== 'Z' && (Number(m[10]) > 23 || Number(m[11]) > 59)) return undefined;
    const date = new Date(0);
    date.setUTCFullYear(year, month - 1, day);
    date.setUTCHours(hour, minute, second, millis);
    ms = date.getTime() - offsetMinutes * 60_000;
  } else {
    return undefined;
  }
  return Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_TIMESTAMP_MS ? ms : undefined;
}

/**
 * Parses and validates one record's data. A record is either usage
 * (`id`, `tenantId`, `metric`, `value`, `timestamp`) or a void
 * (`id`, `tenantId`, `timestamp`, `voids`: the id of the record it cancels).
 */
export function parseUsageRecord(data: Buffer, options: ParseOptions): ParseResult {
  let obj: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    obj = parseJson(text, null, (n: string) => new NumberText(n));
  } catch (e) {
    const message = e instanceof RangeError ? 'nested too deeply' : (e as Error).message;
    return fail('INVALID_JSON', `not UTF-8 JSON: ${describe(message)}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return fail('INVALID_JSON', `not a JSON object (given ${describe(obj)})`);
  const o = obj as Record<string, unknown>;
  const missing = (field: string, tenantId?: string) => fail('MISSING_FIELD', `${field} is missing`, tenantId);

  if (o.tenantId === undefined || o.tenantId === null) return missing('tenantId');
  const tenantId = checkIdentifier(o.tenantId, 'tenantId', 'tenantId');
  if (typeof tenantId !== 'string') {
    return fail('INVALID_TENANT_ID', `${tenantId.problem}: no billing provider can onboard this tenant, so its usage is not metered`);
  }
  if (o.id === undefined || o.id === null) return missing('id', tenantId);
  const id = checkIdentifier(o.id, 'id', 'recordId');
  if (typeof id !== 'string') return fail('INVALID_FIELD', id.problem, tenantId);

  if (o.timestamp === undefined || o.timestamp === null) return missing('timestamp', tenantId);
  const timestampMs = parseTimestamp(o.timestamp);
  if (timestampMs === undefined) {
    return fail('INVALID_FIELD', 'timestamp must be ISO-8601 with a time zone (2026-11-27T02:15:04Z) or epoch milliseconds, '
      + `a real date from 1970 to 9999 (given ${describe(o.timestamp)})`, tenantId);
  }
  if (timestampMs > options.arrivalMs + options.maxClockSkewMs) {
    return fail('FUTURE_TIMESTAMP', `timestamp ${new Date(timestampMs).toISOString()} is more than ${options.maxClockSkewMs / 1000} s `
      + `after the record's arrival ${new Date(options.arrivalMs).toISOString()}`, tenantId);
  }

  if (o.voids !== undefined && o.voids !== null) {
    const voids = checkIdentifier(o.voids, 'voids', 'recordId');
    if (typeof voids !== 'string') return fail('INVALID_FIELD', voids.problem, tenantId);
    if (o.value !== undefined && o.value !== null) {
      return fail('INVALID_FIELD', `a void (voids ${describe(voids)}) carries no value (given ${describe(o.value)}): send the void without value`, tenantId);
    }
    return { ok: true, record: { kind: 'VOID', id, tenantId, voids, timestampMs } };
  }

  if (o.metric === undefined || o.metric === null) return missing('metric', tenantId);
  const metric = checkIdentifier(o.metric, 'metric', 'metric');
  if (typeof metric !== 'string') return fail('INVALID_FIELD', metric.problem, tenantId);
  if (o.value === undefined || o.value === null) return missing('value', tenantId);
  const value = checkValue(o.value);
  if (typeof value !== 'string') return fail('INVALID_FIELD', value.problem, tenantId);

  return { ok: true, record: { kind: 'RECORD', id, tenantId, metric, value, timestampMs } };
}
