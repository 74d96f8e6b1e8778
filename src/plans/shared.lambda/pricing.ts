/**
 * A plan's price of a metric over a billing period, exactly (decimal strings,
 * BigInt underneath): the first `freeQuantity` units are free; the units after
 * them cost `unitPrice` each, or the price of the tier they fall in (tiers count
 * billable units, after the free quantity).
 *
 * A window is priced at its place in the period: the cost of the period's
 * units up to the window's end minus the cost up to its start
 * (`windowAmount(price, before, quantity)`). The amounts of a period's windows
 * add up to the cost of the period's total, whatever the windows' sizes.
 */
import { addDecimals, compareDecimals, multiplyDecimals, subtractDecimals } from '../../shared.lambda/decimal';
import { PriceDefinition } from '../contract';

const max = (a: string, b: string) => (compareDecimals(a, b) >= 0 ? a : b);
const min = (a: string, b: string) => (compareDecimals(a, b) <= 0 ? a : b);

/** What the first `quantity` units of a period cost under `price`. */
export function amountUpTo(price: PriceDefinition, quantity: string): string {
  const billable = max(subtractDecimals(quantity, price.freeQuantity), '0');
  if (price.unitPrice !== undefined) return multiplyDecimals(billable, price.unitPrice);
  let amount = '0';
  let from = '0';
  for (const tier of price.tiers ?? []) {
    const to = tier.upTo === undefined ? billable : min(billable, tier.upTo);
    if (compareDecimals(to, from) > 0) amount = addDecimals(amount, multiplyDecimals(subtractDecimals(to, from), tier.unitPrice));
    if (tier.upTo === undefined || compareDecimals(billable, tier.upTo) <= 0) break;
    from = tier.upTo;
  }
  return amount;
}

/** What a window of `quantity` units costs when the period's units before it number `before`. */
export function windowAmount(price: PriceDefinition, before: string, quantity: string): string {
  return subtractDecimals(amountUpTo(price, addDecimals(before, quantity)), amountUpTo(price, before));
}

/** Whether a price depends on the window's place in its period (a free quantity or tiers): then the push must know the units before it. */
export function dependsOnPosition(price: PriceDefinition): boolean {
  return price.tiers !== undefined || compareDecimals(price.freeQuantity, '0') !== 0;
}
