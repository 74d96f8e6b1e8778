/** The Marketplace handlers' configuration, read from the environment the construct sets. */
import { jsonEnv, numberEnv, requiredEnv } from '../../../shared.lambda/env';
import { DimensionMapping, MARKETPLACE_ENV as E } from '../contract';

/** Names every handler reads. */
export interface BaseConfig {
  readonly productCode: string;
  readonly registrationsTable: string;
  readonly registrationIdField: string;
}

/** What the metering needs. */
export interface MeteringConfig extends BaseConfig {
  readonly meteringTable: string;
  readonly dimensions: ReadonlyMap<string, DimensionMapping>;
  readonly acceptanceSeconds: number;
  readonly warningSeconds: number;
  readonly reportZeroHours: boolean;
  readonly initialLookbackSeconds: number;
  readonly finalMeteringSeconds: number;
}

export function baseConfig(): BaseConfig {
  return {
    productCode: requiredEnv(E.PRODUCT_CODE),
    registrationsTable: requiredEnv(E.REGISTRATIONS_TABLE_NAME),
    registrationIdField: requiredEnv(E.REGISTRATION_ID_FIELD),
  };
}

/** Whether this function meters (it was given an ingestor). */
export function meters(): boolean {
  return !!process.env[E.METERING_TABLE_NAME];
}

export function meteringConfig(): MeteringConfig {
  const dimensions = jsonEnv<DimensionMapping[]>(E.DIMENSIONS, []);
  const acceptanceSeconds = numberEnv(E.ACCEPTANCE_WINDOW_SECONDS, { min: 3600, max: 86400, integer: true, fallback: 6 * 3600 });
  return {
    ...baseConfig(),
    meteringTable: requiredEnv(E.METERING_TABLE_NAME),
    dimensions: new Map(dimensions.map((d) => [d.metric, d])),
    acceptanceSeconds,
    warningSeconds: numberEnv(E.DEADLINE_WARNING_SECONDS, { min: 60, integer: true, fallback: 7200 }),
    reportZeroHours: process.env[E.REPORT_ZERO_HOURS] === 'true',
    initialLookbackSeconds: numberEnv(E.INITIAL_LOOKBACK_SECONDS, { min: 3600, integer: true, fallback: acceptanceSeconds }),
    finalMeteringSeconds: numberEnv(E.FINAL_METERING_SECONDS, { min: 60, integer: true, fallback: 3600 }),
  };
}
