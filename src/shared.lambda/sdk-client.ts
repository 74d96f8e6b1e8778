/**
 * The one factory of AWS SDK clients in the library's handlers and in the `cdk-saas-billing/runtime`
 * entry point: a client per SDK client class per execution environment, reused across
 * invocations. The SDK reads the region and `AWS_ENDPOINT_URL*` (tests point it at an emulator)
 * from the environment. No SDK import here: the runtime entry point bundles this module and
 * requires only the client packages its own code uses (`aws-clients.ts` adds the document client).
 */

const clients = new Map<unknown, unknown>();

/** How many attempts the SDK makes at a throttled or failed call. */
export const SDK_MAX_ATTEMPTS = 6;

/** The shared client of an SDK client class (`sdkClient(EventBridgeClient)`). */
export function sdkClient<T>(Ctor: new (config: { maxAttempts?: number }) => T, config: { maxAttempts?: number } = {}): T {
  let client = clients.get(Ctor) as T | undefined;
  if (!client) {
    client = new Ctor({ maxAttempts: SDK_MAX_ATTEMPTS, ...config });
    clients.set(Ctor, client);
  }
  return client;
}
