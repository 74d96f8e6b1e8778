import { decimalOf, parseUsageRecord, sumDecimals, windowOf } from '../../src/ingestor/shared.lambda/usage-record';

describe('exact decimals', () => {
  test.each([
    [3, '3'], [0.1, '0.1'], [1e-7, '0.0000001'], [1.5e-3, '0.0015'], [1e21, '1000000000000000000000'], [123.456, '123.456'], [0, '0'],
  ])('decimalOf(%p) is %p', (n, text) => {
    expect(decimalOf(n)).toBe(text);
  });

  test.each([
    [['0.1', '0.2'], '0.3'], [['10', '0.05'], '10.05'], [['0.5', '0.5'], '1'], [['999999999999999', '1'], '1000000000000000'], [['0.000000001', '0'], '0.000000001'],
  ])('sumDecimals(%p) is %p (drift 0)', (values, sum) => {
    expect(sumDecimals(values)).toBe(sum);
  });
});

describe('windows', () => {
  test('an event time belongs to [start, end) of its UTC hour and day', () => {
    const t = Date.parse('2026-11-27T02:59:59.999Z');
    expect(windowOf('HOUR', t)).toEqual({ startMs: Date.parse('2026-11-27T02:00:00Z'), endMs: Date.parse('2026-11-27T03:00:00Z') });
    expect(windowOf('HOUR', t + 1).startMs).toBe(Date.parse('2026-11-27T03:00:00Z'));
    expect(windowOf('DAY', t)).toEqual({ startMs: Date.parse('2026-11-27T00:00:00Z'), endMs: Date.parse('2026-11-28T00:00:00Z') });
  });

  test('closesAt is the window end plus the lateness, and the sort key follows the layout', () => {
    const data = Buffer.from(JSON.stringify({ id: 'a', tenantId: 't', metric: 'm', value: 2.5, timestamp: '2026-11-27T02:30:00+01:00' }));
    const r = parseUsageRecord(data, { granularity: 'HOUR', allowedLatenessSeconds: 900, arrivalMs: Date.parse('2026-11-27T02:00:00Z'), maxFutureSkewMs: 0 });
    expect(r).toEqual({
      ok: true,
      record: expect.objectContaining({
        value: '2.5',
        windowStartMs: Date.parse('2026-11-27T01:00:00Z'),
        closesAt: Date.parse('2026-11-27T02:00:00Z') / 1000 + 900,
        aggregateSk: 'HOUR#2026-11-27T01:00:00Z#m',
      }),
    });
  });

  test('a value with more than 9 fractional digits is refused, not rounded', () => {
    const data = Buffer.from(JSON.stringify({ id: 'a', tenantId: 't', metric: 'm', value: 1e-10, timestamp: 1764208800000 }));
    const r = parseUsageRecord(data, { granularity: 'HOUR', allowedLatenessSeconds: 0, arrivalMs: 1764208800000, maxFutureSkewMs: 0 });
    expect(r).toMatchObject({ ok: false, reason: 'INVALID_FIELD', detail: expect.stringMatching(/fractional digits/) });
  });
});
