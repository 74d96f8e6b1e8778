/**
 * The unit prices the push bills with, read from the environment and checked
 * at run time as at synth time: a negative, malformed or duplicated price
 * refuses the whole run (a failed invocation the errors alarm sees, and an
 * error log naming the price), so nothing is billed at a wrong price.
 */
import { DecimalError, parseDecimal } from '../../../shared.lambda/decimal';
import { jsonEnv } from '../../../shared.lambda/env';
import { logger } from '../../../shared.lambda/logger';
import { MAX_PRICE_FRACTION_DIGITS, MAX_PRICE_INTEGER_DIGITS, PUSH_ENV, UnitPrice } from '../contract';

const CURRENCY = /^[A-Z]{3}$/;

/** A unit price that cannot be billed with. */
export class PriceError extends Error {
  constructor(problem: string) {
    super(`${PUSH_ENV.UNIT_PRICES} refused: ${problem}. Nothing is billed until it is fixed: correct unitPrices on DynamoDbBilling and deploy.`);
    this.name = 'PriceError';
  }
}

function checked(entry: unknown, index: number): UnitPrice {
  const e = (entry ?? {}) as Partial<Record<keyof UnitPrice, unknown>>;
  if (typeof e.metric !== 'string' || e.metric === '') throw new PriceError(`entry ${index} has no metric name`);
  if (typeof e.unitPrice !== 'string') throw new PriceError(`the price of ${JSON.stringify(e.metric)} is not a decimal string (given ${JSON.stringify(e.unitPrice)})`);
  let unitPrice: string;
  try {
    unitPrice = parseDecimal(e.unitPrice, { maxIntegerDigits: MAX_PRICE_INTEGER_DIGITS, maxFractionDigits: MAX_PRICE_FRACTION_DIGITS });
  } catch (error) {
    if (error instanceof DecimalError) throw new PriceError(`the price of ${JSON.stringify(e.metric)}: ${error.message}`);
    throw error;
  }
  if (typeof e.currency !== 'string' || !CURRENCY.test(e.currency)) {
    throw new PriceError(`the currency of ${JSON.stringify(e.metric)} is not an ISO 4217 code (given ${JSON.stringify(e.currency)})`);
  }
  return { metric: e.metric, unitPrice, currency: e.currency };
}

/** The prices by metric, checked; throws a `PriceError` (and logs it) when one is refused. */
export function readUnitPrices(): ReadonlyMap<string, UnitPrice> {
  try {
    const entries = jsonEnv<unknown>(PUSH_ENV.UNIT_PRICES, []);
    if (!Array.isArray(entries)) throw new PriceError('it is not a JSON array');
    const prices = new Map<string, UnitPrice>();
    entries.forEach((entry, i) => {
      const price = checked(entry, i);
      if (prices.has(price.metric)) throw new PriceError(`${JSON.stringify(price.metric)} is priced twice`);
      prices.set(price.metric, price);
    });
    return prices;
  } catch (error) {
    logger.error('Unit prices refused: the usage push stops before billing anything', { error: (error as Error).message });
    throw error;
  }
}
