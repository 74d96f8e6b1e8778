/**
 * Preloaded (`node -r`) by test/compat/run.ts before the example app: every `require` of
 * aws-cdk-lib or constructs, from any module (the library's sources, the examples, cdk-nag),
 * resolves in the scratch install named by `CDK_COMPAT_DIR` instead of the project's
 * node_modules. So the library runs on another aws-cdk-lib exactly as in a user's app, where
 * the app's aws-cdk-lib is the only one.
 */
import Module from 'module';

const dir = process.env.CDK_COMPAT_DIR;
if (!dir) throw new Error('test/compat/use-aws-cdk-lib.ts: CDK_COMPAT_DIR is not set');

type Resolve = (request: string, parent: unknown, isMain: boolean, options?: { paths?: string[] }) => string;
const moduleInternals = Module as unknown as { _resolveFilename: Resolve };
const original = moduleInternals._resolveFilename;
moduleInternals._resolveFilename = function resolveInCompatDir(request, parent, isMain, options) {
  if (/^(aws-cdk-lib|constructs)(\/|$)/.test(request)) return original.call(this, request, parent, isMain, { paths: [dir] });
  return original.call(this, request, parent, isMain, options);
};
