/**
 * What the npm package may hold (issue 11), as pure functions over a file list, so that
 * test/package/contents.test.ts can prove each rule fails, and test/package/check.ts applies
 * them to the tarball the build packs (dist/js/*.tgz).
 */
import { builtinModules } from 'module';
import * as path from 'path';

/** Modules the Lambda Node.js runtime provides, which the bundles keep external (esbuild `--external`). */
export const LAMBDA_RUNTIME_PROVIDED = [/^@aws-sdk\//, /^@smithy\//];

export interface PackageJsonLike {
  readonly name: string;
  readonly main?: string;
  readonly types?: string;
  readonly exports?: Record<string, unknown>;
  readonly dependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly bundledDependencies?: string[];
  readonly repository?: { readonly url?: string } | string;
}

export interface PackageUnderTest {
  /** Paths inside the package, relative to its root (`lib/index.js`). */
  readonly files: readonly string[];
  /** Contents of a packed file. */
  readonly read: (file: string) => string;
  readonly packageJson: PackageJsonLike;
  /** Bundles the build produced (`assets/...`, relative to the project root): all must be packed. */
  readonly builtAssets: readonly string[];
  /** Whether a path exists in the repository (for absolute links into it). */
  readonly existsInRepo: (repoPath: string) => boolean;
}

/** Handler sources: `*.lambda.*` files, `*.lambda/` folders or `shared.lambda` anywhere outside assets/. */
export function handlerSourceProblems(files: readonly string[]): string[] {
  return files
    .filter((f) => !f.startsWith('assets/'))
    .filter((f) => /(^|\/)[^/]*\.lambda(\.[^/]*)?$|(^|\/)[^/]*\.lambda\//.test(f) || /(^|\/)shared\.lambda(\/|$)/.test(f))
    .map((f) => `${f}: unbundled handler source in the package (only the bundles under assets/ belong there)`);
}

/**
 * The user-facing runtime entry point (`cdk-saas-billing/runtime`, built by
 * projenrc/build-runtime-entry.ts): a bundle for users' handlers, not a Lambda asset.
 */
export const RUNTIME_ENTRY = { subpath: './runtime', dir: 'runtime/' };

/** Every bundle the build produced is packed. */
export function missingAssetProblems(files: readonly string[], builtAssets: readonly string[]): string[] {
  const packed = new Set(files);
  const problems = builtAssets.filter((a) => !packed.has(a)).map((a) => `${a}: bundled handler missing from the package`);
  if (builtAssets.length === 0) problems.push('assets/: no bundled handlers found (run the build first)');
  return problems;
}

/** The module specifiers a JavaScript file requires with a literal string. */
export function requiredModules(js: string): string[] {
  return [...js.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]);
}

function packageNameOf(specifier: string): string {
  return specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
}

/**
 * Every literal require() of a packed .js file resolves: relative ones to a packed file, bare
 * ones to a Node builtin or a dependency, peer or bundled dependency of the package; in the
 * bundles, also to what the Lambda runtime provides.
 */
export function unresolvedRequireProblems(pkg: Pick<PackageUnderTest, 'files' | 'read' | 'packageJson'>): string[] {
  const packed = new Set(pkg.files);
  const declared = new Set([
    ...Object.keys(pkg.packageJson.dependencies ?? {}),
    ...Object.keys(pkg.packageJson.peerDependencies ?? {}),
    ...(pkg.packageJson.bundledDependencies ?? []),
  ]);
  const builtins = new Set(builtinModules);
  const problems: string[] = [];
  for (const file of pkg.files.filter((f) => f.endsWith('.js'))) {
    // The handler bundles run on the Lambda runtime; the runtime entry point runs in users' handlers,
    // where the Lambda runtime (or the user's bundler) provides the AWS SDK.
    const inBundle = file.startsWith('assets/') || file.startsWith(RUNTIME_ENTRY.dir);
    for (const spec of new Set(requiredModules(pkg.read(file)))) {
      if (spec.startsWith('.')) {
        const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
        const candidates = [base, `${base}.js`, `${base}.json`, `${base}/index.js`];
        if (!candidates.some((c) => packed.has(c))) problems.push(`${file}: requires '${spec}', which is not in the package`);
        continue;
      }
      const name = packageNameOf(spec.replace(/^node:/, ''));
      if (spec.startsWith('node:') || builtins.has(name) || builtins.has(spec)) continue;
      if (declared.has(name)) continue;
      if (inBundle && LAMBDA_RUNTIME_PROVIDED.some((re) => re.test(spec))) continue;
      problems.push(`${file}: requires '${spec}', which the package does not depend on`);
    }
  }
  return problems;
}

/** The repository's web address (`https://github.com/owner/name`) from package.json, if any. */
export function repositoryWebUrl(packageJson: PackageJsonLike): string | undefined {
  const url = typeof packageJson.repository === 'string' ? packageJson.repository : packageJson.repository?.url;
  return url?.replace(/^git\+/, '').replace(/\.git$/, '');
}

/** Link targets of a markdown text, outside code blocks and code spans: inline links, images, references, HTML src/href. */
export function markdownLinks(markdown: string): string[] {
  const text = markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .replace(/`[^`\n]*`/g, '');
  const links: string[] = [];
  for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push(m[1]);
  for (const m of text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) links.push(m[1]);
  for (const m of text.matchAll(/\b(?:href|src)="([^"]+)"/g)) links.push(m[1]);
  return links;
}

/**
 * Links of README.md and docs/*.md in the package: a relative link must point at a packed file
 * (a link to examples/ would 404 on npmjs.com and in node_modules); an absolute link into this
 * repository (`<repo>/blob|tree/<ref>/<path>`) must point at a path the repository has.
 */
export function linkProblems(pkg: PackageUnderTest): string[] {
  const packed = new Set(pkg.files);
  const repo = repositoryWebUrl(pkg.packageJson);
  const problems: string[] = [];
  const docs = pkg.files.filter((f) => f === 'README.md' || /^docs\/[^/]+\.md$/.test(f));
  for (const doc of docs) {
    for (const link of markdownLinks(pkg.read(doc))) {
      if (link.startsWith('#') || /^mailto:/.test(link)) continue;
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) {
        if (repo && link.startsWith(`${repo}/`)) {
          const m = link.slice(repo.length).match(/^\/(?:blob|tree)\/[^/]+\/([^#?]*)/);
          if (m && m[1] && !pkg.existsInRepo(decodeURI(m[1]).replace(/\/$/, ''))) {
            problems.push(`${doc}: link ${link} points at ${m[1]}, which the repository does not have`);
          }
        }
        continue;
      }
      const target = decodeURI(link.split('#')[0].split('?')[0]);
      if (target === '') continue;
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(doc), target)).replace(/\/$/, '');
      const isPackedDir = [...packed].some((f) => f.startsWith(`${resolved}/`));
      if (resolved.startsWith('..') || (!packed.has(resolved) && !isPackedDir)) {
        const fix = repo ? `: link to ${repo}/blob/main/${resolved.replace(/^(\.\.\/)+/, '')} instead` : '';
        problems.push(`${doc}: relative link ${link} points at ${resolved}, which is not in the package${fix}`);
      }
    }
  }
  return problems;
}

/** The target of a package.json `exports` entry for `require` / TypeScript, by the conditions this package uses. */
function exportTarget(entry: unknown, condition: 'types' | 'default'): string | undefined {
  if (typeof entry === 'string') return condition === 'default' ? entry : undefined;
  if (entry && typeof entry === 'object') {
    const value = (entry as Record<string, unknown>)[condition] ?? (condition === 'default' ? (entry as Record<string, unknown>).require : undefined);
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

/** Where a subpath (`./package.json`) lands through `exports`, exact entries first, then `./*` patterns. */
export function resolveExport(exportsField: Record<string, unknown>, subpath: string, condition: 'types' | 'default'): string | undefined {
  if (subpath in exportsField) return exportTarget(exportsField[subpath], condition);
  for (const [key, entry] of Object.entries(exportsField)) {
    const star = key.indexOf('*');
    if (star < 0) continue;
    const [prefix, suffix] = [key.slice(0, star), key.slice(star + 1)];
    if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1) {
      return exportTarget(entry, condition)?.replace('*', subpath.slice(prefix.length, subpath.length - suffix.length));
    }
  }
  return undefined;
}

/** The relative and bare module specifiers a declaration file imports or re-exports. */
export function declarationImports(dts: string): string[] {
  return [...dts.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]);
}

/**
 * The `cdk-saas-billing/runtime` entry point (issue 16): exported as `./runtime` with its types
 * (first) and its JavaScript, both packed; its declarations reach only packed declarations and the
 * AWS SDK; `runtime/index.js` and `runtime/index.d.ts` also serve resolvers that ignore `exports`.
 * `exports` keeps the jsii entry point `.` as `main` and `types` give it, and `package.json` and
 * `.jsii` reachable (jsii tools read them through the package name).
 */
export function runtimeEntryProblems(pkg: Pick<PackageUnderTest, 'files' | 'read' | 'packageJson'>): string[] {
  const packed = new Set(pkg.files);
  const exportsField = pkg.packageJson.exports;
  if (!exportsField) return ['package.json: no "exports": cdk-saas-billing/runtime is not exported (projenrc/runtime-entry.ts sets it)'];
  const problems: string[] = [];
  const entry = exportsField[RUNTIME_ENTRY.subpath];
  if (entry && typeof entry === 'object' && Object.keys(entry)[0] !== 'types') {
    problems.push(`package.json: exports["${RUNTIME_ENTRY.subpath}"] must list "types" first (TypeScript takes the first condition that matches)`);
  }
  for (const condition of ['types', 'default'] as const) {
    const target = exportTarget(entry, condition);
    if (!target) problems.push(`package.json: exports["${RUNTIME_ENTRY.subpath}"] has no "${condition}"`);
    else if (!packed.has(target.replace(/^\.\//, ''))) problems.push(`package.json: exports["${RUNTIME_ENTRY.subpath}"].${condition} is ${target}, which is not in the package`);
  }
  for (const file of [`${RUNTIME_ENTRY.dir}index.js`, `${RUNTIME_ENTRY.dir}index.d.ts`]) {
    if (!packed.has(file)) problems.push(`${file}: missing (the runtime entry point for resolvers that ignore "exports")`);
  }
  for (const [condition, field] of [['default', pkg.packageJson.main], ['types', pkg.packageJson.types]] as const) {
    const target = exportTarget(exportsField['.'], condition);
    if (field && target?.replace(/^\.\//, '') !== field.replace(/^\.\//, '')) {
      problems.push(`package.json: exports["."].${condition} is ${target}, but the jsii entry point is ${field}: keep them equal`);
    }
  }
  for (const subpath of ['./package.json', './.jsii']) {
    if (resolveExport(exportsField, subpath, 'default') !== subpath) problems.push(`package.json: exports does not expose ${subpath} (jsii tools read it)`);
  }
  for (const file of pkg.files.filter((f) => f.startsWith(RUNTIME_ENTRY.dir) && f.endsWith('.d.ts'))) {
    for (const spec of declarationImports(pkg.read(file))) {
      if (spec.startsWith('.')) {
        const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec.replace(/\.js$/, '')));
        if (![`${base}.d.ts`, `${base}/index.d.ts`].some((c) => packed.has(c))) problems.push(`${file}: imports '${spec}', which has no declaration in the package`);
      } else if (!LAMBDA_RUNTIME_PROVIDED.some((re) => re.test(spec))) {
        problems.push(`${file}: imports '${spec}', which users of cdk-saas-billing/runtime do not have`);
      }
    }
  }
  return problems;
}

/** A source map's `sources`, resolved against the packed file (or map) that names them. */
interface SourceMapAt {
  readonly map?: { readonly sources?: string[]; readonly sourceRoot?: string };
  /** The file the map's `sources` are relative to. */
  readonly at: string;
  readonly problem?: string;
}

function sourceMapOf(file: string, text: string, read: (file: string) => string, packed: Set<string>): SourceMapAt {
  const m = /\/[/*][#@]\s*sourceMappingURL=([^\s*]+)\s*(?:\*\/)?\s*$/.exec(text);
  if (!m) return { at: file };
  const url = m[1];
  const inline = /^data:application\/json[^,]*?(;base64)?,(.*)$/.exec(url);
  try {
    if (inline) return { map: JSON.parse(inline[1] ? Buffer.from(inline[2], 'base64').toString('utf8') : decodeURIComponent(inline[2])), at: file };
    const mapFile = path.posix.normalize(path.posix.join(path.posix.dirname(file), url));
    if (!packed.has(mapFile)) return { at: file, problem: `${file}: names the source map ${url}, which is not in the package` };
    return { map: JSON.parse(read(mapFile)), at: mapFile };
  } catch {
    return { at: file, problem: `${file}: its source map cannot be read` };
  }
}

/**
 * No packed JavaScript or declaration names a file the package lacks through a source map (issue 16:
 * stack traces pointed at node_modules/cdk-saas-billing/src/*.ts, which is not packed).
 */
export function sourceMapProblems(pkg: Pick<PackageUnderTest, 'files' | 'read'>): string[] {
  const packed = new Set(pkg.files);
  const problems: string[] = [];
  for (const file of pkg.files.filter((f) => /\.(c|m)?js$|\.d\.ts$/.test(f))) {
    const { map, at, problem } = sourceMapOf(file, pkg.read(file), pkg.read, packed);
    if (problem) problems.push(problem);
    const missing = (map?.sources ?? [])
      .filter((s) => !/^[a-z][a-z0-9+.-]*:/i.test(s))
      .map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(at), map?.sourceRoot ?? '', s)))
      .filter((s) => !packed.has(s));
    if (missing.length > 0) {
      problems.push(`${file}: its source map names ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}, `
        + 'which the package does not hold: stack traces would point there (drop the map, or pack the sources)');
    }
  }
  return problems;
}

/** Every rule at once. */
export function packageProblems(pkg: PackageUnderTest): string[] {
  return [
    ...handlerSourceProblems(pkg.files),
    ...missingAssetProblems(pkg.files, pkg.builtAssets),
    ...unresolvedRequireProblems(pkg),
    ...runtimeEntryProblems(pkg),
    ...sourceMapProblems(pkg),
    ...linkProblems(pkg),
  ];
}
