import * as lambda from 'aws-cdk-lib/aws-lambda';
import { newestNodeRuntime } from '../private/node-runtime';

/**
 * Options of the Lambda functions a construct of this library creates (its pre-bundled
 * handlers). Every construct that creates functions takes them in its props.
 */
export interface LibraryFunctionOptions {
  /**
   * The Lambda runtime of the functions this construct creates: a Node.js runtime,
   * `nodejs24.x` or later (the handlers are built for Node.js 24).
   *
   * Set it to stay on a runtime your organization has approved, or on one that every region you
   * deploy to already offers: a new Node.js runtime can reach aws-cdk-lib before it reaches
   * every region.
   *
   * @default - `LibraryFunctions.newestNodeRuntime()`: the newest `lambda.Runtime.NODEJS_<n>_X` of the aws-cdk-lib your app loads, `nodejs24.x` at least
   */
  readonly runtime?: lambda.Runtime;
}

/**
 * The library's choices for the Lambda functions it creates, for functions of your own that
 * should follow them.
 */
export class LibraryFunctions {
  /**
   * The runtime the library's functions run on when no `runtime` is given: the newest
   * `lambda.Runtime.NODEJS_<n>_X` that the aws-cdk-lib your app loads defines, and
   * `nodejs24.x` at least. It follows your aws-cdk-lib: upgrading aws-cdk-lib to a release
   * that adds a Node.js runtime moves the functions to it at the next deploy. This is the
   * runtime cdk-nag's `AwsSolutions-L1` asks for.
   */
  public static newestNodeRuntime(): lambda.Runtime {
    return newestNodeRuntime();
  }

  private constructor() {}
}
