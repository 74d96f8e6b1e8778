import { App, Stack } from 'aws-cdk-lib';
import { CustomBillingStack } from './custom-billing-stack';

/**
 * Adds the example stacks to an app. Shared by `examples/app.ts` (what the
 * README's first command synthesizes) and the tests (snapshot, cdk-nag, cfn-lint).
 */
export function addExampleStacks(app: App): Stack[] {
  return [
    new CustomBillingStack(app, 'CustomBillingExample', {
      description: 'cdk-saas-billing example: BillingProvider wiring a billing integration of small functions',
    }),
  ];
}
