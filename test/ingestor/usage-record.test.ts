import { parseTimestamp, parseUsageRecord, ParseResult, wellFormed } from '../../src/ingestor/shared.lambda/usage-record';

const ARRIVAL = Date.parse('2026-11-27T02:30:00Z');
const parse = (text: string): ParseResult => parseUsageRecord(Buffer.from(text, 'utf8'), { arrivalMs: ARRIVAL, maxClockSkewMs: 300_000 });
const record = (value: string, extra = '') => parse(`{"id":"a","tenantId":"t","metric":"m","value":${value},"timestamp":"2026-11-27T02:15:00Z"${extra}}`);

describe('values keep their digits (read from the text, never a binary float)', () => {
  test.each([
    ['123456789012345.123456789', '123456789012345.123456789'],
    ['999999999999999.999999999', '999999999999999.999999999'],
    ['12345678.123456789', '12345678.123456789'],
    ['0.1', '0.1'],
    ['1.50', '1.5'],
    ['1e3', '1000'],
    ['1.5E-3', '0.0015'],
    ['0', '0'],
    ['-0', '0'],
  ])('%s is %s', (text, value) => {
    expect(record(text)).toEqual({ ok: true, record: expect.objectContaining({ kind: 'RECORD', value }) });
  });

  test.each([
    ['0.1000000000000000000000000000000000000001', 'more than 9 digits after the point: refused, not rounded to 0.1'],
    ['1e-10', '10 digits after the point'],
    ['1000000000000000', '16 digits before the point'],
    ['1e400', 'far beyond the digits'],
    ['-1', 'negative'],
    ['"3"', 'a string'],
    ['true', 'not a number'],
  ])('%s is refused (%s)', (text) => {
    expect(record(text)).toMatchObject({ ok: false, reason: 'INVALID_FIELD', detail: expect.stringMatching(/^value must be a JSON number/) });
  });
});

describe('timestamps are strict', () => {
  test.each([
    ['2026-02-30T00:00:00Z'], ['2026-13-01T00:00:00Z'], ['2026-11-27T24:00:00Z'], ['2026-11-27T02:60:00Z'], ['2026-11-27T02:00:60Z'],
    ['2026-11-27T02:00:00'], ['2026-11-27 02:00:00Z'], ['2026-11-27T02:00:00+25:00'], ['1969-12-31T23:59:59Z'], ['2026-02-29T00:00:00Z'],
  ])('%s is refused', (text) => {
    expect(parseTimestamp(text)).toBeUndefined();
  });

  test('epoch milliseconds beyond year 9999 (8640000000000001) are refused without throwing', () => {
    expect(parse('{"id":"a","tenantId":"t","metric":"m","value":1,"timestamp":8640000000000001}'))
      .toMatchObject({ ok: false, reason: 'INVALID_FIELD', detail: expect.stringMatching(/8640000000000001/) });
  });

  test.each([
    ['2028-02-29T00:00:00Z', Date.parse('2028-02-29T00:00:00Z')],
    ['2026-11-27T03:15:00+01:00', Date.parse('2026-11-27T02:15:00Z')],
    ['2026-11-27T02:15:00.123456789Z', Date.parse('2026-11-27T02:15:00.123Z')],
    ['2026-11-27T02:15Z', Date.parse('2026-11-27T02:15:00Z')],
  ])('%s is %d', (text, ms) => {
    expect(parseTimestamp(text)).toBe(ms);
  });
});

describe('names follow the one identifier rule', () => {
  const withTenant = (tenant: string) => `{"id":"a","tenantId":${tenant},"metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}`;

  test.each([
    ['a space', '"tenant 1"', /holds a space/],
    ['a leading space', '" tenant-1"', /holds a space/],
    ['non-ASCII (é)', '"t\u00e9nant"', /holds U\+00E9/],
    ['an emoji', '"t-\\ud83d\\ude00"', /holds U\+1F600/],
    ['a single quote', '"acme\'s"', /holds '''/],
    ['a double quote', '"a\\"b"', /holds '"'/],
    ['a backslash', '"a\\\\b"', /holds '\\'/],
    ['#, the key separator', '"a#b"', /holds '#'/],
    ['/, a path separator', '"a/b"', /holds '\/'/],
    ['a lone high surrogate', '"t\\ud800"', /holds U\+D800/],
    ['a control character', '"t\\u0007"', /holds U\+0007/],
    ['129 characters', `"${'t'.repeat(129)}"`, /1 to 128 characters .*\(it has 129\)/],
    ['..', '".."', /not '\.' or '\.\.'/],
    ['a number', '42', /must be a string/],
    ['an empty string', '""', /must not be empty/],
  ])('a tenant id with %s is refused as INVALID_TENANT_ID, with the rule and why', (_name, tenant, detail) => {
    const r = parse(withTenant(tenant));
    expect(r).toMatchObject({ ok: false, reason: 'INVALID_TENANT_ID', detail: expect.stringMatching(detail) });
    const d = (r as { detail: string }).detail;
    expect(d).toMatch(/^tenantId must .*ASCII letters, digits and _ - \. : @ \+ = .*no billing provider can onboard this tenant/);
    // the detail itself is valid Unicode (DynamoDB refuses lone surrogates), and no tenant id is kept
    expect(wellFormed(d)).toBe(d);
    expect((r as { tenantId?: string }).tenantId).toBeUndefined();
  });

  test.each([
    ['a metric with a space', '{"id":"a","tenantId":"t","metric":"api calls","value":1,"timestamp":"2026-11-27T02:15:00Z"}', /^metric must be 1 to 128 .* holds a space/],
    ['a lone low surrogate in the metric', '{"id":"a","tenantId":"t","metric":"\\udc00","value":1,"timestamp":"2026-11-27T02:15:00Z"}', /^metric .*U\+DC00/],
    ['a C1 control character in the id', '{"id":"a\\u0085","tenantId":"t","metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}', /^id must be 1 to 256 .*U\+0085/],
    ['an id with #', '{"id":"order#1","tenantId":"t","metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}', /^id must be 1 to 256 .*'#'/],
    ['an id of 257 characters', `{"id":"${'i'.repeat(257)}","tenantId":"t","metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}`, /^id must be 1 to 256 .*\(it has 257\)/],
    ['a void naming an id with a space', '{"id":"v","tenantId":"t","voids":"a b","timestamp":"2026-11-27T02:15:00Z"}', /^voids must be 1 to 256/],
  ])('%s is refused as INVALID_FIELD, naming the rule; the tenant is kept', (_name, text, detail) => {
    const r = parse(text);
    expect(r).toMatchObject({ ok: false, reason: 'INVALID_FIELD', detail: expect.stringMatching(detail), tenantId: 't' });
    expect(wellFormed((r as { detail: string }).detail)).toBe((r as { detail: string }).detail);
  });

  test('every character the rule allows, at the longest lengths, is accepted', () => {
    const tenant = 'Az09_-.:@+='.padEnd(128, 'x');
    const metric = 'm'.repeat(128);
    const id = 'i'.repeat(256);
    expect(parse(`{"id":"${id}","tenantId":"${tenant}","metric":"${metric}","value":1,"timestamp":"2026-11-27T02:15:00Z"}`))
      .toMatchObject({ ok: true, record: { id, tenantId: tenant, metric } });
  });
});

describe('voids', () => {
  test('a void names the record it cancels and carries no value', () => {
    expect(parse('{"id":"v-1","tenantId":"t","timestamp":"2026-11-27T02:15:00Z","voids":"a"}'))
      .toEqual({ ok: true, record: { kind: 'VOID', id: 'v-1', tenantId: 't', voids: 'a', timestampMs: Date.parse('2026-11-27T02:15:00Z') } });
  });

  test('a void with a value is refused', () => {
    expect(parse('{"id":"v-1","tenantId":"t","metric":"m","value":3,"timestamp":"2026-11-27T02:15:00Z","voids":"a"}'))
      .toMatchObject({ ok: false, reason: 'INVALID_FIELD', detail: expect.stringMatching(/carries no value/) });
  });
});

test('a detail never embeds a huge value', () => {
  const r = parse(`{"id":"a","tenantId":"t","metric":"m","value":"${'x'.repeat(700 * 1024)}","timestamp":"2026-11-27T02:15:00Z"}`);
  expect(r).toMatchObject({ ok: false, reason: 'INVALID_FIELD', detail: expect.stringMatching(/a string of 716800 characters/) });
  expect((r as { detail: string }).detail.length).toBeLessThan(300);
});
