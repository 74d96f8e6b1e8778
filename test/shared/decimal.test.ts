import {
  addDecimals, compareDecimals, DecimalError, isDecimal, multiplyDecimals, parseDecimal, roundDecimal, subtractDecimals,
} from '../../src/shared.lambda/decimal';

describe('decimal', () => {
  test('sums without binary drift and keeps every digit', () => {
    expect(addDecimals('0.1', '0.2')).toBe('0.3');
    expect(addDecimals('123456789012345.123456789', '0.000000001')).toBe('123456789012345.12345679');
    expect(addDecimals('999999999999999.999999999', '0.000000001')).toBe('1000000000000000');
    expect(addDecimals()).toBe('0');
  });

  test('subtracts, multiplies and compares exactly', () => {
    expect(subtractDecimals('1', '1.25')).toBe('-0.25');
    expect(multiplyDecimals('12345678.123456789', '0.0025')).toBe('30864.1953086419725');
    expect(multiplyDecimals('-2', '0.5')).toBe('-1');
    expect(compareDecimals('0.10', '0.1')).toBe(0);
    expect(compareDecimals('-1', '0')).toBe(-1);
    expect(compareDecimals('10', '9.999')).toBe(1);
  });

  test('parseDecimal normalizes and enforces its limits, naming the value', () => {
    expect(parseDecimal('007.500')).toBe('7.5');
    expect(parseDecimal('0.000')).toBe('0');
    expect(() => parseDecimal('1e-7')).toThrow(DecimalError);
    expect(() => parseDecimal('-1')).toThrow(/"-1" is negative/);
    expect(parseDecimal('-1', { allowNegative: true })).toBe('-1');
    expect(() => parseDecimal('0.1234567891', { maxFractionDigits: 9 })).toThrow(/more than 9 digits after/);
    expect(parseDecimal('0.1234567890', { maxFractionDigits: 9 }).length).toBe(11); // trailing zero does not count
    expect(() => parseDecimal('1234567890123456', { maxIntegerDigits: 15 })).toThrow(/more than 15 digits before/);
    expect(parseDecimal('0.5', { maxIntegerDigits: 0 })).toBe('0.5');
  });

  test('isDecimal accepts plain decimals only', () => {
    expect(['1', '-0.5', '10.25'].every(isDecimal)).toBe(true);
    expect(['', '1.', '.5', '1e3', ' 1', '0x10', 'NaN'].some(isDecimal)).toBe(false);
    expect(isDecimal(1)).toBe(false);
  });

  test.each([
    ['2.5', 0, 'HALF_UP', '3'],
    ['-2.5', 0, 'HALF_UP', '-3'],
    ['2.5', 0, 'HALF_EVEN', '2'],
    ['3.5', 0, 'HALF_EVEN', '4'],
    ['2.51', 0, 'HALF_EVEN', '3'],
    ['2.1', 0, 'UP', '3'],
    ['2.9', 0, 'DOWN', '2'],
    ['1.005', 2, 'HALF_UP', '1.01'],
    ['1.2', 3, 'UP', '1.2'],
  ] as const)('roundDecimal(%s, %d, %s) = %s', (value, digits, mode, expected) => {
    expect(roundDecimal(value, digits, mode)).toBe(expected);
  });
});
