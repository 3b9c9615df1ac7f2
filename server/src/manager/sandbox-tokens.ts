/**
 * sandboxd's tokens, derived so the state store holds nothing usable: a record keeps only a random
 * nonce, and the token is HMAC-SHA256(secret, `<sandboxId>:<nonce>`). Whoever reads Redis learns
 * nonces; only a process holding the secret (SANDBOX_TOKEN_SECRET, else one derived from
 * BEARER_TOKEN) can turn them into tokens. Every replica and worker must hold the same secret.
 */
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { type Config, REDIS_NEEDS_SECRET } from '../config/schema.js';
import type { SandboxRecord } from '../state/state-store.js';

/** Binds the secret derived from BEARER_TOKEN to this one use, so it is not the API token itself. */
const HKDF_INFO = 'runtime-sandbox sandbox tokens';
const SECRET_BYTES = 32;
/**
 * Starts the nonce of a token shared by a scope's sandboxes (SandboxTokens.shared); issued nonces
 * are base64url, which has no '.', so the two never meet.
 */
const SHARED_PREFIX = 'shared.';

export interface IssuedToken {
  /** Goes into the record. */
  nonce: string;
  /** Goes to sandboxd only. */
  token: string;
}

export class SandboxTokens {
  readonly #secret: Buffer;

  constructor(secret: Buffer) {
    this.#secret = secret;
  }

  /**
   * The secret per the settings: SANDBOX_TOKEN_SECRET; else HKDF of BEARER_TOKEN; else, for the
   * in-memory store only (its records die with the process), a random one. The config schema
   * refuses REDIS_ENABLED without either setting, since replicas must agree on the secret; and
   * WORKERS > 1 needs Redis, so a random secret never has to be shared between workers.
   */
  static fromConfig(
    config: Pick<Config, 'SANDBOX_TOKEN_SECRET' | 'BEARER_TOKEN' | 'REDIS_ENABLED'>,
  ): SandboxTokens {
    if (config.SANDBOX_TOKEN_SECRET !== undefined) {
      return new SandboxTokens(Buffer.from(config.SANDBOX_TOKEN_SECRET, 'utf8'));
    }
    if (config.BEARER_TOKEN !== undefined) {
      const key = hkdfSync('sha256', config.BEARER_TOKEN, Buffer.alloc(0), HKDF_INFO, SECRET_BYTES);
      return new SandboxTokens(Buffer.from(key));
    }
    if (config.REDIS_ENABLED) throw new Error(REDIS_NEEDS_SECRET);
    return new SandboxTokens(randomBytes(SECRET_BYTES));
  }

  /** A fresh nonce for the sandbox, and the token it yields. */
  issue(sandboxId: string): IssuedToken {
    const nonce = randomBytes(18).toString('base64url');
    return { nonce, token: this.derive(sandboxId, nonce) };
  }

  /**
   * The boot token of every sandbox in `scope` (e.g. a template's pods, which cannot each get their
   * own), and the nonce a record keeps while its sandboxd still expects that token. It is derived
   * under an empty sandbox id, which no record has, so it is no sandbox's own token.
   */
  shared(scope: string): IssuedToken {
    const nonce = `${SHARED_PREFIX}${scope}`;
    return { nonce, token: this.derive('', nonce) };
  }

  /** The token sandboxd currently expects from this record's sandbox. */
  tokenFor(record: Pick<SandboxRecord, 'id' | 'tokenNonce'>): string {
    const shared = record.tokenNonce.startsWith(SHARED_PREFIX);
    return this.derive(shared ? '' : record.id, record.tokenNonce);
  }

  private derive(sandboxId: string, nonce: string): string {
    return createHmac('sha256', this.#secret).update(`${sandboxId}:${nonce}`).digest('base64url');
  }
}
