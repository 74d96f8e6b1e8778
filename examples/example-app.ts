import { App, Stack } from 'aws-cdk-lib';
import { CustomBillingStack } from './custom-billing-stack';
import { DynamoDbBillingStack } from './dynamodb-billing-stack';
import { StripeBillingStack } from './stripe-billing-stack';

/**
 * Adds the example stacks to an app. Shared by `examples/app.ts` (what the
 * README's first command synthesizes) and the tests (snapshot, cdk-nag, cfn-lint).
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
  ];
}
