import { Metrics } from '@aws-lambda-powertools/metrics';

/**
 * The Powertools metrics of a Marketplace handler: namespace and `service` dimension from the
 * environment the construct sets; emitted as embedded metric format log lines.
 */
export const metrics = new Metrics();

/** Publishes the metrics added during this invocation, if any. */
export function publishMetrics(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
