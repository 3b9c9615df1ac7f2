/**
 * A bearer token check, for sandboxd (the boot token until /init, then the caller-bound one) and
 * for the server's BEARER_TOKEN. Compares are constant-time over fixed-length digests, so neither
 * the token nor its length leaks.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

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

  /** From now on only `token` is accepted. */
  rotate(token: string): void {
    this.expected = digest(token);
  }
}
