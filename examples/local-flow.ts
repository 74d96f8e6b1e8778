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
import { runFlow } from '../test/e2e/flow';

async function main(): Promise<void> {
  let n = 0;
  const result = await runFlow((step) => {
    n++;
    console.log(`${String(n).padStart(2)}. [${step.actor}] ${step.name}: ${step.detail}`);
  });
  console.log('');
  console.log(`customers for the tenant: ${result.customersForTenant}`);
  console.log(`charge lines: ${result.chargeLines.map((l) => `${l.metric} ${l.quantity} -> ${l.amount} ${l.currency}`).join('; ')}`);
  console.log(`billing events on the bus: ${result.billingEvents.map((e) => `${e.detailType} (${JSON.stringify(e.detail)})`).join('; ')}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
