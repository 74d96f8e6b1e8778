/**
 * One aws-cdk-lib version of `npx projen test:compat` (test/compat/run.ts starts it with that
 * version preloaded by test/compat/use-aws-cdk-lib.ts): synthesizes the example app with cdk-nag's
 * AwsSolutions checks, runs cfn-lint on its templates, and checks that every library function runs
 * on the newest Node.js runtime this aws-cdk-lib defines. Prints one JSON line (a `CompatResult`)
 * for the runner; exits 1 on any problem.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { App, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addExampleStacks } from '../../examples/app';
import { ensurePythonTool } from '../support/emulators';

/** What one version's check found. */
export interface CompatResult {
  readonly awsCdkLib: string;
  /** The runtime every library function must have: the newest `NODEJS_<n>_X` of this aws-cdk-lib. */
  readonly newestNodeRuntime: string;
  readonly stacks: string[];
  readonly libraryFunctions: number;
  readonly problems: string[];
  readonly seconds: { readonly synth: number; readonly cfnLint: number };
}

function newestNodeRuntimeName(): string {
  const majors = Object.getOwnPropertyNames(lambda.Runtime)
    .map((n) => /^NODEJS_(\d+)_X$/.exec(n)?.[1])
    .filter((m): m is string => m !== undefined)
    .map(Number);
  return `nodejs${Math.max(...majors)}.x`;
}

function main(): void {
  const outdir = process.env.CDK_COMPAT_OUTDIR;
  if (!outdir) throw new Error('CDK_COMPAT_OUTDIR is not set');
  fs.rmSync(outdir, { recursive: true, force: true });
  const awsCdkLib = JSON.parse(fs.readFileSync(require.resolve('aws-cdk-lib/package.json'), 'utf8')).version as string;
  const problems: string[] = [];
  const started = Date.now();

  // cdk-nag 3: error findings make synth throw, after the report is written.
  const app = new App({ outdir });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stacks = addExampleStacks(app);
  try {
    app.synth();
  } catch (e) {
    if (!fs.existsSync(path.join(outdir, 'validation-report.json'))) {
      problems.push(`synth failed: ${(e as Error).message.split('\n').slice(0, 8).join(' | ')}`);
    }
  }
  const reportFile = path.join(outdir, 'validation-report.json');
  if (fs.existsSync(reportFile)) {
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8'));
    for (const plugin of report.pluginReports ?? []) {
      for (const v of plugin.violations ?? []) {
        for (const c of v.violatingConstructs ?? []) problems.push(`cdk-nag ${v.ruleName} (${v.severity}) at ${c.constructPath}`);
      }
    }
  } else if (problems.length === 0) {
    problems.push('cdk-nag wrote no validation-report.json: the checks did not run');
  }
  const synthSeconds = (Date.now() - started) / 1000;

  // Every function the library creates (description `cdk-saas-billing...`) runs on the newest runtime.
  const newest = newestNodeRuntimeName();
  const templates = stacks.map((s) => path.join(outdir, `${s.artifactId}.template.json`)).filter((f) => fs.existsSync(f));
  let libraryFunctions = 0;
  for (const file of templates) {
    const resources = JSON.parse(fs.readFileSync(file, 'utf8')).Resources ?? {};
    for (const [id, r] of Object.entries<{ Type: string; Properties?: { Runtime?: string; Description?: string } }>(resources)) {
      if (r.Type !== 'AWS::Lambda::Function' || !r.Properties?.Description?.startsWith('cdk-saas-billing')) continue;
      libraryFunctions++;
      if (r.Properties.Runtime !== newest) problems.push(`${path.basename(file)} ${id}: runtime ${r.Properties.Runtime}, expected ${newest}`);
    }
  }
  if (libraryFunctions === 0) problems.push('no library function found in the templates');

  const lintStarted = Date.now();
  if (templates.length !== stacks.length) problems.push(`${stacks.length - templates.length} template(s) not written`);
  if (templates.length > 0) problems.push(...cfnLint(templates));
  const cfnLintSeconds = (Date.now() - lintStarted) / 1000;

  const result: CompatResult = {
    awsCdkLib,
    newestNodeRuntime: newest,
    stacks: stacks.map((s) => s.stackName),
    libraryFunctions,
    problems,
    seconds: { synth: synthSeconds, cfnLint: cfnLintSeconds },
  };
  console.log(JSON.stringify(result));
  if (problems.length > 0) process.exitCode = 1;
}

/** cfn-lint's errors (E-codes) on the templates, one line each. */
function cfnLint(templates: string[]): string[] {
  let output = '';
  try {
    output = execFileSync(process.env.CDK_COMPAT_CFN_LINT ?? ensurePythonTool('cfn-lint'), ['--format', 'parseable', ...templates], { encoding: 'utf8' });
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    // Exit code: a bit mask of 2 (errors), 4 (warnings), 8 (informational); anything else means it did not run.
    if (err.status === undefined || ![2, 4, 6, 8, 10, 12, 14].includes(err.status)) return [`cfn-lint did not run (exit ${err.status}): ${err.stderr ?? ''}`];
    output = err.stdout ?? '';
  }
  return output.split('\n').filter((l) => /:E\d{4}:/.test(l)).map((l) => `cfn-lint ${path.relative(process.cwd(), l)}`);
}

main();
