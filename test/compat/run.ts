/**
 * `npx projen test:compat`: the library on the oldest and the newest aws-cdk-lib it accepts.
 *
 * For each version (the task passes the floor, `CDK_MIN_VERSION` in .projenrc.ts, and the newest
 * checked, `CDK_COMPAT_NEWEST`; `CDK_COMPAT_VERSIONS="2.263.0 latest"` overrides, `latest` asking
 * the npm registry), aws-cdk-lib and constructs are installed with npm into a scratch folder
 * (test/.out/compat/aws-cdk-lib@<version>/, kept between runs), and test/compat/synth.ts
 * synthesizes the example app on it (test/compat/use-aws-cdk-lib.ts makes every `require` of
 * aws-cdk-lib and constructs resolve there): cdk-nag's AwsSolutions checks must find nothing
 * unacknowledged, cfn-lint no error, and every library function must run on the newest Node.js
 * runtime that version defines. Exit code 1 on any problem.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { CompatResult } from './synth';
import { ensurePythonTool } from '../support/emulators';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRATCH = path.join(ROOT, 'test', '.out', 'compat');
/**
 * cfn-lint learns new Lambda runtimes in new releases (1.51.0 refuses `nodejs26.x` with E3030,
 * 1.58.0 knows it): an older one on the machine is replaced by this pinned one, in a scratch venv.
 */
const CFN_LINT_MIN = '1.58.0';

function versionAtLeast(version: string, min: string): boolean {
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

function installedVersion(dir: string, pkg: string): string | undefined {
  const file = path.join(dir, 'node_modules', pkg, 'package.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).version : undefined;
}

/** aws-cdk-lib `version` and constructs in their own folder (npm, kept between runs). */
function installAwsCdkLib(version: string, constructs: string): string {
  const dir = path.join(SCRATCH, `aws-cdk-lib@${version}`);
  if (installedVersion(dir, 'aws-cdk-lib') === version && installedVersion(dir, 'constructs') === constructs) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'compat-scratch', private: true }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `aws-cdk-lib@${version}`, `constructs@${constructs}`],
    { cwd: dir, stdio: 'inherit' });
  return dir;
}

/** A cfn-lint that knows the newest runtimes: the machine's when recent enough, else a pinned one. */
function cfnLint(): string {
  const found = ensurePythonTool('cfn-lint');
  const version = execFileSync(found, ['--version'], { encoding: 'utf8' }).trim().split(/\s+/).pop() ?? '0';
  if (versionAtLeast(version, CFN_LINT_MIN)) return found;
  const venv = path.join(SCRATCH, 'venv');
  const bin = path.join(venv, 'bin', 'cfn-lint');
  if (!fs.existsSync(bin)) {
    console.log(`test:compat: cfn-lint ${version} is older than ${CFN_LINT_MIN}; installing cfn-lint==${CFN_LINT_MIN} into ${path.relative(ROOT, venv)}`);
    execFileSync(process.env.PYTHON ?? 'python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    execFileSync(path.join(venv, 'bin', 'pip'), ['install', '--quiet', `cfn-lint==${CFN_LINT_MIN}`], { stdio: 'inherit' });
  }
  return bin;
}

function versionsToCheck(): string[] {
  const given = process.env.CDK_COMPAT_VERSIONS?.trim() ? process.env.CDK_COMPAT_VERSIONS.trim().split(/[\s,]+/) : process.argv.slice(2);
  if (given.length === 0) throw new Error('test/compat/run.ts: give the aws-cdk-lib versions to check (arguments or CDK_COMPAT_VERSIONS)');
  return [...new Set(given.map((v) => (v === 'latest' ? execFileSync('npm', ['view', 'aws-cdk-lib', 'version'], { encoding: 'utf8' }).trim() : v)))];
}

function main(): void {
  const started = Date.now();
  const constructs = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).devDependencies.constructs as string;
  const versions = versionsToCheck();
  const cfnLintBin = cfnLint();
  const results: Array<CompatResult & { installSeconds: number }> = [];
  let failed = false;
  for (const version of versions) {
    const installStarted = Date.now();
    const dir = installAwsCdkLib(version, constructs);
    const installSeconds = (Date.now() - installStarted) / 1000;
    const run = spawnSync(process.execPath, ['-r', 'ts-node/register', '-r', './test/compat/use-aws-cdk-lib.ts', 'test/compat/synth.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        CDK_COMPAT_DIR: dir,
        CDK_COMPAT_OUTDIR: path.join(SCRATCH, `out-${version}`),
        CDK_COMPAT_CFN_LINT: cfnLintBin,
        TS_NODE_PROJECT: 'tsconfig.dev.json',
        TS_NODE_TRANSPILE_ONLY: 'true',
      },
      maxBuffer: 64 * 1024 * 1024,
    });
    const last = run.stdout.trim().split('\n').pop() ?? '';
    let result: CompatResult;
    try {
      result = JSON.parse(last);
    } catch {
      console.error(`test:compat: aws-cdk-lib ${version}: the check did not finish (exit ${run.status})\n${run.stdout}\n${run.stderr}`);
      failed = true;
      continue;
    }
    results.push({ ...result, installSeconds });
    if (result.problems.length > 0) failed = true;
  }
  for (const r of results) {
    console.log(`aws-cdk-lib ${r.awsCdkLib}: ${r.stacks.length} example stacks, ${r.libraryFunctions} library functions on ${r.newestNodeRuntime}, `
      + `${r.problems.length} problem(s) (install ${r.installSeconds.toFixed(0)} s, synth with cdk-nag ${r.seconds.synth.toFixed(0)} s, cfn-lint ${r.seconds.cfnLint.toFixed(0)} s)`);
    for (const p of r.problems) console.log(`  - ${p.length > 300 ? `${p.slice(0, 300)}...` : p}`);
  }
  console.log(`test:compat: ${failed ? 'FAILED' : 'cdk-nag 0 unacknowledged findings, cfn-lint 0 errors'} on aws-cdk-lib ${versions.join(', ')} `
    + `(cfn-lint: ${path.relative(ROOT, cfnLintBin) || cfnLintBin}) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (failed) process.exitCode = 1;
}

main();
