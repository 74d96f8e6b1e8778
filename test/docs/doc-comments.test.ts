/**
 * The doc comments of the exported API render whole in API.md. jsii splits each
 * comment into a summary (the first paragraph when it has fewer than 20 words,
 * else the first sentence: up to `.`, `;`, `!` or `?` followed by a space) and
 * remarks (jsii lib/docs.js, `splitSummary`); jsii-docgen drops a leading `-` of
 * the remarks (render/markdown-doc.js, `sanitize`). So a summary cut inside a
 * code span or parentheses shows an unbalanced backtick or parenthesis in API.md
 * tables, and remarks that open with a list lose the first bullet's dash.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const SUMMARY_MAX_WORDS = 20;
const FIRST_SENTENCE = /^([^!?.;]+[!?.;][ \n\r])/;

/** jsii's summary of a comment. */
export function jsiiSummary(comment: string): string {
  const paras = comment.split(/(\r?\n){2}/);
  if (paras.length > 1 && paras[0].split(' ').length < SUMMARY_MAX_WORDS) return paras[0];
  return FIRST_SENTENCE.exec(comment)?.[1] ?? paras[0];
}

/** What would render wrong, if anything. */
export function renderingProblems(comment: string): string[] {
  const summary = jsiiSummary(comment);
  const remarks = comment.slice(summary.length).trim();
  const problems: string[] = [];
  if ((summary.match(/`/g) ?? []).length % 2 === 1) problems.push(`summary cut inside a code span: ${JSON.stringify(summary.trim())}`);
  if ((summary.match(/\(/g) ?? []).length !== (summary.match(/\)/g) ?? []).length) problems.push(`summary cut inside parentheses: ${JSON.stringify(summary.trim())}`);
  if (remarks.startsWith('-')) problems.push('remarks open with a list: jsii-docgen drops the first dash');
  return problems;
}

const ROOT = path.join(__dirname, '..', '..');

/** The library's own sources (what jsii compiles), without aws-cdk-lib's declarations: fast, and enough for names and doc comments. */
function libraryProgram(): ts.Program {
  const sources = ts.sys.readDirectory(path.join(ROOT, 'src'), ['.ts'])
    .filter((f) => !/\.lambda\.ts$|\/shared\.lambda\/|\/src\/runtime\//.test(f));
  return ts.createProgram(sources, {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, noResolve: true, skipLibCheck: true, noEmit: true, types: [],
  });
}

/** Every exported symbol of src/index.ts and its public members, with their doc comments. */
function exportedDocs(): Array<{ name: string; comment: string }> {
  const program = libraryProgram();
  const checker = program.getTypeChecker();
  const index = program.getSourceFile(path.join(ROOT, 'src', 'index.ts'))!;
  const docs: Array<{ name: string; comment: string }> = [];
  const add = (name: string, symbol: ts.Symbol) => {
    const comment = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
    if (comment) docs.push({ name, comment });
  };
  for (const exported of checker.getExportsOfModule(checker.getSymbolAtLocation(index)!)) {
    // eslint-disable-next-line no-bitwise
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    add(symbol.name, symbol);
    const members = [...(symbol.members?.values() ?? []), ...(symbol.exports?.values() ?? [])];
    for (const member of members) {
      const decl = member.declarations?.[0];
      const modifiers = decl && ts.canHaveModifiers(decl) ? ts.getModifiers(decl) ?? [] : [];
      if (member.name.startsWith('_') || modifiers.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) continue;
      add(`${symbol.name}.${member.name}`, member);
    }
  }
  return docs;
}

test('the rules catch what API.md showed wrong', () => {
  expect(renderingProblems("The meter's event name in Stripe (`event_name`): 1 to 100 letters, digits\nand `_ - . :` (for example `api_calls`). The prices..."))
    .toEqual([expect.stringMatching(/^summary cut inside a code span/)]);
  expect(renderingProblems('What happens to the tables (customers, users, charge lines; processed\nwebhook events) when they leave.'))
    .toEqual([expect.stringMatching(/^summary cut inside parentheses/)]);
  expect(renderingProblems('Bills tenants through Stripe.\n\n- `createCustomerFunction`: one customer per tenant.')).toEqual(['remarks open with a list: jsii-docgen drops the first dash']);
  expect(renderingProblems('Bills tenants through Stripe.\n\nIts functions:\n\n- `createCustomerFunction`: one customer per tenant.')).toEqual([]);
});

test('every doc comment of the exported API renders whole in API.md', () => {
  const docs = exportedDocs();
  expect(docs.length).toBeGreaterThan(200);
  expect(docs.flatMap((d) => renderingProblems(d.comment).map((p) => `${d.name}: ${p}`))).toEqual([]);
});

/** The members of a props interface, its library base interfaces' included. */
function propsOf(program: ts.Program, name: string): string[] {
  const names: string[] = [];
  const visit = (interfaceName: string) => {
    for (const sf of program.getSourceFiles()) {
      for (const stmt of sf.statements) {
        if (!ts.isInterfaceDeclaration(stmt) || stmt.name.text !== interfaceName) continue;
        for (const clause of stmt.heritageClauses ?? []) for (const t of clause.types) visit(t.expression.getText(sf));
        for (const m of stmt.members) if (ts.isPropertySignature(m)) names.push(m.name.getText(sf));
      }
    }
  };
  visit(name);
  return names;
}

/** The rows of a doc's "Props at a glance" table: prop name, type and default cells. */
function propsTable(doc: string): { header: string; rows: Array<{ prop: string; type: string; default: string; required: boolean }> } {
  const text = fs.readFileSync(path.join(ROOT, 'docs', doc), 'utf8');
  const section = text.split(/^## /m).find((s) => s.startsWith('Props at a glance\n'));
  if (!section) return { header: '', rows: [] };
  const lines = section.split('\n').filter((l) => l.startsWith('|'));
  const rows = lines.slice(2).map((l) => {
    const cells = l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    return { prop: /^`(\w+)`/.exec(cells[0])?.[1] ?? cells[0], type: cells[1], default: cells[2], required: cells[0].includes('(required)') };
  });
  return { header: lines[0], rows };
}

test.each([
  ['BillingProviderProps', 'billing-provider.md'],
  ['UsageIngestorProps', 'usage-ingestor.md'],
  ['DynamoDbBillingProps', 'dynamodb-billing.md'],
  ['StripeBillingProps', 'stripe-billing.md'],
  ['UsageApiProps', 'usage-api.md'],
  ['BillingDashboardProps', 'dashboard.md'],
])('%s: docs/%s has a props-at-a-glance table with every prop, its type and its default', (props, doc) => {
  const program = libraryProgram();
  const table = propsTable(doc);
  expect(table.header).toBe('| prop | type | default | what it does |');
  expect(table.rows.map((r) => r.prop).sort()).toEqual(propsOf(program, props).sort());
  for (const row of table.rows) {
    expect(`${row.prop}: ${row.type}`).toMatch(/: `[\w.[\]]+`$/);
    if (!row.required) expect(`${row.prop}: ${row.default}`).toMatch(/: \S/);
  }
});
