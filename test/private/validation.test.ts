import { Duration, Lazy, Stack } from 'aws-cdk-lib';
import { describeValue, PropsValidator, pythonSpelling } from '../../src/private/validation';
import { webhookPathProblem } from '../../src/private/webhook-path';

describe('PropsValidator', () => {
  test('reports every problem at once in the one format, Python spelling the first time', () => {
    const stack = new Stack();
    const v = new PropsValidator(stack, 'Thing');
    v.add('httpApi', undefined, 'is required when billing.webhookFunction is set', 'pass the HTTP API');
    v.range('retryAttempts', 500, 0, 185);
    v.range('retryAttempts', 1.5, 0, 185);
    v.durationRange('maxEventAge', Duration.hours(25), Duration.minutes(1), Duration.hours(24));
    expect(v.hasProblems).toBe(true);
    expect(() => v.throwIfInvalid()).toThrow(
      'Thing at Default: invalid props:\n'
      + '- httpApi (Python: http_api) is required when billing.webhookFunction is set (given undefined): pass the HTTP API\n'
      + '- retryAttempts (Python: retry_attempts) must be an integer between 0 and 185 (given number 500): give a value from 0 to 185\n'
      + '- retryAttempts must be an integer between 0 and 185 (given number 1.5): give a value from 0 to 185\n'
      + '- maxEventAge (Python: max_event_age) must be between 1 minute and 1 day (given 1 day 1 hour): give a Duration from 1 minute to 1 day',
    );
  });

  test('skips tokens and values in range', () => {
    const v = new PropsValidator(new Stack(), 'Thing');
    v.range('batchSize', Lazy.number({ produce: () => 0 }), 1, 10);
    v.range('batchSize', 10, 1, 10);
    v.range('ratio', 0.5, 0, 1, { integer: false });
    v.durationRange('age', Duration.seconds(Lazy.number({ produce: () => 0 })), Duration.minutes(1), Duration.hours(1));
    expect(v.hasProblems).toBe(false);
    expect(() => v.throwIfInvalid()).not.toThrow();
  });

  test('checks whole units of durations where the service takes an integer', () => {
    const v = new PropsValidator(new Stack(), 'Thing');
    v.durationRange('window', Duration.millis(1500), Duration.seconds(0), Duration.minutes(5), { whole: 'seconds' });
    v.durationRange('interval', Duration.seconds(90), Duration.minutes(1), Duration.hours(1), { whole: 'minutes', fix: 'give whole minutes' });
    v.durationRange('ok', Duration.minutes(2), Duration.minutes(1), Duration.hours(1), { whole: 'minutes' });
    v.durationRange('retention', Duration.days(2), Duration.hours(24), Duration.days(365), { whole: 'hours' });
    expect(() => v.throwIfInvalid()).toThrow(
      'Thing at Default: invalid props:\n'
      + '- window must be a whole number of seconds between 0 seconds and 5 minutes (given 1 second 500 millis): give a Duration from 0 seconds to 5 minutes in whole seconds\n'
      + '- interval must be a whole number of minutes between 1 minute and 1 hour (given 1 minute 30 seconds): give whole minutes',
    );
  });

  test('spells props in Python', () => {
    expect(pythonSpelling('billing.webhookFunction.path')).toBe('billing.webhook_function.path');
    expect(pythonSpelling('unitPrices[0].unitPrice')).toBe('unit_prices[0].unit_price');
    expect(pythonSpelling('schedule')).toBe('schedule');
  });

  test('describes values', () => {
    expect(describeValue('x')).toBe("'x'");
    expect(describeValue(Duration.minutes(5))).toBe('5 minutes');
    expect(describeValue({ a: 1 })).toBe('an object with keys [a]');
    expect(describeValue([1, 2])).toBe('an array of 2');
    expect(describeValue(null)).toBe('null');
  });
});

describe('webhookPathProblem', () => {
  test.each(['webhook', 'stripe/events', 'a-b_c.d~e'])('accepts %s', (path) => {
    expect(webhookPathProblem(path)).toBeUndefined();
  });
  test.each([
    ['', /is empty/],
    ['/webhook', /remove leading, trailing and double slashes \(for example 'webhook'\)/],
    ['a//b', /double slashes/],
    ['hook?x=1', /cannot hold \("\?", "="\)/],
    [42, /must be a string/],
  ] as const)('refuses %p', (path, message) => {
    const p = webhookPathProblem(path);
    expect(`${p?.problem}: ${p?.fix}`).toMatch(message);
  });
  test('does not judge a token', () => {
    expect(webhookPathProblem(Lazy.string({ produce: () => '//' }))).toBeUndefined();
  });
});
