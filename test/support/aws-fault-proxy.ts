/**
 * The one fault-injection layer for AWS calls in the providers' handler tests: an HTTP proxy in
 * front of the AWS API emulator (moto, or the Marketplace emulator in front of moto) that can
 * simulate a crash. Requests before the crash point pass; the request at the crash point reaches
 * the emulator (its write is committed) but its answer is lost; every later request is refused,
 * as if the process had died there.
 *
 * The crash point is a `CrashPlan` (examples/stripe-local.ts): the proxy's own (`arm(n)`), or one
 * shared with the Stripe proxy, so that a handler can be killed at any request it makes, to any
 * service (`{ plan }`).
 *
 * With `serialize`, it hands the emulator one request at a time. moto serves requests on threads
 * without a lock, so two concurrent conditional writes on one item can both pass their condition
 * there (seen: 10 concurrent webhook deliveries on a loaded machine, two claims won). DynamoDB
 * makes each conditional write atomic; one request at a time is the faithful model, and the
 * clients still send concurrently.
 */
import * as http from 'http';
import * as net from 'net';
import { CrashPlan } from '../../examples/stripe-local';

/** Options of `AwsFaultProxy`. */
export interface AwsFaultProxyOptions {
  /** Hand the emulator one request at a time. @default false */
  readonly serialize?: boolean;
  /** A crash plan shared with other proxies. @default - the proxy's own, set with `arm` */
  readonly plan?: CrashPlan;
}

export class AwsFaultProxy {
  /** The operations seen since the last `arm` (`PutItem`, `AWSMPMeteringService.BatchMeterUsage`), in order. */
  public operations: string[] = [];
  /** The crash plan this proxy follows. */
  public readonly plan: CrashPlan;
  private server?: http.Server;
  /** The request the emulator is serving (with `serialize`). */
  private serving: Promise<void> = Promise.resolve();

  constructor(private readonly target: string, private readonly opts: AwsFaultProxyOptions = {}) {
    this.plan = opts.plan ?? new CrashPlan();
  }

  /** Requests seen since the last `arm` (of every proxy sharing the plan). */
  public get requests(): number {
    return this.plan.requests;
  }

  /** Starts the proxy; returns its endpoint. */
  public async start(): Promise<string> {
    const target = new URL(this.target);
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const operation = String(req.headers['x-amz-target'] ?? req.method).replace(/^DynamoDB_\d+\./, '');
        this.operations.push(operation);
        const what = `AWS ${String(req.headers['x-amz-target'] ?? req.method)}`;
        const step = this.plan.next(what);
        if (step === 'dead') {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(JSON.stringify({ __type: 'InjectedCrash', message: `injected crash: request ${this.plan.requests} after the crash point` }));
          return;
        }
        const started = Date.now();
        const forward = () => new Promise<void>((done) => {
          const options = { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers };
          const upstream = http.request(options, (up) => {
            const body: Buffer[] = [];
            up.on('data', (c) => body.push(c));
            up.on('end', () => {
              done();
              if (step === 'crash') {
                req.socket.destroy(); // the write is committed; its answer is lost
                return;
              }
              this.plan.onAnswer?.(what, Date.now() - started);
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
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Resets the counters and sets the crash point (undefined: no crash). */
  public arm(crashAt?: number): void {
    this.operations = [];
    this.plan.arm(crashAt);
  }

  public async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
