/**
 * How the demos (`npx projen demo:local`, `npx projen demo:stripe`) print
 * quantities and money: every number with its unit, every amount in the
 * currency's minor unit with its major-unit reading.
 */

/**
 * The units of the examples' metrics and Stripe meters. A metric name carries no
 * unit: these are the examples' own choices (`storageGb` records hold the GB
 * stored during their hour, hence GB-hours).
 */
const UNITS: Record<string, { one: string; many: string }> = {
  apiCalls: { one: 'API call', many: 'API calls' },
  storageGb: { one: 'GB-hour', many: 'GB-hours' },
  api_calls: { one: 'API call', many: 'API calls' },
  storage_mb_hours: { one: 'MB-hour', many: 'MB-hours' },
};

/** `2000 API calls`, `3.3 GB-hours`, `1 MB-hour`; the bare value for a metric without a known unit. */
export function quantity(metricOrMeter: string, value: string | number): string {
  const unit = UNITS[metricOrMeter];
  if (!unit) return String(value);
  return `${value} ${String(value) === '1' ? unit.one : unit.many}`;
}

/** `1 record`, `2 records`. */
export function count(n: number | string, one: string, many = `${one}s`): string {
  return `${n} ${String(n) === '1' ? one : many}`;
}

/** Digits after the point of a currency's major unit (2 for USD and EUR, 0 for JPY). */
function minorDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** The name of a currency's minor unit, where it is well known. */
const MINOR_UNIT_NAMES: Record<string, string> = { USD: 'cents', EUR: 'cents', GBP: 'pence' };

/**
 * An amount as billing systems send it, in the currency's minor unit, read in
 * major units too: `1999 cents (19.99 USD)`, `500 JPY (yen have no minor unit)`.
 */
export function minorUnitAmount(amount: unknown, currency: unknown): string {
  if (typeof amount !== 'number' || typeof currency !== 'string') return `${String(amount)} ${String(currency)}`;
  const code = currency.toUpperCase();
  const digits = minorDigits(code);
  if (digits === 0) return `${amount} ${code} (a currency without a minor unit)`;
  return `${amount} ${MINOR_UNIT_NAMES[code] ?? `minor units of ${code}`} (${(amount / 10 ** digits).toFixed(digits)} ${code})`;
}

/** A DynamoDbBilling charge line: `apiCalls 2000 API calls × 0.0025 USD per API call = 5 USD` (prices and amounts in major units). */
export function chargeLine(line: { metric: string; quantity: string; unitPrice: string; amount: string; currency: string }): string {
  const per = UNITS[line.metric] ? ` per ${UNITS[line.metric].one}` : '';
  return `${line.metric} ${quantity(line.metric, line.quantity)} × ${line.unitPrice} ${line.currency}${per} = ${line.amount} ${line.currency}`;
}
