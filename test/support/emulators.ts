/**
 * The AWS API emulator helpers live with the local flow (`examples/local-flow/`),
 * which `npx projen demo:local` runs outside the test suite; tests use the same ones.
 */
export * from '../../examples/local-flow/emulators';
