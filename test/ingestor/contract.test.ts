/**
 * The usage read contract holds: consumers of an ingestor read usage only
 * through `UsageReader` (bound with `bindUsageReader`), never by knowing the
 * ingestor's table; the names a construct sets and its handlers read are
 * defined once.
 */
import * as fs from 'fs';
import * as path from 'path';

const SRC = path.resolve(__dirname, '..', '..', 'src');

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('no code outside src/ingestor imports the ingestor\'s layout or handlers: only the usage reader and the construct types', () => {
  // GIVEN every source file outside the ingestor
  const outside = filesUnder(SRC).filter((f) => !f.startsWith(path.join(SRC, 'ingestor')));

  // WHEN their imports of the ingestor are listed
  const imports = outside.flatMap((f) => [...fs.readFileSync(f, 'utf8').matchAll(/from '([^']*ingestor[^']*)'/g)]
    .map((m) => `${path.relative(SRC, f)} -> ${m[1].replace(/^(\.\.\/)+/, '')}`));

  // THEN only the contracts' modules appear: the construct types, the contract module (names, granularities), the
  // usage read contract and the ledger change feed's contract (src/ingestor/ledger-changes.ts, its decoder in shared.lambda)
  const contract = /-> (\.\/)?ingestor(\/ingestor|\/usage-ingestor|\/ingestor-contract|\/ledger-changes|\/shared\.lambda\/(usage-reader|ledger-changes))?$/;
  expect(imports.filter((i) => !contract.test(i))).toEqual([]);
});

test('no string literal shared between the ingestor construct and its handlers: environment names come from the contract module', () => {
  const construct = fs.readFileSync(path.join(SRC, 'ingestor', 'usage-ingestor.ts'), 'utf8');
  const handlers = ['aggregator.lambda.ts', 'closer.lambda.ts', 'shared.lambda/usage-reader.ts'].map((f) => fs.readFileSync(path.join(SRC, 'ingestor', f), 'utf8'));
  // environment variable names written literally (UPPER_CASE strings) in the construct or read literally in a handler
  const literal = /'([A-Z][A-Z0-9]*_[A-Z0-9_]+)'/g;
  const inConstruct = [...construct.matchAll(literal)].map((m) => m[1]).filter((n) => !n.startsWith('POWERTOOLS_'));
  const inHandlers = handlers.flatMap((h) => [...h.matchAll(/process\.env\.([A-Z_]+)|requiredEnv\('([A-Z_]+)'\)/g)].map((m) => m[1] ?? m[2]));
  expect({ inConstruct, inHandlers }).toEqual({ inConstruct: [], inHandlers: [] });
});
