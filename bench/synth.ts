/**
 * Synth-time benchmark (not part of the test suite): the example app's
 * BillingProvider against sbt-aws's BillingProvider wired with the same
 * functions, schedule and webhook on the same HTTP API.
 *
 *   npx projen bench:synth
 *
 * sbt-aws is installed on demand into bench/sbt-aws-synth/ (git-ignored) with
 * `--legacy-peer-deps`, so both apps use this project's one copy of
 * aws-cdk-lib. Only sbt-aws's BillingProvider and EventManager are used: they
 * bundle no assets, so no Docker is needed.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { App, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import { controlPlaneApi } from '../examples/control-plane-api';
import { CustomBillingStack, exampleBillingFunctions } from '../examples/custom-billing-stack';

const SBT_VERSION = '0.5.25';
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 15);
const dir = path.join(__dirname, 'sbt-aws-synth');
const outRoot = path.join(__dirname, 'out', 'synth');

function installSbtAws(): string {
  const pkg = path.join(dir, 'node_modules', '@cdklabs', 'sbt-aws');
  if (!fs.existsSync(pkg)) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'sbt-aws-synth-bench', private: true }));
    console.log(`installing @cdklabs/sbt-aws@${SBT_VERSION} into ${path.relative(process.cwd(), dir)} ...`);
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--legacy-peer-deps', `@cdklabs/sbt-aws@${SBT_VERSION}`], { cwd: dir, stdio: 'inherit' });
  }
  return pkg;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const sbt = require(installSbtAws());

class SbtAwsBillingStack extends Stack {
  constructor(scope: App, id: string) {
    super(scope, id);
    const billing = exampleBillingFunctions(this);
    const httpApi = controlPlaneApi(this, 'ControlPlaneApi');
    const eventManager = new sbt.EventManager(this, 'EventManager', {
      eventBus: events.EventBus.fromEventBusName(this, 'DefaultBus', 'default'),
    });
    new sbt.BillingProvider(this, 'Billing', { billing, eventManager, controlPlaneAPI: httpApi });
  }
}

interface Run {
  readonly ms: number;
  readonly resources: number;
}

function synthOnce(name: string, build: (app: App) => Stack, i: number): Run {
  const outdir = path.join(outRoot, `${name}-${i}`);
  fs.rmSync(outdir, { recursive: true, force: true });
  const start = performance.now();
  const app = new App({ outdir });
  const stack = build(app);
  const assembly = app.synth();
  const ms = performance.now() - start;
  const template = assembly.getStackByName(stack.stackName).template as { Resources: object };
  return { ms, resources: Object.keys(template.Resources).length };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const builders: Record<string, (app: App) => Stack> = {
  'cdk-saas-billing': (app) => new CustomBillingStack(app, 'Ours'),
  'sbt-aws': (app) => new SbtAwsBillingStack(app, 'SbtAws'),
};

const child = process.argv.indexOf('--child');
if (child >= 0) {
  // Cold run in a fresh process: module loading included (performance.now() counts from process start).
  const name = process.argv[child + 1];
  const run = synthOnce(name, builders[name], 0);
  console.log(JSON.stringify({ coldMs: performance.now(), synthMs: run.ms }));
} else {
  main();
}

function main() {
  const COLD_ROUNDS = Number(process.env.BENCH_COLD_ROUNDS ?? 5);
  const cold: Record<string, { coldMs: number; synthMs: number }[]> = { 'cdk-saas-billing': [], 'sbt-aws': [] };
  for (let i = 0; i < COLD_ROUNDS; i++) {
    for (const name of Object.keys(cold)) {
      const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--child', name], {
        encoding: 'utf8',
        env: { ...process.env, TS_NODE_PROJECT: path.join(__dirname, '..', 'tsconfig.dev.json') },
      });
      cold[name].push(JSON.parse(out.trim().split('\n').pop()!));
    }
  }

  const ours: Run[] = [];
  const theirs: Run[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    // Alternate, so that warm-up and machine noise fall on both alike.
    ours.push(synthOnce('cdk-saas-billing', builders['cdk-saas-billing'], i));
    theirs.push(synthOnce('sbt-aws', builders['sbt-aws'], i));
  }
  const warm = (rs: Run[]) => median(rs.slice(1).map((r) => r.ms));
  const coldMedian = (name: string) => median(cold[name].map((c) => c.coldMs));
  console.log(`Node ${process.version}; cold: ${COLD_ROUNDS} fresh processes each (median, module loading included);`);
  console.log(`warm: median of ${ITERATIONS - 1} in-process synths after one warm-up, alternating.`);
  for (const [name, rs] of [['cdk-saas-billing', ours], ['sbt-aws', theirs]] as const) {
    console.log(`${name.padEnd(18)} cold ${coldMedian(name).toFixed(0).padStart(6)} ms   warm ${warm(rs).toFixed(1).padStart(7)} ms   resources ${rs[0].resources}`);
  }
  console.log(`ratio cdk-saas-billing / sbt-aws: cold ${(coldMedian('cdk-saas-billing') / coldMedian('sbt-aws')).toFixed(2)}, ` +
    `warm ${(warm(ours) / warm(theirs)).toFixed(2)}, warm per resource ${((warm(ours) / ours[0].resources) / (warm(theirs) / theirs[0].resources)).toFixed(2)}`);
  fs.rmSync(outRoot, { recursive: true, force: true });
}
