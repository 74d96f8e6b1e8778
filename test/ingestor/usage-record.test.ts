import { parseTimestamp, parseUsageRecord, ParseResult } from '../../src/ingestor/shared.lambda/usage-record';

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

describe('names', () => {
  test.each([
    ['a lone high surrogate', '{"id":"a","tenantId":"t\\ud800","metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}', /valid Unicode/],
    ['a lone low surrogate in the metric', '{"id":"a","tenantId":"t","metric":"\\udc00","value":1,"timestamp":"2026-11-27T02:15:00Z"}', /valid Unicode/],
    ['a control character', '{"id":"a","tenantId":"t\\u0007","metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}', /control characters/],
    ['a C1 control character in the id', '{"id":"a\\u0085","tenantId":"t","metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}', /control characters/],
    ['a tenant id of 129 bytes', `{"id":"a","tenantId":"${'t'.repeat(129)}","metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}`, /at most 128 bytes/],
  ])('%s is refused', (_name, text, detail) => {
    const r = parse(text);
    expect(r).toMatchObject({ ok: false, reason: 'INVALID_FIELD', detail: expect.stringMatching(detail) });
    // the detail itself is valid Unicode (DynamoDB refuses lone surrogates)
    expect((r as { detail: string }).detail).not.toMatch(/[\ud800-\udfff]/);
  });

  test('a surrogate pair (an emoji) is valid', () => {
    expect(parse('{"id":"a","tenantId":"t-😀","metric":"m","value":1,"timestamp":"2026-11-27T02:15:00Z"}')).toMatchObject({ ok: true });
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
