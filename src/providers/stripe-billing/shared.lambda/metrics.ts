import { Metrics } from '@aws-lambda-powertools/metrics';

/**
 * The Powertools metrics of a Stripe handler: namespace and `service` dimension
 * from the environment the construct sets (`STRIPE_ENV.METRICS_NAMESPACE`,
 * `STRIPE_ENV.SERVICE_NAME`); emitted as embedded metric format log lines.
 */
export const metrics = new Metrics();

/** Publishes the metrics added during this invocation, if any (an empty publish only logs a warning). */
export function publishMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
