/**
 * Where the push reads closed usage windows: the usage read contract of the
 * ingestor (`UsageReader.readClosedWindows`, bound by `ingestor.bindUsageReader`).
 */
import type { UsageReader } from '../../../ingestor/shared.lambda/usage-reader';

export type { ClosedWindow, ClosedWindowPage } from '../../../ingestor/shared.lambda/usage-reader';

/** What the push needs of the usage read contract. */
export type ClosedWindowSource = Pick<UsageReader, 'readClosedWindows'>;
