import { CfnResource, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Acknowledges a cdk-nag finding on a construct, with its reason, for both
 * majors of cdk-nag without depending on either:
 * - cdk-nag 3 reads `Validations.of(construct).acknowledge(...)` (aws-cdk-lib);
 * - cdk-nag 2 reads `cdk_nag.rules_to_suppress` metadata on CloudFormation resources;
 *   it is written on every resource in the construct's subtree, as the
 *   acknowledgement of cdk-nag 3 covers the whole subtree.
 *
 * `id` is a rule (`AwsSolutions-SQS3`) or one finding of a rule
 * (`AwsSolutions-IAM5[Action::s3:*]`). aws-cdk-lib before 2.269 refuses IDs with
 * more than one `::` (`InvalidValidationId`), as many finding IDs have
 * (`...[Resource::arn:<AWS::Partition>:...]`). There the acknowledgement is
 * recorded as `acknowledge` records it, in the construct's
 * `Validations.ACKNOWLEDGED_RULES_METADATA_KEY` metadata, which cdk-nag 3 reads
 * (it matches a finding by its full ID: acknowledging the rule alone would not
 * cover the finding). So synthesis never fails because of an acknowledgement,
 * and the finding is acknowledged on every aws-cdk-lib the package accepts
 * (`npx projen test:compat` checks the oldest).
 */
export function acknowledgeNag(construct: IConstruct, id: string, reason: string): void {
  const finding = /^([^[\]]+)\[(.+)\]$/.exec(id);
  try {
    Validations.of(construct).acknowledge({ id, reason });
  } catch (e) {
    if (!finding) throw e;
    construct.node.addMetadata(Validations.ACKNOWLEDGED_RULES_METADATA_KEY, { [id]: reason });
  }
  const entry = finding ? { id: finding[1], reason, applies_to: [finding[2]] } : { id, reason };
  for (const cfn of construct.node.findAll()) {
    if (!CfnResource.isCfnResource(cfn)) continue;
    const existing = (cfn.getMetadata('cdk_nag') as { rules_to_suppress?: object[] } | undefined)?.rules_to_suppress ?? [];
    cfn.addMetadata('cdk_nag', { rules_to_suppress: [...existing, entry] });
  }
}
