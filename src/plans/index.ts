export * from './plan';
export * from './billing-plans';
