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
import { chargeLine, minorUnitAmount } from './format';

async function main(): Promise<void> {
  // The AWS SDK's notice about Node.js versions is not a step of the flow: keep it out of the printed steps.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
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
  console.log(`charge lines (exact decimals, in major units): ${result.chargeLines.map(chargeLine).join('; ')}`);
  for (const e of result.billingEvents) {
    const { amount, currency, ...rest } = e.detail;
    console.log(`billing event on the bus: ${e.detailType}, amount ${minorUnitAmount(amount, currency)}, ${JSON.stringify(rest)}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
