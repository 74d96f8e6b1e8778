export * from './usage-api';
