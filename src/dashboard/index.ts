export * from './billing-dashboard';
