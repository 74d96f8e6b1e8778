import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS } from '../contract';

/** A metric of the DynamoDB billing functions. */
export type MetricName = (typeof METRICS)[keyof typeof METRICS];

// Namespace and `service` dimension come from the environment the construct sets.
const metrics = new Metrics();

/**
 * Publishes counts now, as CloudWatch embedded metric format on stdout: the
 * namespace and `service` dimension the construct's alarms watch.
 */
export function publishCounts(counts: Partial<Record<MetricName, number>>): void {
  const entries = Object.entries(counts).filter(([, value]) => value !== undefined);
  if (entries.length === 0) return;
  for (const [name, value] of entries) metrics.addMetric(name, MetricUnit.Count, value!);
  metrics.publishStoredMetrics();
}
