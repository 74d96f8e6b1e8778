/**
 * `npx projen bench:stripe-month`: the month of test/providers/stripe-billing/month-simulation.ts
 * (3 tenants, 2 meters, daily billing periods, every fault of the month) with DynamoDB behind the
 * recording proxy, and prints what the reconciler and the push cost per tenant and billing period:
 * Stripe requests, DynamoDB requests, read and write request units (as DynamoDB bills them).
 *
 * BENCH_DAYS (default 30) sets the month's length. The figures go to bench/out/stripe-month-<days>.json.
 */
import * as fs from 'fs';
import * as path from 'path';
import { MONTH_PRICES, simulateMonth } from '../test/providers/stripe-billing/month-simulation';
import { startWorld } from '../test/providers/stripe-billing/support';
import { startRecordingProxy } from '../test/support/recording-proxy';

const DAYS = Number(process.env.BENCH_DAYS ?? 30);
const OUT = path.join(__dirname, 'out');

async function main(): Promise<void> {
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  const world = await startWorld({ prices: MONTH_PRICES });
  const proxy = await startRecordingProxy(world.moto.endpoint, { setEnvironment: false });
  const started = Date.now();
  try {
    // Stripe requests by the handler that made them: the proxy's recording grows between two handler runs
    // (the simulation clears it once, before the first).
    const stripeByHandler: Record<string, number> = {};
    let current = 'setup';
    let seen = 0;
    const count = () => {
      const n = world.stripe.requests.length;
      stripeByHandler[current] = (stripeByHandler[current] ?? 0) + Math.max(0, n - seen);
      seen = n;
    };
    const result = await simulateMonth(world, {
      days: DAYS,
      awsEndpoint: proxy.endpoint,
      onHandler: (name) => {
        count();
        current = name;
        proxy.label = name;
      },
    });
    count();
    // Tenant periods: the reconciliation records the month produced (one per tenant, meter and period).
    const tenantPeriods = new Set(result.periods.map((p) => `${p.tenant}|${p.period}`)).size;
    const windows = result.windows;
    const per = (name: string) => {
      const t = proxy.totals((r) => r.label === name);
      return {
        dynamoRequests: t.requests,
        rru: Math.round(t.rru * 10) / 10,
        wru: t.wru,
        stripeRequests: stripeByHandler[name] ?? 0,
        perTenantPeriod: {
          stripeRequests: Math.round(((stripeByHandler[name] ?? 0) / tenantPeriods) * 100) / 100,
          dynamoRequests: Math.round((t.requests / tenantPeriods) * 100) / 100,
          rru: Math.round((t.rru / tenantPeriods) * 100) / 100,
          wru: Math.round((t.wru / tenantPeriods) * 100) / 100,
        },
        perWindow: { wru: Math.round((t.wru / windows) * 100) / 100, rru: Math.round((t.rru / windows) * 100) / 100 },
      };
    };
    const figures = {
      days: DAYS,
      windows,
      tenantPeriods,
      reconcileRuns: result.runs.reconcile,
      reconcileSummaryRequests: result.runs.reconcileStripeRequests,
      pushRuns: result.runs.push,
      reconcile: per('reconcile'),
      push: per('push'),
      offboard: per('offboard'),
      dispositions: result.dispositions,
      lostWindows: result.lostWindows.length,
      wallSeconds: Math.round((Date.now() - started) / 1000),
    };
    console.log(JSON.stringify(figures, null, 2));
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(path.join(OUT, `stripe-month-${DAYS}.json`), JSON.stringify(figures, null, 2));
  } finally {
    await proxy.stop();
    await world.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
