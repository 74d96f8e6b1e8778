/**
 * The example billing app. `npx projen example` synthesizes it into cdk.out/
 * and prints what each stack holds.
 */
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { CustomBillingStack } from './custom-billing-stack';
import { DynamoDbBillingStack } from './dynamodb-billing-stack';
import { MarketplaceBillingStack } from './marketplace-billing-stack';
import { RestApiBillingStack } from './rest-api-billing-stack';
import { StripeBillingStack } from './stripe-billing-stack';
import { UsageApiStack } from './usage-api-stack';

/**
 * Adds the example stacks to an app. Used by the app below (what the
 * README's first command synthesizes), the tests (snapshot, cdk-nag, cfn-lint) and the
 * cross-language check, which compares the Python, Java and Go apps with these stacks.
 */
export function addExampleStacks(app: App): Stack[] {
  return [
    new DynamoDbBillingStack(app, 'DynamoDbBillingExample', {
      description: 'cdk-saas-billing example: the ready pipeline (UsageIngestor, DynamoDbBilling) wired by BillingProvider',
    }),
    new CustomBillingStack(app, 'CustomBillingExample', {
      description: 'cdk-saas-billing example: BillingProvider wiring a billing integration of small functions',
    }),
    new StripeBillingStack(app, 'StripeBillingExample', {
      description: 'cdk-saas-billing example: billing through Stripe (UsageIngestor, StripeBilling) wired by BillingProvider',
    }),
    new MarketplaceBillingStack(app, 'MarketplaceBillingExample', {
      description: 'cdk-saas-billing example: selling through AWS Marketplace (UsageIngestor, MarketplaceBilling) wired by BillingProvider',
    }),
    new UsageApiStack(app, 'UsageApiExample', {
      description: 'cdk-saas-billing example: usage readable over HTTP (UsageApi), tenants with their tokens, operators with IAM',
    }),
    new RestApiBillingStack(app, 'RestApiBillingExample', {
      description: 'cdk-saas-billing example: a control plane on an API Gateway REST API (StripeBilling\'s webhook and a UsageApi on it)',
    }),
  ];
}

if (require.main === module) {
  const outdir = process.env.CDK_OUTDIR ?? path.join(__dirname, '..', 'cdk.out');
  const app = new App({ outdir });
  addExampleStacks(app);

  const assembly = app.synth();
  for (const stack of assembly.stacks) {
    const resources = Object.values((stack.template as { Resources?: Record<string, { Type: string }> }).Resources ?? {});
    const counts = new Map<string, number>();
    for (const r of resources) counts.set(r.Type, (counts.get(r.Type) ?? 0) + 1);
    console.log(`${stack.stackName}: ${resources.length} resources -> ${path.relative(process.cwd(), path.join(outdir, stack.templateFile))}`);
    for (const [type, n] of [...counts].sort()) console.log(`  ${String(n).padStart(3)}  ${type}`);
  }
}
