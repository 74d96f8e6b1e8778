import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one Powertools logger of a handler (service from `POWERTOOLS_SERVICE_NAME`).
 * Never log secrets, e-mail addresses, names or request bodies.
 */
export const logger = new Logger();
