export * from './library-functions';
