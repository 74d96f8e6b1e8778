/**
 * `npx projen snippets` (second step; the first is `jsii-rosetta extract --strict .jsii`):
 *
 * 1. Compiles every ```ts block of docs/*.md with jsii-rosetta, exactly as
 *    `jsii-rosetta extract --strict` compiles README.md and doc comments: same fixtures
 *    (rosetta/*.ts-fixture), strict (a snippet rosetta cannot translate to Python, Java, C# and
 *    Go fails too), every diagnostic fails. rosetta only reads the jsii assembly, which holds
 *    README.md but not docs/, hence this script. Runtime code (```ts fixture=runtime: a
 *    producer or handler using the AWS SDK, which no other language's user would copy) is
 *    compiled by the TypeScript compiler against this project's node_modules, strict, instead:
 *    rosetta's translatable subset (no arrow functions, no await) does not fit it.
 * 2. Synthesizes every snippet of README.md, doc comments and docs/*.md whose fixture defines
 *    `export class Fixture` (a Stack): compiling is not enough, a snippet must also pass the
 *    constructs' validation (e.g. a webhook without `httpApi` fails at synth, not at compile).
 *    Error annotations fail too.
 *
 * Needs .jsii and lib/ (it runs in post-compile). Exit code 1 on any problem; the last line says
 * how many snippets compiled and synthesized. Rules for snippet authors: rosetta/README.md.
 */
import * as fs from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import { RosettaTranslator, TypeScriptSnippet, SnippetParameters, formatLocation, updateParameters } from 'jsii-rosetta';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..');
const DOCS = path.join(ROOT, 'docs');
const OUT = path.join(ROOT, 'test', '.out', 'snippets');

// jsii-rosetta exports its translator but not the functions `extract` uses to find and fixturize
// snippets. They are loaded from its lib/ (jsii-rosetta ~6.0, pinned with jsii): should they
// move, this fails here, loudly, rather than checking less.
const ROSETTA_LIB = path.dirname(require.resolve('jsii-rosetta'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { loadAssemblies, allTypeScriptSnippets } = require(path.join(ROSETTA_LIB, 'jsii', 'assemblies.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { extractTypescriptSnippetsFromMarkdown } = require(path.join(ROSETTA_LIB, 'markdown', 'extract-snippets.js'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { fixturize } = require(path.join(ROSETTA_LIB, 'fixtures.js'));

const rootRequire = createRequire(path.join(ROOT, 'package.json'));
const packageJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

/** Bare module specifiers a source imports (`import ... from 'x'`, `import x = require('x')`). */
export function importedModules(source: string): string[] {
  const found = new Set<string>();
  for (const m of source.matchAll(/\bfrom\s+'([^'.][^']*)'|\brequire\('([^'.][^']*)'\)/g)) {
    const spec = m[1] ?? m[2];
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    found.add(name);
  }
  return [...found];
}

/**
 * The packages a docs snippet compiles against, as rosetta gives a README snippet: this package
 * and its dependencies and peers; plus what the snippet and its fixture import from this
 * project's node_modules (a runtime snippet imports the AWS SDK).
 */
function compilationDependencies(completeSource: string): Record<string, { type: 'concrete'; resolvedDirectory: string }> {
  const deps: Record<string, { type: 'concrete'; resolvedDirectory: string }> = {
    [packageJson.name]: { type: 'concrete', resolvedDirectory: fs.realpathSync(ROOT) },
  };
  const names = [
    ...Object.keys({ ...packageJson.dependencies, ...packageJson.peerDependencies }),
    ...importedModules(completeSource),
  ];
  for (const name of names) {
    if (name === packageJson.name || name.startsWith('node:') || deps[name]) continue;
    const dir = path.join(ROOT, 'node_modules', name);
    if (!fs.existsSync(path.join(dir, 'package.json'))) {
      throw new Error(`a snippet imports '${name}', which is not in this project's node_modules: add it to devDeps or drop the import`);
    }
    deps[name] = { type: 'concrete', resolvedDirectory: fs.realpathSync(dir) };
  }
  return deps;
}

/** Whether a snippet is runtime code (```ts fixture=runtime), not CDK code. */
function isRuntime(snippet: TypeScriptSnippet): boolean {
  return snippet.parameters?.[SnippetParameters.FIXTURE] === 'runtime';
}

/**
 * Compiles runtime-code snippets (fixturized) with the TypeScript compiler: strict, Node's and
 * this project's types (AWS SDK v3 and the like), `cdk-saas-billing` from lib/ and
 * `cdk-saas-billing/runtime` from runtime/ (built by `bundle`). One program.
 */
function compileRuntimeSnippets(snippets: TypeScriptSnippet[]): string[] {
  if (snippets.length === 0) return [];
  const dir = path.join(OUT, 'runtime');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const files = snippets.map((snippet) => {
    const file = path.join(dir, `${formatLocation(snippet.location).replace(/[^A-Za-z0-9_.-]+/g, '_')}.ts`);
    fs.writeFileSync(file, snippet.completeSource ?? snippet.visibleSource);
    return file;
  });
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
    baseUrl: ROOT,
    // The package as users import it: the jsii entry point, and the runtime entry point for handlers.
    paths: { [packageJson.name]: ['lib/index.d.ts'], [`${packageJson.name}/runtime`]: ['runtime/index.d.ts'] },
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length === 0) return [];
  return [ts.formatDiagnosticsWithColorAndContext(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => '\n',
  }).trimEnd()];
}

/** Every ```ts block of docs/*.md, fixturized like rosetta fixturizes README snippets. */
function docsSnippets(): TypeScriptSnippet[] {
  const files = fs.existsSync(DOCS) ? fs.readdirSync(DOCS).filter((f) => f.endsWith('.md')).sort() : [];
  return files.flatMap((file) => {
    const markdown = fs.readFileSync(path.join(DOCS, file), 'utf8');
    const snippets: TypeScriptSnippet[] = extractTypescriptSnippetsFromMarkdown(
      markdown, { api: 'file', fileName: `docs/${file}` }, /* strict */ true);
    return snippets.map((snippet) => {
      const fixturized: TypeScriptSnippet = fixturize(updateParameters(snippet, { [SnippetParameters.$PROJECT_DIRECTORY]: ROOT }));
      if (isRuntime(fixturized)) return fixturized;
      return { ...fixturized, compilationDependencies: compilationDependencies(fixturized.completeSource ?? fixturized.visibleSource) };
    });
  });
}

/** Runs a fixturized snippet's complete source and synthesizes its Fixture stack; returns problems. */
export function synthesize(snippet: TypeScriptSnippet, outdir: string): string[] | 'no-stack' {
  const source = snippet.completeSource ?? snippet.visibleSource;
  if (!/\bexport class Fixture\b/.test(source)) return 'no-stack';
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: `${formatLocation(snippet.location)}.ts`,
  }).outputText;
  // The snippet imports the package by its name: give it the build in lib/ (what npm users get).
  const snippetRequire = (id: string) => (id === packageJson.name ? rootRequire(path.join(ROOT, 'lib', 'index.js')) : rootRequire(id));
  const mod = { exports: {} as Record<string, any> };
  const cdk = rootRequire('aws-cdk-lib');
  try {
    new Function('require', 'module', 'exports', js)(snippetRequire, mod, mod.exports);
    fs.rmSync(outdir, { recursive: true, force: true });
    const app = new cdk.App({ outdir });
    new mod.exports.Fixture(app, 'Snippet');
    const assembly = app.synth();
    return assembly.stacks.flatMap((stack: any) => stack.messages
      .filter((m: any) => m.level === 'error')
      .map((m: any) => `error annotation at ${m.id}: ${m.entry.data}`));
  } catch (e) {
    return [String((e as Error)?.stack ?? e).split('\n').slice(0, 8).join('\n')];
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  if (!fs.existsSync(path.join(ROOT, '.jsii')) || !fs.existsSync(path.join(ROOT, 'lib', 'index.js'))) {
    throw new Error('.jsii or lib/ is missing: run `npx projen compile` first (the build runs this after it)');
  }
  // rosetta reads README.md from the assembly: one compiled before README.md changed would check the old text.
  const compiledReadme = JSON.parse(fs.readFileSync(path.join(ROOT, '.jsii'), 'utf8')).readme?.markdown;
  if (compiledReadme !== fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')) {
    throw new Error('README.md changed after the last compile, so its snippets were not checked: run `npx projen compile` (it runs this check after compiling)');
  }
  const failures: string[] = [];

  // 1. docs/*.md: CDK code with rosetta, strict; runtime code with tsc.
  const docs = docsSnippets();
  const cdkDocs = docs.filter((s) => !isRuntime(s));
  if (cdkDocs.length > 0) {
    const assemblies = loadAssemblies([ROOT], false).map((a: any) => a.assembly);
    const translator = new RosettaTranslator({ includeCompilerDiagnostics: true, assemblies });
    const result = await translator.translateAll(cdkDocs, { addToTablet: false });
    for (const d of result.diagnostics) failures.push(`${d.formattedMessage}`.trimEnd());
  }
  failures.push(...compileRuntimeSnippets(docs.filter(isRuntime)));
  const compiledSeconds = (Date.now() - started) / 1000;

  // 2. Synthesize README.md and doc comment snippets (rosetta compiled them in the step before)
  //    and the docs snippets.
  const assemblySnippets: TypeScriptSnippet[] = await allTypeScriptSnippets(loadAssemblies([ROOT], false));
  let synthesized = 0;
  let runtimeOnly = 0;
  for (const [i, snippet] of [...assemblySnippets, ...docs].entries()) {
    const where = formatLocation(snippet.location);
    const problems = synthesize(snippet, path.join(OUT, String(i)));
    if (problems === 'no-stack') {
      runtimeOnly++;
      continue;
    }
    if (problems.length === 0) synthesized++;
    for (const p of problems) failures.push(`${where}: does not synthesize: ${p}`);
  }

  for (const f of failures) console.error(f);
  const total = assemblySnippets.length + docs.length;
  const summary = `snippets: ${assemblySnippets.length} in README.md and doc comments (compiled by jsii-rosetta extract --strict), ` +
    `${docs.length} in docs/*.md (compiled here, ${compiledSeconds.toFixed(1)} s); ${synthesized} synthesized, ` +
    `${runtimeOnly} runtime code (compiled only); ${failures.length} problem(s) in ${total} snippets`;
  if (failures.length > 0) {
    console.error(summary);
    process.exitCode = 1;
  } else {
    console.log(summary);
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
