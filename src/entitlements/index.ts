export * from './entitlements';
export * from './entitlement-authorizer';
