/**
 * Test support for synthesized templates: asset-hash masking for snapshots,
 * cdk-nag (v3) checks and cfn-lint.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ensurePythonTool } from './emulators';

/** A scratch folder under the project (git-ignored), never the system temp dir. */
export function scratchDir(name: string): string {
  const dir = path.join(__dirname, '..', '.out', `${name}-${process.pid}-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** A new App that writes its cloud assembly under test/.out/. */
export function testApp(name = 'app'): App {
  return new App({ outdir: scratchDir(name) });
}

const ASSET_HASH = /[0-9a-f]{64}/g;

/**
 * The stack's template with asset hashes masked, so that a snapshot changes
 * only when the template really changes, not when handler code is rebuilt.
 */
export function maskedTemplate(stack: Stack): unknown {
  const json = JSON.stringify(Template.fromStack(stack).toJSON());
  return JSON.parse(json.replace(ASSET_HASH, '[ASSET_HASH]'));
}

/** One unacknowledged cdk-nag finding. */
export interface NagFinding {
  readonly rule: string;
  readonly path: string;
  readonly severity: string;
}

/**
 * Synthesizes the app that `build` fills with cdk-nag's AwsSolutions checks
 * and returns every unacknowledged finding (errors and warnings).
 */
export function nagFindings(build: (app: App) => void): NagFinding[] {
  const outdir = scratchDir('nag');
  const app = new App({ outdir });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  build(app);
  let failed = false;
  try {
    app.synth();
  } catch (e) {
    if (!fs.existsSync(path.join(outdir, 'validation-report.json'))) throw e;
    failed = true;
  }
  const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
  const findings: NagFinding[] = [];
  for (const plugin of report.pluginReports ?? []) {
    for (const v of plugin.violations ?? []) {
      for (const c of v.violatingConstructs ?? []) {
        findings.push({ rule: v.ruleName, path: c.constructPath, severity: v.severity });
      }
    }
  }
  if (failed && findings.length === 0) throw new Error('cdk-nag failed the synth but reported no finding');
  return findings;
}

/** Runs cfn-lint on a stack's synthesized template; returns its error lines (E-codes). */
export function cfnLintErrors(stack: Stack): string[] {
  const file = path.join(scratchDir('cfn-lint'), `${stack.stackName}.template.json`);
  fs.writeFileSync(file, JSON.stringify(Template.fromStack(stack).toJSON(), null, 1));
  const bin = ensurePythonTool('cfn-lint');
  let output = '';
  try {
    output = execFileSync(bin, ['--format', 'parseable', file], { encoding: 'utf8', env: { ...process.env, TMPDIR: os.tmpdir() } });
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    // cfn-lint's exit code is a bit mask of 2 (errors), 4 (warnings) and 8 (informational);
    // anything else means it did not run.
    if (err.status === undefined || ![2, 4, 6, 8, 10, 12, 14].includes(err.status)) {
      throw new Error(`cfn-lint failed to run (exit ${err.status}): ${err.stderr ?? ''}`);
    }
    output = err.stdout ?? '';
  }
  return output.split('\n').filter((l) => /:E\d{4}:/.test(l));
}
