/**
 * The environment a construct sets for its handler, read in one way: a missing
 * or malformed value names the variable, the value, and who sets it.
 */

function misconfigured(name: string, detail: string): Error {
  return new Error(`Environment variable ${name} ${detail}: this function must be created by its cdk-saas-billing construct, which sets it`);
}

/** A variable that must be set. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw misconfigured(name, 'is not set');
  return value;
}

/** A number, within bounds; `fallback` when unset (required when there is none). */
export function numberEnv(name: string, opts: { min?: number; max?: number; integer?: boolean; fallback?: number } = {}): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') {
    if (opts.fallback !== undefined) return opts.fallback;
    throw misconfigured(name, 'is not set');
  }
  const n = Number(raw);
  const bad = !Number.isFinite(n) || (opts.integer && !Number.isInteger(n))
    || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max);
  if (bad) {
    throw misconfigured(name, `must be ${opts.integer ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}`
      + `${opts.max !== undefined ? ` <= ${opts.max}` : ''} (given ${JSON.stringify(raw)})`);
  }
  return n;
}

/** A JSON value; `fallback` when unset (required when there is none). */
export function jsonEnv<T>(name: string, fallback?: T): T {
  const raw = process.env[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw misconfigured(name, 'is not set');
  }
  try {
    return JSON.parse(raw) as T;
  } catch (e) {
    throw misconfigured(name, `is not JSON (${(e as Error).message})`);
  }
}
