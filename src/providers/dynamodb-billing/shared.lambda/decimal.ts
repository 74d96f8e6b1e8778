/**
 * Exact decimal arithmetic on decimal strings, so that prices and amounts never
 * drift the way binary floating point does (0.1 * 3 !== 0.3). DynamoDB numbers
 * are exact decimals (38 significant digits), so the results are stored as is.
 */

const DECIMAL = /^-?\d+(\.\d+)?$/;

interface Scaled {
  readonly units: bigint;
  readonly scale: number;
}

function parse(value: string): Scaled {
  const v = value.trim();
  if (!DECIMAL.test(v)) throw new Error(`Not a decimal number: '${value}'`);
  const negative = v.startsWith('-');
  const [whole, fraction = ''] = (negative ? v.slice(1) : v).split('.');
  const units = BigInt(whole + fraction) * (negative ? -1n : 1n);
  return { units, scale: fraction.length };
}

function format({ units, scale }: Scaled): string {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  let result = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  if (scale > 0) result = result.replace(/0+$/, '').replace(/\.$/, '');
  digits = result;
  return negative && digits !== '0' ? `-${digits}` : digits;
}

/** Whether `value` is a plain decimal string (`12`, `0.0025`, `-3.5`). */
export function isDecimal(value: string): boolean {
  return DECIMAL.test(value.trim());
}

/** The exact product of two decimal strings, as a decimal string without trailing zeros. */
export function multiplyDecimal(a: string, b: string): string {
  const x = parse(a);
  const y = parse(b);
  return format({ units: x.units * y.units, scale: x.scale + y.scale });
}

/** The exact sum of decimal strings. */
export function addDecimal(...values: string[]): string {
  const parsed = values.map(parse);
  const scale = Math.max(0, ...parsed.map((p) => p.scale));
  const units = parsed.reduce((acc, p) => acc + p.units * 10n ** BigInt(scale - p.scale), 0n);
  return format({ units, scale });
}

/** `value` normalized as a decimal string; throws when it is not one (for example `1e-7`). */
export function decimalOf(value: string): string {
  return addDecimal(value);
}
