/**
 * Harness for the DynamoDB billing handler tests: loads the bundled handlers
 * (exactly the code Lambda runs), takes table schemas from the synthesized
 * template, builds the events the services deliver, and puts a fault-injecting
 * proxy between a handler and the emulator.
 */
import * as http from 'http';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import type { EventBridgeEvent } from 'aws-lambda';
import { UsageIngestor } from '../../../src';
import { DynamoDbBilling } from '../../../src/providers';
import { scratchDir } from '../../support/synth';
import { tableSchema, TableSchema } from '../support';

const ASSETS = path.resolve(__dirname, '..', '..', '..', 'assets', 'providers', 'dynamodb-billing');

/** The bundled handler of one DynamoDB billing function (run `npx projen bundle` first). */
export function bundledHandler<E, R>(name: 'create-customer' | 'delete-customer' | 'create-user' | 'delete-user' | 'put-usage' | 'webhook'):
(event: E, context?: unknown) => Promise<R> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ASSETS, `${name}.lambda`, 'index.js')).handler;
}

/** The schemas of the tables as the construct (and the UsageIngestor) synthesize them. */
export interface Schemas {
  readonly billing: (tableName: string) => TableSchema;
  readonly webhookEvents: (tableName: string) => TableSchema;
  readonly aggregates: (tableName: string) => TableSchema;
}

/** Synthesizes DynamoDbBilling with a UsageIngestor and returns its table schemas. */
export function synthesizedSchemas(): Schemas {
  const stack = new Stack(new App({ outdir: scratchDir('schemas') }), 'Schemas');
  const ingestor = new UsageIngestor(stack, 'Ingestor');
  new DynamoDbBilling(stack, 'Billing', { ingestor });
  return {
    billing: (name) => tableSchema(stack, 'BillingBillingTable', name),
    webhookEvents: (name) => tableSchema(stack, 'BillingWebhookEventsTable', name),
    aggregates: (name) => tableSchema(stack, 'IngestorAggregateTable', name),
  };
}

let eventCounter = 0;

/** An EventBridge event as a rule's Lambda target receives it. */
export function eventBridgeEvent(
  detailType: string,
  detail: Record<string, unknown>,
  id?: string,
  time: Date = new Date(),
): EventBridgeEvent<string, Record<string, unknown>> {
  eventCounter++;
  return {
    'version': '0',
    'id': id ?? `00000000-0000-4000-8000-${String(eventCounter).padStart(12, '0')}`,
    'detail-type': detailType,
    'source': 'sbt.control.plane',
    'account': '123456789012',
    'time': time.toISOString().replace(/\.\d{3}Z$/, 'Z'), // EventBridge: seconds
    'region': process.env.AWS_REGION ?? 'us-east-1',
    'resources': [],
    detail,
  };
}

/** A Lambda context with enough time left. */
export const lambdaContext = { getRemainingTimeInMillis: () => 600_000 };

/**
 * An HTTP proxy in front of the emulator that can simulate a crash: requests up
 * to `crashAt - 1` pass; request `crashAt` reaches the emulator (its write is
 * committed) but its response is lost; every later request fails. So the
 * handler dies at exactly that point, as a killed process or a timeout would.
 *
 * With `serialize`, it hands the emulator one request at a time. moto serves
 * requests on threads without a lock, so two concurrent conditional writes on
 * one item can both pass their condition there (seen: 10 concurrent webhook
 * deliveries on a loaded machine, two claims won). DynamoDB makes each
 * conditional write atomic; one request at a time is the faithful model, and
 * the clients still send concurrently.
 */
export class FaultProxy {
  /** Requests seen since the last `arm`. */
  public requests = 0;
  /** The DynamoDB operations seen since the last `arm`, in order. */
  public operations: string[] = [];
  private crashAt?: number;
  private server?: http.Server;
  /** The request the emulator is serving (with `serialize`). */
  private serving: Promise<void> = Promise.resolve();

  constructor(private readonly target: string, private readonly opts: { readonly serialize?: boolean } = {}) {}

  /** Starts the proxy; returns its endpoint. */
  public async start(): Promise<string> {
    const target = new URL(this.target);
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const n = this.requests;
        this.operations.push(String(req.headers['x-amz-target'] ?? req.method).replace(/^DynamoDB_\d+\./, ''));
        if (this.crashAt !== undefined && n > this.crashAt) {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(JSON.stringify({ __type: 'InjectedCrash', message: `injected crash: request ${n} after the crash point` }));
          return;
        }
        const forward = () => new Promise<void>((done) => {
          const upstream = http.request({
            host: target.hostname,
            port: target.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          }, (up) => {
            const body: Buffer[] = [];
            up.on('data', (c) => body.push(c));
            up.on('end', () => {
              done();
              if (n === this.crashAt) {
                req.socket.destroy(); // the write is committed; its response is lost
                return;
              }
              res.writeHead(up.statusCode ?? 500, up.headers);
              res.end(Buffer.concat(body));
            });
          });
          upstream.on('error', () => {
            done();
            res.destroy();
          });
          upstream.end(Buffer.concat(chunks));
        });
        if (this.opts.serialize) this.serving = this.serving.then(forward);
        else void forward();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /** Resets the counters and sets the crash point (undefined: no crash). */
  public arm(crashAt?: number): void {
    this.requests = 0;
    this.operations = [];
    this.crashAt = crashAt;
  }

  public async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Captures what a block writes to stdout and stderr (the handlers' logs). */
export async function captureOutput<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: unknown; output: string }> {
  const out: string[] = [];
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  const capture = (chunk: unknown) => {
    out.push(String(chunk));
    return true;
  };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  try {
    return { result: await fn(), output: out.join('') };
  } catch (error) {
    return { error, output: out.join('') };
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
  }
}
