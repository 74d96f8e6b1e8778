export * from './billing';
export * from './billing-provider';
