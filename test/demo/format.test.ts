import { spawnSync } from 'child_process';
import * as path from 'path';
import { chargeLine, count, minorUnitAmount, quantity } from '../../examples/local-flow/format';

describe('how the demos print numbers', () => {
  test('quantities carry their unit', () => {
    expect(quantity('storageGb', '12.3456')).toBe('12.3456 GB-hours');
    expect(quantity('storage_mb_hours', 1)).toBe('1 MB-hour');
    expect(quantity('apiCalls', 1250)).toBe('1250 API calls');
    expect(quantity('unknownMetric', 3)).toBe('3');
    expect(count(1, 'record')).toBe('1 record');
    expect(count('2', 'window')).toBe('2 windows');
  });

  test('amounts in a minor unit are named and read in major units', () => {
    expect(minorUnitAmount(1999, 'usd')).toBe('1999 cents (19.99 USD)');
    expect(minorUnitAmount(500, 'JPY')).toBe('500 JPY (a currency without a minor unit)');
    expect(minorUnitAmount(1234, 'kwd')).toBe('1234 minor units of KWD (1.234 KWD)');
  });

  test('a charge line shows its quantity, unit price and amount', () => {
    expect(chargeLine({ metric: 'apiCalls', quantity: '2000', unitPrice: '0.0025', amount: '5', currency: 'USD' })).toBe('apiCalls 2000 API calls × 0.0025 USD per API call = 5 USD');
  });
});

describe('the demos build quietly (projenrc/quiet-task.ts)', () => {
  const root = path.join(__dirname, '..', '..');
  const quiet = (task: string) => spawnSync('npx', ['ts-node', '--transpile-only', '--project', 'tsconfig.dev.json', 'projenrc/quiet-task.ts', task],
    { cwd: root, encoding: 'utf8' });

  test('a task that succeeds prints one summary line', () => {
    const r = quiet('bundle:usage-api/usage-api.lambda');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^bundle:usage-api\/usage-api\.lambda: 1 esbuild bundle \(0\.\d MB\) in [\d.]+ s \(npx projen bundle:usage-api\/usage-api\.lambda shows the build's output\)$/)]);
    expect(r.stdout).not.toMatch(/esbuild --bundle/);
  }, 60_000);

  test('a task that fails prints its whole output and fails', () => {
    const r = quiet('no-such-task');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no-such-task/);
    expect(r.stderr).toMatch(/no-such-task failed \(exit \d+\); its output is above/);
  }, 60_000);
});
