export * from './dynamodb-billing';
