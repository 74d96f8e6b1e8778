/**
 * The one identifier rule: what a tenant id, a metric name and a usage record
 * id may be, applied alike by the usage ingestor (a record breaking it is
 * quarantined, never metered), every billing provider (its lifecycle handlers
 * refuse the event; its construct refuses a metric in its props) and the usage
 * API (a 400, or a 403 for a tenant token).
 *
 * An identifier is 1 to `IDENTIFIER_MAX_LENGTH[kind]` characters of ASCII
 * letters, digits and `_ - . : @ + =`, and is neither `.` nor `..`. Identifiers
 * are case-sensitive: `Acme` and `acme` are two tenants.
 *
 * Why these characters, and no others (each one is what a billing system or a
 * layout can carry as it is, with no escaping anywhere):
 * - `#` separates the parts of DynamoDB keys (`CUSTOMER#<tenantId>`,
 *   `<windowStart>#<tenantId>#<id>`, `CHARGE#...#<metric>`).
 * - Quotes and backslashes would need escaping in Stripe's search query
 *   (`metadata['tenantId']:'<tenantId>'`, https://docs.stripe.com/search#search-query-language).
 * - `/` and `%`: API Gateway HTTP APIs decode the request path before routing and
 *   before the handler sees it (`%2F` arrives as `/`; see
 *   https://github.com/middleapi/standard-server/pull/93), so a tenant id with
 *   `/` could not be one path segment of the usage API; `.` and `..` are path
 *   segments a URL resolves away.
 * - Spaces, non-ASCII and control characters: invisible or look-alike
 *   differences (NFC vs NFD, a trailing space) would make two tenants of one.
 * - At most 128 characters for tenant ids and metric names (the ingestor keeps
 *   each ledger item under 1 KB; Stripe metadata values take 500), 256 for record ids.
 *
 * Contract module: no AWS SDK, imported by constructs and handlers alike.
 */

/** The kinds of identifier the rule covers. */
export type IdentifierKind = 'tenantId' | 'metric' | 'recordId';

/** Longest identifier of each kind, in characters (ASCII: as many bytes). */
export const IDENTIFIER_MAX_LENGTH: Record<IdentifierKind, number> = {
  tenantId: 128,
  metric: 128,
  recordId: 256,
};

/** The characters an identifier may hold, as messages name them. */
export const IDENTIFIER_CHARACTERS = 'ASCII letters, digits and _ - . : @ + =';

const IDENTIFIER = /^[A-Za-z0-9_.:@+=-]+$/;

/** The rule for one kind, as a predicate of an error message: `must be 1 to 128 characters of ...`. */
export function identifierRule(kind: IdentifierKind): string {
  return `must be 1 to ${IDENTIFIER_MAX_LENGTH[kind]} characters of ${IDENTIFIER_CHARACTERS} (not '.' or '..')`;
}

/** Whether a value is a valid identifier of a kind. */
export function isIdentifier(kind: IdentifierKind, value: unknown): value is string {
  return typeof value === 'string'
    && value.length >= 1
    && value.length <= IDENTIFIER_MAX_LENGTH[kind]
    && IDENTIFIER.test(value)
    && value !== '.'
    && value !== '..';
}

/** Whether a value is a valid tenant id. */
export function isTenantId(value: unknown): value is string {
  return isIdentifier('tenantId', value);
}

/** Whether a value is a valid metric name. */
export function isMetricName(value: unknown): value is string {
  return isIdentifier('metric', value);
}

/**
 * What is wrong with a value as an identifier of a kind, in words that never
 * repeat the value (callers that may show it do so themselves); undefined when it is valid.
 */
export function identifierProblem(kind: IdentifierKind, value: unknown): string | undefined {
  if (isIdentifier(kind, value)) return undefined;
  if (typeof value !== 'string') return `${kind} must be a string that ${identifierRule(kind).replace(/^must be/, 'is')}`;
  if (value.length === 0) return `${kind} must not be empty: it ${identifierRule(kind)}`;
  if (value.length > IDENTIFIER_MAX_LENGTH[kind]) return `${kind} ${identifierRule(kind)} (it has ${value.length})`;
  const bad = [...new Set([...value].filter((c) => !/^[A-Za-z0-9_.:@+=-]$/.test(c)))];
  if (bad.length === 0) return `${kind} ${identifierRule(kind)}`; // '.' or '..'
  return `${kind} ${identifierRule(kind)}; it holds ${describeCharacters(bad)}`;
}

/** Characters as a message names them: `a space`, `'#'`, `U+00E9`. */
function describeCharacters(chars: string[]): string {
  const shown = chars.slice(0, 5).map((c) => {
    if (c === ' ') return 'a space';
    const code = c.codePointAt(0)!;
    if (code < 0x21 || code > 0x7e) return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
    return `'${c}'`;
  });
  return shown.join(', ') + (chars.length > 5 ? ` and ${chars.length - 5} more` : '');
}
