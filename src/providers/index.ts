export * from './dynamodb-billing/dynamodb-billing';
