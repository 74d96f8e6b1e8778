import { Duration, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Collects every problem in a construct's props, then reports them all at once
 * in the one format every construct of this library uses:
 *
 * ```
 * BillingProvider at MyStack/Billing: invalid props:
 * - httpApi (Python: http_api) is required when billing.webhookFunction is set (given undefined): pass the HTTP API ...
 * - retryAttempts must be an integer between 0 and 185 (given 500): ...
 * ```
 *
 * A prop is named the way TypeScript spells it and, the first time it appears
 * in a message, with its Python spelling beside it when that differs.
 * Unresolved tokens are never judged: they are only known at deploy time.
 */
export class PropsValidator {
  private readonly problems: string[] = [];
  private readonly named = new Set<string>();

  constructor(private readonly scope: IConstruct, private readonly constructName: string) {}

  /** Whether a problem has been found. */
  public get hasProblems(): boolean {
    return this.problems.length > 0;
  }

  /**
   * Adds a problem: `<prop> <problem> (given <value>): <fix>`.
   *
   * @param prop the prop as TypeScript spells it, dotted for nested members (`billing.webhookFunction.path`)
   * @param given the value received
   * @param problem what is wrong, as a predicate (`must be an integer between 1 and 10`)
   * @param fix how to fix it
   */
  public add(prop: string, given: unknown, problem: string, fix: string): void {
    this.problems.push(`${this.name(prop)} ${problem} (given ${describeValue(given)}): ${fix}`);
  }

  /**
   * Checks that a number lies in `[min, max]` (and is an integer unless `integer: false`).
   * Skips undefined values and tokens.
   */
  public range(prop: string, value: number | undefined, min: number, max: number, opts: RangeOptions = {}): void {
    if (value === undefined || Token.isUnresolved(value)) return;
    const integer = opts.integer ?? true;
    const unit = opts.unit ? ` ${opts.unit}` : '';
    if (typeof value !== 'number' || Number.isNaN(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
      this.add(prop, value, `must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}${unit}`,
        opts.fix ?? `give a value from ${min} to ${max}${unit}`);
    }
  }

  /**
   * Checks that a duration lies in `[min, max]` and, with `whole`, is a whole
   * number of that unit (where the service takes an integer: `MaximumBatchingWindowInSeconds`).
   * Skips undefined and unresolved durations.
   *
   * @param fix how to fix it, or the options
   */
  public durationRange(prop: string, value: Duration | undefined, min: Duration, max: Duration, fix?: string | DurationRangeOptions): void {
    if (value === undefined || value.isUnresolved()) return;
    const opts: DurationRangeOptions = typeof fix === 'string' ? { fix } : fix ?? {};
    const ms = value.toMilliseconds({ integral: false });
    const unitMs = opts.whole ? WHOLE_UNIT_MS[opts.whole] : undefined;
    const whole = unitMs === undefined || Number.isInteger(ms / unitMs);
    if (!whole || ms < min.toMilliseconds({ integral: false }) || ms > max.toMilliseconds({ integral: false })) {
      const kind = opts.whole ? `a whole number of ${opts.whole} ` : '';
      this.add(prop, value, `must be ${kind}between ${min.toHumanString()} and ${max.toHumanString()}`,
        opts.fix ?? `give a Duration from ${min.toHumanString()} to ${max.toHumanString()}${opts.whole ? ` in whole ${opts.whole}` : ''}`);
    }
  }

  /** Throws one error listing every problem, if any was found. */
  public throwIfInvalid(): void {
    if (this.problems.length === 0) return;
    throw new Error(`${this.constructName} at ${this.scope.node.path}: invalid props:\n- ${this.problems.join('\n- ')}`);
  }

  private name(prop: string): string {
    const python = pythonSpelling(prop);
    if (python === prop || this.named.has(prop)) return prop;
    this.named.add(prop);
    return `${prop} (Python: ${python})`;
  }
}

/** Options of `PropsValidator.range`. */
export interface RangeOptions {
  /** Whether the value must be an integer. @default true */
  readonly integer?: boolean;
  /** The unit shown after the bounds (`seconds`). @default - none */
  readonly unit?: string;
  /** How to fix it. @default - give a value in the range */
  readonly fix?: string;
}

/** Options of `PropsValidator.durationRange`. */
export interface DurationRangeOptions {
  /** The unit the duration must be a whole number of. @default - any duration */
  readonly whole?: 'seconds' | 'minutes' | 'hours';
  /** How to fix it. @default - give a Duration in the range */
  readonly fix?: string;
}

const WHOLE_UNIT_MS = { seconds: 1000, minutes: 60_000, hours: 3_600_000 } as const;

/** `billing.webhookFunction.path` -> `billing.webhook_function.path`; index suffixes (`[0]`) are kept. */
export function pythonSpelling(prop: string): string {
  return prop.replace(/[a-z0-9][A-Z]/g, (m) => `${m[0]}_${m[1].toLowerCase()}`).replace(/^[A-Z]/, (m) => m.toLowerCase());
}

/** A value as an error message shows it: strings quoted, durations readable, objects by class or keys. */
export function describeValue(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  if (typeof x === 'string') return Token.isUnresolved(x) ? 'a token' : `'${x}'`;
  if (x instanceof Duration) return x.isUnresolved() ? 'a token' : x.toHumanString();
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (typeof x === 'object') {
    const ctor = (x as object).constructor?.name;
    return ctor && ctor !== 'Object' ? `a ${ctor}` : `an object with keys [${Object.keys(x as object).join(', ')}]`;
  }
  return `${typeof x} ${String(x)}`;
}
