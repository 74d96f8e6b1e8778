/**
 * `npx projen package:check` (the last step of `package`, so of every build): applies the rules
 * of test/package/contents.ts to the tarball `package:js` just packed (dist/js/*.tgz, the file
 * `npm publish` and jsii-pacmak's Python/Java/Go/.NET packages embed), checks that its entry points
 * (`cdk-saas-billing` and `cdk-saas-billing/runtime`) resolve and type-check as a user's project
 * sees them, and prints its size. Exit code 1 on any problem.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import * as ts from 'typescript';
import { packageProblems } from './contents';

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'test', '.out', 'package');

function walk(dir: string, base = dir): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p, base) : [path.relative(base, p).split(path.sep).join('/')];
  });
}

/** A handler of a user, compiled against the packed `cdk-saas-billing/runtime` for its types. */
const CONSUMER = `import { ClosedWindow, UsageReader } from 'cdk-saas-billing/runtime';

export async function handler(): Promise<string[]> {
  const page = await UsageReader.fromEnvironment().readClosedWindows({ limit: 10 });
  return page.windows.map((w: ClosedWindow) => \`\${w.tenantId} \${w.metric} \${w.sum}\`);
}
`;

/**
 * The packed entry points resolve as a user's project resolves them, the package installed as
 * node_modules/cdk-saas-billing: Node's require (through "exports") finds cdk-saas-billing and
 * cdk-saas-billing/runtime, the runtime loads and exports UsageReader, and TypeScript finds its
 * types under every module resolution a project may use (node16 and bundler read "exports",
 * node10 the runtime/ folder), checking the package's declarations too (skipLibCheck off; the AWS
 * SDK's own declarations need @types/node, as in any Lambda project in TypeScript).
 */
function entryPointProblems(packRoot: string): string[] {
  const consumer = path.join(OUT, 'consumer');
  fs.mkdirSync(path.join(consumer, 'node_modules'), { recursive: true });
  fs.symlinkSync(packRoot, path.join(consumer, 'node_modules', 'cdk-saas-billing'), 'dir');
  // A package of its own: inside this repository (whose package.json is cdk-saas-billing with
  // "exports"), Node and TypeScript would resolve the name to the repository itself.
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  const consumerRequire = createRequire(path.join(consumer, 'handler.js'));
  const problems: string[] = [];
  const expected: Record<string, string> = { 'cdk-saas-billing': 'lib/index.js', 'cdk-saas-billing/runtime': 'runtime/index.js' };
  for (const [request, file] of Object.entries(expected)) {
    let resolved: string | undefined;
    try {
      resolved = consumerRequire.resolve(request);
    } catch (e) {
      problems.push(`require('${request}') does not resolve: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    if (resolved !== path.join(packRoot, file)) problems.push(`require('${request}') resolves to ${path.relative(packRoot, resolved)}, expected ${file}`);
  }
  try {
    const runtime = consumerRequire('cdk-saas-billing/runtime');
    if (typeof runtime.UsageReader?.fromEnvironment !== 'function') problems.push('cdk-saas-billing/runtime loads but exports no UsageReader');
  } catch (e) {
    problems.push(`cdk-saas-billing/runtime does not load: ${(e as Error).message.split('\n')[0]}`);
  }
  fs.writeFileSync(path.join(consumer, 'handler.ts'), CONSUMER);
  const resolutions: Array<[string, ts.CompilerOptions]> = [
    ['node16', { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 }],
    ['bundler', { module: ts.ModuleKind.ES2022, moduleResolution: ts.ModuleResolutionKind.Bundler }],
    ['node10', { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 }],
  ];
  for (const [name, options] of resolutions) {
    const program = ts.createProgram([path.join(consumer, 'handler.ts')], {
      ...options, strict: true, noEmit: true, skipLibCheck: false, target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts'], types: ['node'],
    });
    const errors = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
    for (const d of errors.slice(0, 5)) {
      const where = d.file ? `${path.relative(OUT, d.file.fileName)}: ` : '';
      problems.push(`TypeScript (moduleResolution ${name}) on a handler importing cdk-saas-billing/runtime: ${where}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
    }
  }
  return problems;
}

function main(): void {
  const packageJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const tarball = path.join(ROOT, 'dist', 'js', `${packageJson.name}@${packageJson.version}.jsii.tgz`);
  if (!fs.existsSync(tarball)) throw new Error(`${path.relative(ROOT, tarball)} is missing: run \`npx projen package:js\` first`);

  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', OUT]);
  const packRoot = path.join(OUT, 'package');
  const files = walk(packRoot).sort();
  const packedPackageJson = JSON.parse(fs.readFileSync(path.join(packRoot, 'package.json'), 'utf8'));

  const problems = [
    ...packageProblems({
      files,
      read: (file) => fs.readFileSync(path.join(packRoot, file), 'utf8'),
      packageJson: packedPackageJson,
      builtAssets: walk(path.join(ROOT, 'assets')).map((f) => `assets/${f}`),
      existsInRepo: (p) => fs.existsSync(path.join(ROOT, p)),
    }),
    ...entryPointProblems(packRoot),
  ];

  const unpacked = files.reduce((sum, f) => sum + fs.statSync(path.join(packRoot, f)).size, 0);
  const count = (prefix: string) => files.filter((f) => f.startsWith(prefix)).length;
  const summary = `${path.relative(ROOT, tarball)}: ${files.length} files (${count('lib/')} in lib/, ${count('assets/')} bundles in assets/, `
    + `${count('runtime/')} in runtime/, ` +
    `${count('docs/')} in docs/), ${(fs.statSync(tarball).size / 1024).toFixed(1)} KB packed, ${(unpacked / 1024).toFixed(1)} KB unpacked`;
  for (const p of problems) console.error(`package:check: ${p}`);
  if (problems.length > 0) {
    console.error(`${summary}\npackage:check: ${problems.length} problem(s)`);
    process.exitCode = 1;
  } else {
    console.log(`${summary}\npackage:check: bundled handlers only, every require() resolvable, cdk-saas-billing/runtime exported with its types, `
      + 'no source map naming a file the package lacks, no relative link out of the package');
  }
}

main();
