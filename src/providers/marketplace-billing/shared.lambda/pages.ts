/**
 * What the fulfillment URL answers the buyer's browser: a redirect to the registration page, or
 * a short page that says what went wrong and what to do. Never the token, never a stack trace.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
};

/** Why a registration was not made. */
export type PageReason = 'NO_TOKEN' | 'INVALID_TOKEN' | 'EXPIRED_TOKEN' | 'REPLAYED_TOKEN' | 'OTHER_PRODUCT' | 'UNAVAILABLE' | 'METHOD';

const PAGES: Record<PageReason, { status: number; title: string; text: string }> = {
  NO_TOKEN: {
    status: 400,
    title: 'No registration token',
    text: 'This address is where AWS Marketplace sends you after you subscribe. Open the product in AWS Marketplace and choose "Set up your account".',
  },
  INVALID_TOKEN: {
    status: 400,
    title: 'This registration link is not valid',
    text: 'AWS Marketplace did not recognize the registration token. Open the product in AWS Marketplace and choose "Set up your account" again.',
  },
  EXPIRED_TOKEN: {
    status: 400,
    title: 'This registration link has expired',
    text: 'Registration links from AWS Marketplace are valid for a few hours. Open the product in AWS Marketplace and choose "Set up your account" to get a new one.',
  },
  REPLAYED_TOKEN: {
    status: 409,
    title: 'This registration link was already used',
    text: 'Each registration link works once. If you did not finish registering, open the product in AWS Marketplace and choose "Set up your account" to get a new link.',
  },
  OTHER_PRODUCT: {
    status: 403,
    title: 'This registration is for another product',
    text: 'The registration token belongs to another AWS Marketplace product. Open the product you subscribed to and choose "Set up your account".',
  },
  UNAVAILABLE: {
    status: 503,
    title: 'Registration is briefly unavailable',
    text: 'We could not reach AWS Marketplace to confirm your subscription. Please go back and submit the page again in a minute; your link stays valid.',
  },
  METHOD: {
    status: 405,
    title: 'Method not allowed',
    text: 'AWS Marketplace posts to this address. Open the product in AWS Marketplace and choose "Set up your account".',
  },
};

/** A page for a refusal. */
export function page(reason: PageReason): APIGatewayProxyStructuredResultV2 {
  const p = PAGES[reason];
  const body = '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
    + `<title>${p.title}</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto">`
    + `<h1>${p.title}</h1><p>${p.text}</p><p><small>Reference: ${reason}</small></p></body></html>`;
  return { statusCode: p.status, headers: { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' }, body };
}

/** The redirect to the registration page with the registration id in `field`. */
export function redirect(pageUrl: string, field: string, registrationId: string): APIGatewayProxyStructuredResultV2 {
  const url = new URL(pageUrl);
  url.searchParams.set(field, registrationId);
  return { statusCode: 302, headers: { ...SECURITY_HEADERS, location: url.toString() }, body: '' };
}
