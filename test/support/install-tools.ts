/**
 * Installs what the tests run against, once, before the test workers start (so that
 * parallel workers never install the same tool at the same time): moto's server and
 * cfn-lint into `.venv/` from PyPI, stripe-mock into `.tools/` through the Go module
 * proxy, each only when the machine does not have it. `npx projen test` runs it first.
 */
import { ensurePythonTool } from '../../examples/local-flow/emulators';
import { ensureStripeMock } from '../../examples/stripe-local';

const started = Date.now();
const log = (line: string) => console.log(`install-tools: ${line}`);
for (const tool of ['moto_server', 'cfn-lint'] as const) log(`${tool}: ${ensurePythonTool(tool)}`);
log(`stripe-mock: ${ensureStripeMock(log)}`);
log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
