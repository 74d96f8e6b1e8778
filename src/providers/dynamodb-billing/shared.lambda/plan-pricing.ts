/**
 * Which price the push bills a window at: the price of the window's metric in
 * the plan the tenant had at the window's end (read through the plan read
 * contract, `BillingPlans.bindPlanReader`), else the construct's `unitPrices`.
 *
 * - A plan change takes effect at its `effectiveAt`: a window that ends after
 *   it (the window the change falls in included) is priced at the new plan.
 * - Free quantities and tiers count the billing period's units from its
 *   start, whatever plan priced them: the units used before a change count
 *   toward the new plan's free quantity and tiers (an allowance is not granted
 *   twice in a period, and not lost either: a larger one gives the rest).
 * - The minimum charge of a period is the one of the plan at the period's end.
 */
import { PlanChangeRecord, PriceDefinition } from '../../../plans/contract';
import { PlanReader } from '../../../plans/shared.lambda/plan-reader';
import { addDecimals } from '../../../shared.lambda/decimal';
import { periodBoundsOf, UnitPrice } from '../contract';

/** The price a window is billed at, and where it comes from. */
export interface ResolvedPrice {
  /** The plan whose price it is (absent: the construct's unit price, or none). */
  readonly plan?: string;
  readonly price?: PriceDefinition;
}

/** A period's minimum charge for a metric. */
export interface MinimumCharge {
  readonly plan: string;
  readonly minimumCharge: string;
  readonly currency: string;
}

/** What the push asks of prices. */
export interface Pricing {
  /** The price of a window of a tenant's metric that ends at `windowEnd` (ISO). */
  priceOf(tenantId: string, metric: string, windowEnd: string): Promise<ResolvedPrice>;
  /** The minimum charge of a tenant's metric for a billing period (`YYYY-MM`), if its plan at the period's end has one. */
  minimumOf(tenantId: string, metric: string, period: string): Promise<MinimumCharge | undefined>;
}

/** A construct unit price as a plan price. */
export function flatPrice(p: UnitPrice): PriceDefinition {
  return { unitPrice: p.unitPrice, freeQuantity: '0', currency: p.currency };
}

/** Prices from the construct's unit prices, and from the tenants' plans when a reader is given. */
export class PlanPricing implements Pricing {
  private readonly histories = new Map<string, Promise<PlanChangeRecord[]>>();

  constructor(private readonly unitPrices: ReadonlyMap<string, UnitPrice>, private readonly reader?: PlanReader) {}

  public async priceOf(tenantId: string, metric: string, windowEnd: string): Promise<ResolvedPrice> {
    const plan = await this.planAt(tenantId, Date.parse(windowEnd) - 1);
    const planPrice = this.reader?.definition(plan)?.metrics[metric]?.price;
    if (planPrice) return { plan, price: planPrice };
    const unit = this.unitPrices.get(metric);
    return unit ? { price: flatPrice(unit) } : {};
  }

  public async minimumOf(tenantId: string, metric: string, period: string): Promise<MinimumCharge | undefined> {
    const plan = await this.planAt(tenantId, Date.parse(periodBoundsOf(period).periodEnd) - 1);
    const price = this.reader?.definition(plan)?.metrics[metric]?.price;
    if (!plan || price?.minimumCharge === undefined || addDecimals(price.minimumCharge) === '0') return undefined;
    return { plan, minimumCharge: price.minimumCharge, currency: price.currency };
  }

  private async planAt(tenantId: string, ms: number): Promise<string | undefined> {
    if (!this.reader) return undefined;
    let history = this.histories.get(tenantId);
    if (!history) this.histories.set(tenantId, (history = this.reader.history(tenantId)));
    return PlanReader.planAt(await history, ms);
  }
}
