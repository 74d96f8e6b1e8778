/**
 * `npx projen test:languages` (issue 5): proves that a CDK user in Python, Java and Go
 * gets exactly what a TypeScript user gets.
 *
 * 1. Builds the jsii targets with the project's own tasks (`bundle`, `compile`,
 *    `package:python`, `package:java`, `package:go`) unless dist/ already holds packages
 *    of the current .jsii and assets; generates the C# sources (`jsii-pacmak --code-only
 *    --targets dotnet`: this machine has no .NET SDK, so C# is generated, not built).
 * 2. Installs each consumer app's dependencies (examples/python: a venv; examples/java:
 *    Maven; examples/go: Go modules) with the package just built from dist/ and
 *    aws-cdk-lib from the language's registry.
 * 3. Synthesizes each consumer app and the TypeScript example app (examples/app.ts).
 * 4. Compares every stack template of each language with TypeScript's, asset hashes
 *    and asset paths masked, and prints PASS/FAIL, the first differences and timings.
 *
 * The last line is `<n> passed, <m> failed`; the exit code is non-zero on any failure.
 *
 * Environment: LANGUAGES=python,java,go (default: all three);
 * FORCE_PACKAGE=1 repackages even when dist/ is up to date.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { addExampleStacks } from '../../examples/app';

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'test', '.out', 'languages');
const LOGS = path.join(OUT, 'logs');
const DIST = path.join(ROOT, 'dist');
const MAX_DIFFS = 10;

type Language = 'python' | 'java' | 'go';
const ALL_LANGUAGES: Language[] = ['python', 'java', 'go'];

interface Timing {
  readonly step: string;
  readonly seconds: number;
  readonly note?: string;
}

class StepFailed extends Error {
  constructor(message: string, readonly logFile: string) {
    super(message);
  }
}

const env: NodeJS.ProcessEnv = {
  ...process.env,
  // jsii's Node 20 end-of-life banner would otherwise print on every consumer run.
  JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20',
};

/** Runs a command, its output to a log file; throws StepFailed (with the log's tail) when it fails. */
function run(name: string, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): number {
  fs.mkdirSync(LOGS, { recursive: true });
  const logFile = path.join(LOGS, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.log`);
  const started = Date.now();
  const result = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? env,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const seconds = (Date.now() - started) / 1000;
  fs.writeFileSync(logFile, `$ ${cmd} ${args.join(' ')}\n(cwd ${opts.cwd ?? ROOT})\n\n${result.stdout ?? ''}\n${result.stderr ?? ''}\n${result.error ? String(result.error) : ''}`);
  if (result.status !== 0) {
    throw new StepFailed(`${name}: \`${cmd} ${args.join(' ')}\` exited with ${result.status ?? result.error} after ${seconds.toFixed(1)} s`, logFile);
  }
  return seconds;
}

function tail(file: string, lines = 25): string {
  if (!fs.existsSync(file)) return '';
  return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `      | ${l}`).join('\n');
}

function which(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { encoding: 'utf8', env }).status === 0
    || spawnSync(cmd, ['version'], { encoding: 'utf8', env }).status === 0
    || spawnSync(cmd, ['-version'], { encoding: 'utf8', env }).status === 0;
}

/** A digest of what the packages are built from: the jsii assembly and the bundled handlers. */
function buildInputsDigest(): string {
  const hash = createHash('sha256');
  const add = (file: string) => {
    hash.update(path.relative(ROOT, file));
    hash.update(fs.readFileSync(file));
  };
  add(path.join(ROOT, '.jsii'));
  add(path.join(ROOT, 'package.json'));
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else add(p);
    }
  };
  walk(path.join(ROOT, 'assets'));
  return hash.digest('hex');
}

function stampFile(target: string): string {
  return path.join(DIST, `.test-languages-${target}.stamp`);
}

function dirExists(p: string): boolean {
  return fs.existsSync(p) && fs.readdirSync(p).length > 0;
}

/** Builds one jsii target with the project's task unless dist/<target> was built from the same inputs. */
function packageTarget(target: string, digest: string, build: () => number): Timing {
  const stamp = stampFile(target);
  const upToDate = process.env.FORCE_PACKAGE !== '1'
    && dirExists(path.join(DIST, target))
    && fs.existsSync(stamp)
    && fs.readFileSync(stamp, 'utf8') === digest;
  if (upToDate) return { step: `package:${target}`, seconds: 0, note: 'dist/ up to date, not rebuilt' };
  if (fs.existsSync(stamp)) fs.rmSync(stamp);
  const seconds = build();
  fs.writeFileSync(stamp, digest);
  return { step: `package:${target}`, seconds };
}

/** The CloudFormation stacks of a cloud assembly: artifact id -> template file. */
function stacksOf(outdir: string): Map<string, string> {
  const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8'));
  const stacks = new Map<string, string>();
  for (const [id, artifact] of Object.entries<any>(manifest.artifacts ?? {})) {
    if (artifact.type === 'aws:cloudformation:stack') stacks.set(id, path.join(outdir, artifact.properties.templateFile));
  }
  return stacks;
}

const ASSET_HASH = /[0-9a-f]{64}/g;

/**
 * A template with what legitimately differs between languages masked: asset hashes
 * (content hashes of bundled handler code) and asset paths (where each language's
 * package installs the bundles; only present when asset metadata is enabled).
 */
function maskedTemplate(file: string): unknown {
  const template = JSON.parse(fs.readFileSync(file, 'utf8').replace(ASSET_HASH, '[ASSET_HASH]'));
  const mask = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(mask);
    if (node && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) {
        out[k] = k === 'aws:asset:path' || k === 'aws:asset:bundling-path' ? '[ASSET_PATH]' : mask(v);
      }
      return out;
    }
    return node;
  };
  return mask(template);
}

/** Differences between two JSON values, as `path: expected != actual` lines. */
function differences(expected: unknown, actual: unknown, at: string, out: string[]): void {
  if (out.length >= MAX_DIFFS) return;
  const show = (v: unknown) => (v === undefined ? '(missing)' : JSON.stringify(v).slice(0, 160));
  if (typeof expected !== typeof actual || Array.isArray(expected) !== Array.isArray(actual) || expected === null || actual === null) {
    if (expected !== actual) out.push(`${at}: TypeScript ${show(expected)} != ${show(actual)}`);
    return;
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) out.push(`${at}: TypeScript has ${expected.length} items, this language ${actual.length}`);
    for (let i = 0; i < Math.min(expected.length, actual.length); i++) differences(expected[i], actual[i], `${at}[${i}]`, out);
    return;
  }
  if (typeof expected === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(e), ...Object.keys(a)])].sort()) {
      differences(e[k], a[k], `${at}/${k}`, out);
    }
    return;
  }
  if (expected !== actual) out.push(`${at}: TypeScript ${show(expected)} != ${show(actual)}`);
}

/** Compares every stack of a language's assembly with TypeScript's; returns the differences. */
function compareAssemblies(tsOut: string, langOut: string): { stacks: number; diffs: string[]; identical: boolean } {
  const expected = stacksOf(tsOut);
  const actual = stacksOf(langOut);
  const diffs: string[] = [];
  // For information: equal without masking too (same bundled handlers, so same asset hashes)?
  const identical = expected.size === actual.size && [...expected].every(([id, file]) => actual.has(id)
    && fs.readFileSync(file, 'utf8') === fs.readFileSync(actual.get(id)!, 'utf8'));
  for (const id of expected.keys()) if (!actual.has(id)) diffs.push(`stack ${id}: missing`);
  for (const id of actual.keys()) if (!expected.has(id)) diffs.push(`stack ${id}: not in the TypeScript app`);
  for (const [id, file] of expected) {
    const other = actual.get(id);
    if (!other) continue;
    const out: string[] = [];
    differences(maskedTemplate(file), maskedTemplate(other), id, out);
    diffs.push(...out);
  }
  return { stacks: expected.size, diffs, identical };
}

/** Documents whose marked code blocks are checked (docs/languages.md must exist). */
const DOCS = [path.join(ROOT, 'docs', 'languages.md'), path.join(ROOT, 'README.md')];

/**
 * The code blocks of docs/languages.md (and README.md) marked
 * `<!-- excerpt: examples/<language>/... -->` must appear, line for line (leading whitespace
 * aside), in that file of the consumer app, which this run compiles and synthesizes: the
 * documented code cannot drift from the API.
 */
function excerptProblems(language: Language): string[] {
  if (!fs.existsSync(DOCS[0])) return [`${path.relative(ROOT, DOCS[0])} is missing`];
  const problems: string[] = [];
  const marker = /<!-- excerpt: (\S+) -->\s*\n```[a-z]*\n([\s\S]*?)\n```/g;
  const blocks = DOCS.filter((d) => fs.existsSync(d)).flatMap((d) => [...fs.readFileSync(d, 'utf8').matchAll(marker)]
    .map((m) => ({ doc: path.relative(ROOT, d), m })));
  for (const { doc, m } of blocks) {
    const [, file, block] = m;
    if (!file.startsWith(`examples/${language}/`)) continue;
    const source = path.join(ROOT, file);
    if (!fs.existsSync(source)) {
      problems.push(`${doc}: excerpt of missing file ${file}`);
      continue;
    }
    const lines = fs.readFileSync(source, 'utf8').split('\n');
    const want = block.split('\n');
    const found = lines.some((_, start) => want.every((w, i) => {
      const have = lines[start + i];
      if (have === undefined) return false;
      return w.trim() === '' ? have.trim() === '' : have.trimEnd().endsWith(w.trimEnd()) && have.trimEnd().slice(0, -w.trimEnd().length).trim() === '';
    }));
    if (!found) problems.push(`${doc}: the excerpt starting "${want[0].trim()}" is not in ${file}`);
  }
  return problems;
}

function freshDir(dir: string): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------------------

interface Consumer {
  /** The tool that must be on PATH. */
  readonly tool: string;
  /** Whether the dependency cache was already warm before this run (cold is the CI case). */
  readonly cacheWarm: () => boolean;
  /** Installs the consumer's dependencies, the package from dist/ included. */
  readonly install: () => Timing[];
  /** Synthesizes the consumer app into outdir. */
  readonly synth: (outdir: string) => Timing;
}

const PY_DIR = path.join(ROOT, 'examples', 'python');
const PY_VENV = path.join(PY_DIR, '.venv');
const PY = path.join(PY_VENV, 'bin', 'python');
const JAVA_DIR = path.join(ROOT, 'examples', 'java');
const M2 = path.join(os.homedir(), '.m2', 'repository');
const GO_DIR = path.join(ROOT, 'examples', 'go');

function goModCache(): string {
  const r = spawnSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8', env });
  return (r.stdout ?? '').trim();
}

const consumers: Record<Language, Consumer> = {
  python: {
    tool: 'python3',
    cacheWarm: () => fs.existsSync(path.join(PY_VENV, 'pyvenv.cfg')),
    install: () => {
      const timings: Timing[] = [];
      if (!fs.existsSync(PY)) timings.push({ step: 'venv', seconds: run('python-venv', 'python3', ['-m', 'venv', PY_VENV]) });
      const wheels = fs.readdirSync(path.join(DIST, 'python')).filter((f) => f.endsWith('.whl'));
      if (wheels.length !== 1) throw new Error(`expected one wheel in dist/python, found ${wheels.length}`);
      const wheel = path.join(DIST, 'python', wheels[0]);
      const pip = [PY, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet']] as const;
      let seconds = run('python-install', pip[0], [...pip[1], '-r', 'requirements.txt', wheel], { cwd: PY_DIR });
      // Same version (0.0.0) as a wheel installed before: replace it with the one just built.
      seconds += run('python-install-wheel', pip[0], [...pip[1], '--no-deps', '--force-reinstall', wheel], { cwd: PY_DIR });
      seconds += run('python-check', PY, ['-m', 'pip', 'check'], { cwd: PY_DIR });
      timings.push({ step: 'install', seconds });
      return timings;
    },
    synth: (outdir) => ({
      step: 'synth',
      seconds: run('python-synth', PY, ['app.py'], { cwd: PY_DIR, env: { ...env, CDK_OUTDIR: outdir } }),
    }),
  },
  java: {
    tool: 'mvn',
    cacheWarm: () => fs.existsSync(path.join(M2, 'software', 'amazon', 'awscdk', 'aws-cdk-lib')),
    install: () => {
      // Maven never re-fetches a release version it holds: drop the copy of our 0.0.0
      // from the local repository so that the artifact just built in dist/java is used.
      fs.rmSync(path.join(M2, 'io', 'github', 'cdk-saas-billing'), { recursive: true, force: true });
      // Resolves aws-cdk-lib and the package from dist/java, and compiles the app.
      return [{ step: 'install+compile', seconds: run('java-compile', 'mvn', ['-B', '-q', 'compile'], { cwd: JAVA_DIR }) }];
    },
    synth: (outdir) => ({
      step: 'synth',
      seconds: run('java-synth', 'mvn', ['-B', '-q', 'exec:java'], { cwd: JAVA_DIR, env: { ...env, CDK_OUTDIR: outdir } }),
    }),
  },
  go: {
    tool: 'go',
    cacheWarm: () => fs.existsSync(path.join(goModCache(), 'github.com', 'aws', 'aws-cdk-go')),
    install: () => [{ step: 'install', seconds: run('go-download', 'go', ['mod', 'download'], { cwd: GO_DIR }) }],
    synth: (outdir) => ({
      step: 'build+synth',
      seconds: run('go-synth', 'go', ['run', '-mod=mod', '.'], { cwd: GO_DIR, env: { ...env, CDK_OUTDIR: outdir } }),
    }),
  },
};

function fmt(timings: Timing[]): string {
  return timings.map((t) => `${t.step} ${t.seconds.toFixed(1)} s${t.note ? ` (${t.note})` : ''}`).join(', ');
}

function main(): number {
  const started = Date.now();
  const languages = (process.env.LANGUAGES ? process.env.LANGUAGES.split(',') : ALL_LANGUAGES) as Language[];
  for (const l of languages) if (!ALL_LANGUAGES.includes(l)) throw new Error(`LANGUAGES: unknown language ${l} (known: ${ALL_LANGUAGES.join(', ')})`);
  fs.mkdirSync(OUT, { recursive: true });
  freshDir(LOGS);

  // Whether each dependency cache was warm, before anything (packaging included) fills it.
  const warm = new Map(languages.map((l) => [l, which(consumers[l].tool) && consumers[l].cacheWarm()]));

  // 1. Build.
  console.log('== build');
  const npx = ['projen'];
  const shared: Timing[] = [];
  shared.push({ step: 'bundle', seconds: run('bundle', 'npx', [...npx, 'bundle']) });
  shared.push({ step: 'compile', seconds: run('compile', 'npx', [...npx, 'compile']) });
  const digest = buildInputsDigest();
  console.log(`   ${fmt(shared)}`);

  const results: { language: string; ok: boolean; lines: string[] }[] = [];
  const builds = new Map<Language, Timing>();
  for (const language of languages) {
    const consumer = consumers[language];
    if (!which(consumer.tool)) continue; // reported as a failure below
    try {
      const t = packageTarget(language, digest, () => run(`package-${language}`, 'npx', [...npx, `package:${language}`]));
      builds.set(language, t);
      console.log(`   ${fmt([t])}`);
    } catch (e) {
      const lines = [`package:${language} failed: ${(e as Error).message}`];
      if (e instanceof StepFailed) lines.push(tail(e.logFile));
      results.push({ language, ok: false, lines });
      console.log(`   FAIL ${language}`);
      for (const l of lines) console.log(`   ${l}`);
    }
  }
  // C#: generated only (no .NET SDK on this machine: `package:dotnet` needs `dotnet`).
  try {
    const t = packageTarget('dotnet', digest, () => run('package-dotnet-code-only', 'npx', ['jsii-pacmak', '--code-only', '--targets', 'dotnet']));
    const count = (dir: string): number => fs.readdirSync(dir, { withFileTypes: true })
      .reduce((n, e) => n + (e.isDirectory() ? count(path.join(dir, e.name)) : e.name.endsWith('.cs') ? 1 : 0), 0);
    console.log(`   ${fmt([t])}: ${count(path.join(DIST, 'dotnet'))} C# files in dist/dotnet (generated, not compiled: no .NET SDK)`);
  } catch (e) {
    console.log(`   package:dotnet (code only) failed: ${(e as Error).message} (not counted: C# is not built here)`);
  }

  // 2. TypeScript reference.
  console.log('== TypeScript example app');
  const tsOut = freshDir(path.join(OUT, 'typescript'));
  const tsStarted = Date.now();
  const app = new App({ outdir: tsOut });
  addExampleStacks(app);
  app.synth();
  console.log(`   synth ${((Date.now() - tsStarted) / 1000).toFixed(1)} s: ${[...stacksOf(tsOut).keys()].join(', ')}`);

  // 3, 4. Each language.
  for (const language of languages) {
    if (results.some((r) => r.language === language)) continue;
    const consumer = consumers[language];
    console.log(`== ${language}`);
    if (!which(consumer.tool)) {
      results.push({ language, ok: false, lines: [`${consumer.tool} is not installed`] });
      continue;
    }
    const timings: Timing[] = [builds.get(language)!];
    try {
      // Packaging may fill the cache the consumer uses (package:go downloads aws-cdk-go).
      const cache = warm.get(language) ? 'caches warm' : consumer.cacheWarm() ? `cache filled by package:${language}` : 'cold caches';
      const install = consumer.install();
      timings.push(...install.map((t) => ({ ...t, note: t.note ?? cache })));
      const outdir = freshDir(path.join(ROOT, 'examples', language, 'cdk.out'));
      timings.push(consumer.synth(outdir));
      const { stacks, diffs, identical } = compareAssemblies(tsOut, outdir);
      diffs.push(...excerptProblems(language));
      const lines = [
        fmt(timings),
        `${stacks} stack(s) compared with TypeScript's (asset hashes and paths masked)${identical ? '; byte-identical even unmasked' : ''}`,
      ];
      if (diffs.length > 0) lines.push(...diffs.slice(0, MAX_DIFFS).map((d) => `   ${d}`));
      results.push({ language, ok: diffs.length === 0, lines });
    } catch (e) {
      const lines = [fmt(timings), (e as Error).message];
      if (e instanceof StepFailed) lines.push(tail(e.logFile));
      results.push({ language, ok: false, lines });
    }
    const r = results[results.length - 1];
    console.log(`   ${r.ok ? 'PASS' : 'FAIL'} ${language}`);
    for (const l of r.lines) console.log(`   ${l}`);
  }

  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`== total ${((Date.now() - started) / 1000).toFixed(1)} s; logs in ${path.relative(ROOT, LOGS)}/`);
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.language}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed === languages.length ? 0 : 1;
}

process.exitCode = main();
