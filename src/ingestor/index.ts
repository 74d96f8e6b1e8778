export * from './ingestor';
export * from './usage-ingestor';
export * from './ledger-change-feed';
