/**
 * The `cdk-saas-billing/runtime` entry point of the npm package: code for users' own Lambda
 * handlers (the usage reader), beside the jsii entry point `cdk-saas-billing`, which stays as it is.
 * Built by projenrc/build-runtime-entry.ts into runtime/; checked by `package:check`
 * (test/package/contents.ts) and test/runtime/user-handler.test.ts. Called from .projenrc.ts.
 */
import { awscdk } from 'projen';

/** Its sources: bundled with esbuild, never compiled by jsii (they import the AWS SDK). */
export const RUNTIME_ENTRY_SOURCES = ['src/runtime/**'];

/** Where it is built, in the repository and in the package. */
export const RUNTIME_ENTRY_DIR = 'runtime';

/**
 * package.json `exports`: `.` is the jsii entry point exactly as `main`/`types` give it;
 * `./runtime` the entry point for handlers (types first, as TypeScript requires); `./*` keeps every
 * other file reachable by its path as before `exports` existed (`package.json`, `.jsii`, `lib/...`:
 * jsii tools and deep imports). A folder `runtime/` with `index.js` and `index.d.ts` also serves
 * resolvers that ignore `exports` (TypeScript's `moduleResolution: node`, older bundlers).
 */
export const PACKAGE_EXPORTS = {
  '.': { types: './lib/index.d.ts', default: './lib/index.js' },
  './runtime': { types: `./${RUNTIME_ENTRY_DIR}/index.d.ts`, default: `./${RUNTIME_ENTRY_DIR}/index.js` },
  './*': './*',
};

export function configureRuntimeEntry(project: awscdk.AwsCdkConstructLibrary): void {
  const build = project.addTask('bundle:runtime', {
    description: 'Build the cdk-saas-billing/runtime entry point (src/runtime/) into runtime/: one CommonJS bundle and its declarations',
    exec: 'ts-node --transpile-only --project tsconfig.dev.json projenrc/build-runtime-entry.ts',
  });
  project.bundler.bundleTask.spawn(build);
  project.package.addField('exports', PACKAGE_EXPORTS);
  // Built output: not a source, but packed (.npmignore does not list it).
  project.gitignore.exclude(`/${RUNTIME_ENTRY_DIR}/`);
  project.tsconfigDev.addExclude(`${RUNTIME_ENTRY_DIR}/**`);
  project.eslint?.addIgnorePattern(`/${RUNTIME_ENTRY_DIR}/`); // the built folder only, not src/runtime/ or test/runtime/
}
