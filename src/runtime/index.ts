/**
 * `cdk-saas-billing/runtime`: what your own Lambda handlers import (not constructs). Bundled at
 * build time into `runtime/index.js` of the npm package, with its declarations in
 * `runtime/index.d.ts` (projenrc/build-runtime-entry.ts); never compiled by jsii, so it is in no
 * other language's package.
 *
 * - `UsageReader`: the usage read contract of a `UsageIngestor`, for a function bound with
 *   `ingestor.bindUsageReader(fn)` (`UsageReader.fromEnvironment()`).
 * - `EntitlementReader`: a tenant's access and balances, for a function bound with
 *   `entitlements.bindEntitlementReader(fn)` (`EntitlementReader.fromEnvironment()`).
 *
 * It requires `@aws-sdk/client-dynamodb` (AWS SDK for JavaScript v3) at run time, which it does not
 * bundle: the Lambda Node.js runtime provides it; a bundler that bundles your handler must be
 * able to resolve it (install it, or mark `@aws-sdk/*` external as the runtime provides it).
 */
export { UsageReader } from '../ingestor/shared.lambda/usage-reader';
export type {
  ClosedWindow, ClosedWindowPage, OpenWindowTotal, ReadClosedWindowsOptions, ReadTenantClosedWindowsOptions, UsageReaderOptions,
} from '../ingestor/shared.lambda/usage-reader';
export type { Granularity } from '../ingestor/ingestor-contract';
export { EntitlementReader } from '../entitlements/shared.lambda/entitlement-reader';
