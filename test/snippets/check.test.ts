import * as path from 'path';
import { importedModules, synthesize } from './check';

// The synthesis half of `npx projen snippets`, shown to fail on snippets that do not synthesize.
// (The compile half is jsii-rosetta's own `--strict`; CONTRIBUTING.md shows it failing.)

const OUT = path.join(__dirname, '..', '.out', 'snippets-unit');

/** A fixturized snippet as rosetta hands it over: the fixture with the snippet in its constructor. */
function snippet(body: string, fixture = 'stack') {
  const completeSource = fixture === 'stack'
    ? [
      "import { Annotations, Stack } from 'aws-cdk-lib';",
      "import * as sqs from 'aws-cdk-lib/aws-sqs';",
      "import { Construct } from 'constructs';",
      'export class Fixture extends Stack {',
      '  constructor(scope: Construct, id: string) {',
      '    super(scope, id);',
      `    ${body}`,
      '  }',
      '}',
    ].join('\n')
    : `export async function runtimeSnippet(): Promise<void> {\n  ${body}\n}`;
  return { visibleSource: body, completeSource, location: { api: { api: 'file' as const, fileName: 'docs/x.md' } } };
}

describe('snippet synthesis', () => {
  test('a snippet that synthesizes has no problem', () => {
    expect(synthesize(snippet("new sqs.Queue(this, 'Queue');"), path.join(OUT, 'ok'))).toEqual([]);
  });

  test('fails if a snippet throws while its constructs are created', () => {
    // GIVEN two constructs with one id  WHEN synthesized  THEN the construct error is the problem
    const problems = synthesize(snippet("new sqs.Queue(this, 'Queue'); new sqs.Queue(this, 'Queue');"), path.join(OUT, 'throws'));
    expect(problems).toHaveLength(1);
    expect((problems as string[])[0]).toMatch(/There is already a Construct with name 'Queue'/);
  });

  test('fails if a snippet leaves an error annotation', () => {
    const problems = synthesize(snippet("new sqs.Queue(this, 'Queue'); Annotations.of(this).addError('no httpApi given');"), path.join(OUT, 'annotation'));
    expect(problems).toEqual(['error annotation at /Snippet: no httpApi given']);
  });

  test('fails if a snippet uses a name nothing defines', () => {
    const problems = synthesize(snippet('new sqs.Queue(this, queueName);'), path.join(OUT, 'undefined'));
    expect((problems as string[])[0]).toMatch(/ReferenceError: queueName is not defined/);
  });

  test('runtime code (a fixture without a Fixture stack) is compiled only, not synthesized', () => {
    expect(synthesize(snippet('await Promise.resolve();', 'runtime'), path.join(OUT, 'runtime'))).toBe('no-stack');
  });

  test('finds the packages a snippet imports', () => {
    expect(importedModules([
      "import * as iam from 'aws-cdk-lib/aws-iam';",
      "import { PutRecordsCommand } from '@aws-sdk/client-kinesis';",
      "import { BillingProvider } from 'cdk-saas-billing';",
      "import { helper } from './local';",
    ].join('\n'))).toEqual(['aws-cdk-lib', '@aws-sdk/client-kinesis', 'cdk-saas-billing']);
  });
});
