/**
 * The doc comments of the exported API render whole in API.md. jsii splits each
 * comment into a summary (the first paragraph when it has fewer than 20 words,
 * else the first sentence: up to `.`, `;`, `!` or `?` followed by a space) and
 * remarks (jsii lib/docs.js, `splitSummary`); jsii-docgen drops a leading `-` of
 * the remarks (render/markdown-doc.js, `sanitize`). So a summary cut inside a
 * code span or parentheses shows an unbalanced backtick or parenthesis in API.md
 * tables, and remarks that open with a list lose the first bullet's dash.
 */
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

/** Every exported symbol of src/index.ts and its public members, with their doc comments. */
function exportedDocs(): Array<{ name: string; comment: string }> {
  const root = path.join(__dirname, '..', '..');
  // The library's own sources only (what jsii compiles), without aws-cdk-lib's declarations: fast, and enough for doc comments.
  const sources = ts.sys.readDirectory(path.join(root, 'src'), ['.ts'])
    .filter((f) => !/\.lambda\.ts$|\/shared\.lambda\/|\/src\/runtime\//.test(f));
  const program = ts.createProgram(sources, {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, noResolve: true, skipLibCheck: true, noEmit: true, types: [],
  });
  const checker = program.getTypeChecker();
  const index = program.getSourceFile(path.join(root, 'src', 'index.ts'))!;
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
