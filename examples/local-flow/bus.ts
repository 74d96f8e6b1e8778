/**
 * Watching the emulator's event bus: a rule with an event pattern sends the matching
 * events to a new SQS queue (moto delivers rule targets; it cannot invoke a function
 * without Docker), and `drain` takes what arrived. Used by the local flows and the tests.
 */
import { DeleteRuleCommand, EventBridgeClient, PutRuleCommand, PutTargetsCommand, RemoveTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, DeleteMessageCommand, DeleteQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';

/** An EventBridge event as a rule's target receives it. */
export interface BusEvent {
  readonly 'id': string;
  readonly 'source': string;
  readonly 'detail-type': string;
  readonly 'time': string;
  readonly 'detail': Record<string, any>;
}

/** The events of the default bus that match a pattern, collected in a queue. */
export class BusCapture {
  /**
   * Creates the queue `name` and a rule of the same name on the default bus sending it the
   * events that match `pattern`. `endpoint`: the emulator's (default: `AWS_ENDPOINT_URL`).
   */
  public static async start(name: string, pattern: Record<string, unknown>, endpoint?: string): Promise<BusCapture> {
    const sqs = new SQSClient(endpoint ? { endpoint } : {});
    const eb = new EventBridgeClient(endpoint ? { endpoint } : {});
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    await eb.send(new PutRuleCommand({ Name: name, EventPattern: JSON.stringify(pattern) }));
    await eb.send(new PutTargetsCommand({ Rule: name, Targets: [{ Id: 'queue', Arn: queueArn }] }));
    return new BusCapture(name, eb, sqs, queueUrl);
  }

  private constructor(
    private readonly name: string, private readonly eb: EventBridgeClient, private readonly sqs: SQSClient, private readonly queueUrl: string,
  ) {}

  /** Receives and deletes every event that arrived, waiting up to `waitSeconds` for the first. */
  public async drain(waitSeconds = 1): Promise<BusEvent[]> {
    const events: BusEvent[] = [];
    for (let wait = waitSeconds; ; wait = 0) {
      const r = await this.sqs.send(new ReceiveMessageCommand({ QueueUrl: this.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: wait }));
      if (!r.Messages?.length) return events;
      for (const m of r.Messages) {
        events.push(JSON.parse(m.Body!));
        await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: m.ReceiptHandle! }));
      }
    }
  }

  /** Removes the rule and the queue (the emulator stops routing events to them). */
  public async stop(): Promise<void> {
    await this.eb.send(new RemoveTargetsCommand({ Rule: this.name, Ids: ['queue'] }));
    await this.eb.send(new DeleteRuleCommand({ Name: this.name }));
    await this.sqs.send(new DeleteQueueCommand({ QueueUrl: this.queueUrl }));
    this.eb.destroy();
    this.sqs.destroy();
  }
}
