import { CfnResource, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Acknowledges a cdk-nag finding on a construct, with its reason, for both
 * majors of cdk-nag without depending on either:
 * - cdk-nag 3 reads `Validations.of(construct).acknowledge(...)` (aws-cdk-lib);
 * - cdk-nag 2 reads `cdk_nag.rules_to_suppress` metadata on the CloudFormation resource.
 */
export function acknowledgeNag(construct: IConstruct, id: string, reason: string): void {
  Validations.of(construct).acknowledge({ id, reason });
  const cfn = construct.node.defaultChild ?? construct;
  if (CfnResource.isCfnResource(cfn)) {
    const existing = (cfn.getMetadata('cdk_nag') as { rules_to_suppress?: object[] } | undefined)?.rules_to_suppress ?? [];
    cfn.addMetadata('cdk_nag', { rules_to_suppress: [...existing, { id, reason }] });
  }
}
