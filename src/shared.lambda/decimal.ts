/**
 * Exact decimal arithmetic on decimal strings (`'12'`, `'0.0025'`, `'-3.5'`),
 * with BigInt underneath, so that quantities, prices and amounts never drift
 * the way binary floating point does (0.1 + 0.2 !== 0.3). DynamoDB numbers are
 * exact decimals (38 significant digits): results are stored as they are.
 *
 * The one decimal module of the library's handlers.
 */

const DECIMAL = /^-?\d+(\.\d+)?$/;

/** A value that is not a decimal, or is beyond the limits asked for. */
export class DecimalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecimalError';
  }
}

/** Limits `parseDecimal` enforces. */
export interface DecimalLimits {
  /** Most digits before the point. @default unlimited */
  readonly maxIntegerDigits?: number;
  /** Most digits after the point (trailing zeros do not count). @default unlimited */
  readonly maxFractionDigits?: number;
  /** Whether a negative value is accepted. @default false */
  readonly allowNegative?: boolean;
}

interface Scaled {
  readonly units: bigint;
  readonly scale: number;
}

function parse(value: string): Scaled {
  if (typeof value !== 'string' || !DECIMAL.test(value)) throw new DecimalError(`not a decimal number: ${JSON.stringify(value)}`);
  const negative = value.startsWith('-');
  const [whole, fraction = ''] = (negative ? value.slice(1) : value).split('.');
  return { units: BigInt(whole + fraction) * (negative ? -1n : 1n), scale: fraction.length };
}

function format({ units, scale }: Scaled): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  let text = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  if (scale > 0) text = text.replace(/0+$/, '').replace(/\.$/, '');
  return negative && text !== '0' ? `-${text}` : text;
}

function aligned(a: Scaled, b: Scaled): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.units * 10n ** BigInt(scale - a.scale), b.units * 10n ** BigInt(scale - b.scale), scale];
}

/** Whether `text` is a plain decimal (`12`, `0.0025`, `-3.5`; no exponent, no spaces). */
export function isDecimal(text: unknown): boolean {
  return typeof text === 'string' && DECIMAL.test(text);
}

/**
 * `text` as a normalized decimal (no leading or trailing zeros), checked
 * against `limits`. Throws a `DecimalError` that names the value and the limit.
 */
export function parseDecimal(text: string, limits: DecimalLimits = {}): string {
  const normalized = format(parse(text));
  const unsigned = normalized.replace(/^-/, '');
  const [whole, fraction = ''] = unsigned.split('.');
  if (normalized.startsWith('-') && !limits.allowNegative) {
    throw new DecimalError(`${JSON.stringify(text)} is negative: only values of 0 or more are accepted`);
  }
  if (limits.maxIntegerDigits !== undefined && whole.replace(/^0$/, '').length > limits.maxIntegerDigits) {
    throw new DecimalError(`${JSON.stringify(text)} has more than ${limits.maxIntegerDigits} digits before the decimal point`);
  }
  if (limits.maxFractionDigits !== undefined && fraction.length > limits.maxFractionDigits) {
    throw new DecimalError(`${JSON.stringify(text)} has more than ${limits.maxFractionDigits} digits after the decimal point`);
  }
  return normalized;
}

/** The exact sum of decimal strings (`'0'` for none). */
export function addDecimals(...values: string[]): string {
  return format(values.map(parse).reduce((acc, v) => {
    const [x, y, scale] = aligned(acc, v);
    return { units: x + y, scale };
  }, { units: 0n, scale: 0 }));
}

/** `a - b`, exactly. */
export function subtractDecimals(a: string, b: string): string {
  const [x, y, scale] = aligned(parse(a), parse(b));
  return format({ units: x - y, scale });
}

/** `a * b`, exactly. */
export function multiplyDecimals(a: string, b: string): string {
  const x = parse(a);
  const y = parse(b);
  return format({ units: x.units * y.units, scale: x.scale + y.scale });
}

/** -1, 0 or 1 as `a` is less than, equal to or greater than `b`. */
export function compareDecimals(a: string, b: string): -1 | 0 | 1 {
  const [x, y] = aligned(parse(a), parse(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

/** How `roundDecimal` treats the digits it drops. */
export type RoundingMode =
  /** Half away from zero (2.5 -> 3, -2.5 -> -3). */
  | 'HALF_UP'
  /** Half to the even neighbour (2.5 -> 2, 3.5 -> 4): banker's rounding. */
  | 'HALF_EVEN'
  /** Away from zero whenever anything is dropped (2.1 -> 3). */
  | 'UP'
  /** Toward zero: truncation (2.9 -> 2). */
  | 'DOWN';

/** `value` rounded to `fractionDigits` digits after the point. */
export function roundDecimal(value: string, fractionDigits: number, mode: RoundingMode): string {
  if (!Number.isInteger(fractionDigits) || fractionDigits < 0) throw new DecimalError(`fractionDigits must be a whole number of 0 or more (given ${fractionDigits})`);
  const v = parse(value);
  if (v.scale <= fractionDigits) return format(v);
  const negative = v.units < 0n;
  const abs = negative ? -v.units : v.units;
  const divisor = 10n ** BigInt(v.scale - fractionDigits);
  let kept = abs / divisor;
  const dropped = abs % divisor;
  const twice = dropped * 2n;
  const roundUp = mode === 'UP' ? dropped > 0n
    : mode === 'DOWN' ? false
      : mode === 'HALF_UP' ? twice >= divisor
        : twice > divisor || (twice === divisor && kept % 2n === 1n);
  if (roundUp) kept += 1n;
  return format({ units: negative ? -kept : kept, scale: fractionDigits });
}
