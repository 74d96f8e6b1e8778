import { IDENTIFIER_MAX_LENGTH, identifierProblem, identifierRule, isIdentifier, isMetricName, isTenantId } from '../../src/events/identifiers';

describe('the one identifier rule', () => {
  test.each([
    ['a UUID (what SBT gives tenants)', '9f1c2e6a-0d7b-4f57-9a77-2d3c1e0b8a41'],
    ['every allowed character', 'Az09_-.:@+='],
    ['an e-mail-like id', 'user@acme.example'],
    ['a dot inside', 'acme.eu'],
    ['128 characters', 't'.repeat(128)],
  ])('accepts %s as a tenant id', (_name, value) => {
    expect(isTenantId(value)).toBe(true);
    expect(identifierProblem('tenantId', value)).toBeUndefined();
  });

  test.each([
    ['a space', 'tenant 1', /holds a space/],
    ['#', 'a#b', /holds '#'/],
    ['/', 'a/b', /holds '\/'/],
    ['%', 'a%2Fb', /holds '%'/],
    ['a quote', 'a\'b', /holds '''/],
    ['a backslash', 'a\\b', /holds '\\'/],
    ['non-ASCII', 'ténant', /holds U\+00E9/],
    ['a control character', 'a\u0000', /holds U\+0000/],
    ['many bad characters', 'a b#c/d%e"f\'g', /holds a space, '#', '\/', '%', '"' and 1 more/],
    ['.', '.', /not '\.' or '\.\.'/],
    ['..', '..', /not '\.' or '\.\.'/],
    ['129 characters', 't'.repeat(129), /\(it has 129\)/],
    ['an empty string', '', /must not be empty/],
  ])('refuses a tenant id with %s, saying why without repeating it', (_name, value, why) => {
    expect(isTenantId(value)).toBe(false);
    const problem = identifierProblem('tenantId', value)!;
    expect(problem).toMatch(/^tenantId must/);
    expect(problem).toMatch(why);
    if (value.length > 2) expect(problem).not.toContain(value);
  });

  test('refuses what is not a string', () => {
    for (const value of [42, null, undefined, ['a'], { id: 'a' }]) {
      expect(isTenantId(value)).toBe(false);
      expect(identifierProblem('tenantId', value)).toMatch(/^tenantId must be a string that is 1 to 128 characters/);
    }
  });

  test('one alphabet, per-kind lengths: metric names 128, record ids 256', () => {
    expect(IDENTIFIER_MAX_LENGTH).toEqual({ tenantId: 128, metric: 128, recordId: 256 });
    expect(isMetricName('m'.repeat(128))).toBe(true);
    expect(isMetricName('m'.repeat(129))).toBe(false);
    expect(isIdentifier('recordId', 'i'.repeat(256))).toBe(true);
    expect(isIdentifier('recordId', 'i'.repeat(257))).toBe(false);
    expect(identifierRule('recordId')).toBe("must be 1 to 256 characters of ASCII letters, digits and _ - . : @ + = (not '.' or '..')");
  });
});
