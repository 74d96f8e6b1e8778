/**
 * The example billing app. `npx projen example` synthesizes it into cdk.out/
 * and prints what each stack holds.
 */
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { addExampleStacks } from './example-app';

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
