/**
 * Runs the whole billing flow locally against the AWS API emulator (moto) and
 * prints what happened at each step:
 *
 *   npx projen demo:local
 *
 * Steps marked [emulator] were performed by moto (EventBridge routing a rule's
 * pattern to its target, Kinesis PutRecords/GetRecords); steps marked [flow]
 * were done by this runner in place of a service that would invoke a Lambda
 * function (moto cannot run functions without Docker): it invokes the bundled
 * handler with exactly the event the service would deliver.
 */
import * as path from 'path';
import { runFlow } from './flow';

/**
 * An amount as billing systems send it, in the currency's minor unit (cents
 * for USD, yen for JPY), shown in major units too: `500 (5.00 USD)`.
 */
function readableAmount(amount: unknown, currency: unknown): string {
  if (typeof amount !== 'number' || typeof currency !== 'string') return String(amount);
  const code = currency.toUpperCase();
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits ?? 2;
  return `${amount} in minor units (${(amount / 10 ** digits).toFixed(digits)} ${code})`;
}

async function main(): Promise<void> {
  let n = 0;
  const result = await runFlow({
    outdir: path.join(__dirname, '..', '..', 'cdk.out', 'local-flow'),
    report: (step) => {
      n++;
      console.log(`${String(n).padStart(2)}. [${step.actor}] ${step.name}: ${step.detail}`);
    },
  });
  console.log('');
  console.log(`customers for the tenant: ${result.customersForTenant}`);
  console.log(`charge lines (exact decimals, in major units): ${result.chargeLines.map((l) => `${l.metric} ${l.quantity} -> ${l.amount} ${l.currency}`).join('; ')}`);
  for (const e of result.billingEvents) {
    const { amount, currency, ...rest } = e.detail;
    console.log(`billing event on the bus: ${e.detailType}, amount ${readableAmount(amount, currency)}, ${JSON.stringify(rest)}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
