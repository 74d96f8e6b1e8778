/**
 * Local AWS API emulators for the local flow (`npx projen demo:local`) and the
 * tests: finds (or installs) the offline tools and starts
 * AWS API emulators on free loopback ports.
 *
 * - `moto_server` (moto 5) and `cfn-lint` are taken from PATH when present
 *   (the machine image ships them); otherwise they are installed from PyPI
 *   into the project-local virtual environment `.venv/` once, so that a fresh
 *   machine with only Node.js and Python runs the whole suite.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');
const VENV = path.join(ROOT, '.venv');
const VENV_BIN = path.join(VENV, 'bin');

/** Python packages the tests need, pinned to the majors that were measured. */
const PYTHON_TOOLS: Record<string, string> = {
  'moto_server': 'moto[server]>=5.1,<6',
  'cfn-lint': 'cfn-lint>=1.20,<2',
};

function onPath(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, tool);
    if (dir && fs.existsSync(candidate)) {
      try {
        // pyenv shims exist even when the tool is not installed for the active Python.
        execFileSync(candidate, ['--help'], { stdio: 'ignore', timeout: 60_000 });
        return candidate;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * The path of a Python tool (`moto_server` or `cfn-lint`), installing it into
 * `.venv/` from PyPI when the machine does not have it.
 */
export function ensurePythonTool(tool: keyof typeof PYTHON_TOOLS): string {
  const local = path.join(VENV_BIN, tool);
  if (fs.existsSync(local)) return local;
  if (process.env.CDK_SAAS_BILLING_FORCE_VENV !== '1') {
    const found = onPath(tool);
    if (found) return found;
  }
  const python = process.env.PYTHON ?? 'python3';
  if (!fs.existsSync(path.join(VENV_BIN, 'pip'))) {
    execFileSync(python, ['-m', 'venv', VENV], { stdio: 'inherit' });
  }
  execFileSync(path.join(VENV_BIN, 'pip'), ['install', '--quiet', '--disable-pip-version-check', PYTHON_TOOLS[tool]], {
    stdio: 'inherit',
    timeout: 600_000,
  });
  if (!fs.existsSync(local)) {
    throw new Error(`Installing ${PYTHON_TOOLS[tool]} into ${VENV} did not provide ${tool}`);
  }
  return local;
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Emulator at ${url} did not answer within ${timeoutMs} ms: ${String(lastError)}`);
}

/**
 * How to start moto's server: `moto_server.py` (moto with TransactWriteItems as DynamoDB documents it:
 * see the file) run by the Python that has moto, or moto_server itself when that Python is not found.
 */
function motoCommand(): [string, string[]] {
  const bin = ensurePythonTool('moto_server');
  const script = path.join(__dirname, 'moto_server.py');
  const candidates = [path.join(path.dirname(bin), 'python'), process.env.PYTHON ?? 'python3'];
  for (const python of candidates) {
    try {
      execFileSync(python, ['-c', 'import moto.server, moto.dynamodb.models'], { stdio: 'ignore', timeout: 60_000 });
      return [python, [script]];
    } catch {
      // not this one
    }
  }
  return [bin, []];
}

/** A running moto server. */
export interface Moto {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Wipes every resource in the emulator (moto's reset API). */
  reset(): Promise<void>;
  /** Stops the server. */
  stop(): Promise<void>;
}

/**
 * Starts moto's server on a free loopback port and points the AWS SDK at it
 * through `AWS_ENDPOINT_URL` and dummy credentials for this process.
 */
export async function startMoto(): Promise<Moto> {
  const [command, args] = motoCommand();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(command, [...args, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
  });
  try {
    await waitForHttp(`${endpoint}/moto-api/`, 30_000);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\nmoto_server stderr:\n${stderr}`);
  }
  process.env.AWS_ENDPOINT_URL = endpoint;
  process.env.AWS_REGION = process.env.AWS_REGION ?? 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  delete process.env.AWS_PROFILE;
  return {
    endpoint,
    reset: async () => {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: ${res.status}`);
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      });
    },
  };
}
