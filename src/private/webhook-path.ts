import { Token } from 'aws-cdk-lib';

const SEGMENT_CHARS = 'letters, digits and - . _ ~';
const SEGMENT = /^[A-Za-z0-9\-._~]+$/;

/** What is wrong with a webhook path, and how to fix it. */
export interface WebhookPathProblem {
  readonly problem: string;
  readonly fix: string;
}

/**
 * The one rule for a webhook path under `/billing/`: segments of letters,
 * digits and `-._~`, joined by single slashes, with no leading, trailing or
 * double slash (`webhook`, `stripe/events`). Unresolved tokens are not judged.
 *
 * @returns the problem, or undefined when the path is valid
 */
export function webhookPathProblem(path: unknown): WebhookPathProblem | undefined {
  if (typeof path !== 'string') {
    return { problem: 'must be a string', fix: "give a path such as 'webhook' (mounts POST /billing/webhook)" };
  }
  if (Token.isUnresolved(path)) return undefined;
  if (path.length === 0) {
    return { problem: 'is empty', fix: "give a path such as 'webhook' (mounts POST /billing/webhook)" };
  }
  if (path.startsWith('/') || path.endsWith('/') || path.includes('//')) {
    const fixed = path.split('/').filter((s) => s.length > 0).join('/');
    return {
      problem: `would mount POST /billing/${path}`,
      fix: `remove leading, trailing and double slashes${fixed ? ` (for example '${fixed}')` : ''}`,
    };
  }
  const bad = path.split('/').find((s) => !SEGMENT.test(s));
  if (bad !== undefined) {
    const chars = [...new Set(bad.replace(/[A-Za-z0-9\-._~]/g, ''))].map((c) => JSON.stringify(c)).join(', ');
    return { problem: `has characters a URL path segment cannot hold (${chars})`, fix: `use ${SEGMENT_CHARS} only, segments joined by single slashes` };
  }
  return undefined;
}

/** The full route path of a webhook path: `/billing/<path>`. */
export function webhookRoutePath(path: string): string {
  return `/billing/${path}`;
}
