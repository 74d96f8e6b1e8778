/**
 * Stripe on this machine, for `npx projen demo:stripe`, the tests and the bench:
 *
 * - `startStripeMock()` runs stripe-mock (Stripe's official API mock, a Go
 *   program that validates every request against Stripe's OpenAPI spec),
 *   taken from PATH or installed once into the project-local `.tools/go`
 *   (`go install github.com/stripe/stripe-mock@v0.197.0`, about 40 s; without
 *   Go, the Go toolchain is fetched from the Go module proxy first).
 * - `StripeProxy` sits in front of it. stripe-mock is stateless (fixture
 *   answers, the same ids every time, no idempotency), so the proxy adds the
 *   state the flows depend on, modelled on Stripe's documented behaviour:
 *   created objects get their own ids and are found again (customer search by
 *   metadata, a customer's subscriptions, meters, webhook endpoints with their
 *   signing secret); an `Idempotency-Key` repeated within 24 hours gets the first
 *   answer (a 5xx included), with other parameters a 400 `idempotency_error`, while the
 *   first is in flight a 409; a meter event `identifier` seen within 24 hours is
 *   refused (`400`, `Stripe-Should-Retry: false`). Its clock can be moved on to
 *   step past the 24 hours. It records every request (method, path,
 *   `Idempotency-Key`, form body) and can inject faults: 429 with `Retry-After`,
 *   500, a connection reset before or after Stripe applied the request, a slow answer.
 *
 * Requests stripe-mock refuses (not valid against the spec) are answered as it
 * answered them, and recorded as such. A `StripeModel` set on the proxy
 * (`proxy.model`) answers the requests stripe-mock accepts in place of the
 * proxy's state (the tests' billing-period model does).
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { CreateScheduleGroupCommand, DeleteScheduleCommand, GetScheduleCommand, ListSchedulesCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { freePort } from './local-flow/emulators';
import { createTable, resolveEnvironment, tableSchema } from './local-flow/tables';
import { CLOSER_ENV } from '../src/ingestor/ingestor-contract';
import { STRIPE_ENV } from '../src/providers/stripe-billing/contract';

const ROOT = path.resolve(__dirname, '..');
/** The stripe-mock release the project is tested with. */
export const STRIPE_MOCK_VERSION = 'v0.197.0';
const GOPATH = path.join(ROOT, '.tools', 'go');

function onPath(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = dir && path.join(dir, tool);
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The stripe-mock binary: from PATH, from `.tools/go/bin`, or installed there
 * with `go install` through the Go module proxy. Without Go on PATH, the Go
 * toolchain itself is fetched from the module proxy first (the module
 * `golang.org/toolchain`, as `GOTOOLCHAIN` does; about 80 MB, unpacked by
 * Python into `.tools/`), so a machine with only Node.js and Python gets it too.
 * `CDK_SAAS_BILLING_FORCE_LOCAL_TOOLS=1` ignores stripe-mock and Go on PATH.
 */
export function ensureStripeMock(log: (line: string) => void = () => undefined): string {
  const local = path.join(GOPATH, 'bin', 'stripe-mock');
  if (fs.existsSync(local)) return local;
  const forceLocal = process.env.CDK_SAAS_BILLING_FORCE_LOCAL_TOOLS === '1';
  const found = forceLocal ? undefined : onPath('stripe-mock');
  if (found) return found;
  const go = (forceLocal ? undefined : onPath('go')) ?? goToolchain(log);
  log(`installing stripe-mock ${STRIPE_MOCK_VERSION} into ${path.relative(process.cwd(), GOPATH)} (go install, about 40 s)`);
  fs.mkdirSync(GOPATH, { recursive: true });
  execFileSync(go, ['install', `github.com/stripe/stripe-mock@${STRIPE_MOCK_VERSION}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, GOPATH, GOFLAGS: '-modcacherw', GOBIN: path.join(GOPATH, 'bin'), GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
    timeout: 900_000,
  });
  if (!fs.existsSync(local)) throw new Error(`go install did not produce ${local}`);
  return local;
}

/** The Go release fetched when the machine has no Go (stripe-mock needs Go 1.22 or later). */
export const GO_TOOLCHAIN_VERSION = '1.24.11';

/**
 * The Go checksum database's hash (`h1:`, over the module's files) of the toolchain zips, by
 * platform: a fetched zip must match it. Other platforms are looked up in the checksum database
 * (sum.golang.org), as Go itself does.
 */
const GO_TOOLCHAIN_SUMS: Record<string, string> = {
  'linux-amd64': 'h1:hxQU5yWTnb0g5kLfz0z3G0wrgC9rQGwX9qPSPnpQuGY=',
};

/** The `go` binary of the project-local toolchain, fetched from the Go module proxy when missing. */
function goToolchain(log: (line: string) => void): string {
  const dir = path.join(ROOT, '.tools', `go${GO_TOOLCHAIN_VERSION}`);
  const go = path.join(dir, 'bin', 'go');
  if (fs.existsSync(go)) return go;
  const os = { linux: 'linux', darwin: 'darwin' }[process.platform as string];
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as string];
  const installGo = 'install Go (https://go.dev/dl/) or put stripe-mock on PATH';
  if (!os || !arch) {
    throw new Error(`stripe-mock is not on PATH and Go is not installed; no Go toolchain is fetched for ${process.platform}/${process.arch}: ${installGo}`);
  }
  const version = `v0.0.1-go${GO_TOOLCHAIN_VERSION}.${os}-${arch}`;
  const proxy = (process.env.GOPROXY ?? '').split(/[,|]/).find((p) => /^https?:\/\//.test(p)) ?? 'https://proxy.golang.org';
  const url = `${proxy.replace(/\/$/, '')}/golang.org/toolchain/@v/${version}.zip`;
  const sumdb = `https://sum.golang.org/lookup/golang.org/toolchain@${version}`;
  log(`Go is not installed: fetching Go ${GO_TOOLCHAIN_VERSION} from ${url} into ${path.relative(process.cwd(), dir)}`);
  // Checked against the checksum database's hash, unpacked beside, then renamed: a run killed
  // half-way leaves no half toolchain behind.
  const script = [
    'import base64, hashlib, io, os, shutil, sys, urllib.request, zipfile',
    'url, dest, expected, sumdb, version = sys.argv[1:6]',
    'with urllib.request.urlopen(url, timeout=600) as r: data = r.read()',
    'z = zipfile.ZipFile(io.BytesIO(data))',
    'files = sorted(i.filename for i in z.infolist() if not i.filename.endswith("/"))',
    'h = hashlib.sha256()',
    'for n in files: h.update(("%s  %s\\n" % (hashlib.sha256(z.read(n)).hexdigest(), n)).encode())',
    'got = "h1:" + base64.b64encode(h.digest()).decode()',
    'if not expected:',
    '    with urllib.request.urlopen(sumdb, timeout=60) as r: lines = r.read().decode().splitlines()',
    '    expected = next(l.split()[2] for l in lines if l.split()[:2] == ["golang.org/toolchain", version])',
    'if got != expected: sys.exit("the Go toolchain from %s has hash %s, the checksum database says %s: not installed" % (url, got, expected))',
    'tmp = dest + ".partial"',
    'shutil.rmtree(tmp, ignore_errors=True)',
    'for info in z.infolist():',
    '    parts = info.filename.split("/", 2)  # golang.org/toolchain@<version>/<path>',
    '    name = parts[2] if len(parts) == 3 else ""',
    '    if not name or name.endswith("/"): continue',
    '    target = os.path.join(tmp, name)',
    '    os.makedirs(os.path.dirname(target), exist_ok=True)',
    '    with z.open(info) as src, open(target, "wb") as out: shutil.copyfileobj(src, out)',
    '    os.chmod(target, (info.external_attr >> 16) & 0o777 or 0o644)',
    'shutil.rmtree(dest, ignore_errors=True)',
    'os.rename(tmp, dest)',
  ].join('\n');
  try {
    execFileSync(process.env.PYTHON ?? 'python3', ['-c', script, url, dir, GO_TOOLCHAIN_SUMS[`${os}-${arch}`] ?? '', sumdb, version], {
      stdio: ['ignore', 'ignore', 'pipe'], timeout: 900_000,
    });
  } catch (e) {
    const detail = String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n').pop();
    throw new Error(`stripe-mock is not on PATH, Go is not installed, and fetching Go failed (${detail}): ${installGo}`);
  }
  if (!fs.existsSync(go)) throw new Error(`the Go toolchain from ${url} has no bin/go: ${installGo}`);
  return go;
}

/** A running stripe-mock. */
export interface StripeMock {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Starts stripe-mock on free loopback ports and waits until it answers. */
export async function startStripeMock(log?: (line: string) => void): Promise<StripeMock> {
  const bin = ensureStripeMock(log);
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const child: ChildProcess = spawn(bin, ['-http-port', String(httpPort), '-https-port', String(httpsPort)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const res = await fetch(`${endpoint}/v1/customers`, { headers: { authorization: 'Bearer sk_test_local' } });
      if (res.status < 500) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`stripe-mock did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    }),
  };
}

/** A fault the proxy injects into one request. */
export type StripeFault =
  /** 429 with `Retry-After` (seconds); Stripe never saw the request. */
  | { readonly kind: 'rate-limit'; readonly retryAfterSeconds?: number }
  /** 500, kept for the request's Idempotency-Key as Stripe does (a retry with the key gets it again); not applied. */
  | { readonly kind: 'server-error' }
  /** The connection is reset before Stripe sees the request. */
  | { readonly kind: 'reset-before' }
  /** Stripe applies the request; the connection is reset before the answer. */
  | { readonly kind: 'reset-after' }
  /** Stripe applies the request and answers after `delayMs`. */
  | { readonly kind: 'slow'; readonly delayMs: number }
  /** Stripe refuses the request (400 `invalid_request_error` with `message`). */
  | { readonly kind: 'refuse'; readonly message: string };

/** One request the proxy received. */
export interface RecordedRequest {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly idempotencyKey?: string;
  readonly stripeVersion?: string;
  /** The form body, flattened as sent (`metadata[tenantId]` -> `t1`). */
  readonly form: Record<string, string>;
  /** What happened: `forwarded`, `replayed` (idempotency), a fault kind, or `crashed`/`dead`. */
  outcome: string;
  status?: number;
}

/**
 * A simulated crash shared by the proxies in front of every service a handler
 * calls: request `crashAt` reaches the service (and is applied) but its answer
 * is lost; every later request is refused, as if the process had died there.
 */
export class CrashPlan {
  public requests = 0;
  public crashAt?: number;
  /** Called with each request (`POST /v1/customers`, `DynamoDB.PutItem`): to find where to crash. */
  public onRequest?: (what: string) => void;
  /** Called when a request's answer is sent, with the time the service took (ms): to see where a run's time goes. */
  public onAnswer?: (what: string, ms: number) => void;

  /** Resets the counter; `crashAt` undefined: no crash. */
  public arm(crashAt?: number): void {
    this.requests = 0;
    this.crashAt = crashAt;
  }

  /** Counts a request: `'pass'`, `'crash'` (apply, lose the answer) or `'dead'` (refuse). */
  public next(what: string): 'pass' | 'crash' | 'dead' {
    this.requests++;
    this.onRequest?.(what);
    if (this.crashAt === undefined || this.requests < this.crashAt) return 'pass';
    return this.requests === this.crashAt ? 'crash' : 'dead';
  }
}

/** An answer the proxy sends. */
export interface StripeAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}
type Answer = StripeAnswer;

/** A request stripe-mock accepted, as a `StripeModel` sees it. */
export interface StripeModelRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** The parameters, flattened as sent (the body of a POST, the query of a GET or DELETE). */
  readonly form: Record<string, string>;
  /** stripe-mock's answer: a fixture of the right shape. */
  readonly mock: Record<string, unknown>;
}

/**
 * A model of Stripe's behaviour that answers in place of the proxy's own state
 * (`StripeProxy.model`). It sees only requests stripe-mock accepted: a request
 * stripe-mock refuses is answered as it answered. `next()` applies the request
 * to the proxy's own state and returns the proxy's answer.
 */
export interface StripeModel {
  answer(request: StripeModelRequest, next: () => StripeAnswer): StripeAnswer;
}

interface SavedAnswer extends Answer {
  readonly fingerprint: string;
  readonly at: number;
}

type Obj = Record<string, unknown>;
const DAY_MS = 24 * 3600 * 1000;

function stripeError(status: number, type: string, message: string, extra: Obj = {}): Answer {
  return { status, body: { error: { type, message, ...extra } } };
}

/** `metadata[tenantId]=x&items[0][price]=p` -> `{ tenantId: 'x' }` for prefix `metadata`. */
function nested(form: Record<string, string>, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(form)) {
    const m = new RegExp(`^${prefix}\\[([^\\]]+)\\]$`).exec(k);
    if (m) out[m[1]] = v;
  }
  return out;
}

function list(form: Record<string, string>, prefix: string): string[] {
  return Object.entries(form).filter(([k]) => new RegExp(`^${prefix}\\[\\d*\\]$`).test(k)).map(([, v]) => v);
}

/** The state the proxy keeps for stripe-mock (see the module comment). */
export class StripeState {
  public readonly customers = new Map<string, Obj>();
  public readonly subscriptions = new Map<string, Obj>();
  public readonly meters = new Map<string, Obj>();
  public readonly webhookEndpoints = new Map<string, Obj>();
  /** Meter events Stripe counted, in order. */
  public readonly meterEvents: { identifier: string; eventName: string; customer: string; value: string; timestamp: number; at: number }[] = [];
  private seq = 0;

  public id(prefix: string): string {
    return `${prefix}_L${String(++this.seq).padStart(6, '0')}`;
  }
}

/**
 * A subscription as the proxy answers it, with its current period on the items (as API versions
 * since 2025-03-31.basil put it: https://docs.stripe.com/changelog/basil/2025-03-31/deprecate-subscription-current-period-start-and-end):
 * [start, anchor) when an anchor was given, then whole 30-day periods from the anchor (the proxy
 * treats every price as monthly; the billing-period model in test/support is exact).
 */
function withPeriod(sub: Obj, nowSec: number): Obj {
  const start = Number(sub.start_date);
  const anchor = Number(sub.billing_cycle_anchor);
  const month = 30 * 86400;
  let periodStart = start;
  let periodEnd = anchor > start ? anchor : start + month;
  while (nowSec >= periodEnd) [periodStart, periodEnd] = [periodEnd, periodEnd + month];
  const items = (sub.items as { data: Obj[] }).data.map((i) => ({ ...i, current_period_start: periodStart, current_period_end: periodEnd }));
  return { ...sub, items: { ...(sub.items as Obj), data: items } };
}

/** The HTTP proxy in front of stripe-mock (see the module comment). */
export class StripeProxy {
  public readonly state: StripeState = new StripeState();
  public readonly requests: RecordedRequest[] = [];
  /** Moves the proxy's clock (idempotency and identifier windows); tests step past 24 hours with it. */
  public clockOffsetMs = 0;
  /** A crash shared with other proxies, when set. */
  public crash?: CrashPlan;
  /** Added to every answer, ms: Stripe's own latency, which the bench simulates. */
  public latencyMs = 0;
  /** Answers requests stripe-mock accepted in place of `state`, when set (see `StripeModel`). */
  public model?: StripeModel;
  /** Highest number of meter event calls in flight at once for one customer and meter. */
  public maxConcurrentPerCustomerMeter = 0;
  /** Highest number of meter event calls in flight at once, all pairs together. */
  public maxConcurrentMeterEvents = 0;
  private meterEventsInFlight = 0;
  private readonly faults: { method?: string; path: RegExp; when?: (form: Record<string, string>) => boolean; queue: StripeFault[] }[] = [];
  private readonly saved = new Map<string, SavedAnswer>();
  private readonly inFlight = new Set<string>();
  private readonly inFlightPairs = new Map<string, number>();
  private server?: http.Server;
  private seq = 0;

  constructor(private readonly upstream: string) {}

  /** The proxy's clock, ms. */
  public now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** Starts listening; returns `http://127.0.0.1:<port>`. */
  public async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.handle(req, Buffer.concat(chunks).toString('utf8'), res).catch((error) => {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { type: 'api_error', message: `proxy failure: ${(error as Error).message}` } }));
        });
      });
    });
    this.server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  public async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Injects `faults`, one per matching request in order. */
  public inject(match: { method?: string; path: RegExp; when?: (form: Record<string, string>) => boolean }, ...faults: StripeFault[]): void {
    this.faults.push({ ...match, queue: [...faults] });
  }

  /** Forgets everything: state, saved answers, recording, faults, clock. */
  public reset(): void {
    (this as { state: StripeState }).state = new StripeState();
    this.saved.clear();
    this.clockOffsetMs = 0;
    this.clearRecording();
  }

  /** Forgets recorded requests and pending faults (the state is kept). */
  public clearRecording(): void {
    this.requests.length = 0;
    this.faults.length = 0;
    this.maxConcurrentPerCustomerMeter = 0;
    this.maxConcurrentMeterEvents = 0;
  }

  /** Recorded requests matching a method and a path. */
  public recorded(method: string, pathPattern: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && pathPattern.test(r.path));
  }

  private nextFault(method: string, p: string, form: Record<string, string>): StripeFault | undefined {
    const rule = this.faults.find((f) => f.queue.length > 0 && (!f.method || f.method === method) && f.path.test(p) && (!f.when || f.when(form)));
    return rule?.queue.shift();
  }

  private async handle(req: http.IncomingMessage, body: string, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const method = req.method ?? 'GET';
    // The SDK sends the parameters of GET and DELETE in the query string, of POST in the body.
    const form = Object.fromEntries(new URLSearchParams(method === 'POST' ? body : url.search));
    const key = req.headers['idempotency-key'] as string | undefined;
    const record: RecordedRequest = {
      seq: ++this.seq,
      method,
      path: url.pathname,
      query: url.search,
      idempotencyKey: key,
      stripeVersion: req.headers['stripe-version'] as string | undefined,
      form,
      outcome: 'forwarded',
    };
    this.requests.push(record);
    const started = Date.now();
    const send = (a: Answer) => {
      this.crash?.onAnswer?.(`${method} ${url.pathname}`, Date.now() - started);
      record.status = a.status;
      res.writeHead(a.status, { 'content-type': 'application/json', 'request-id': `req_local_${record.seq}`, ...(a.headers ?? {}) });
      res.end(JSON.stringify(a.body));
    };

    const crash = this.crash?.next(`${method} ${url.pathname}`) ?? 'pass';
    if (crash === 'dead') {
      record.outcome = 'dead';
      return send({ ...stripeError(400, 'invalid_request_error', 'injected crash: the process died before this request'), headers: { 'stripe-should-retry': 'false' } });
    }
    const fault = crash === 'crash' ? ({ kind: 'reset-after' } as StripeFault) : this.nextFault(method, url.pathname, form);
    if (crash === 'crash') record.outcome = 'crashed';
    else if (fault) record.outcome = fault.kind;
    if (fault?.kind === 'reset-before') return void req.socket.destroy();
    if (fault?.kind === 'rate-limit') {
      return send({ ...stripeError(429, 'invalid_request_error', 'Too many requests', { code: 'rate_limit' }), headers: { 'retry-after': String(fault.retryAfterSeconds ?? 1) } });
    }

    // Stripe's idempotency: a repeated key gets the first answer.
    const fingerprint = `${method} ${url.pathname} ${body}`;
    const idemKey = key && method === 'POST' ? key : undefined; // Stripe ignores the key on GET and DELETE
    if (idemKey) {
      const earlier = this.saved.get(idemKey);
      if (earlier && this.now() - earlier.at < DAY_MS) {
        if (earlier.fingerprint !== fingerprint) {
          return send(stripeError(400, 'idempotency_error', 'Keys for idempotent requests can only be used with the same parameters they were first used with.'));
        }
        record.outcome = record.outcome === 'forwarded' ? 'replayed' : record.outcome;
        return this.finish(send, earlier, fault, req);
      }
      if (this.inFlight.has(idemKey)) {
        return send(stripeError(409, 'idempotency_error', 'There is currently another in-progress request using this Idempotent Key.', { code: 'idempotency_key_in_use' }));
      }
    }
    if (fault?.kind === 'refuse') {
      return send({ ...stripeError(400, 'invalid_request_error', fault.message), headers: { 'stripe-should-retry': 'false' } });
    }
    if (fault?.kind === 'server-error') {
      const answer = stripeError(500, 'api_error', 'injected server error');
      if (idemKey) this.saved.set(idemKey, { ...answer, fingerprint, at: this.now() });
      return send(answer);
    }

    if (idemKey) this.inFlight.add(idemKey);
    const pair = url.pathname === '/v1/billing/meter_events' ? `${form['payload[stripe_customer_id]']}|${form.event_name}` : undefined;
    if (pair) {
      const n = (this.inFlightPairs.get(pair) ?? 0) + 1;
      this.inFlightPairs.set(pair, n);
      this.maxConcurrentPerCustomerMeter = Math.max(this.maxConcurrentPerCustomerMeter, n);
      this.maxConcurrentMeterEvents = Math.max(this.maxConcurrentMeterEvents, ++this.meterEventsInFlight);
    }
    try {
      const upstream = await fetch(`${this.upstream}${url.pathname}${url.search}`, {
        method,
        headers: { 'authorization': String(req.headers.authorization ?? ''), 'content-type': 'application/x-www-form-urlencoded', 'stripe-version': String(req.headers['stripe-version'] ?? '') },
        body: method === 'GET' || method === 'HEAD' ? undefined : body,
      });
      const upstreamBody = await upstream.json() as Obj;
      let answer: Answer = { status: upstream.status, body: upstreamBody };
      if (upstream.status < 300) {
        const next = () => this.apply(method, url, form, upstreamBody);
        answer = this.model ? this.model.answer({ method, path: url.pathname, query: url.searchParams, form, mock: upstreamBody }, next) : next();
      }
      if (idemKey && answer.status < 400) this.saved.set(idemKey, { ...answer, fingerprint, at: this.now() });
      await this.finish(send, answer, fault, req);
    } finally {
      if (idemKey) this.inFlight.delete(idemKey);
      if (pair) {
        this.inFlightPairs.set(pair, (this.inFlightPairs.get(pair) ?? 1) - 1);
        this.meterEventsInFlight--;
      }
    }
  }

  private async finish(send: (a: Answer) => void, answer: Answer, fault: StripeFault | undefined, req: http.IncomingMessage): Promise<void> {
    if (fault?.kind === 'reset-after') return void req.socket.destroy();
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.delayMs));
    if (req.socket.destroyed) return;
    send(answer);
  }

  /** Applies a request stripe-mock accepted to the state, and shapes the answer from it. */
  private apply(method: string, url: URL, form: Record<string, string>, mock: Obj): Answer {
    const s = this.state;
    const nowSec = Math.floor(this.now() / 1000);
    const p = url.pathname;
    const ok = (body: unknown): Answer => ({ status: 200, body });
    const listOf = (data: Obj[]) => ok({ object: 'list', data, has_more: false, url: p });
    let m: RegExpExecArray | null;

    if (p === '/v1/customers' && method === 'POST') {
      const c = { ...mock, id: s.id('cus'), created: nowSec, metadata: nested(form, 'metadata'), name: form.name ?? null, email: form.email ?? null };
      s.customers.set(String(c.id), c);
      return ok(c);
    }
    if (p === '/v1/customers/search') {
      const conditions = [...String(url.searchParams.get('query') ?? '').matchAll(/metadata\['([^']+)'\]:'([^']*)'/g)];
      const data = [...s.customers.values()].filter((c) => !c.deleted
        && conditions.every(([, k, v]) => (c.metadata as Record<string, string>)[k] === v));
      return ok({ object: 'search_result', data, has_more: false, next_page: null, url: p });
    }
    if ((m = /^\/v1\/customers\/([^/]+)$/.exec(p))) {
      const c = s.customers.get(m[1]);
      if (!c || c.deleted) return stripeError(404, 'invalid_request_error', `No such customer: '${m[1]}'`, { code: 'resource_missing' });
      if (method === 'DELETE') {
        c.deleted = true;
        for (const sub of s.subscriptions.values()) if (sub.customer === c.id) Object.assign(sub, { status: 'canceled', canceled_at: nowSec });
        return ok({ id: c.id, object: 'customer', deleted: true });
      }
      return ok(c);
    }
    if (p === '/v1/subscriptions' && method === 'POST') {
      // The first period runs to the billing cycle anchor when one is given, else a month (monthly prices); on
      // the items, as API versions since 2025-03-31.basil put it
      // (https://docs.stripe.com/changelog/basil/2025-03-31/deprecate-subscription-current-period-start-and-end).
      const anchor = form.billing_cycle_anchor ? Number(form.billing_cycle_anchor) : undefined;
      const items = (mock.items as { data?: Obj[] } | undefined)?.data ?? [];
      const prices = Object.entries(form).filter(([k]) => /^items\[\d+\]\[price\]$/.test(k)).map(([, v]) => v);
      // One item per price, each with its own id (stripe-mock's fixture has one item, the same every time).
      const itemOf = (price: string) => ({ ...(items[0] ?? { object: 'subscription_item' }), id: s.id('si'), price: { ...((items[0]?.price as Obj) ?? {}), id: price } });
      const sub = {
        ...mock,
        items: { ...(mock.items as Obj), data: prices.length ? prices.map(itemOf) : items.length ? items : [{ object: 'subscription_item' }] },
        start_date: nowSec,
        billing_cycle_anchor: anchor ?? nowSec,
        id: s.id('sub'),
        customer: form.customer,
        metadata: nested(form, 'metadata'),
        status: 'active',
        created: nowSec,
        cancel_at_period_end: false,
        cancel_at: null,
        canceled_at: null,
        ended_at: null,
        prices,
      };
      s.subscriptions.set(sub.id, sub);
      return ok(withPeriod(sub, nowSec));
    }
    if (p === '/v1/subscriptions' && method === 'GET') {
      const customer = url.searchParams.get('customer');
      return listOf([...s.subscriptions.values()].filter((sub) => !customer || sub.customer === customer).map((sub) => withPeriod(sub, nowSec)));
    }
    if ((m = /^\/v1\/subscriptions\/([^/]+)$/.exec(p))) {
      const sub = s.subscriptions.get(m[1]);
      if (!sub) return stripeError(404, 'invalid_request_error', `No such subscription: '${m[1]}'`, { code: 'resource_missing' });
      if (method === 'GET') return ok(withPeriod(sub, nowSec));
      if (sub.status === 'canceled') return stripeError(400, 'invalid_request_error', 'A canceled subscription can only update its cancellation_details and metadata.');
      if (method === 'DELETE') {
        Object.assign(sub, { status: 'canceled', canceled_at: nowSec, ended_at: nowSec, invoiceNow: form.invoice_now === 'true', prorate: form.prorate === 'true' });
      } else if (form.cancel_at_period_end === 'true') {
        Object.assign(sub, { cancel_at_period_end: true, cancel_at: nowSec + 30 * 86400 });
      } else if (Object.keys(form).some((k) => k.startsWith('items['))) {
        // An item swap: items[n][id] with items[n][deleted]=true removes one, items[n][price] adds one (a plan change).
        const data = [...(sub.items as { data: Obj[] }).data];
        const changes = new Map<string, Record<string, string>>();
        for (const [k, v] of Object.entries(form)) {
          const im = /^items\[(\d+)\]\[([a-z_]+)\]$/.exec(k);
          if (im) changes.set(im[1], { ...changes.get(im[1]), [im[2]]: v });
        }
        let kept = data;
        for (const c of changes.values()) {
          if (c.id && c.deleted === 'true') kept = kept.filter((i) => i.id !== c.id);
          else if (c.price) kept = [...kept, { ...(data[0] ?? { object: 'subscription_item' }), id: s.id('si'), price: { ...((data[0]?.price as Obj) ?? {}), id: c.price } }];
        }
        Object.assign(sub, {
          items: { ...(sub.items as Obj), data: kept },
          prices: kept.map((i) => (i.price as Obj).id),
          lastUpdate: {
            prorationBehavior: form.proration_behavior,
            prorationDate: form.proration_date ? Number(form.proration_date) : undefined,
            at: nowSec,
          },
        });
        return ok(withPeriod(sub, nowSec));
      }
      return ok(sub);
    }
    // The proxy creates no invoices (stripe-mock's fixture would show one for every customer).
    if (p === '/v1/invoices' && method === 'GET') return listOf([]);
    if (p === '/v1/billing/meter_events' && method === 'POST') {
      const identifier = form.identifier;
      const earlier = s.meterEvents.find((e) => e.identifier === identifier && this.now() - e.at < DAY_MS);
      if (earlier) {
        return { ...stripeError(400, 'invalid_request_error', `An event already exists with identifier ${identifier}.`), headers: { 'stripe-should-retry': 'false' } };
      }
      const event = {
        identifier,
        eventName: form.event_name,
        customer: form['payload[stripe_customer_id]'],
        value: form['payload[value]'],
        timestamp: Number(form.timestamp),
        at: this.now(),
      };
      s.meterEvents.push(event);
      return ok({ ...mock, identifier, event_name: event.eventName, timestamp: event.timestamp, payload: nested(form, 'payload'), created: nowSec });
    }
    if (p === '/v1/billing/meters' && method === 'GET') return listOf([...s.meters.values()]);
    if (p === '/v1/billing/meters' && method === 'POST') {
      const meter = {
        ...mock,
        id: s.id('mtr'),
        event_name: form.event_name,
        display_name: form.display_name,
        status: 'active',
        default_aggregation: { formula: form['default_aggregation[formula]'] },
        customer_mapping: { type: form['customer_mapping[type]'] ?? 'by_id', event_payload_key: form['customer_mapping[event_payload_key]'] ?? 'stripe_customer_id' },
        value_settings: { event_payload_key: form['value_settings[event_payload_key]'] ?? 'value' },
      };
      s.meters.set(meter.id, meter);
      return ok(meter);
    }
    if ((m = /^\/v1\/billing\/meters\/([^/]+)\/event_summaries$/.exec(p))) {
      const meter = s.meters.get(m[1]);
      if (!meter) return stripeError(404, 'invalid_request_error', `No such billing meter: '${m[1]}'`, { code: 'resource_missing' });
      const [start, end] = [Number(url.searchParams.get('start_time')), Number(url.searchParams.get('end_time'))];
      const value = s.meterEvents.filter((e) => e.eventName === meter.event_name && e.customer === url.searchParams.get('customer')
        && e.timestamp >= start && e.timestamp < end).reduce((sum, e) => sum + Number(e.value), 0);
      return listOf([{ id: `mtrusum_${start}`, object: 'billing.meter_event_summary', aggregated_value: value, start_time: start, end_time: end, meter: m[1], livemode: false }]);
    }
    if ((m = /^\/v1\/billing\/meters\/([^/]+)(?:\/(deactivate|reactivate))?$/.exec(p))) {
      const meter = s.meters.get(m[1]);
      if (!meter) return stripeError(404, 'invalid_request_error', `No such billing meter: '${m[1]}'`, { code: 'resource_missing' });
      if (m[2]) meter.status = m[2] === 'deactivate' ? 'inactive' : 'active';
      else if (form.display_name) meter.display_name = form.display_name;
      return ok(meter);
    }
    if (p === '/v1/webhook_endpoints' && method === 'GET') return listOf([...s.webhookEndpoints.values()].map(({ secret, ...e }) => e));
    if (p === '/v1/webhook_endpoints' && method === 'POST') {
      const endpoint = {
        ...mock,
        id: s.id('we'),
        url: form.url,
        enabled_events: list(form, 'enabled_events'),
        api_version: form.api_version ?? null,
        metadata: nested(form, 'metadata'),
        description: form.description ?? null,
        status: 'enabled',
        secret: `whsec_${randomBytes(24).toString('hex')}`,
      };
      s.webhookEndpoints.set(endpoint.id, endpoint);
      return ok(endpoint);
    }
    if ((m = /^\/v1\/webhook_endpoints\/([^/]+)$/.exec(p))) {
      const endpoint = s.webhookEndpoints.get(m[1]);
      if (!endpoint) return stripeError(404, 'invalid_request_error', `No such webhook endpoint: '${m[1]}'`, { code: 'resource_missing' });
      if (method === 'DELETE') {
        s.webhookEndpoints.delete(m[1]);
        return ok({ id: m[1], object: 'webhook_endpoint', deleted: true });
      }
      if (method === 'POST') {
        if (form.url) endpoint.url = form.url;
        const events = list(form, 'enabled_events');
        if (events.length) endpoint.enabled_events = events;
        // Metadata updates merge; a key posted with an empty value is unset (https://docs.stripe.com/metadata).
        const metadata: Record<string, string> = { ...(endpoint.metadata as Record<string, string>), ...nested(form, 'metadata') };
        endpoint.metadata = Object.fromEntries(Object.entries(metadata).filter(([, v]) => v !== ''));
      }
      const { secret, ...shown } = endpoint;
      return ok(shown);
    }
    return { status: 200, body: mock };
  }
}

/** Names of what `LocalStripeBilling` created in the emulator. */
export interface LocalNames {
  customers: string;
  push: string;
  webhookEvents: string;
  apiKeySecretArn: string;
  signingSecretArn: string;
  /** The offboarding's EventBridge Scheduler schedule group. */
  scheduleGroup?: string;
}

/** The bundled handler of one StripeBilling function (the code Lambda runs; `npx projen bundle` builds it). */
export function stripeHandlerModule<T = Record<string, unknown>>(name: 'create-customer' | 'delete-customer' | 'put-usage' | 'webhook' | 'setup' | 'reconcile' | 'change-plan'): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'assets', 'providers', 'stripe-billing', `${name}.lambda`, 'index.js')) as T;
}

/**
 * A synthesized StripeBilling brought to this machine: its tables (from the
 * template's own schemas) and secrets created in the emulator, and the
 * environment the construct gives each function, with the emulator's names
 * and the Stripe endpoint (the one variable the construct never sets).
 */
export class LocalStripeBilling {
  public readonly names: LocalNames;
  private readonly functions: Record<string, { Properties: { Environment?: { Variables?: Record<string, unknown> } } }>;
  /** Logical id -> the emulator's name or ARN of that resource. */
  private readonly refs: Record<string, string> = {};
  private readonly givenSigningSecret: boolean;

  /**
   * @param stack the stack holding the StripeBilling (as synthesized)
   * @param constructId the StripeBilling's id in the stack (its resources' logical id prefix)
   */
  constructor(private readonly stack: Stack, private readonly stripeEndpoint: string, suffix: string, private readonly constructId = 'Stripe') {
    this.names = { customers: `stripe-customers-${suffix}`, push: `stripe-push-${suffix}`, webhookEvents: `stripe-webhook-events-${suffix}`, apiKeySecretArn: '', signingSecretArn: '' };
    this.functions = Template.fromStack(stack).findResources('AWS::Lambda::Function') as typeof this.functions;
    this.givenSigningSecret = Object.keys(Template.fromStack(stack).findResources('AWS::SecretsManager::Secret'))
      .every((id) => !id.startsWith(`${constructId}WebhookSigningSecret`));
  }

  /** Creates the tables and the two secrets (the API key a test key stripe-mock accepts). */
  public async create(): Promise<void> {
    await this.createTable(`${this.constructId}CustomersTable`, this.names.customers);
    await this.createTable(`${this.constructId}UsagePushTable`, this.names.push);
    await this.createTable(`${this.constructId}WebhookEventsTable`, this.names.webhookEvents);
    const suffix = this.names.customers.replace(/^stripe-customers-/, '');
    this.names.apiKeySecretArn = await this.secret(`stripe/api-key-${suffix}`, 'sk_test_51LocalTestKey0123456789');
    this.names.signingSecretArn = await this.secret(`stripe/webhook-signing-${suffix}`, 'placeholder, replaced by the Stripe setup');
    this.addRef(`${this.constructId}CustomersTable`, this.names.customers);
    this.addRef(`${this.constructId}UsagePushTable`, this.names.push);
    this.addRef(`${this.constructId}WebhookEventsTable`, this.names.webhookEvents);
    if (!this.givenSigningSecret) this.addRef(`${this.constructId}WebhookSigningSecret`, this.names.signingSecretArn);
    // The offboarding's one-time schedules: their group and dead-letter queue in the emulator; the role as a name.
    this.names.scheduleGroup = `stripe-offboarding-${suffix}`;
    await new SchedulerClient({}).send(new CreateScheduleGroupCommand({ Name: this.names.scheduleGroup }));
    const queue = await new SQSClient({}).send(new CreateQueueCommand({ QueueName: `stripe-offboarding-dlq-${suffix}` }));
    const dlqArn = (await new SQSClient({}).send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    this.addRef(`${this.constructId}OffboardingScheduleGroup`, this.names.scheduleGroup);
    this.addRef(`${this.constructId}OffboardingSchedulerRole`, 'arn:aws:iam::123456789012:role/local-offboarding-scheduler');
    this.addRef(`${this.constructId}OffboardingScheduleDeadLetterQueue`, dlqArn);
  }

  /**
   * Runs the one-time schedules that are due by this process's clock, as EventBridge Scheduler
   * would: the offboarding function invoked with the schedule's input, the schedule deleted after
   * (`ActionAfterCompletion: DELETE`). Returns the inputs it ran.
   */
  public async runDueSchedules(
    context: { awsRequestId: string; getRemainingTimeInMillis(): number }, overrides: Record<string, string> = {},
    handler: (event: unknown, context: unknown) => Promise<unknown> = stripeHandlerModule<{ handler: (e: unknown, c: unknown) => Promise<unknown> }>('delete-customer').handler,
  ): Promise<unknown[]> {
    const scheduler = new SchedulerClient({});
    const ran: unknown[] = [];
    const schedules = await scheduler.send(new ListSchedulesCommand({ GroupName: this.names.scheduleGroup }));
    for (const entry of schedules.Schedules ?? []) {
      const schedule = await scheduler.send(new GetScheduleCommand({ GroupName: this.names.scheduleGroup, Name: entry.Name }));
      const at = /^at\((.+)\)$/.exec(schedule.ScheduleExpression ?? '')?.[1];
      if (!at || Date.parse(`${at}Z`) > Date.now()) continue;
      const input = JSON.parse(schedule.Target?.Input ?? '{}');
      this.use('DeleteCustomer', overrides);
      await handler(input, { ...context, invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:local-delete-customer' });
      await scheduler.send(new DeleteScheduleCommand({ GroupName: this.names.scheduleGroup, Name: entry.Name }));
      ran.push(input);
    }
    return ran;
  }

  /** Creates one more push table with the synthesized schema. */
  public async createPushTable(name: string): Promise<void> {
    await this.createTable(`${this.constructId}UsagePushTable`, name);
  }

  /** Resolves references to a resource (`{"Ref": "<logical id>"}`) of the template to `value` in the functions' environment. */
  public addRef(logicalIdPrefix: string, value: string): void {
    const id = Object.keys(Template.fromStack(this.stack).toJSON().Resources).find((k) => k.startsWith(logicalIdPrefix));
    if (!id) throw new Error(`no resource ${logicalIdPrefix}* in the template`);
    this.refs[id] = value;
  }

  /** Sets this process's environment to what the construct gives function `<constructId><fn>`. */
  public use(fn: 'CreateCustomer' | 'DeleteCustomer' | 'PutUsage' | 'Webhook' | 'Setup' | 'Reconcile' | 'ChangePlan', overrides: Record<string, string> = {}): void {
    const prefix = `${this.constructId}${fn}`;
    const entry = Object.entries(this.functions).find(([id]) => id.startsWith(prefix));
    if (!entry) throw new Error(`no function ${prefix}* in the template`);
    for (const key of Object.values(STRIPE_ENV)) delete process.env[key];
    const logLevel = process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN';
    Object.assign(process.env, resolveEnvironment(entry[1].Properties?.Environment?.Variables ?? {}, {
      ...this.refs,
      [STRIPE_ENV.API_KEY_SECRET_ARN]: this.names.apiKeySecretArn,
      [STRIPE_ENV.WEBHOOK_SECRET_ARN]: this.names.signingSecretArn,
    }), { [STRIPE_ENV.TEST_ENDPOINT]: this.stripeEndpoint, POWERTOOLS_LOG_LEVEL: logLevel }, overrides);
  }

  private async createTable(logicalIdPrefix: string, tableName: string): Promise<void> {
    await createTable(tableSchema(this.stack, logicalIdPrefix, tableName));
  }

  private async secret(name: string, value: string): Promise<string> {
    return (await new SecretsManagerClient({}).send(new CreateSecretCommand({ Name: name, SecretString: value }))).ARN!;
  }
}

/** One usage record, as producers put it on the ingestor's data stream. */
export interface LocalUsageRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly metric: string;
  /** A number, or a decimal written into the record as a JSON number with exactly these digits. */
  readonly value: number | string;
  /** ISO-8601 or epoch milliseconds. */
  readonly timestamp: string | number;
}

/**
 * A synthesized UsageIngestor brought to this machine: its table from the template,
 * the bundled aggregator invoked with the Kinesis batch the event source mapping would
 * deliver, the bundled closer invoked on its schedule. Windows close an hour (the
 * allowed lateness) plus a margin after they end: `closeWindows` moves this process's
 * clock past that (every later call, the push's included, sees the moved clock until
 * `restoreClock`).
 */
export class LocalUsageIngestor {
  public readonly tableName: string;
  private readonly functions: Record<string, { Properties: { Environment?: { Variables?: Record<string, unknown> } } }>;
  private readonly refs: Record<string, string> = {};
  private realNow?: () => number;
  private seq = 0;

  constructor(private readonly stack: Stack, suffix: string, private readonly constructId = 'Ingestor') {
    this.tableName = `usage-${suffix}`;
    this.functions = Template.fromStack(stack).findResources('AWS::Lambda::Function') as typeof this.functions;
  }

  /** The logical id of the ingestor's table (references to it resolve to `tableName`). */
  public get tableLogicalId(): string {
    return Object.keys(Template.fromStack(this.stack).findResources('AWS::DynamoDB::Table')).find((id) => id.startsWith(this.constructId))!;
  }

  /** Creates the ingestor's table from its synthesized schema. */
  public async create(): Promise<void> {
    await createTable(tableSchema(this.stack, this.tableLogicalId, this.tableName));
    this.refs[this.tableLogicalId] = this.tableName;
  }

  /** Puts records through the bundled aggregator, as one Kinesis batch; returns the records it failed. */
  public async ingest(records: readonly LocalUsageRecord[]): Promise<number> {
    this.use('Aggregator');
    const arn = 'arn:aws:kinesis:us-east-1:123456789012:stream/local-usage';
    const event = {
      Records: records.map((r) => {
        const sequenceNumber = String(++this.seq).padStart(20, '0');
        return {
          kinesis: {
            kinesisSchemaVersion: '1.0',
            partitionKey: r.tenantId,
            sequenceNumber,
            data: Buffer.from(recordJson(r)).toString('base64'),
            approximateArrivalTimestamp: Date.now() / 1000,
          },
          eventSource: 'aws:kinesis',
          eventVersion: '1.0',
          eventID: `shardId-000000000000:${sequenceNumber}`,
          eventName: 'aws:kinesis:record',
          invokeIdentityArn: 'arn:aws:iam::123456789012:role/local',
          awsRegion: 'us-east-1',
          eventSourceARN: arn,
        };
      }),
    };
    const result = await ingestorHandler('aggregator')(event, localContext('aggregator')) as { batchItemFailures: unknown[] };
    return result.batchItemFailures.length;
  }

  /** Moves this process's clock past the close of every window ending by now, and runs the bundled closer; returns the windows it closed. */
  public async closeWindows(): Promise<number> {
    const closer = this.use('Closer');
    const hourMs = 3_600_000;
    const realNow = this.realNow ?? Date.now;
    // From this process's clock (already moved by an earlier call, if any): windows ending by now close.
    const waitSeconds = Number(closer[CLOSER_ENV.ALLOWED_LATENESS_SECONDS]) + Number(closer[CLOSER_ENV.CLOSING_MARGIN_SECONDS]);
    const closableMs = (Math.floor(Date.now() / hourMs) + 1) * hourMs + waitSeconds * 1000 + 60_000;
    const offset = closableMs - realNow();
    this.realNow = realNow;
    Date.now = () => realNow() + offset;
    const summary = await ingestorHandler('closer')({ 'id': 'local-close', 'detail-type': 'Scheduled Event', 'source': 'aws.events', 'time': new Date(Date.now()).toISOString(), 'detail': {} },
      localContext('closer')) as { windowsClosed: number };
    return summary.windowsClosed;
  }

  /** Moves this process's clock on by `ms` (on top of earlier moves). */
  public advanceClock(ms: number): void {
    const realNow = this.realNow ?? Date.now;
    const offset = Date.now() - realNow() + ms;
    this.realNow = realNow;
    Date.now = () => realNow() + offset;
  }

  /** Gives this process its real clock back. */
  public restoreClock(): void {
    if (this.realNow) Date.now = this.realNow;
    this.realNow = undefined;
  }

  private use(fn: 'Aggregator' | 'Closer'): Record<string, string> {
    const entry = Object.entries(this.functions).find(([id]) => id.startsWith(`${this.constructId}${fn}`));
    if (!entry) throw new Error(`no function ${this.constructId}${fn}* in the template`);
    const env = resolveEnvironment(entry[1].Properties.Environment?.Variables ?? {}, this.refs);
    Object.assign(process.env, env, { POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN' });
    return env;
  }
}

/** The record as a producer writes it: `value` a JSON number, a string's digits kept exactly. */
function recordJson(r: LocalUsageRecord): string {
  const { value, ...rest } = r;
  if (typeof value === 'string' && !/^\d+(\.\d+)?$/.test(value)) throw new Error(`value ${JSON.stringify(value)} is not a decimal number`);
  return `${JSON.stringify(rest).slice(0, -1)},"value":${value}}`;
}

function ingestorHandler(name: 'aggregator' | 'closer'): (event: unknown, context: unknown) => Promise<unknown> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'assets', 'ingestor', `${name}.lambda`, 'index.js')).handler;
}

function localContext(name: string) {
  return { functionName: name, awsRequestId: `local-${name}-${Date.now()}`, getRemainingTimeInMillis: () => 600_000 };
}
