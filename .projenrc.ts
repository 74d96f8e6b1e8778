import { awscdk, javascript, release, ReleasableCommits } from 'projen';
import { UpdateSnapshot } from 'projen/lib/javascript';
import { configureBuild, HANDLER_LAMBDA_OPTIONS, HANDLER_SOURCES } from './projenrc/build';
import { configureRuntimeEntry, RUNTIME_ENTRY_SOURCES } from './projenrc/runtime-entry';

// One place for every version that has to agree across the project.
const CDK_VERSION = '2.276.0';
// The oldest aws-cdk-lib the library accepts: its peer dependency and the floor that the
// Python, Java, Go and .NET packages declare. It must be a version that PyPI and Maven
// Central already serve (they publish aws-cdk-lib after npm), or those packages cannot be
// installed: why and how to raise it in docs/languages.md.
const CDK_MIN_VERSION = '2.263.0';
const CONSTRUCTS_VERSION = '10.5.1';
const POWERTOOLS_VERSION = '2.35.0';
const AWS_SDK_VERSION = '^3';

const project = new awscdk.AwsCdkConstructLibrary({
  name: 'cdk-saas-billing',
  description:
    'AWS CDK constructs for the billing layer of a SaaS control plane: tenant lifecycle to billing, exactly-once usage aggregation, scheduled usage push and signed webhooks.',
  author: 'cdk-saas-billing maintainers',
  authorAddress: 'maintainers@users.noreply.b-seed-33af2206.example',
  repositoryUrl: 'https://github.com/cdk-saas-billing/cdk-saas-billing.git',
  license: 'Apache-2.0',
  keywords: ['aws-cdk', 'cdk', 'saas', 'billing', 'metering', 'sbt-aws', 'eventbridge', 'kinesis'],
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  minNodeVersion: '20.0.0',
  typescriptVersion: '~5.9.3',

  cdkVersion: CDK_MIN_VERSION,
  constructsVersion: CONSTRUCTS_VERSION,
  // Build and test with CDK_VERSION (devDeps below), not with the floor.
  peerDependencyOptions: { pinnedDevDependency: false },
  jsiiVersion: '~6.0.0',

  // jsii targets: names follow each ecosystem's conventions.
  publishToPypi: {
    distName: 'cdk-saas-billing',
    module: 'cdk_saas_billing',
  },
  publishToMaven: {
    javaPackage: 'io.github.cdksaasbilling',
    mavenGroupId: 'io.github.cdk-saas-billing',
    mavenArtifactId: 'cdk-saas-billing',
  },
  publishToNuget: {
    dotNetNamespace: 'CdkSaasBilling',
    packageId: 'CdkSaasBilling',
  },
  publishToGo: {
    moduleName: 'github.com/cdk-saas-billing/cdk-saas-billing-go',
    packageName: 'cdksaasbilling',
  },

  // Handlers (*.lambda.ts) are bundled with esbuild at build time into assets/,
  // so consumers in every language synthesize without Docker or esbuild.
  lambdaOptions: HANDLER_LAMBDA_OPTIONS,

  devDeps: [
    `aws-cdk-lib@${CDK_VERSION}`,
    'cdk-nag@^3.0.2',
    '@types/aws-lambda',
    `@aws-lambda-powertools/batch@${POWERTOOLS_VERSION}`,
    `@aws-lambda-powertools/logger@${POWERTOOLS_VERSION}`,
    `@aws-lambda-powertools/metrics@${POWERTOOLS_VERSION}`,
    `@aws-lambda-powertools/parameters@${POWERTOOLS_VERSION}`, 'stripe',
    `@aws-sdk/client-dynamodb@${AWS_SDK_VERSION}`,
    `@aws-sdk/lib-dynamodb@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-kinesis@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-eventbridge@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-secrets-manager@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-sqs@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-cloudformation@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-scheduler@${AWS_SDK_VERSION}`,
    // MarketplaceBilling: ResolveCustomer, BatchMeterUsage, GetEntitlements (in the Lambda runtime's SDK; bundles keep @aws-sdk/* external).
    `@aws-sdk/client-marketplace-metering@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-marketplace-entitlement-service@${AWS_SDK_VERSION}`,
    '@smithy/node-http-handler',
  ],

  jestOptions: {
    // projen's default `test` task rewrites snapshots; never in this project:
    // a drifting template must fail. `npx projen test:update` refreshes them.
    updateSnapshot: UpdateSnapshot.NEVER,
    passWithNoTests: false,
    jestConfig: {
      testTimeout: 120_000,
      // Handler tests start emulator processes: keep the 2-core machine calm.
      maxWorkers: 2,
    },
  },

  tsconfigDevFile: 'tsconfig.dev.json',
  tsconfigDev: {
    include: ['src/**/*.ts', 'test/**/*.ts', 'examples/**/*.ts', 'bench/**/*.ts', '.projenrc.ts', 'projenrc/**/*.ts'],
    exclude: ['examples/*/cdk.out/**', 'bench/sbt-aws*/**'],
  },

  eslintOptions: {
    dirs: ['src'],
    devdirs: ['test', 'examples', 'bench', 'projenrc', '.projenrc.ts'],
    tsconfigPath: './tsconfig.dev.json',
    projectService: false,
  },

  gitignore: [
    '/.venv/',
    '/cdk.out/',
    '/examples/**/cdk.out/',
    // Consumer apps of the Python, Java and Go packages (npx projen test:languages).
    '/examples/python/.venv/',
    '/examples/python/__pycache__/',
    '/examples/java/target/',
    '/bench/out/',
    '/bench/sbt-aws*/',
  ],

  githubOptions: { mergify: false },
  depsUpgrade: false,

  // An unreleased 0.x library. Versions are cut by hand with
  // `npx projen release` (bump from Conventional Commits since the last v0.* tag,
  // CHANGELOG.md, tag; nothing is pushed or published). majorVersion 0 keeps every
  // release in 0.x: a bump to 1.0.0 fails until this line changes. The API is marked
  // experimental in every language until then. See CONTRIBUTING.md, "Releases".
  release: true,
  releaseTrigger: release.ReleaseTrigger.manual({ changelogPath: 'CHANGELOG.md', gitPushCommand: '' }),
  majorVersion: 0,
  releasableCommits: ReleasableCommits.featuresAndFixes(),
  stability: 'experimental',
  // Handler sources are bundled into assets/ by esbuild, the cdk-saas-billing/runtime entry point
  // into runtime/; jsii (and so lib/ and the npm package) compiles only the constructs.
  // Type-checked by `typecheck`.
  excludeTypescript: [...HANDLER_SOURCES, ...RUNTIME_ENTRY_SOURCES],
  stale: false,
  pullRequestTemplate: false,
  sampleCode: false,
});

// AwsCdkDeps replaces a constructs devDep given in the options; pin it here instead.
project.addDevDeps(`constructs@${CONSTRUCTS_VERSION}`);

// Usage ingestor: usage records are parsed from their text without binary floats
// (numbers keep every digit); bundled into the aggregator, hence a devDependency.
project.addDevDeps('lossless-json@^4.3.3');

// Test scratch output; added after projen's own `!/test/` so it stays ignored.
project.gitignore.exclude('/test/.out/');

for (const p of ['/examples/', '/bench/', '/.ci/', '/.venv/', '/cdk.out/']) project.addPackageIgnore(p);

// Handler-only helpers are bundled into the handlers like the *.lambda.ts entry points.
project.eslint?.addOverride({
  files: ['src/**/shared.lambda/**/*.ts'],
  rules: { 'import/no-extraneous-dependencies': 'off' },
});
project.eslint?.addIgnorePattern('bench/sbt-aws*/');
project.eslint?.addIgnorePattern('examples/**/cdk.out/');
project.eslint?.addIgnorePattern('examples/python/');
project.eslint?.addIgnorePattern('examples/java/');
project.eslint?.addIgnorePattern('examples/go/');

// jsii 6 prints an end-of-life banner on Node 20; the project supports Node 20.
project.tasks.addEnvironment('JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION', '20');

const devTsNode = 'ts-node --project tsconfig.dev.json';

// Handler bundles must exist before tests load the generated *-function.ts files.
project.testTask.prependSpawn(project.bundler.bundleTask);

// README command 1: synthesize the example billing app on its defaults.
project.addTask('example', {
  description: 'Synthesize the example billing app (examples/app.ts) into cdk.out/',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} examples/app.ts` }],
});

// README: run the whole billing flow locally against the emulator and print each step.
// The demos build the handler bundles quietly (one summary line; the whole output on failure), so that
// the build's output does not stand before the steps they print.
const quietBundle = { exec: `ts-node --transpile-only --project tsconfig.dev.json projenrc/quiet-task.ts ${project.bundler.bundleTask.name}` };
project.addTask('demo:local', {
  description: 'Run the end-to-end billing flow against a local AWS API emulator (moto) and print each step',
  steps: [quietBundle, { exec: `${devTsNode} examples/local-flow/demo.ts` }],
});

// Benchmarks: kept in the repo, not in the test suite.
project.addTask('bench:ingest', {
  description: 'Feed 20,000 synthetic usage records in three distributions through the aggregator and closer (and sbt-aws\'s aggregator) against moto; prints WRU per record, requests and drift (BENCH_MODE=capacity: writes per partition key per second)',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} bench/ingest.ts` }],
});

project.addTask('bench:entitlements', {
  description: 'Entitlements against moto: write and read units per record with entitlements on 1 and 10 metrics (1,000 tenants x 10 metrics), record-to-threshold-event latency, the authorizer\'s decision time',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} bench/entitlements.ts` }],
});

project.addTask('bench:synth', {
  description: 'Synth time of the example app against sbt-aws BillingProvider (installs sbt-aws into bench/sbt-aws)',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} bench/synth.ts` }],
});

// Build the Python, Java and Go packages (and the C# sources), synthesize the
// consumer apps in examples/{python,java,go} and compare their templates with TypeScript's.
project.addTask('test:languages', {
  description: 'Package every jsii target, synthesize the Python, Java and Go consumer apps and compare each template with the TypeScript example app',
  steps: [{ exec: `${devTsNode} test/languages/run.ts` }],
});

// What the tests run against (moto and cfn-lint into .venv/, stripe-mock into .tools/), installed
// once when the machine lacks them, before the test workers start.
const testTools = project.addTask('test:tools', {
  description: 'Install what the tests run against when missing: moto and cfn-lint (.venv/, PyPI), stripe-mock (.tools/, Go module proxy)',
  steps: [{ exec: `${devTsNode} test/support/install-tools.ts` }],
});
project.testTask.prependSpawn(testTools);

// StripeBilling: stripe-mock (a Go program) is installed by the test support into the
// project-local .tools/ when it is not on PATH; the Stripe SDK is bundled into the
// handlers, so its exact version (and the API version it is pinned to) is fixed here.
project.addDevDeps('stripe@23.1.0');
project.gitignore.exclude('/.tools/');
project.addPackageIgnore('/.tools/');
project.addTask('demo:stripe', {
  description: 'Run onboarding, usage, push and a signed webhook of StripeBilling against moto and stripe-mock, printing each step',
  steps: [quietBundle, { exec: `${devTsNode} examples/stripe-flow.ts` }],
});
project.addTask('bench:stripe-month', {
  description: 'The month of the Stripe month simulation (3 tenants, daily periods, every fault) with DynamoDB behind the recording proxy: what the reconciler and the push cost per tenant and billing period (BENCH_DAYS, default 30)',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} bench/stripe-month.ts` }],
});
project.addTask('demo:marketplace', {
  description: 'Run register, onboard, usage, metering and cancellation of MarketplaceBilling against moto and the local AWS Marketplace emulator, printing each step',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} examples/marketplace-flow.ts` }],
});
project.addTask('bench:marketplace-push', {
  description: 'Meter 10,000 tenant-hours through MarketplaceBilling\'s push against the local AWS Marketplace emulator; prints requests per hour metered and wall time',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} bench/marketplace-push.ts` }],
});
project.addTask('bench:stripe-push', {
  description: 'Push 10,000 closed windows to stripe-mock through StripeBilling\'s push; prints requests per window and wall time',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} bench/stripe-push.ts` }],
});

// docs/dashboard.svg: the example app's BillingDashboard drawn from its DashboardBody
// (test/dashboard/image.test.ts fails when the committed image no longer matches it).
project.addTask('docs:dashboard', {
  description: 'Draw docs/dashboard.svg from the DashboardBody of the example app\'s BillingDashboard (examples/stripe-billing-stack.ts)',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: `${devTsNode} test/dashboard/example-image.ts` }],
});

// The library on the oldest (CDK_MIN_VERSION) and the newest aws-cdk-lib it accepts: the example app
// synthesized on each (installed with npm into test/.out/compat/), with cdk-nag and cfn-lint.
// CDK_COMPAT_NEWEST is the newest aws-cdk-lib on npm when last checked; `CDK_COMPAT_VERSIONS="2.263.0 latest"`
// overrides the list. CI runs it after the build (.ci/run).
const CDK_COMPAT_NEWEST = '2.278.0';
project.addTask('test:compat', {
  description: 'Synthesize the example app on the oldest and the newest aws-cdk-lib the package accepts (npm install into test/.out/compat/): no unacknowledged cdk-nag finding, no cfn-lint error, every library function on the newest Node.js runtime',
  steps: [
    { spawn: project.bundler.bundleTask.name },
    { exec: `${devTsNode} test/compat/run.ts ${CDK_MIN_VERSION} ${CDK_COMPAT_NEWEST}` },
  ],
});

// What a fresh clone builds, snippet compilation, release files: projenrc/build.ts.
configureBuild(project);

// `cdk-saas-billing/runtime`: the usage reader for users' own handlers (projenrc/runtime-entry.ts).
configureRuntimeEntry(project);

project.synth();
