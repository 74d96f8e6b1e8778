/**
 * The window settings the construct sets for the aggregator and the closer
 * (names in the contract module), read and checked in one place.
 */
import { numberEnv, requiredEnv } from '../../shared.lambda/env';
import { AGGREGATOR_ENV, Granularity, GRANULARITIES } from '../ingestor-contract';

/** A granularity from the environment variable `name`; throws naming the variable and the value. */
export function granularityOf(name: string, value: string | undefined): Granularity {
  if (!GRANULARITIES.includes(value as Granularity)) {
    throw new Error(`Environment variable ${name} must be one of ${GRANULARITIES.join(', ')} (given ${JSON.stringify(value)})`);
  }
  return value as Granularity;
}

/** What both handlers read: the table, the windows, the lateness, the quarantine's retention. */
export interface WindowSettings {
  readonly tableName: string;
  readonly granularity: Granularity;
  readonly allowedLatenessSeconds: number;
  readonly quarantineRetentionSeconds: number;
}

/** The window settings of this function's environment. */
export function windowSettingsFromEnv(): WindowSettings {
  return {
    tableName: requiredEnv(AGGREGATOR_ENV.TABLE_NAME),
    granularity: granularityOf(AGGREGATOR_ENV.WINDOW_GRANULARITY, requiredEnv(AGGREGATOR_ENV.WINDOW_GRANULARITY)),
    allowedLatenessSeconds: numberEnv(AGGREGATOR_ENV.ALLOWED_LATENESS_SECONDS, { min: 0, integer: true }),
    quarantineRetentionSeconds: numberEnv(AGGREGATOR_ENV.QUARANTINE_RETENTION_SECONDS, { min: 0, integer: true }),
  };
}
