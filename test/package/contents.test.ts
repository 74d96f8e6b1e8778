import {
  handlerSourceProblems, linkProblems, markdownLinks, missingAssetProblems, packageProblems, PackageUnderTest, resolveExport,
  runtimeEntryProblems, sourceMapProblems, unresolvedRequireProblems,
} from './contents';
import { PACKAGE_EXPORTS } from '../../projenrc/runtime-entry';

// The rules package:check applies to the real tarball, each shown to fail on a package that breaks it.

const REPO = 'https://github.com/cdk-saas-billing/cdk-saas-billing';

function pkg(contents: Record<string, string>, overrides: Partial<PackageUnderTest> = {}): PackageUnderTest {
  return {
    files: Object.keys(contents),
    read: (f) => contents[f],
    packageJson: {
      name: 'cdk-saas-billing',
      main: 'lib/index.js',
      types: 'lib/index.d.ts',
      exports: PACKAGE_EXPORTS,
      peerDependencies: { 'aws-cdk-lib': '^2.263.0', 'constructs': '^10.5.1' },
      repository: { url: `${REPO}.git` },
    },
    builtAssets: Object.keys(contents).filter((f) => f.startsWith('assets/')),
    existsInRepo: (p) => ['examples/python', 'examples/app.ts'].includes(p),
    ...overrides,
  };
}

const GOOD = {
  'package.json': '{}',
  'README.md': `See [the docs](docs/usage.md#top), [API](./API.md), [Python](${REPO}/tree/main/examples/python).`,
  'API.md': '',
  'docs/usage.md': 'Back to the [README](../README.md#default-settings).',
  'lib/index.js': 'const cdk = require("aws-cdk-lib"); require("./ingestor"); require("path");',
  'lib/ingestor/index.js': 'require("constructs"); require("node:crypto");',
  'lib/ingestor/aggregator-function.js': 'require("aws-cdk-lib/aws-lambda");',
  'assets/ingestor/aggregator.lambda/index.js': 'require("@aws-sdk/client-dynamodb"); require("crypto");',
  'runtime/index.js': 'var import_client_dynamodb = require("@aws-sdk/client-dynamodb");',
  'runtime/index.d.ts': "export { UsageReader } from './usage-reader';\nexport type { Granularity } from './ingestor-contract';",
  'runtime/usage-reader.d.ts': "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';\nimport { Granularity } from './ingestor-contract';",
  'runtime/ingestor-contract.d.ts': 'export type Granularity = "HOUR" | "DAY";',
};

/** A JavaScript file with an inline source map naming `sources`. */
function withInlineMap(js: string, sources: string[]): string {
  const map = Buffer.from(JSON.stringify({ version: 3, sources, mappings: 'AAAA' }), 'utf8').toString('base64');
  return `${js}\n//# sourceMappingURL=data:application/json;base64,${map}`;
}

describe('package contents', () => {
  test('a package of constructs and bundles has no problem', () => {
    // GIVEN the package the build should produce  WHEN checked  THEN nothing is reported
    expect(packageProblems(pkg(GOOD))).toEqual([]);
  });

  test('fails if an unbundled handler or a handler-only helper is packed', () => {
    // GIVEN handler sources compiled into lib/
    const files = [
      'lib/ingestor/aggregator.lambda.js', 'lib/ingestor/aggregator.lambda.d.ts',
      'lib/shared.lambda/decimal.js', 'lib/providers/stripe-billing/shared.lambda/client.d.ts',
      'lib/ingestor/aggregator-function.js', 'assets/ingestor/aggregator.lambda/index.js',
    ];
    // WHEN checked  THEN each source is named; the generated *-function.js and the bundle are fine
    expect(handlerSourceProblems(files)).toEqual([
      'lib/ingestor/aggregator.lambda.js: unbundled handler source in the package (only the bundles under assets/ belong there)',
      'lib/ingestor/aggregator.lambda.d.ts: unbundled handler source in the package (only the bundles under assets/ belong there)',
      'lib/shared.lambda/decimal.js: unbundled handler source in the package (only the bundles under assets/ belong there)',
      'lib/providers/stripe-billing/shared.lambda/client.d.ts: unbundled handler source in the package (only the bundles under assets/ belong there)',
    ]);
  });

  test('fails if a bundle the build produced is not packed', () => {
    expect(missingAssetProblems(['lib/index.js'], ['assets/ingestor/aggregator.lambda/index.js']))
      .toEqual(['assets/ingestor/aggregator.lambda/index.js: bundled handler missing from the package']);
    expect(missingAssetProblems(['lib/index.js'], [])).toEqual(['assets/: no bundled handlers found (run the build first)']);
  });

  test('fails if packed code requires a package it does not depend on, or a file it does not hold', () => {
    // GIVEN a construct that imports a handler helper (which pulls Powertools in) and a missing file
    const broken = pkg({
      ...GOOD,
      'lib/index.js': 'require("./ingestor/shared.lambda/logger"); require("./missing");',
      'lib/ingestor/shared.lambda/logger.js': 'require("@aws-lambda-powertools/logger");',
      'assets/ingestor/aggregator.lambda/index.js': 'require("@aws-sdk/client-dynamodb"); require("stripe");',
    });
    // WHEN checked  THEN each unresolved require is named
    expect(unresolvedRequireProblems(broken)).toEqual([
      "lib/index.js: requires './missing', which is not in the package",
      "assets/ingestor/aggregator.lambda/index.js: requires 'stripe', which the package does not depend on",
      "lib/ingestor/shared.lambda/logger.js: requires '@aws-lambda-powertools/logger', which the package does not depend on",
    ]);
  });

  test('the AWS SDK counts as provided in the bundles only', () => {
    const constructRequiresSdk = pkg({ ...GOOD, 'lib/index.js': 'require("@aws-sdk/client-kinesis");' });
    expect(unresolvedRequireProblems(constructRequiresSdk))
      .toEqual(["lib/index.js: requires '@aws-sdk/client-kinesis', which the package does not depend on"]);
  });

  test('the runtime entry point may require the AWS SDK, as the bundles may', () => {
    const entryRequiresStripe = pkg({ ...GOOD, 'runtime/index.js': 'require("@aws-sdk/client-dynamodb"); require("stripe");' });
    expect(unresolvedRequireProblems(entryRequiresStripe)).toEqual(["runtime/index.js: requires 'stripe', which the package does not depend on"]);
  });

  test('exports: the jsii entry point as main and types give it, the runtime entry point, and every other path as before', () => {
    expect(resolveExport(PACKAGE_EXPORTS, '.', 'default')).toBe('./lib/index.js');
    expect(resolveExport(PACKAGE_EXPORTS, '.', 'types')).toBe('./lib/index.d.ts');
    expect(resolveExport(PACKAGE_EXPORTS, './runtime', 'default')).toBe('./runtime/index.js');
    expect(resolveExport(PACKAGE_EXPORTS, './runtime', 'types')).toBe('./runtime/index.d.ts');
    expect(resolveExport(PACKAGE_EXPORTS, './.jsii', 'default')).toBe('./.jsii');
    expect(resolveExport(PACKAGE_EXPORTS, './lib/ingestor/index.js', 'default')).toBe('./lib/ingestor/index.js');
    expect(resolveExport({ '.': './lib/index.js' }, './package.json', 'default')).toBeUndefined();
  });

  test('fails if the runtime entry point is not exported, not packed, or its types reach what users lack', () => {
    // GIVEN no exports at all
    expect(runtimeEntryProblems(pkg(GOOD, { packageJson: { name: 'cdk-saas-billing' } })))
      .toEqual(['package.json: no "exports": cdk-saas-billing/runtime is not exported (projenrc/runtime-entry.ts sets it)']);
    // GIVEN exports that hide package.json and .jsii, put types last, change the jsii entry point,
    // and a package without the runtime's JavaScript and with declarations importing what users lack
    const { 'runtime/index.js': _js, ...withoutJs } = GOOD;
    const broken = pkg({
      ...withoutJs,
      'runtime/usage-reader.d.ts': "import { Logger } from '@aws-lambda-powertools/logger';\nimport { Granularity } from './contract';",
    }, {
      packageJson: {
        name: 'cdk-saas-billing',
        main: 'lib/index.js',
        types: 'lib/index.d.ts',
        exports: { '.': { types: './lib/main.d.ts', default: './lib/index.js' }, './runtime': { default: './runtime/index.js', types: './runtime/index.d.ts' } },
      },
    });
    // WHEN checked  THEN each is named
    expect(runtimeEntryProblems(broken)).toEqual([
      'package.json: exports["./runtime"] must list "types" first (TypeScript takes the first condition that matches)',
      'package.json: exports["./runtime"].default is ./runtime/index.js, which is not in the package',
      'runtime/index.js: missing (the runtime entry point for resolvers that ignore "exports")',
      'package.json: exports["."].types is ./lib/main.d.ts, but the jsii entry point is lib/index.d.ts: keep them equal',
      'package.json: exports does not expose ./package.json (jsii tools read it)',
      'package.json: exports does not expose ./.jsii (jsii tools read it)',
      "runtime/usage-reader.d.ts: imports '@aws-lambda-powertools/logger', which users of cdk-saas-billing/runtime do not have",
      "runtime/usage-reader.d.ts: imports './contract', which has no declaration in the package",
    ]);
  });

  test('fails if a packed file names, through its source map, a file the package does not hold', () => {
    // GIVEN what jsii writes with inline source maps (sources ../src/*.ts), a map file, and a map that names a packed file
    const files = pkg({
      ...GOOD,
      'lib/index.js': withInlineMap('require("aws-cdk-lib");', ['../src/index.ts']),
      'lib/ingestor/index.js': '"use strict";\n//# sourceMappingURL=index.js.map',
      'lib/ingestor/index.js.map': JSON.stringify({ version: 3, sourceRoot: '', sources: ['../../src/ingestor/index.ts', 'x.ts', 'y.ts', 'z.ts'] }),
      'lib/ingestor/aggregator-function.js': '//# sourceMappingURL=gone.js.map',
      'runtime/index.js': withInlineMap('', ['index.d.ts']),
    });
    // WHEN checked  THEN each file naming a missing source is reported (the packed one is fine)
    expect(sourceMapProblems(files)).toEqual([
      'lib/index.js: its source map names src/index.ts, which the package does not hold: stack traces would point there (drop the map, or pack the sources)',
      'lib/ingestor/index.js: its source map names src/ingestor/index.ts, lib/ingestor/x.ts, lib/ingestor/y.ts and 1 more, which the package does not hold: '
        + 'stack traces would point there (drop the map, or pack the sources)',
      'lib/ingestor/aggregator-function.js: names the source map gone.js.map, which is not in the package',
    ]);
    expect(sourceMapProblems(pkg(GOOD))).toEqual([]);
  });

  test('fails if README.md or docs link to a path the package does not hold, or the repository lacks', () => {
    // GIVEN relative links to examples/ (left out of the package) and an absolute link to a missing file
    const broken = pkg({
      ...GOOD,
      'README.md': `[Python](examples/python) and [app](./examples/app.ts) and [gone](${REPO}/blob/main/examples/gone.ts)`,
      'docs/usage.md': '[Java](../examples/java/pom.xml)',
    });
    // WHEN checked  THEN each is named with the absolute link to use
    expect(linkProblems(broken)).toEqual([
      `README.md: relative link examples/python points at examples/python, which is not in the package: link to ${REPO}/blob/main/examples/python instead`,
      `README.md: relative link ./examples/app.ts points at examples/app.ts, which is not in the package: link to ${REPO}/blob/main/examples/app.ts instead`,
      `README.md: link ${REPO}/blob/main/examples/gone.ts points at examples/gone.ts, which the repository does not have`,
      `docs/usage.md: relative link ../examples/java/pom.xml points at examples/java/pom.xml, which is not in the package: link to ${REPO}/blob/main/examples/java/pom.xml instead`,
    ]);
  });

  test('links inside code blocks and code spans are not links', () => {
    const md = [
      'A [real](docs/a.md) link, `[not](in/code)` and <img src="docs/b.png">.',
      '```ts',
      'const x = "[not](a/link)";',
      '```',
      '[ref]: docs/c.md',
    ].join('\n');
    expect(markdownLinks(md)).toEqual(['docs/a.md', 'docs/c.md', 'docs/b.png']);
  });
});
