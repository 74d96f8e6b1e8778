export * from './dynamodb-billing';
export * from './stripe-billing/stripe-billing';
