/**
 * The Lambda runtime of the library's functions: the newest Node.js runtime of the aws-cdk-lib the
 * app loads (so that cdk-nag's AwsSolutions-L1, which asks for the newest runtime that aws-cdk-lib
 * knows, holds on every aws-cdk-lib the package accepts), or the one a construct's `runtime` prop gives.
 */
import { Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { PropsValidator } from './validation';

/**
 * The oldest Node.js major the handler bundles run on: they are built for it (esbuild
 * `--target=node24`, `HANDLER_NODE_MAJOR` in projenrc/build.ts; a test keeps the two equal).
 */
export const MIN_NODE_MAJOR = 24;

const STATIC_MEMBER = /^NODEJS_(\d+)_X$/;
const RUNTIME_NAME = /^nodejs(\d+)\.x$/;

/** The Node.js major of a Lambda runtime name (`nodejs24.x` -> 24), if it is one. */
export function nodeMajorOf(runtimeName: string): number | undefined {
  const m = RUNTIME_NAME.exec(runtimeName);
  return m ? Number(m[1]) : undefined;
}

/**
 * The newest Node.js runtime `runtimeClass` (aws-cdk-lib's `lambda.Runtime`) defines as a static
 * member `NODEJS_<n>_X`, and `nodejs24.x` if it defines none as new. Reads the class's own members,
 * not `Runtime.ALL`, which also lists every runtime an app happened to construct.
 */
export function newestNodeRuntime(runtimeClass: typeof lambda.Runtime = lambda.Runtime): lambda.Runtime {
  let newest: { major: number; runtime: lambda.Runtime } | undefined;
  for (const member of Object.getOwnPropertyNames(runtimeClass)) {
    const m = STATIC_MEMBER.exec(member);
    if (!m) continue;
    const runtime = (runtimeClass as unknown as Record<string, unknown>)[member];
    if (!(runtime instanceof lambda.Runtime) || runtime.family !== lambda.RuntimeFamily.NODEJS) continue;
    const major = nodeMajorOf(runtime.name);
    if (major === undefined || major !== Number(m[1])) continue;
    if (!newest || major > newest.major) newest = { major, runtime };
  }
  if (newest && newest.major >= MIN_NODE_MAJOR) return newest.runtime;
  return new lambda.Runtime(`nodejs${MIN_NODE_MAJOR}.x`, lambda.RuntimeFamily.NODEJS, { supportsInlineCode: true });
}

/** The runtime of a library function: the one given, else the newest (`newestNodeRuntime`). */
export function functionRuntime(given: lambda.Runtime | undefined): lambda.Runtime {
  return given ?? newestNodeRuntime();
}

/**
 * Checks a construct's `runtime` prop: a Node.js runtime, `nodejs24.x` or later. A runtime whose
 * name is a token (for example `determineLatestNodeRuntime`'s regional lookup) is not judged.
 */
export function validateRuntime(v: PropsValidator, runtime: lambda.Runtime | undefined, prop = 'runtime'): void {
  if (runtime === undefined || Token.isUnresolved(runtime.name)) return;
  const major = nodeMajorOf(runtime.name);
  const newest = newestNodeRuntime().name;
  if (runtime.family !== lambda.RuntimeFamily.NODEJS || major === undefined) {
    v.add(prop, runtime.name, 'must be a Node.js runtime (the library\'s functions are Node.js bundles)',
      `leave it out for the newest Node.js runtime (${newest} with this aws-cdk-lib), or give lambda.Runtime.NODEJS_${MIN_NODE_MAJOR}_X or later`);
  } else if (major < MIN_NODE_MAJOR) {
    v.add(prop, runtime.name, `must be nodejs${MIN_NODE_MAJOR}.x or later (the library's functions are built for Node.js ${MIN_NODE_MAJOR})`,
      `leave it out for the newest Node.js runtime (${newest} with this aws-cdk-lib), or give lambda.Runtime.NODEJS_${MIN_NODE_MAJOR}_X or later`);
  }
}
