/** Tables in the emulator with the synthesized schemas: shared with the local flow. */
export * from '../../examples/local-flow/tables';
