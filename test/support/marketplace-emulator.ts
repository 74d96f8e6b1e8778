/**
 * Test support for AWS Marketplace: the emulator (`examples/marketplace-local.ts`, shared with
 * `npx projen demo:marketplace`, which must not import test code) and, while the Marketplace SDK
 * packages are not installed, their stand-in for the bundled handlers (jest resolves modules
 * itself: a virtual mock, registered only when the real package is missing).
 */
import { hasRealPackage, STAND_IN_MODULES, useMarketplaceSdkStandIn } from '../../examples/marketplace-sdk-standin';

export * from '../../examples/marketplace-local';

/** Lets the bundled handlers `require()` the Marketplace SDK (the stand-in until the packages are installed). */
export function useMarketplaceSdk(): void {
  if (typeof jest === 'undefined') return useMarketplaceSdkStandIn(); // outside jest (the bench): Node.js resolves modules
  for (const [name, module] of Object.entries(STAND_IN_MODULES)) {
    if (!hasRealPackage(name)) jest.doMock(name, () => module, { virtual: true });
  }
}
