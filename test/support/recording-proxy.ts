/**
 * An HTTP proxy in front of an AWS API emulator (moto) that records every
 * request the AWS SDK sends through it, computes what DynamoDB would bill for
 * each DynamoDB request, and can inject faults.
 *
 * Point the SDK at it with `AWS_ENDPOINT_URL=<proxy.endpoint>` (done by
 * `startRecordingProxy`). Every request is forwarded unchanged; the DynamoDB
 * ones (JSON protocol, `X-Amz-Target: DynamoDB_20120810.<Operation>`) are
 * parsed and billed, EventBridge `PutEvents` requests are counted.
 *
 * Billing, as DynamoDB documents it for on-demand tables:
 * - write request units (WRU): 1 per started KB of the item written, for
 *   PutItem, UpdateItem, DeleteItem and each item of BatchWriteItem (the larger
 *   of the item before and after the write); 2 per started KB per item of
 *   TransactWriteItems; plus, per global secondary index whose index item the
 *   write creates, changes or deletes, 1 per started KB of the index item (2 when
 *   the write changes the index key: a delete and a put). A write whose
 *   condition fails is billed as if it had been written, without index writes.
 * - read request units (RRU): GetItem and each item of BatchGetItem 1 per started
 *   4 KB (half for eventually consistent reads); Query and Scan 1 per started
 *   4 KB of all items read by the request (half when eventually consistent).
 *
 * Item sizes follow DynamoDB's rules: attribute names and string values in
 * UTF-8 bytes, numbers 1 byte per two significant digits plus 1, lists and maps
 * 3 bytes plus 1 per element. To know the item before a write, the proxy keeps a
 * shadow copy of every item written through it (and reads an item from the
 * emulator after an UpdateItem).
 *
 * `sink: true` runs without an emulator: DynamoDB BatchWriteItem and PutItem
 * succeed (nothing stored), which lets a benchmark count writes per partition
 * key at a rate no emulator could serve.
 */
import * as http from 'http';
import { AddressInfo } from 'net';

/** A DynamoDB attribute value in the JSON protocol. */
export type AttributeValue = Record<string, any>;
/** A DynamoDB item in the JSON protocol. */
export type Item = Record<string, AttributeValue>;

/** One request that went through the proxy. */
export interface RecordedRequest {
  /** `dynamodb`, `events`, or the service named by the request's target header. */
  readonly service: string;
  /** The API operation, e.g. `BatchWriteItem`. */
  readonly operation: string;
  /** The parsed JSON request body (DynamoDB and EventBridge only). */
  readonly body: any;
  /** HTTP status answered to the client (0 when the connection was cut). */
  readonly status: number;
  /** Write request units DynamoDB bills for this request. */
  readonly wru: number;
  /** Read request units DynamoDB bills for this request. */
  readonly rru: number;
  /** Write request units per `<table>|<partition key value>` (table only, not indexes). */
  readonly writesByPartitionKey: ReadonlyMap<string, number>;
  /** Write request units per `<table>/<index>|<index partition key value>`. */
  readonly indexWritesByPartitionKey: ReadonlyMap<string, number>;
  /** The label set with `proxy.label` when the request arrived (e.g. a simulated second). */
  readonly label?: string;
  /** When the request arrived (epoch ms, real clock). */
  readonly at: number;
}

/** What the proxy does instead of forwarding a request. */
export type Fault =
  /** Answer with this DynamoDB error without forwarding (e.g. 500 InternalServerError, 400 ProvisionedThroughputExceededException). */
  | { readonly kind: 'error'; readonly status: number; readonly type: string; readonly message?: string }
  /** Forward after this many milliseconds. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Forward (the write happens), then cut the connection instead of answering. */
  | { readonly kind: 'cutAfterForward' }
  /** Cut the connection without forwarding (the write never happens). */
  | { readonly kind: 'cutBeforeForward' }
  /** BatchWriteItem only: answer that every item is unprocessed, without forwarding. */
  | { readonly kind: 'unprocessed' };

/** What a hook sees of a request before it is forwarded. */
export interface PendingRequest {
  readonly service: string;
  readonly operation: string;
  readonly body: any;
}

/** Decides, per request, whether to inject a fault (or runs side effects, e.g. advancing a test clock). */
export type Hook = (request: PendingRequest) => Fault | undefined | Promise<Fault | undefined>;

/** Sums over recorded requests. */
export interface Totals {
  readonly requests: number;
  readonly wru: number;
  readonly rru: number;
  readonly byOperation: Record<string, { requests: number; wru: number; rru: number }>;
}

/** A running proxy. */
export interface RecordingProxy {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Every request so far (cleared by `clear()`). */
  readonly requests: RecordedRequest[];
  /** A label stored with each following request (e.g. a simulated second), or undefined. */
  label: string | undefined;
  /** Sets the hook (replaces any previous one); undefined removes it. */
  setHook(hook: Hook | undefined): void;
  /** Sums of the recorded requests, optionally of one service or a filter. */
  totals(filter?: (r: RecordedRequest) => boolean): Totals;
  /** Forgets the recorded requests (not the shadow items). */
  clear(): void;
  /** The shadow copy of an item, as the proxy knows it (for tests of the proxy itself). */
  shadowItem(table: string, key: Item): Item | undefined;
  stop(): Promise<void>;
}

/** Options of `startRecordingProxy`. */
export interface RecordingProxyOptions {
  /** Point `AWS_ENDPOINT_URL` of this process at the proxy. @default true */
  readonly setEnvironment?: boolean;
  /** No emulator: DynamoDB BatchWriteItem and PutItem succeed without storing anything. @default false */
  readonly sink?: boolean;
}

// ---- DynamoDB item sizes ----

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

function numberSize(text: string): number {
  const digits = text.replace(/^[-+]/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

/** Size in bytes of one attribute value, by DynamoDB's rules. */
export function valueSize(v: AttributeValue): number {
  if (v.S !== undefined) return utf8(v.S);
  if (v.N !== undefined) return numberSize(v.N);
  if (v.B !== undefined) return Buffer.from(v.B, 'base64').length;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.SS !== undefined) return (v.SS as string[]).reduce((n, s) => n + utf8(s), 0);
  if (v.NS !== undefined) return (v.NS as string[]).reduce((n, s) => n + numberSize(s), 0);
  if (v.BS !== undefined) return (v.BS as string[]).reduce((n, s) => n + Buffer.from(s, 'base64').length, 0);
  if (v.L !== undefined) return 3 + (v.L as AttributeValue[]).reduce((n, e) => n + 1 + valueSize(e), 0);
  if (v.M !== undefined) return 3 + Object.entries(v.M as Item).reduce((n, [k, e]) => n + 1 + utf8(k) + valueSize(e), 0);
  throw new Error(`Unknown attribute value ${JSON.stringify(v)}`);
}

/** Size in bytes of an item, by DynamoDB's rules. */
export function itemSize(item: Item): number {
  return Object.entries(item).reduce((n, [name, v]) => n + utf8(name) + valueSize(v), 0);
}

const kb = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
const readUnits = (bytes: number, consistent: boolean) => Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);

// ---- table descriptions and shadow items ----

interface IndexSpec {
  readonly name: string;
  readonly hash: string;
  readonly range?: string;
  readonly projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  readonly include: string[];
}

interface TableSpec {
  readonly hash: string;
  readonly range?: string;
  readonly indexes: IndexSpec[];
}

function keyOf(spec: TableSpec, item: Item): string {
  return JSON.stringify([item[spec.hash], spec.range ? item[spec.range] : null]);
}

function indexItem(spec: TableSpec, index: IndexSpec, item: Item | undefined): Item | undefined {
  if (!item || item[index.hash] === undefined || (index.range && item[index.range] === undefined)) return undefined;
  const keys = new Set([spec.hash, spec.range, index.hash, index.range].filter((k): k is string => !!k));
  if (index.projection === 'ALL') return item;
  const out: Item = {};
  for (const [k, v] of Object.entries(item)) {
    if (keys.has(k) || (index.projection === 'INCLUDE' && index.include.includes(k))) out[k] = v;
  }
  return out;
}

function pkText(v: AttributeValue | undefined): string {
  if (!v) return '';
  return v.S ?? v.N ?? v.B ?? JSON.stringify(v);
}

/** Forwards one request to the emulator. */
interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

function forward(target: URL, req: { method: string; url: string; headers: http.IncomingHttpHeaders }, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: target.host };
    const out = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    out.on('error', reject);
    out.end(body);
  });
}

async function dynamodbCall(target: URL, operation: string, body: unknown): Promise<any> {
  const res = await forward(target, {
    method: 'POST',
    url: '/',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${operation}`,
      'authorization': 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
    },
  }, Buffer.from(JSON.stringify(body)));
  const parsed = JSON.parse(res.body.toString('utf8') || '{}');
  if (res.status !== 200) throw new Error(`${operation} on the emulator failed: ${res.status} ${res.body.toString('utf8')}`);
  return parsed;
}

/**
 * Starts the proxy in front of `target` (the emulator's endpoint; ignored with `sink`).
 */
export async function startRecordingProxy(target: string, options: RecordingProxyOptions = {}): Promise<RecordingProxy> {
  const targetUrl = new URL(target);
  const specs = new Map<string, TableSpec>();
  const shadow = new Map<string, Map<string, Item>>();
  const requests: RecordedRequest[] = [];
  let hook: Hook | undefined;
  let label: string | undefined;

  const specOf = async (table: string): Promise<TableSpec> => {
    let spec = specs.get(table);
    if (spec) return spec;
    if (options.sink) {
      spec = { hash: 'pk', range: 'sk', indexes: [] };
    } else {
      const d = (await dynamodbCall(targetUrl, 'DescribeTable', { TableName: table })).Table;
      const keyName = (schema: any[], type: string) => schema.find((k) => k.KeyType === type)?.AttributeName as string | undefined;
      spec = {
        hash: keyName(d.KeySchema, 'HASH')!,
        range: keyName(d.KeySchema, 'RANGE'),
        indexes: (d.GlobalSecondaryIndexes ?? []).map((g: any) => ({
          name: g.IndexName,
          hash: keyName(g.KeySchema, 'HASH')!,
          range: keyName(g.KeySchema, 'RANGE'),
          projection: g.Projection?.ProjectionType ?? 'ALL',
          include: g.Projection?.NonKeyAttributes ?? [],
        })),
      };
    }
    specs.set(table, spec);
    return spec;
  };
  const itemsOf = (table: string) => {
    let m = shadow.get(table);
    if (!m) shadow.set(table, (m = new Map()));
    return m;
  };

  /** Bills one item write; updates the shadow when `applied`. */
  const billWrite = async (
    table: string, key: Item, after: Item | undefined, applied: boolean, factor: number,
    byPk: Map<string, number>, byIndexPk: Map<string, number>,
  ): Promise<number> => {
    const spec = await specOf(table);
    const items = itemsOf(table);
    const k = keyOf(spec, key);
    const before = items.get(k);
    let units = factor * kb(Math.max(before ? itemSize(before) : 0, after ? itemSize(after) : 0));
    const pk = `${table}|${pkText(key[spec.hash])}`;
    byPk.set(pk, (byPk.get(pk) ?? 0) + units);
    if (applied) {
      for (const index of spec.indexes) {
        const b = indexItem(spec, index, before);
        const a = indexItem(spec, index, after);
        if (!b && !a) continue;
        if (b && a && JSON.stringify(b) === JSON.stringify(a)) continue;
        const keyChanged = b && a && (JSON.stringify(b[index.hash]) !== JSON.stringify(a[index.hash])
          || (index.range && JSON.stringify(b[index.range]) !== JSON.stringify(a[index.range])));
        let indexUnits = 0;
        if (keyChanged) indexUnits = factor * (kb(itemSize(b!)) + kb(itemSize(a!)));
        else indexUnits = factor * kb(itemSize((a ?? b)!));
        units += indexUnits;
        const ipk = `${table}/${index.name}|${pkText((a ?? b)![index.hash])}`;
        byIndexPk.set(ipk, (byIndexPk.get(ipk) ?? 0) + indexUnits);
      }
      if (after) items.set(k, after);
      else items.delete(k);
    }
    return units;
  };

  const fullItem = async (table: string, key: Item): Promise<Item | undefined> => {
    const spec = await specOf(table);
    return itemsOf(table).get(keyOf(spec, key));
  };

  const afterUpdate = async (table: string, key: Item): Promise<Item | undefined> => {
    if (options.sink) return undefined;
    return (await dynamodbCall(targetUrl, 'GetItem', { TableName: table, Key: key, ConsistentRead: true })).Item;
  };

  /** Computes the units of a DynamoDB request from its request and response. */
  const bill = async (operation: string, body: any, status: number, response: any) => {
    const byPk = new Map<string, number>();
    const byIndexPk = new Map<string, number>();
    let wru = 0;
    let rru = 0;
    const ok = status === 200;
    const conditionFailed = status === 400 && /ConditionalCheckFailed/.test(String(response?.__type ?? ''));
    const keyFromItem = async (table: string, item: Item) => {
      const spec = await specOf(table);
      const key: Item = { [spec.hash]: item[spec.hash] };
      if (spec.range) key[spec.range] = item[spec.range];
      return key;
    };
    const write = (table: string, key: Item, after: Item | undefined, applied: boolean, factor = 1) =>
      billWrite(table, key, after, applied, factor, byPk, byIndexPk);
    switch (operation) {
      case 'PutItem':
        if (ok || conditionFailed) {
          const key = await keyFromItem(body.TableName, body.Item);
          wru += await write(body.TableName, key, ok ? body.Item : await fullItem(body.TableName, key), ok);
        }
        break;
      case 'UpdateItem':
        if (ok) wru += await write(body.TableName, body.Key, await afterUpdate(body.TableName, body.Key), true);
        else if (conditionFailed) wru += await write(body.TableName, body.Key, await fullItem(body.TableName, body.Key), false);
        break;
      case 'DeleteItem':
        if (ok || conditionFailed) wru += await write(body.TableName, body.Key, undefined, ok);
        break;
      case 'BatchWriteItem':
        if (ok) {
          const unprocessed = new Set<string>();
          for (const [table, list] of Object.entries(response?.UnprocessedItems ?? {})) {
            for (const r of list as any[]) unprocessed.add(`${table}|${JSON.stringify(r)}`);
          }
          for (const [table, list] of Object.entries(body.RequestItems ?? {})) {
            for (const r of list as any[]) {
              if (unprocessed.has(`${table}|${JSON.stringify(r)}`)) continue;
              if (r.PutRequest) wru += await write(table, await keyFromItem(table, r.PutRequest.Item), r.PutRequest.Item, true);
              else if (r.DeleteRequest) wru += await write(table, r.DeleteRequest.Key, undefined, true);
            }
          }
        }
        break;
      case 'TransactWriteItems': {
        const cancelled = status === 400 && /TransactionCanceled/.test(String(response?.__type ?? ''));
        if (ok || cancelled) {
          for (const t of body.TransactItems ?? []) {
            if (t.Put) {
              wru += await write(t.Put.TableName, await keyFromItem(t.Put.TableName, t.Put.Item), t.Put.Item, ok, 2);
            } else if (t.Update) {
              const after = ok ? await afterUpdate(t.Update.TableName, t.Update.Key) : await fullItem(t.Update.TableName, t.Update.Key);
              wru += await write(t.Update.TableName, t.Update.Key, after, ok, 2);
            } else if (t.Delete) {
              wru += await write(t.Delete.TableName, t.Delete.Key, undefined, ok, 2);
            } else if (t.ConditionCheck) {
              wru += 2;
            }
          }
        }
        break;
      }
      case 'GetItem':
        if (ok) rru += readUnits(response?.Item ? itemSize((await fullItem(body.TableName, body.Key)) ?? response.Item) : 0, !!body.ConsistentRead);
        break;
      case 'BatchGetItem':
        if (ok) {
          for (const [table, items] of Object.entries(response?.Responses ?? {})) {
            const consistent = !!body.RequestItems?.[table]?.ConsistentRead;
            for (const it of items as Item[]) {
              const full = await fullItem(table, await keyFromItem(table, it));
              rru += readUnits(itemSize(full ?? it), consistent);
            }
          }
        }
        break;
      case 'Query':
      case 'Scan':
        if (ok) {
          let bytes = 0;
          for (const it of (response?.Items ?? []) as Item[]) {
            const full = body.IndexName ? undefined : await fullItem(body.TableName, await keyFromItem(body.TableName, it));
            bytes += itemSize(full ?? it);
          }
          rru += readUnits(bytes, !!body.ConsistentRead);
        }
        break;
      default:
        break;
    }
    return { wru, rru, byPk, byIndexPk };
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks);
        const targetHeader = String(req.headers['x-amz-target'] ?? '');
        const [prefix, operation = ''] = targetHeader.split('.');
        const service = prefix.startsWith('DynamoDB') ? 'dynamodb' : prefix === 'AWSEvents' ? 'events' : (prefix || 'other');
        const parsedBody = service === 'dynamodb' || service === 'events' ? JSON.parse(raw.toString('utf8') || '{}') : undefined;
        const at = Date.now();
        const requestLabel = label;
        const record = (status: number, units = { wru: 0, rru: 0, byPk: new Map<string, number>(), byIndexPk: new Map<string, number>() }) => {
          requests.push({
            service,
            operation,
            body: parsedBody,
            status,
            wru: units.wru,
            rru: units.rru,
            writesByPartitionKey: units.byPk,
            indexWritesByPartitionKey: units.byIndexPk,
            label: requestLabel,
            at,
          });
        };
        try {
          const fault = hook ? await hook({ service, operation, body: parsedBody }) : undefined;
          if (fault?.kind === 'error') {
            const payload = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${fault.type}`, message: fault.message ?? `injected ${fault.type}` });
            res.writeHead(fault.status, { 'content-type': 'application/x-amz-json-1.0' }).end(payload);
            record(fault.status);
            return;
          }
          if (fault?.kind === 'unprocessed' && operation === 'BatchWriteItem') {
            res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify({ UnprocessedItems: parsedBody.RequestItems }));
            record(200);
            return;
          }
          if (fault?.kind === 'cutBeforeForward') {
            req.socket.destroy();
            record(0);
            return;
          }
          if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));

          let answer: Answer;
          if (options.sink) {
            const sinkBody = operation === 'BatchWriteItem' ? { UnprocessedItems: {} } : {};
            answer = { status: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Buffer.from(JSON.stringify(sinkBody)) };
          } else {
            answer = await forward(targetUrl, { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers }, raw);
          }
          let units;
          if (service === 'dynamodb') {
            const response = answer.body.length ? JSON.parse(answer.body.toString('utf8')) : {};
            units = await bill(operation, parsedBody, answer.status, response);
          }
          record(fault?.kind === 'cutAfterForward' ? 0 : answer.status, units);
          if (fault?.kind === 'cutAfterForward') {
            req.socket.destroy();
            return;
          }
          const headers = { ...answer.headers };
          delete headers['transfer-encoding'];
          headers['content-length'] = String(answer.body.length);
          res.writeHead(answer.status, headers).end(answer.body);
        } catch (e) {
          record(502);
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`recording proxy: ${(e as Error).message}`);
        }
      })();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (options.setEnvironment ?? true) process.env.AWS_ENDPOINT_URL = endpoint;

  const proxy: RecordingProxy = {
    endpoint,
    requests,
    get label() {
      return label;
    },
    set label(value: string | undefined) {
      label = value;
    },
    setHook: (h) => {
      hook = h;
    },
    totals: (filter = (r) => r.service === 'dynamodb') => {
      const byOperation: Record<string, { requests: number; wru: number; rru: number }> = {};
      let wru = 0;
      let rru = 0;
      let count = 0;
      for (const r of requests) {
        if (!filter(r)) continue;
        count++;
        wru += r.wru;
        rru += r.rru;
        const o = (byOperation[r.operation] ??= { requests: 0, wru: 0, rru: 0 });
        o.requests++;
        o.wru += r.wru;
        o.rru += r.rru;
      }
      return { requests: count, wru, rru, byOperation };
    },
    clear: () => {
      requests.length = 0;
    },
    shadowItem: (table, key) => {
      const spec = specs.get(table);
      return spec ? shadow.get(table)?.get(keyOf(spec, key)) : undefined;
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  return proxy;
}
