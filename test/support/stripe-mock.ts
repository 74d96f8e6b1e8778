/**
 * Test support for Stripe: stripe-mock found on PATH or installed into the
 * project-local `.tools/go` (`go install github.com/stripe/stripe-mock@v0.197.0`)
 * when missing, started on free ports, and the recording, fault-injecting,
 * state-keeping proxy in front of it. The implementation lives in
 * `examples/stripe-local.ts`, shared with `npx projen demo:stripe` (which must
 * not import test code) and the bench.
 */
export { CrashPlan, ensureStripeMock, startStripeMock, StripeProxy, STRIPE_MOCK_VERSION } from '../../examples/stripe-local';
export type { RecordedRequest, StripeFault, StripeMock } from '../../examples/stripe-local';
