/**
 * The plan read contract: how a provider's handler or the entitlements read a
 * tenant's plan without knowing `BillingPlans`' table. A function bound with
 * `plans.bindPlanReader(fn)` gets the environment `PlanReader.fromEnvironment()`
 * reads (the table, the plan definitions) and the read access.
 *
 * - `tenant(tenantId)`: the tenant's plan item (current plan, status, version).
 * - `history(tenantId)`: its plan changes, oldest first; `planAt(history, ms)`
 *   is the plan in effect at an instant: the latest change that took effect at
 *   or before it (before the first change: the first plan).
 * - `definition(name)`: what a plan says (prices, entitlements, Stripe prices).
 *
 * Handler-side module; it uses the AWS SDK v3.
 */
import { readPlanHistory, readTenantPlan } from './plan-store';
import { AnchorKind, PLAN_READER_ENV, PlanChangeRecord, PlanDefinition, TenantPlanRecord, tenantPlanKey } from '../contract';

/** Where a `PlanReader` reads. */
export interface PlanReaderOptions {
  readonly tableName: string;
  readonly definitions: readonly PlanDefinition[];
  readonly anchor?: AnchorKind;
}

/** A `ConditionCheck` of a TransactWriteItems on a tenant's plan item. */
export interface VersionCheck {
  readonly TableName: string;
  readonly Key: Record<string, string>;
  readonly ConditionExpression: string;
  readonly ExpressionAttributeValues?: Record<string, number>;
}

/** The plan read contract's reader. */
export class PlanReader {
  /** The reader of the plans bound to this function (`plans.bindPlanReader(fn)`), from the environment that binding set. */
  public static fromEnvironment(env: Readonly<Record<string, string | undefined>> = process.env): PlanReader {
    const read = (name: string) => {
      const v = env[name];
      if (v === undefined || v === '') throw new Error(`Environment variable ${name} is not set: bind this function to the plans with plans.bindPlanReader(fn)`);
      return v;
    };
    let definitions: PlanDefinition[];
    try {
      definitions = JSON.parse(read(PLAN_READER_ENV.PLAN_DEFINITIONS)) as PlanDefinition[];
    } catch (e) {
      throw new Error(`Environment variable ${PLAN_READER_ENV.PLAN_DEFINITIONS} is not the JSON plans.bindPlanReader sets: ${(e as Error).message}`);
    }
    return new PlanReader({
      tableName: read(PLAN_READER_ENV.TABLE_NAME),
      definitions,
      anchor: (env[PLAN_READER_ENV.BILLING_PERIOD_ANCHOR] ?? 'CALENDAR_MONTH') as AnchorKind,
    });
  }

  /** The plan in effect at `ms` (epoch ms) according to `history` (oldest first); undefined without any change. */
  public static planAt(history: readonly PlanChangeRecord[], ms: number): string | undefined {
    let plan = history[0]?.plan;
    for (const change of history) {
      if (Date.parse(change.effectiveAt) <= ms) plan = change.plan;
      else break;
    }
    return plan;
  }

  private readonly byName: ReadonlyMap<string, PlanDefinition>;

  constructor(private readonly options: PlanReaderOptions) {
    this.byName = new Map(options.definitions.map((d) => [d.name, d]));
  }

  /** How billing periods are anchored (`BILLING_PERIOD` entitlements). */
  public get anchor(): AnchorKind {
    return this.options.anchor ?? 'CALENDAR_MONTH';
  }

  /** Every plan definition. */
  public get definitions(): readonly PlanDefinition[] {
    return this.options.definitions;
  }

  /** What a plan says; undefined for a name no plan has. */
  public definition(name: string | undefined): PlanDefinition | undefined {
    return name === undefined ? undefined : this.byName.get(name);
  }

  /** The tenant's plan item (consistent read); undefined for a tenant never onboarded. */
  public async tenant(tenantId: string): Promise<TenantPlanRecord | undefined> {
    return readTenantPlan(this.options.tableName, tenantId);
  }

  /**
   * A `ConditionCheck` of a TransactWriteItems that holds while the tenant's plan
   * item is still at `version` (absent when `version` is undefined): a decision
   * made from the plan commits only if the plan did not change meanwhile.
   */
  public versionCheck(tenantId: string, version: number | undefined): VersionCheck {
    return {
      TableName: this.options.tableName,
      Key: { ...tenantPlanKey(tenantId) },
      ...(version === undefined
        ? { ConditionExpression: 'attribute_not_exists(pk)' }
        : { ConditionExpression: 'version = :planVersion', ExpressionAttributeValues: { ':planVersion': version } }),
    };
  }

  /** The tenant's plan changes, oldest first. */
  public async history(tenantId: string): Promise<PlanChangeRecord[]> {
    return readPlanHistory(this.options.tableName, tenantId);
  }
}
