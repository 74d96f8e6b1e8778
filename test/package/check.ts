/**
 * `npx projen package:check` (the last step of `package`, so of every build): applies the rules
 * of test/package/contents.ts to the tarball `package:js` just packed (dist/js/*.tgz, the file
 * `npm publish` and jsii-pacmak's Python/Java/Go/.NET packages embed), and prints its size.
 * Exit code 1 on any problem.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
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

  const problems = packageProblems({
    files,
    read: (file) => fs.readFileSync(path.join(packRoot, file), 'utf8'),
    packageJson: packedPackageJson,
    builtAssets: walk(path.join(ROOT, 'assets')).map((f) => `assets/${f}`),
    existsInRepo: (p) => fs.existsSync(path.join(ROOT, p)),
  });

  const unpacked = files.reduce((sum, f) => sum + fs.statSync(path.join(packRoot, f)).size, 0);
  const count = (prefix: string) => files.filter((f) => f.startsWith(prefix)).length;
  const summary = `${path.relative(ROOT, tarball)}: ${files.length} files (${count('lib/')} in lib/, ${count('assets/')} bundles in assets/, ` +
    `${count('docs/')} in docs/), ${(fs.statSync(tarball).size / 1024).toFixed(1)} KB packed, ${(unpacked / 1024).toFixed(1)} KB unpacked`;
  for (const p of problems) console.error(`package:check: ${p}`);
  if (problems.length > 0) {
    console.error(`${summary}\npackage:check: ${problems.length} problem(s)`);
    process.exitCode = 1;
  } else {
    console.log(`${summary}\npackage:check: bundled handlers only, every require() resolvable, no relative link out of the package`);
  }
}

main();
