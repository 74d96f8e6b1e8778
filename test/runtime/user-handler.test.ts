/**
 * A user's own Lambda handler in TypeScript that reads usage through `cdk-saas-billing/runtime`:
 * compiled by TypeScript against the entry point as the package ships it (runtime/, built by
 * `bundle`, resolved through package.json "exports" from node_modules/cdk-saas-billing, the AWS SDK
 * from the user's project), then run in its own Node.js process against moto's DynamoDB, on
 * closed windows written exactly as the closer writes them (test/ingestor/closed-windows.ts).
 * `package:check` does the same resolution and type check on the packed tarball.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import * as ts from 'typescript';
import { seedClosedWindows, SeedWindow, usageReaderEnvironment } from '../ingestor/closed-windows';
import { usageTableSpec } from '../ingestor/support';
import { Moto, startMoto } from '../support/emulators';
import { scratchDir } from '../support/synth';

const ROOT = path.resolve(__dirname, '..', '..');

/** The user's handler: every closed window after a cursor, page by page, and one tenant's windows. */
const HANDLER = `import { ClosedWindow, UsageReader } from 'cdk-saas-billing/runtime';

const reader = UsageReader.fromEnvironment();

export interface Result {
  readonly windows: ClosedWindow[];
  readonly pages: number;
  readonly cursor: string;
  readonly tenant42: string[];
}

export async function handler(event: { cursor?: string }): Promise<Result> {
  const windows: ClosedWindow[] = [];
  let cursor = event.cursor;
  let pages = 0;
  for (;;) {
    const page = await reader.readClosedWindows({ cursor, limit: 2 });
    pages++;
    windows.push(...page.windows);
    cursor = page.cursor;
    if (page.windows.length < 2) break;
  }
  const tenant42 = (await reader.readTenantClosedWindows('tenant-42', { since: '2026-11-27T00:00:00Z' }))
    .map((w) => \`\${w.metric}@\${w.windowStart}=\${w.sum}\`);
  return { windows, pages, cursor, tenant42 };
}
`;

const WINDOWS: SeedWindow[] = [
  { tenantId: 'tenant-42', metric: 'apiCalls', windowStart: '2026-11-27T01:00:00Z', sum: '3', count: 3 },
  { tenantId: 'tenant-7', metric: 'apiCalls', windowStart: '2026-11-27T01:00:00Z', sum: '0.000000001', count: 1 },
  { tenantId: 'tenant-42', metric: 'storageGb', windowStart: '2026-11-27T02:00:00Z', sum: '123456789012345.123456789', count: 2 },
  { tenantId: 'tenant-7', metric: 'storageGb', windowStart: '2026-11-27T02:00:00Z', sum: '12.5', count: 5 },
  { tenantId: 'tenant-42', metric: 'apiCalls', windowStart: '2026-11-27T03:00:00Z', sum: '1999', count: 17 },
];

/**
 * A user's project: its package.json, cdk-saas-billing installed as the package ships the entry
 * point (package.json with its "exports" and the runtime/ folder), and the handler source.
 */
function userProject(handlerSource: string): string {
  const dir = scratchDir('runtime-user');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'my-billing-functions', private: true }));
  const installed = path.join(dir, 'node_modules', 'cdk-saas-billing');
  fs.mkdirSync(installed, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(installed, 'package.json'));
  fs.cpSync(path.join(ROOT, 'runtime'), path.join(installed, 'runtime'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'src'));
  fs.writeFileSync(path.join(dir, 'src', 'handler.ts'), handlerSource);
  return dir;
}

/** Compiles the project's handler as a Lambda project would (strict, CommonJS, node16 resolution); returns the errors. */
function compile(dir: string): string[] {
  const program = ts.createProgram([path.join(dir, 'src', 'handler.ts')], {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    outDir: path.join(dir, 'dist'),
    rootDir: path.join(dir, 'src'),
    types: ['node'],
    skipLibCheck: true,
  });
  const emitted = program.emit();
  return [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics]
    .filter((d) => d.category === ts.DiagnosticCategory.Error)
    .map((d) => `${d.file ? `${path.relative(dir, d.file.fileName)}: ` : ''}TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
}

let moto: Moto;
let client: DynamoDBClient;

beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, 'runtime', 'index.js'))) throw new Error('runtime/ is not built: run `npx projen bundle` first');
  moto = await startMoto();
  client = new DynamoDBClient({ endpoint: moto.endpoint });
});

afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

test('a handler compiled against cdk-saas-billing/runtime reads the closed windows, in its own process, against DynamoDB', async () => {
  // GIVEN closed windows in a usage table, and the user's project with cdk-saas-billing installed
  const table = `usage-user-${process.pid}`;
  await client.send(new CreateTableCommand({ TableName: table, ...usageTableSpec() }));
  await seedClosedWindows(client, table, WINDOWS);
  const dir = userProject(HANDLER);

  // WHEN TypeScript compiles the handler
  // THEN it finds the entry point and its types through "exports" (node16), and through the
  // runtime/ folder where "exports" is ignored (node10; package:check compiles that one too)
  expect(compile(dir)).toEqual([]);
  const node10 = ts.resolveModuleName('cdk-saas-billing/runtime', path.join(dir, 'src', 'handler.ts'),
    { moduleResolution: ts.ModuleResolutionKind.Node10 }, ts.sys);
  expect(path.relative(dir, node10.resolvedModule?.resolvedFileName ?? '')).toBe(path.join('node_modules', 'cdk-saas-billing', 'runtime', 'index.d.ts'));

  // WHEN the compiled handler runs in Node.js with the environment ingestor.bindUsageReader(fn) sets
  const script = 'require("./dist/handler.js").handler({}).then((r) => process.stdout.write(JSON.stringify(r)))';
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      ...usageReaderEnvironment(table),
    },
  });

  // THEN it reads every window once, oldest close first, page by page, with the exact sums,
  // and one tenant's windows by window start
  const result = JSON.parse(stdout);
  expect(result.windows.map((w: SeedWindow) => ({ tenantId: w.tenantId, metric: w.metric, windowStart: w.windowStart, sum: w.sum, count: w.count })))
    .toEqual(WINDOWS);
  expect(result.windows.every((w: { windowId: string; granularity: string }) => /^[A-Za-z0-9_-]{43}$/.test(w.windowId) && w.granularity === 'HOUR')).toBe(true);
  expect(result.pages).toBe(3);
  expect(result.tenant42).toEqual([
    'apiCalls@2026-11-27T01:00:00Z=3', 'storageGb@2026-11-27T02:00:00Z=123456789012345.123456789', 'apiCalls@2026-11-27T03:00:00Z=1999',
  ]);
});

test('the entry point\'s types are real: a handler that misuses them does not compile', () => {
  // GIVEN a handler that treats an exact decimal string as a number and passes an unknown option
  const dir = userProject(`import { ClosedWindow, UsageReader } from 'cdk-saas-billing/runtime';
export async function handler(): Promise<number> {
  const page = await UsageReader.fromEnvironment().readClosedWindows({ cursor: undefined, pageSize: 5 });
  const w: ClosedWindow = page.windows[0];
  return w.sum;
}
`);
  // WHEN compiled  THEN TypeScript refuses both
  const errors = compile(dir);
  expect(errors).toEqual([
    expect.stringMatching(/^src\/handler\.ts: TS2353 Object literal may only specify known properties, and 'pageSize' does not exist in type 'ReadClosedWindowsOptions'/),
    expect.stringMatching(/^src\/handler\.ts: TS2322 Type 'string' is not assignable to type 'number'/),
  ]);
});

test('the entry point offers EntitlementReader: a handler asking whether a tenant may use a metric compiles; a wrong use of its answer does not', () => {
  // GIVEN a handler that reads a tenant's access, and one that takes the access for a boolean
  const good = userProject(`import { EntitlementReader } from 'cdk-saas-billing/runtime';
export async function handler(event: { tenantId: string }): Promise<boolean> {
  const access = await EntitlementReader.fromEnvironment().access(event.tenantId, 'apiCalls');
  return access === 'ALLOWED';
}
`);
  const bad = userProject(`import { EntitlementReader } from 'cdk-saas-billing/runtime';
export async function handler(event: { tenantId: string }): Promise<boolean> {
  return EntitlementReader.fromEnvironment().access(event.tenantId, 'apiCalls');
}
`);
  // WHEN compiled  THEN the first compiles, the second is refused
  expect(compile(good)).toEqual([]);
  expect(compile(bad)).toEqual([expect.stringMatching(/^src\/handler\.ts: TS2322 Type '[^']+' is not assignable to type 'boolean'/)]);
});

test('without the environment bindUsageReader sets, the reader says what to do', async () => {
  const dir = userProject(HANDLER);
  expect(compile(dir)).toEqual([]);
  const run = promisify(execFile)(process.execPath, ['-e', 'require("./dist/handler.js")'], { cwd: dir, env: { PATH: process.env.PATH } });
  await expect(run).rejects.toThrow(/Environment variable USAGE_READER_\w+ is not set: bind this function to a usage ingestor with ingestor\.bindUsageReader\(fn\)/);
});
