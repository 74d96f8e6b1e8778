/**
 * JSON Web Token verification for the entitlement authorizer, with Node.js's
 * own crypto: the signature (RS256 or ES256) against the issuer's JSON Web Key
 * Set (found through its OpenID configuration, as Cognito and other OpenID
 * providers publish it), the issuer, the audience (`aud`, or `client_id` for
 * Cognito access tokens), and the time claims (`exp`, `nbf`) with 60 seconds of
 * clock skew. The keys are kept per execution environment and fetched again
 * when a token names a key id not known yet (at most once a minute).
 */
import { createPublicKey, KeyObject, verify } from 'crypto';

/** A token refused, and why (never logged with the token). */
export class JwtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwtError';
  }
}

const SKEW_SECONDS = 60;
const REFETCH_MS = 60_000;

function decodePart(part: string | undefined, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value;
  } catch {
    // below
  }
  throw new JwtError(`the token's ${what} is not base64url JSON`);
}

/** Verifies tokens of one issuer for some audiences. */
export class JwtVerifier {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = 0;

  constructor(
    private readonly issuer: string,
    private readonly audiences: readonly string[],
    private readonly fetchJson: (url: string) => Promise<any> = defaultFetch,
  ) {}

  /** The token's claims, once verified; throws a `JwtError` otherwise. */
  public async verify(token: string, nowMs: number = Date.now()): Promise<Record<string, unknown>> {
    const parts = token.split('.');
    if (parts.length !== 3) throw new JwtError('not a JSON Web Token (three parts)');
    const header = decodePart(parts[0], 'header');
    const claims = decodePart(parts[1], 'payload');
    const alg = header.alg;
    if (alg !== 'RS256' && alg !== 'ES256') throw new JwtError(`algorithm ${JSON.stringify(alg)} is not accepted (RS256, ES256)`);
    const key = await this.key(String(header.kid ?? ''), nowMs);
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2], 'base64url');
    const ok = alg === 'RS256'
      ? verify('RSA-SHA256', data, key, signature)
      : verify('SHA256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    if (!ok) throw new JwtError('the signature does not verify');
    if (claims.iss !== this.issuer) throw new JwtError('the issuer is not the one expected');
    const audiences = [claims.aud, claims.client_id].flat().filter((a) => typeof a === 'string');
    if (!audiences.some((a) => this.audiences.includes(a as string))) throw new JwtError('the audience is not one expected');
    const now = nowMs / 1000;
    if (typeof claims.exp !== 'number' || now > claims.exp + SKEW_SECONDS) throw new JwtError('the token has expired');
    if (typeof claims.nbf === 'number' && now < claims.nbf - SKEW_SECONDS) throw new JwtError('the token is not valid yet');
    return claims;
  }

  private async key(kid: string, nowMs: number): Promise<KeyObject> {
    let key = this.keys.get(kid);
    if (!key && nowMs - this.fetchedAt >= REFETCH_MS) {
      this.fetchedAt = nowMs;
      this.keys = await this.fetchKeys();
      key = this.keys.get(kid);
    }
    if (!key) throw new JwtError('the token names a key the issuer does not publish');
    return key;
  }

  private async fetchKeys(): Promise<Map<string, KeyObject>> {
    const base = this.issuer.replace(/\/$/, '');
    let jwksUri = `${base}/.well-known/jwks.json`;
    try {
      const config = await this.fetchJson(`${base}/.well-known/openid-configuration`);
      if (typeof config?.jwks_uri === 'string') jwksUri = config.jwks_uri;
    } catch {
      // No OpenID configuration: the conventional JWKS location (Cognito's).
    }
    const jwks = await this.fetchJson(jwksUri);
    const keys = new Map<string, KeyObject>();
    for (const jwk of (jwks?.keys ?? []) as Array<Record<string, unknown>>) {
      if (typeof jwk.kid !== 'string' || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
      try {
        keys.set(jwk.kid, createPublicKey({ key: jwk as any, format: 'jwk' }));
      } catch {
        // a key Node.js cannot read: not one of ours
      }
    }
    return keys;
  }
}

async function defaultFetch(url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.json();
}
