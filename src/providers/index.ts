export * from './dynamodb-billing/dynamodb-billing';
export * from './stripe-billing/stripe-billing';
export * from './marketplace-billing/marketplace-billing';
