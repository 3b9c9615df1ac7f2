/**
 * A bearer token check, for sandboxd (the boot token until /init, then the caller-bound one) and
 * for the server's BEARER_TOKEN. Compares are constant-time over fixed-length digests, so neither
 * the token nor its length leaks.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SANDBOXD_AUTHORIZATION_HEADER } from './sandboxd.js';

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** Request headers as Node gives them (lower-case names). */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

export class TokenGate {
  private expected: Buffer;

  constructor(bootToken: string) {
    this.expected = digest(bootToken);
  }

  /** Whether an `Authorization` header carries the current token. */
  admits(authorization: string | undefined): boolean {
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    // An absent or malformed header is still compared, against nothing, so all refusals cost the same.
    const given = digest(match?.[1] ?? '');
    return timingSafeEqual(given, this.expected) && match !== null;
  }

  /**
   * Whether a request to sandboxd carries the current token: in SANDBOXD_AUTHORIZATION_HEADER when
   * that header is present (then `Authorization` belongs to a proxy and is not looked at), else in
   * `Authorization`. One header is checked, once: a request never gets two tries.
   */
  admitsRequest(headers: RequestHeaders): boolean {
    const dedicated = headers[SANDBOXD_AUTHORIZATION_HEADER];
    const chosen = dedicated === undefined ? headers.authorization : dedicated;
    // Node joins repeated headers it does not know; an array (or anything odd) is refused as malformed.
    return this.admits(typeof chosen === 'string' ? chosen : '');
  }

  /** From now on only `token` is accepted. */
  rotate(token: string): void {
    this.expected = digest(token);
  }
}
