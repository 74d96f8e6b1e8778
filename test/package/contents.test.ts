import {
  handlerSourceProblems, linkProblems, markdownLinks, missingAssetProblems, packageProblems, PackageUnderTest,
  unresolvedRequireProblems,
} from './contents';

// The rules package:check applies to the real tarball, each shown to fail on a package that breaks it.

const REPO = 'https://github.com/cdk-saas-billing/cdk-saas-billing';

function pkg(contents: Record<string, string>, overrides: Partial<PackageUnderTest> = {}): PackageUnderTest {
  return {
    files: Object.keys(contents),
    read: (f) => contents[f],
    packageJson: {
      name: 'cdk-saas-billing',
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
};

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
