/**
 * AWS Marketplace on this machine, for `npx projen demo:marketplace`, the tests and the bench.
 *
 * moto 5.2 implements only BatchMeterUsage with the old fields (`CustomerIdentifier`,
 * `ProductCode`), and neither ResolveCustomer nor the Entitlement Service. `MarketplaceEmulator`
 * is a small emulator written from the AWS SDK's service models (`marketplace-metering.json`,
 * `marketplace-entitlement-service.json` in aws-sdk-js-v3's `codegen/sdk-codegen/aws-models`):
 * the AWS JSON 1.1 protocol (`X-Amz-Target: AWSMPMeteringService.<Operation>` and
 * `AWSMPEntitlementService.GetEntitlements`, timestamps as epoch seconds, errors as `__type`), and
 * every rule it enforces cited to the AWS page it comes from. Any other request (DynamoDB,
 * EventBridge, ...) is forwarded unchanged to the AWS API emulator behind it (moto), so one
 * `AWS_ENDPOINT_URL` serves a handler's every call.
 *
 * Its clock is this process's `Date.now()` (which the local ingestor moves on to close windows).
 */
import { randomBytes, randomUUID } from 'crypto';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { createTable, resolveEnvironment, tableSchema } from './local-flow/tables';
import { MARKETPLACE_ENV } from '../src/providers/marketplace-billing/contract';

const ROOT = path.resolve(__dirname, '..');
const HOUR_MS = 3_600_000;

/** A buyer's subscription, as the emulator knows it. */
export interface EmulatedCustomer {
  readonly customerAWSAccountId: string;
  readonly licenseArn?: string;
  /** Products integrated before concurrent agreements: the customer identifier (and no license). */
  readonly customerIdentifier?: string;
  readonly productCode: string;
  /** Whether the agreement is active (usage is accepted). */
  active: boolean;
}

/** A usage record the emulator accepted (metered once). */
export interface MeteredRecord {
  readonly key: string;
  readonly licenseArn?: string;
  readonly customerAWSAccountId?: string;
  readonly customerIdentifier?: string;
  readonly dimension: string;
  /** Epoch ms of the record's timestamp. */
  readonly timestamp: number;
  readonly quantity: number;
  readonly meteringRecordId: string;
  /** Epoch ms when it was accepted. */
  readonly at: number;
}

/** A fault the emulator injects into the next matching call. */
export type MarketplaceFault =
  /** `ThrottlingException` (HTTP 400): the request is not processed. */
  | { readonly kind: 'throttle' }
  /** `InternalServiceErrorException` (HTTP 500): the request is not processed. */
  | { readonly kind: 'internal' }
  /** BatchMeterUsage: the first `count` records (all when unset) come back in `UnprocessedRecords`, not processed. */
  | { readonly kind: 'unprocessed'; readonly count?: number };

/** One entitlement (GetEntitlements). */
export interface EmulatedEntitlement {
  readonly productCode: string;
  readonly dimension: string;
  readonly customerAWSAccountId?: string;
  readonly customerIdentifier?: string;
  readonly licenseArn?: string;
  readonly value: { IntegerValue?: number; DoubleValue?: number; BooleanValue?: boolean; StringValue?: string };
  readonly expirationDate?: number;
}

interface TokenState {
  readonly customer: EmulatedCustomer;
  readonly expiresAt: number;
}

class ServiceError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
  }
}

/** Options of the emulator. */
export interface MarketplaceEmulatorOptions {
  /** The product's pricing dimensions (other dimensions get `InvalidUsageDimensionException`). */
  readonly dimensions: readonly string[];
  /**
   * How long after its timestamp a usage record is accepted. The BatchMeterUsage reference:
   * "Usage records aren't accepted 6 hours or more after an event"
   * (https://docs.aws.amazon.com/marketplace/latest/APIReference/API_marketplace-metering_BatchMeterUsage.html).
   * @default 6 hours
   */
  readonly acceptanceWindowMs?: number;
  /** How long a registration token resolves. @default 1 hour */
  readonly tokenLifetimeMs?: number;
}

/**
 * The AWS Marketplace Metering and Entitlement services, in front of another AWS API emulator.
 */
export class MarketplaceEmulator {
  /** Every buyer by license ARN or customer identifier. */
  public readonly customers = new Map<string, EmulatedCustomer>();
  /** Accepted usage records by dedup key (license or customer, dimension, hour). */
  public readonly metered = new Map<string, MeteredRecord>();
  /** Every call: operation, records sent (BatchMeterUsage), outcome. */
  public readonly calls: { operation: string; records: number; outcome: string; at: number }[] = [];
  public readonly entitlements: EmulatedEntitlement[] = [];
  /** Added to every Marketplace answer, ms (the bench's simulated latency). */
  public latencyMs = 0;
  private readonly tokens = new Map<string, TokenState>();
  private readonly faults: { operation: string; fault: MarketplaceFault }[] = [];
  private readonly acceptanceWindowMs: number;
  private readonly tokenLifetimeMs: number;
  private server?: http.Server;
  private accountSeq = 0;

  constructor(private readonly upstream: string, readonly productCode: string, private readonly options: MarketplaceEmulatorOptions) {
    this.acceptanceWindowMs = options.acceptanceWindowMs ?? 6 * HOUR_MS;
    this.tokenLifetimeMs = options.tokenLifetimeMs ?? HOUR_MS;
  }

  /** Starts listening; returns `http://127.0.0.1:<port>`. */
  public async start(): Promise<string> {
    const target = new URL(this.upstream);
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const amzTarget = String(req.headers['x-amz-target'] ?? '');
        if (amzTarget.startsWith('AWSMPMeteringService.') || amzTarget.startsWith('AWSMPEntitlementService.')) {
          void this.answer(amzTarget.split('.')[1], body, res);
          return;
        }
        const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 500, up.headers);
          up.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        upstream.end(body);
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

  /** A new buyer subscribed to the product (concurrent agreements: an account and a license). */
  public subscribe(opts: { accountId?: string; licenseArn?: string; legacy?: boolean } = {}): EmulatedCustomer {
    const accountId = opts.accountId ?? String(100000000000 + ++this.accountSeq);
    const customer: EmulatedCustomer = opts.legacy
      ? { customerAWSAccountId: accountId, customerIdentifier: `cust-${randomBytes(6).toString('hex')}`, productCode: this.productCode, active: true }
      : {
        customerAWSAccountId: accountId,
        licenseArn: opts.licenseArn ?? `arn:aws:license-manager::${accountId}:license:l-${randomBytes(8).toString('hex')}`,
        productCode: this.productCode,
        active: true,
      };
    this.customers.set(customer.licenseArn ?? customer.customerIdentifier!, customer);
    return customer;
  }

  /** The agreement ended: usage is no longer accepted (`CustomerNotSubscribed`). */
  public unsubscribe(customer: EmulatedCustomer): void {
    customer.active = false;
  }

  /** The registration token Marketplace posts with the buyer's browser (valid `tokenLifetimeMs`). */
  public issueToken(customer: EmulatedCustomer, lifetimeMs = this.tokenLifetimeMs): string {
    const token = randomBytes(48).toString('base64url');
    this.tokens.set(token, { customer, expiresAt: Date.now() + lifetimeMs });
    return token;
  }

  /** Injects faults into the next calls of `operation`, one per call, in order. */
  public inject(operation: 'BatchMeterUsage' | 'ResolveCustomer' | 'GetEntitlements', ...faults: MarketplaceFault[]): void {
    for (const fault of faults) this.faults.push({ operation, fault });
  }

  /** Forgets the faults not injected yet. */
  public clearFaults(): void {
    this.faults.length = 0;
  }

  /** The records metered for a license (or customer identifier). */
  public recordsOf(subscriber: string): MeteredRecord[] {
    return [...this.metered.values()].filter((r) => (r.licenseArn ?? r.customerIdentifier) === subscriber).sort((a, b) => a.timestamp - b.timestamp);
  }

  private nextFault(operation: string): MarketplaceFault | undefined {
    const i = this.faults.findIndex((f) => f.operation === operation);
    return i < 0 ? undefined : this.faults.splice(i, 1)[0].fault;
  }

  private async answer(operation: string, body: Buffer, res: http.ServerResponse): Promise<void> {
    let input: Record<string, any>;
    try {
      input = JSON.parse(body.toString('utf8') || '{}');
    } catch {
      return this.send(res, 400, { __type: 'SerializationException', message: 'body is not JSON' });
    }
    if (this.latencyMs) await new Promise((r) => setTimeout(r, this.latencyMs));
    const records = Array.isArray(input.UsageRecords) ? input.UsageRecords.length : 0;
    try {
      const fault = this.nextFault(operation);
      if (fault?.kind === 'throttle') throw new ServiceError('ThrottlingException', 'Rate exceeded (injected)');
      if (fault?.kind === 'internal') throw new ServiceError('InternalServiceErrorException', 'internal error (injected)', 500);
      let out: unknown;
      if (operation === 'ResolveCustomer') out = this.resolveCustomer(input);
      else if (operation === 'BatchMeterUsage') out = this.batchMeterUsage(input, fault?.kind === 'unprocessed' ? fault.count ?? records : 0);
      else if (operation === 'GetEntitlements') out = this.getEntitlements(input);
      else throw new ServiceError('UnknownOperationException', `${operation} is not emulated`);
      this.calls.push({ operation, records, outcome: 'ok', at: Date.now() });
      this.send(res, 200, out);
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error;
      this.calls.push({ operation, records, outcome: error.type, at: Date.now() });
      this.send(res, error.status, { __type: error.type, message: error.message });
    }
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': String(Buffer.byteLength(text)), 'x-amzn-requestid': randomUUID() });
    res.end(text);
  }

  /**
   * ResolveCustomer (https://docs.aws.amazon.com/marketplace/latest/APIReference/API_marketplace-metering_ResolveCustomer.html):
   * `RegistrationToken` is required and non-empty (service model: `NonEmptyString`); an unknown token
   * is `InvalidTokenException`; a token held too long is `ExpiredTokenException` ("This can happen if
   * the buyer's browser takes too long to redirect to your page ... or your application has held on
   * to the registration token for too long", the service model). For new SaaS products the answer has
   * `CustomerAWSAccountId`, `LicenseArn` and `ProductCode`, and no `CustomerIdentifier` ("For new SaaS
   * product integrations, the CustomerIdentifier field is not populated").
   */
  private resolveCustomer(input: Record<string, any>): unknown {
    const token = input.RegistrationToken;
    if (typeof token !== 'string' || token.length === 0) throw new ServiceError('ValidationException', 'RegistrationToken is required');
    const state = this.tokens.get(token);
    if (!state) throw new ServiceError('InvalidTokenException', 'Registration token is invalid');
    if (Date.now() >= state.expiresAt) throw new ServiceError('ExpiredTokenException', 'The submitted registration token has expired');
    const c = state.customer;
    return {
      CustomerAWSAccountId: c.customerAWSAccountId,
      ProductCode: c.productCode,
      ...(c.licenseArn ? { LicenseArn: c.licenseArn } : {}),
      ...(c.customerIdentifier ? { CustomerIdentifier: c.customerIdentifier } : {}),
    };
  }

  /**
   * BatchMeterUsage (https://docs.aws.amazon.com/marketplace/latest/APIReference/API_marketplace-metering_BatchMeterUsage.html
   * and the service model's `UsageRecord`, `UsageRecordResult`, errors):
   * - at most 25 records ("BatchMeterUsage can process up to 25 UsageRecords at a time"; `UsageRecordList` max 25);
   * - each record: `Timestamp` and `Dimension` (1 to 255 characters) required; `Quantity` an integer
   *   from 0 to 2147483647 (`UsageQuantity`); `CustomerIdentifier` and `CustomerAWSAccountId` mutually
   *   exclusive ("You can't specify both CustomerIdentifier and CustomerAWSAccountID in the same request");
   *   `CustomerAWSAccountId` digits only (`^[0-9]+$`);
   * - a dimension the product does not have fails the request (`InvalidUsageDimensionException`);
   *   a license that does not match its customer fails it (`InvalidLicenseException`: "Ensure the
   *   LicenseArn is valid, matches the customer"); a `ProductCode` of another product fails it
   *   (`InvalidProductCodeException`); a customer identifier without a product code or unknown
   *   (`InvalidCustomerIdentifierException`);
   * - a record timestamped `acceptanceWindowMs` or more before now ("Usage records aren't accepted 6
   *   hours or more after an event"), or after 06:00 UTC on the first day of the month after its
   *   month, or in the future, fails the whole batch ("if any of the records are outside of the
   *   allowed range, the entire batch is not processed", `TimestampOutOfBoundsException`);
   * - per record (`UsageRecordResult.Status`): a customer without an active agreement is
   *   `CustomerNotSubscribed`; a record for a customer, dimension and hour already metered with the
   *   same quantity is `Success` with the first `MeteringRecordId` ("Identical requests are
   *   idempotent and can be retried with the same records"); with another quantity `DuplicateRecord`
   *   ("A previously metered UsageRecord had the same customer, dimension, and time, but a different
   *   quantity"); else `Success`.
   * - `unprocessed` records (an injected fault) come back in `UnprocessedRecords`, not processed
   *   ("a list of UnprocessedRecords, which indicate errors on the service side that should be retried").
   */
  private batchMeterUsage(input: Record<string, any>, unprocessed: number): unknown {
    const list = input.UsageRecords;
    if (!Array.isArray(list)) throw new ServiceError('ValidationException', 'UsageRecords is required');
    if (list.length > 25) throw new ServiceError('ValidationException', `1 validation error detected: Value at 'usageRecords' failed to satisfy constraint: Member must have length less than or equal to 25 (given ${list.length})`);
    if (input.ProductCode && input.ProductCode !== this.productCode) throw new ServiceError('InvalidProductCodeException', 'The product code passed does not match the product code used for publishing the product');
    const now = Date.now();
    for (const r of list) {
      if (typeof r.Timestamp !== 'number' || typeof r.Dimension !== 'string' || r.Dimension.length < 1 || r.Dimension.length > 255) {
        throw new ServiceError('ValidationException', 'UsageRecord needs a Timestamp and a Dimension of 1 to 255 characters');
      }
      const q = r.Quantity ?? 0;
      if (!Number.isInteger(q) || q < 0 || q > 2147483647) throw new ServiceError('ValidationException', `Quantity ${q} must be an integer from 0 to 2147483647`);
      if (r.CustomerIdentifier && r.CustomerAWSAccountId) throw new ServiceError('ValidationException', 'CustomerIdentifier and CustomerAWSAccountId are mutually exclusive');
      if (r.CustomerAWSAccountId !== undefined && !/^[0-9]+$/.test(r.CustomerAWSAccountId)) throw new ServiceError('ValidationException', 'CustomerAWSAccountId must be digits');
      if (!this.options.dimensions.includes(r.Dimension)) throw new ServiceError('InvalidUsageDimensionException', `The usage dimension ${r.Dimension} does not match one of the product's dimensions`);
      if (r.LicenseArn) {
        const c = this.customers.get(r.LicenseArn);
        if (!c || c.customerAWSAccountId !== r.CustomerAWSAccountId) throw new ServiceError('InvalidLicenseException', 'Ensure the LicenseArn is valid, matches the customer, and usage is within the license activation period');
      } else if (r.CustomerIdentifier) {
        if (!input.ProductCode) throw new ServiceError('InvalidProductCodeException', 'ProductCode is required with CustomerIdentifier');
        if (!this.customers.has(r.CustomerIdentifier)) throw new ServiceError('InvalidCustomerIdentifierException', 'You have metered usage for a CustomerIdentifier that does not exist');
      } else {
        throw new ServiceError('InvalidCustomerIdentifierException', 'A usage record needs CustomerAWSAccountId and LicenseArn (or CustomerIdentifier)');
      }
      const ts = r.Timestamp * 1000;
      const d = new Date(ts);
      const monthCutoff = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1, 6);
      if (now - ts >= this.acceptanceWindowMs || now >= monthCutoff || ts > now + 5 * 60_000) {
        throw new ServiceError('TimestampOutOfBoundsException', `The timestamp ${d.toISOString()} is out of the allowed range`);
      }
    }
    const results: unknown[] = [];
    const left: unknown[] = [];
    list.forEach((r: Record<string, any>, i: number) => {
      if (i < unprocessed) {
        left.push(r);
        return;
      }
      const subscriber = r.LicenseArn ?? r.CustomerIdentifier;
      const c = this.customers.get(subscriber)!;
      const hour = Math.floor((r.Timestamp * 1000) / HOUR_MS) * HOUR_MS;
      const key = JSON.stringify([subscriber, r.Dimension, hour]);
      const quantity = r.Quantity ?? 0;
      if (!c.active) {
        results.push({ UsageRecord: r, Status: 'CustomerNotSubscribed' });
        return;
      }
      const seen = this.metered.get(key);
      if (seen) {
        results.push(seen.quantity === quantity
          ? { UsageRecord: r, MeteringRecordId: seen.meteringRecordId, Status: 'Success' }
          : { UsageRecord: r, Status: 'DuplicateRecord' });
        return;
      }
      const record: MeteredRecord = {
        key,
        licenseArn: r.LicenseArn,
        customerAWSAccountId: r.CustomerAWSAccountId,
        customerIdentifier: r.CustomerIdentifier,
        dimension: r.Dimension,
        timestamp: r.Timestamp * 1000,
        quantity,
        meteringRecordId: randomUUID(),
        at: now,
      };
      this.metered.set(key, record);
      results.push({ UsageRecord: r, MeteringRecordId: record.meteringRecordId, Status: 'Success' });
    });
    return { Results: results, UnprocessedRecords: left };
  }

  /**
   * GetEntitlements (https://docs.aws.amazon.com/marketplace/latest/APIReference/API_marketplace-entitlement_GetEntitlements.html
   * and the service model): `ProductCode` required (another product's: `InvalidParameterException`);
   * `Filter` keys `CUSTOMER_IDENTIFIER`, `CUSTOMER_AWS_ACCOUNT_ID`, `DIMENSION`, "unioned for each value
   * in the value list, and then intersected for each filter key", the two customer keys mutually
   * exclusive; `MaxResults` 1 to 25 (`PageSizeInteger`), paginated with `NextToken`.
   */
  private getEntitlements(input: Record<string, any>): unknown {
    if (input.ProductCode !== this.productCode) throw new ServiceError('InvalidParameterException', 'ProductCode is required and must be your product\'s');
    const filter = (input.Filter ?? {}) as Record<string, string[]>;
    if (filter.CUSTOMER_IDENTIFIER && filter.CUSTOMER_AWS_ACCOUNT_ID) throw new ServiceError('InvalidParameterException', 'CUSTOMER_IDENTIFIER and CUSTOMER_AWS_ACCOUNT_ID are mutually exclusive');
    const max = input.MaxResults ?? 25;
    if (!Number.isInteger(max) || max < 1 || max > 25) throw new ServiceError('InvalidParameterException', 'MaxResults must be from 1 to 25');
    const fields: Record<string, keyof EmulatedEntitlement> = { CUSTOMER_IDENTIFIER: 'customerIdentifier', CUSTOMER_AWS_ACCOUNT_ID: 'customerAWSAccountId', DIMENSION: 'dimension' };
    for (const key of Object.keys(filter)) if (!fields[key]) throw new ServiceError('InvalidParameterException', `Unknown filter ${key}`);
    const matching = this.entitlements.filter((e) => e.productCode === this.productCode
      && Object.entries(filter).every(([k, values]) => values.includes(String(e[fields[k]]))));
    const start = input.NextToken ? Number(Buffer.from(input.NextToken, 'base64url').toString('utf8')) : 0;
    const page = matching.slice(start, start + max);
    const next = start + max < matching.length ? Buffer.from(String(start + max)).toString('base64url') : undefined;
    return {
      Entitlements: page.map((e) => ({
        ProductCode: e.productCode,
        Dimension: e.dimension,
        Value: e.value,
        ...(e.customerAWSAccountId ? { CustomerAWSAccountId: e.customerAWSAccountId } : {}),
        ...(e.customerIdentifier ? { CustomerIdentifier: e.customerIdentifier } : {}),
        ...(e.licenseArn ? { LicenseArn: e.licenseArn } : {}),
        ...(e.expirationDate ? { ExpirationDate: e.expirationDate / 1000 } : {}),
      })),
      ...(next ? { NextToken: next } : {}),
    };
  }
}

/** The bundled handler of one MarketplaceBilling function (`npx projen bundle` builds it). */
export function marketplaceHandlerModule<T = Record<string, unknown>>(name: 'registration' | 'create-customer' | 'delete-customer' | 'lifecycle' | 'put-usage' | 'entitlements'): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(ROOT, 'assets', 'providers', 'marketplace-billing', `${name}.lambda`, 'index.js')) as T;
}

/** The functions of a MarketplaceBilling, by their construct ids. */
export type MarketplaceFunction = 'Registration' | 'CreateCustomer' | 'DeleteCustomer' | 'Lifecycle' | 'PutUsage' | 'Entitlements';

/**
 * A synthesized MarketplaceBilling brought to this machine: its tables (from the template's own
 * schemas) in the emulator, and the environment the construct gives each function.
 */
export class LocalMarketplaceBilling {
  public readonly names: { registrations: string; metering: string };
  private readonly functions: Record<string, { Properties: { Environment?: { Variables?: Record<string, unknown> } } }>;
  private readonly refs: Record<string, string> = {};

  /** The handlers' log level, fixed at the first `use`. */
  private logLevel?: string;

  constructor(private readonly stack: Stack, suffix: string, private readonly constructId = 'Marketplace') {
    this.names = { registrations: `mp-registrations-${suffix}`, metering: `mp-metering-${suffix}` };
    this.functions = Template.fromStack(stack).findResources('AWS::Lambda::Function') as typeof this.functions;
  }

  /** Creates the two tables. */
  public async create(): Promise<void> {
    await createTable(tableSchema(this.stack, `${this.constructId}RegistrationsTable`, this.names.registrations));
    await createTable(tableSchema(this.stack, `${this.constructId}MeteringTable`, this.names.metering));
    this.addRef(`${this.constructId}RegistrationsTable`, this.names.registrations);
    this.addRef(`${this.constructId}MeteringTable`, this.names.metering);
  }

  /** Creates one more metering table with the synthesized schema (a fresh cursor, markers and carries). */
  public async createMeteringTable(name: string): Promise<void> {
    await createTable(tableSchema(this.stack, `${this.constructId}MeteringTable`, name));
  }

  /** Resolves references to a resource (logical id prefix) of the template to `value`. */
  public addRef(logicalIdPrefix: string, value: string): void {
    const id = Object.keys(Template.fromStack(this.stack).toJSON().Resources).find((k) => k.startsWith(logicalIdPrefix));
    if (!id) throw new Error(`no resource ${logicalIdPrefix}* in the template`);
    this.refs[id] = value;
  }

  /** Sets this process's environment to what the construct gives function `<constructId><fn>`. */
  public use(fn: MarketplaceFunction, overrides: Record<string, string> = {}): void {
    const prefix = `${this.constructId}${fn}`;
    const entry = Object.entries(this.functions).find(([id]) => id.startsWith(prefix) && !id.includes('Logs') && !id.includes('Role'));
    if (!entry) throw new Error(`no function ${prefix}* in the template`);
    for (const key of Object.values(MARKETPLACE_ENV)) delete process.env[key];
    // The caller's log level, else WARN (the function's own INFO would print every run's summary here).
    this.logLevel ??= process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN';
    Object.assign(process.env, resolveEnvironment(entry[1].Properties?.Environment?.Variables ?? {}, this.refs),
      { POWERTOOLS_LOG_LEVEL: this.logLevel }, overrides);
  }
}

/** A buyer's browser posting the token to the fulfillment URL (HTTP API payload 2.0). */
export function fulfillmentRequest(token: string | undefined, routePath = '/billing/marketplace') {
  const body = token === undefined ? '' : new URLSearchParams({ 'x-amzn-marketplace-token': token }).toString();
  return {
    version: '2.0',
    routeKey: `POST ${routePath}`,
    rawPath: routePath,
    rawQueryString: '',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    requestContext: { requestId: randomUUID(), http: { method: 'POST', path: routePath } },
    body: Buffer.from(body).toString('base64'),
    isBase64Encoded: true,
  };
}

let eventSeq = 0;

/**
 * An AWS Marketplace SaaS event as EventBridge delivers it to the lifecycle function (source
 * `aws.agreement-marketplace`, the fields of https://docs.aws.amazon.com/marketplace/latest/userguide/saas-eventbridge-integration.html).
 */
export function marketplaceEvent(detailType: string, detail: {
  agreementId: string; accountId: string; productCode: string; licenseArn?: string; status?: string; intent?: string;
}, time = new Date(Date.now()), id?: string) {
  return {
    'version': '0',
    'id': id ?? `mp-${String(++eventSeq).padStart(6, '0')}-${randomBytes(4).toString('hex')}`,
    'detail-type': detailType,
    'source': 'aws.agreement-marketplace',
    'account': '123456789012',
    'time': time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'region': 'us-east-1',
    'resources': [`arn:aws:aws-marketplace::123456789012:AWSMarketplace/Agreement/${detail.agreementId}`],
    'detail': {
      requestId: randomUUID(),
      catalog: 'AWSMarketplace',
      agreement: { id: detail.agreementId, ...(detail.status ? { status: detail.status } : {}), ...(detail.intent ? { intent: detail.intent } : {}) },
      acceptor: { accountId: detail.accountId },
      proposer: { accountId: '123456789012' },
      product: { code: detail.productCode },
      ...(detail.licenseArn ? { license: { arn: detail.licenseArn } } : {}),
    },
  };
}
