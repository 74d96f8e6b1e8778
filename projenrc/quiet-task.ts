/**
 * Runs a projen task with its output held back: one summary line when it
 * succeeds, its whole output when it fails. The demos run `bundle` this way, so
 * that the build's output (a header and an esbuild report per handler) does not
 * stand before the first step they print; `npx projen bundle` shows it all.
 *
 *   ts-node --transpile-only projenrc/quiet-task.ts bundle
 */
import { spawnSync } from 'child_process';

const task = process.argv[2];
if (!task) {
  console.error('usage: quiet-task.ts <projen task>');
  process.exit(2);
}
const started = Date.now();
// Inside a projen task node_modules/.bin is on PATH; `npx` also works from a shell.
const run = spawnSync('npx', ['projen', task], { encoding: 'utf8', shell: process.platform === 'win32', env: { ...process.env, FORCE_COLOR: '0' } });
const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
if (run.status !== 0) {
  process.stderr.write(output);
  console.error(`${task} failed (exit ${run.status ?? run.signal}); its output is above`);
  process.exit(run.status ?? 1);
}
// esbuild reports each bundle as `  <path>/index.js  <size>kb`.
const bundles = [...output.matchAll(/^\s+(\S+\.js)\s+([\d.]+)(kb|mb|b)\s*$/gim)];
const kb = bundles.reduce((n, m) => n + Number(m[2]) * (m[3].toLowerCase() === 'mb' ? 1024 : m[3].toLowerCase() === 'b' ? 1 / 1024 : 1), 0);
const what = bundles.length > 0 ? `${bundles.length} esbuild bundle${bundles.length === 1 ? '' : 's'} (${(kb / 1024).toFixed(1)} MB)` : 'done';
console.log(`${task}: ${what} in ${((Date.now() - started) / 1000).toFixed(1)} s (npx projen ${task} shows the build's output)`);
