export * from './ingestor';
export * from './usage-ingestor';
