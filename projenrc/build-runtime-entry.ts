/**
 * `npx projen bundle:runtime` (part of `bundle`): builds the `cdk-saas-billing/runtime` entry point
 * (src/runtime/index.ts) into runtime/ of the npm package.
 *
 * - runtime/index.js: one CommonJS bundle (esbuild), for Node.js `RUNTIME_ENTRY_NODE_MAJOR` and
 *   later (the package's `engines`), with `@aws-sdk/*` and `@smithy/*` left to `require()`: the
 *   Lambda Node.js runtime provides them, and a user's bundler resolves them from the user's project.
 * - runtime/*.d.ts: its declarations, emitted by TypeScript from the same sources, only the files
 *   runtime/index.d.ts reaches, flattened into runtime/ (the repository's paths, such as
 *   `shared.lambda/`, do not leak into the package). Every relative specifier is rewritten to
 *   the flattened name; two reachable files with one name fail the build.
 *
 * Fails on a type error in the reached sources or if a declaration imports a package other than
 * the AWS SDK (which the user must have anyway).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as esbuild from 'esbuild';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');
const ENTRY = 'src/runtime/index.ts';
const OUT = path.join(ROOT, 'runtime');
/** The oldest Node.js the entry point runs on: the package's `engines.node` (minNodeVersion in .projenrc.ts). */
export const RUNTIME_ENTRY_NODE_MAJOR = 20;
/** Packages the bundle and its declarations may import: what the Lambda Node.js runtime provides. */
export const RUNTIME_ENTRY_EXTERNALS = ['@aws-sdk/*', '@smithy/*'];

function fail(message: string): never {
  console.error(`bundle:runtime: ${message}`);
  process.exit(1);
}

/** Relative module specifiers of a declaration file (`from './x'`, `import('./x')`). */
function relativeSpecifiers(dts: string): string[] {
  return [...dts.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
}

function bareSpecifiers(dts: string): string[] {
  return [...dts.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)['"]([^./'"][^'"]*)['"]/g)].map((m) => m[1]);
}

function declarations(): Map<string, string> {
  const options: ts.CompilerOptions = {
    declaration: true,
    emitDeclarationOnly: true,
    rootDir: path.join(ROOT, 'src'),
    outDir: path.join(ROOT, 'src'), // in memory only: the paths are rewritten below
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
    lib: ['lib.es2022.d.ts'],
  };
  const program = ts.createProgram([path.join(ROOT, ENTRY)], options);
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (diagnostics.length > 0) {
    fail(ts.formatDiagnosticsWithColorAndContext(diagnostics, {
      getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n',
    }));
  }
  const emitted = new Map<string, string>();
  const result = program.emit(undefined, (fileName, text) => emitted.set(path.resolve(fileName), text));
  if (result.emitSkipped) fail('TypeScript emitted no declarations');
  return emitted;
}

/** The declarations runtime/index.d.ts reaches, as flat file names in runtime/ and their rewritten text. */
function flatten(emitted: Map<string, string>): Map<string, string> {
  const entry = path.join(ROOT, 'src', 'runtime', 'index.d.ts');
  if (!emitted.has(entry)) fail(`no declaration emitted for ${ENTRY}`);
  const reached = new Map<string, string>(); // emitted path -> flat name
  const queue = [entry];
  reached.set(entry, 'index.d.ts');
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const spec of relativeSpecifiers(emitted.get(file)!)) {
      const target = path.resolve(path.dirname(file), `${spec.replace(/\.js$/, '')}.d.ts`);
      if (!emitted.has(target)) fail(`${path.relative(ROOT, file)} imports ${spec}, which has no declaration`);
      if (reached.has(target)) continue;
      const flat = path.basename(target);
      if ([...reached.values()].includes(flat)) fail(`two declarations would be runtime/${flat}: rename one of the sources`);
      reached.set(target, flat);
      queue.push(target);
    }
  }
  const out = new Map<string, string>();
  for (const [file, flat] of reached) {
    const text = emitted.get(file)!.replace(/((?:\bfrom\s+|\bimport\s*\(\s*)['"])(\.{1,2}\/[^'"]+)(['"])/g, (_m, before: string, spec: string, after: string) => {
      const target = path.resolve(path.dirname(file), `${spec.replace(/\.js$/, '')}.d.ts`);
      return `${before}./${reached.get(target)!.replace(/\.d\.ts$/, '')}${after}`;
    });
    for (const bare of bareSpecifiers(text)) {
      const allowed = RUNTIME_ENTRY_EXTERNALS.some((p) => (p.endsWith('/*') ? bare.startsWith(p.slice(0, -1)) : bare === p));
      if (!allowed) fail(`runtime/${flat} (from ${path.relative(ROOT, file)}) imports '${bare}': users do not have it; keep it out of the reader's public types`);
    }
    out.set(flat, text);
  }
  return out;
}

async function main(): Promise<void> {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(ROOT, ENTRY)],
    outfile: path.join(OUT, 'index.js'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${RUNTIME_ENTRY_NODE_MAJOR}`,
    external: RUNTIME_ENTRY_EXTERNALS,
    tsconfig: path.join(ROOT, 'tsconfig.dev.json'),
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const files = flatten(declarations());
  for (const [name, text] of files) fs.writeFileSync(path.join(OUT, name), text);
  const size = fs.statSync(path.join(OUT, 'index.js')).size;
  console.log(`bundle:runtime: runtime/index.js (${(size / 1024).toFixed(1)} KB) and ${[...files.keys()].map((f) => `runtime/${f}`).join(', ')}`);
}

main().catch((e) => fail(String(e instanceof Error ? e.stack : e)));
