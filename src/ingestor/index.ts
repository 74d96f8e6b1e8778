export * from './ingestor';
