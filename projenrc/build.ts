/**
 * What a fresh clone builds on any machine, what the npm package holds, and the checks that
 * keep README.md and docs/ honest. Called from .projenrc.ts.
 */
import { awscdk, javascript } from 'projen';

/**
 * The Node.js version the handler bundles are built for (esbuild `--target=node24`): the oldest
 * Lambda runtime they may run on. src/private/node-runtime.ts refuses a `runtime` prop below it
 * (test/private/node-runtime.test.ts checks that every bundle task targets it).
 */
export const HANDLER_NODE_MAJOR = 24;

/**
 * How projen bundles each `*.lambda.ts` and generates its `*-function.ts`.
 *
 * The runtime a function runs on is chosen at synth, not here: the newest Node.js runtime of the
 * aws-cdk-lib the app loads, or the constructs' `runtime` prop (src/private/node-runtime.ts,
 * passed by src/private/handler-function.ts to every function). So no `runtime` is given here:
 * only then does projen generate a class that takes a `runtime` prop (`props?.runtime ??
 * determineLatestNodeRuntime(scope)`; the fallback is never reached, a runtime is always passed).
 * Any runtime given here would be written into the class after the props and override the prop.
 * projen spreads `bundlingOptions` over the default runtime's esbuild target (node22), which is
 * how the target is set to `HANDLER_NODE_MAJOR`.
 */
export const HANDLER_LAMBDA_OPTIONS: awscdk.LambdaFunctionCommonOptions = {
  bundlingOptions: handlerBundling(),
};

function handlerBundling(): javascript.BundlingOptions {
  const options: Pick<javascript.AddBundleOptions, 'target' | 'externals' | 'sourcemap'> = {
    target: `node${HANDLER_NODE_MAJOR}`,
    // The AWS SDK v3 ships with the Node.js runtime; Powertools is bundled.
    externals: ['@aws-sdk/*', '@smithy/*'],
    sourcemap: false,
  };
  return options;
}

/**
 * Handler sources: esbuild bundles them into assets/ (projen's `*.lambda.ts` convention), so
 * jsii never compiles them: they are not in lib/, not in the .jsii assembly and not in the npm
 * package (which would otherwise require packages the library does not depend on: Powertools,
 * the AWS SDK). Covers every entry point (`src/**\/*.lambda.ts`) and every handler-only helper
 * folder at any depth (`src/shared.lambda/`, `src/<feature>/shared.lambda/`).
 * `typecheck` type-checks them instead (esbuild does not); `package:check` proves the package.
 */
export const HANDLER_SOURCES = ['src/**/*.lambda.ts', 'src/**/shared.lambda/**'];

export function configureBuild(project: awscdk.AwsCdkConstructLibrary): void {
  const devTsNode = 'ts-node --project tsconfig.dev.json';

  // `package` packages what every machine can: the npm tarball (dist/js). projen's default runs
  // `package-all` (every jsii language: .NET SDK, Maven, Go needed) whenever CI is unset, so
  // README's `npx projen build` failed on a newcomer's machine (spawn dotnet ENOENT).
  // `package-all` and `package:<language>` stay; `test:languages` uses them for Python, Java, Go.
  const packageJs = project.tasks.tryFind('package:js');
  if (!packageJs) throw new Error('projenrc/build.ts: projen no longer defines package:js');
  project.packageTask.reset();
  project.packageTask.spawn(packageJs);

  // The tarball just packed: bundles in, handler sources out, every require() resolvable,
  // README/docs links that leave the package absolute.
  const packageCheck = project.addTask('package:check', {
    description: 'Check the npm tarball in dist/js: bundled handlers only, no handler sources, nothing required that the package does not depend on, no relative link out of the package',
    exec: `${devTsNode} test/package/check.ts`,
  });
  project.packageTask.spawn(packageCheck);

  // jsii no longer compiles the handlers, and esbuild does not type-check: tsc does, together
  // with the tests, examples and benchmarks (ts-jest runs with isolatedModules: no type check).
  // jsii does not remove what it compiled before: a handler source compiled by an older build, or
  // a deleted module, would stay in lib/ and be packed. Compile into an empty lib/.
  project.preCompileTask.prependExec('node -e "require(\'fs\').rmSync(\'lib\', { recursive: true, force: true })"');

  // No source maps in lib/: jsii compiles with projen's inline maps and inlined sources, whose
  // `sources` name ../src/*.ts, which the package does not hold (src/ is not packed), so stack
  // traces through source-map-support (ts-node, `node --enable-source-maps`) pointed at
  // node_modules/cdk-saas-billing/src/*.ts. Without maps they name lib/*.js, which is packed
  // (plain ES2022, close to the source); and the package is about 500 KB smaller.
  // package:check refuses any packed source map naming a file the package lacks.
  project.tsconfig?.file.addOverride('compilerOptions.inlineSourceMap', false);
  project.tsconfig?.file.addOverride('compilerOptions.inlineSources', false);

  const typecheck = project.addTask('typecheck', {
    description: 'Type-check everything tsconfig.dev.json covers: handlers, tests, examples, benchmarks, projenrc',
    exec: 'tsc --noEmit -p tsconfig.dev.json',
  });
  project.testTask.prependSpawn(typecheck);

  // Every TypeScript snippet of README.md (and `@example` doc comments) compiles with
  // jsii-rosetta in strict mode, fixtures in rosetta/; the tablet it writes (.jsii.tabl.json,
  // shipped in the npm package) gives jsii-pacmak and Construct Hub the Python, Java, C# and Go
  // translations. Then the snippets of docs/*.md get the same treatment (rosetta only reads the
  // assembly, which holds README.md), and every snippet is synthesized. Needs .jsii: post-compile.
  const snippets = project.addTask('snippets', {
    description: 'Compile every TypeScript snippet of README.md, doc comments and docs/*.md with jsii-rosetta (strict, fixtures in rosetta/), then synthesize each',
    steps: [
      { exec: 'jsii-rosetta extract --strict .jsii' },
      { exec: `${devTsNode} test/snippets/check.ts` },
    ],
  });
  project.postCompileTask.spawn(snippets);
  project.gitignore.exclude('/.jsii.tabl.json');
  // test/snippets/check.ts writes the runtime snippets it compiles under test/.out/: not sources.
  project.tsconfigDev.addExclude('test/.out/**');
  project.eslint?.addIgnorePattern('test/.out/');

  // For contributors, not users: the snippet fixtures (the tablet holds the translations) and
  // CONTRIBUTING.md (README links to it on GitHub).
  project.addPackageIgnore('/rosetta/');
  project.addPackageIgnore('/CONTRIBUTING.md');
}
