export * from './events';
export * from './billing';
export * from './ingestor';
export * from './plans';
export * from './providers';
export * from './dashboard';
export * from './usage-api';
export * from './functions';
