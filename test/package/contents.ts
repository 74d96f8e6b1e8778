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
    const inBundle = file.startsWith('assets/');
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

/** Every rule at once. */
export function packageProblems(pkg: PackageUnderTest): string[] {
  return [
    ...handlerSourceProblems(pkg.files),
    ...missingAssetProblems(pkg.files, pkg.builtAssets),
    ...unresolvedRequireProblems(pkg),
    ...linkProblems(pkg),
  ];
}
