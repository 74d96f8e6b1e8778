import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** How one alarm of an `AlarmSet` fires. */
export interface AlarmOptions {
  /** What the alarm means and what to do when it fires. */
  readonly description: string;
  /** @default 1 */
  readonly threshold?: number;
  /** @default cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD */
  readonly comparisonOperator?: cloudwatch.ComparisonOperator;
  /** @default 1 */
  readonly evaluationPeriods?: number;
}

/**
 * The alarms of one construct, built the same way everywhere: missing data
 * never breaches, the description says what happened and where, and every
 * alarm gets the actions the user passed as `alarmActions`.
 */
export class AlarmSet {
  /** Every alarm added, in order: what a construct exposes as `alarms`. */
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(private readonly scope: Construct, private readonly actions: cloudwatch.IAlarmAction[] = []) {}

  /** Creates an alarm on `metric` as a child of the scope, with the set's actions. */
  public add(id: string, metric: cloudwatch.IMetric, opts: AlarmOptions): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this.scope, id, {
      metric,
      alarmDescription: `cdk-saas-billing: ${opts.description} (${this.scope.node.path})`,
      threshold: opts.threshold ?? 1,
      evaluationPeriods: opts.evaluationPeriods ?? 1,
      comparisonOperator: opts.comparisonOperator ?? cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const action of this.actions) alarm.addAlarmAction(action);
    this.alarms.push(alarm);
    return alarm;
  }
}

/**
 * The one builder behind every typed `metricXxx()` method of the library's
 * constructs. A metric a bundled handler publishes (Powertools' embedded metric
 * format: the construct's namespace, dimension `service`), summed over 5
 * minutes unless `props` say otherwise. The typed methods pass their own
 * defaults first and the caller's `props` last, so a caller's choice wins.
 */
export function handlerMetric(namespace: string, serviceName: string, metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace,
    metricName,
    dimensionsMap: { service: serviceName },
    statistic: cloudwatch.Stats.SUM,
    period: Duration.minutes(5),
    ...props,
  });
}

/** `Errors` of a function (AWS/Lambda), summed over 5 minutes unless `props` say otherwise. */
export function functionErrorsMetric(fn: lambda.IFunction, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
  return fn.metricErrors({ statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5), ...props });
}

/**
 * Messages visible in a queue (AWS/SQS `ApproximateNumberOfMessagesVisible`),
 * the maximum over 1 minute unless `props` say otherwise: what a dead-letter
 * queue alarm watches.
 */
export function queueDepthMetric(queue: sqs.IQueue, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
  return queue.metricApproximateNumberOfMessagesVisible({ statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(1), ...props });
}
