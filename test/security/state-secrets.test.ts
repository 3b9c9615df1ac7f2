/**
 * The state store holds no usable secret (issue 9): whoever can read Redis learns nothing sandboxd
 * accepts. A Redis-backed server acquires two sandboxes and keeps one warm; then every key in Redis
 * is read by type, every string in it (JSON decoded, `a:b` members split) becomes a candidate, and
 * each is tried as the bearer token on each sandbox's sandboxd directly: all must answer 401. A
 * positive control (the token derived with the test's secret) shows the same request would pass
 * with the real token, and the API itself keeps working. The unit part checks the derivation.
 */
import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { SandboxTokens } from '../../server/src/manager/sandbox-tokens.js';
import type { SandboxRecord } from '../../server/src/state/state-store.js';
import { waitForWarm } from '../../support/server-process.js';
import { keysOf, onRedis, SANDBOX_TOKEN_SECRET } from '../redis/support.js';
import { sandboxRecord } from '../state/record-fixture.js';
import { withRedis, withServer } from '../support/fixture.js';

const BEARER_TOKEN = 'state-secrets-test-bearer-token-0123456789';

/** Every string inside a JSON value, itself included. */
function stringsIn(value: unknown, out: string[]): void {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsIn(item, out);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      out.push(key);
      stringsIn(item, out);
    }
  }
}

/** A raw Redis string, plus what it holds if it is JSON, plus its `:`-separated parts. */
function expand(raw: string): string[] {
  const out = [raw, ...raw.split(':')];
  try {
    stringsIn(JSON.parse(raw), out);
  } catch {
    // Not JSON: the raw text is the candidate.
  }
  return out;
}

/** Every key, field, member and value in the Redis, by SCAN and a read fitting each key's type. */
async function everythingIn(client: Redis): Promise<{ keys: number; strings: string[] }> {
  const strings: string[] = [];
  let keys = 0;
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'COUNT', '500');
    cursor = next;
    for (const key of batch) {
      keys++;
      strings.push(...expand(key));
      const type = await client.type(key);
      let parts: string[];
      if (type === 'string') parts = [(await client.get(key)) ?? ''];
      else if (type === 'hash') parts = Object.entries(await client.hgetall(key)).flat();
      else if (type === 'list') parts = await client.lrange(key, 0, -1);
      else if (type === 'set') parts = await client.smembers(key);
      else if (type === 'zset') parts = await client.zrange(key, '0', '-1', 'WITHSCORES');
      else if (type === 'stream') parts = (await client.xrange(key, '-', '+')).flat(2);
      else throw new Error(`key ${key} has a type this test does not read: ${type}`);
      for (const part of parts) strings.push(...expand(part));
    }
  } while (cursor !== '0');
  return { keys, strings };
}

/** The status sandboxd answers to POST /exec with this bearer token. */
async function execStatus(endpoint: { host: string; port: number }, token: string): Promise<number> {
  const response = await fetch(`http://${endpoint.host}:${endpoint.port}/exec`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ command: ['true'] }),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('SandboxTokens', () => {
  const tokens = new SandboxTokens(Buffer.from('unit-test-sandbox-token-secret-0123456789'));

  it('derives a different token per sandbox and per nonce, the same one again for a record', () => {
    const first = tokens.issue('sandbox-a');
    const second = tokens.issue('sandbox-a');
    expect(second.nonce).not.toBe(first.nonce);
    expect(second.token).not.toBe(first.token);
    expect(tokens.tokenFor({ id: 'sandbox-b', tokenNonce: first.nonce })).not.toBe(first.token);
    expect(tokens.tokenFor({ id: 'sandbox-a', tokenNonce: first.nonce })).toBe(first.token);
    const other = new SandboxTokens(Buffer.from('another-sandbox-token-secret-0123456789'));
    expect(other.tokenFor({ id: 'sandbox-a', tokenNonce: first.nonce })).not.toBe(first.token);
  });

  it('takes SANDBOX_TOKEN_SECRET, else one derived from BEARER_TOKEN, else a random one', () => {
    const record = { id: 'sandbox-a', tokenNonce: 'nonce-1' };
    const bySecret = (secret: string) =>
      SandboxTokens.fromConfig({ SANDBOX_TOKEN_SECRET: secret, BEARER_TOKEN, REDIS_ENABLED: true });
    const byBearer = (bearer: string) =>
      SandboxTokens.fromConfig({
        SANDBOX_TOKEN_SECRET: undefined,
        BEARER_TOKEN: bearer,
        REDIS_ENABLED: true,
      });
    const random = () =>
      SandboxTokens.fromConfig({
        SANDBOX_TOKEN_SECRET: undefined,
        BEARER_TOKEN: undefined,
        REDIS_ENABLED: false,
      });
    // Replicas with the same settings agree; other settings give other tokens.
    expect(bySecret(SANDBOX_TOKEN_SECRET).tokenFor(record)).toBe(
      bySecret(SANDBOX_TOKEN_SECRET).tokenFor(record),
    );
    expect(byBearer(BEARER_TOKEN).tokenFor(record)).toBe(byBearer(BEARER_TOKEN).tokenFor(record));
    expect(byBearer(`${BEARER_TOKEN}x`).tokenFor(record)).not.toBe(byBearer(BEARER_TOKEN).tokenFor(record));
    expect(bySecret(SANDBOX_TOKEN_SECRET).tokenFor(record)).not.toBe(byBearer(BEARER_TOKEN).tokenFor(record));
    // The HKDF step: the key is not the API token used as is.
    expect(byBearer(BEARER_TOKEN).tokenFor(record)).not.toBe(bySecret(BEARER_TOKEN).tokenFor(record));
    expect(random().tokenFor(record)).not.toBe(random().tokenFor(record));
    expect(() =>
      SandboxTokens.fromConfig({
        SANDBOX_TOKEN_SECRET: undefined,
        BEARER_TOKEN: undefined,
        REDIS_ENABLED: true,
      }),
    ).toThrow(/REDIS_ENABLED needs SANDBOX_TOKEN_SECRET or BEARER_TOKEN/);
  });

  it('leaves no field of a record equal to, or containing, the live token', () => {
    const { nonce, token } = tokens.issue('sandbox-c');
    const record: SandboxRecord = sandboxRecord({ id: 'sandbox-c', tokenNonce: nonce });
    expect(tokens.tokenFor(record)).toBe(token);
    const strings: string[] = [];
    stringsIn(record, strings);
    expect(strings.length).toBeGreaterThan(10);
    for (const value of strings) expect(value).not.toContain(token);
    expect(JSON.stringify(record)).not.toContain(token);
  });
});

describe('what the Redis state store holds', () => {
  const { redis, client } = withRedis();
  const server = withServer('rsbx-sec-secrets', {
    start: onRedis(redis),
    ports: 50,
    env: { POOL_SIZE: '1', BEARER_TOKEN },
  });
  const DEPLOYMENT = server.deployment.id;
  const acquired: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      await waitForWarm(server, 'base', 1);
      const { status, body } = await server.call<{ id: string }>('POST', '/v1/sandboxes', {
        sessionId: `secrets-${i}`,
        env: { MARKER: `marker-${i}` },
        metadata: { owner: `agent-${i}` },
      });
      expect(status, JSON.stringify(body)).toBe(201);
      acquired.push(body.id);
    }
    // One more stays warm, still on its boot token.
    await waitForWarm(server, 'base', 1);
  });

  it('holds nothing sandboxd accepts as a token, for claimed and warm sandboxes alike', async () => {
    const { keys, strings } = await everythingIn(client);
    // Header values must be visible ASCII; tokens and nonces are base64url, so nothing fitting is lost.
    const candidates = [...new Set(strings)].filter((s) => /^[\x21-\x7e]+$/.test(s));

    const prefix = `rsbx:${DEPLOYMENT}:sbx:`;
    const recordKeys = (await keysOf(client, DEPLOYMENT)).filter((key) => key.startsWith(prefix));
    const sandboxes = await Promise.all(
      recordKeys.map(async (key) => {
        const fields = await client.hgetall(key);
        const json = (name: string): unknown => JSON.parse(fields[name] ?? 'null');
        return {
          id: key.slice(prefix.length),
          status: json('status') as SandboxRecord['status'],
          endpoint: json('endpoint') as SandboxRecord['endpoint'],
          tokenNonce: json('tokenNonce') as string,
        };
      }),
    );
    expect(
      sandboxes
        .filter((s) => s.status === 'claimed')
        .map((s) => s.id)
        .sort(),
    ).toEqual([...acquired].sort());
    expect(sandboxes.filter((s) => s.status === 'warm')).toHaveLength(1);
    // The scan saw the records (their ids and nonces), so the attempts below are not vacuous.
    for (const sandbox of sandboxes) {
      expect(candidates).toContain(sandbox.id);
      expect(candidates).toContain(sandbox.tokenNonce);
    }
    expect(keys).toBeGreaterThanOrEqual(sandboxes.length);
    expect(candidates.length).toBeGreaterThanOrEqual(40);

    const derive = new SandboxTokens(Buffer.from(SANDBOX_TOKEN_SECRET));
    let attempts = 0;
    for (const sandbox of sandboxes) {
      if (!sandbox.endpoint) throw new Error(`sandbox ${sandbox.id} has no endpoint in Redis`);
      // Control: the real token, derived from the nonce with the secret Redis does not hold, passes.
      const live = derive.tokenFor(sandbox);
      expect(await execStatus(sandbox.endpoint, live), `live token of ${sandbox.id}`).toBe(200);
      expect(candidates).not.toContain(live);
      for (const candidate of candidates) {
        expect(await execStatus(sandbox.endpoint, candidate), `candidate ${candidate}`).toBe(401);
        attempts++;
      }
    }
    expect(attempts).toBe(candidates.length * 3);

    // Neither secret is stored anywhere, nor logged.
    const everything = strings.join('\n');
    expect(everything).not.toContain(SANDBOX_TOKEN_SECRET);
    expect(everything).not.toContain(BEARER_TOKEN);
    const logs = JSON.stringify(server.logs());
    expect(logs).not.toContain(SANDBOX_TOKEN_SECRET);
    expect(logs).not.toContain(BEARER_TOKEN);
  });

  it('still serves the sandboxes through the API', async () => {
    for (const [i, id] of acquired.entries()) {
      const exec = await server.call<{ exitCode: number; stdout: string }>(
        'POST',
        `/v1/sandboxes/${id}/exec`,
        {
          command: 'echo "$MARKER"',
        },
      );
      expect(exec.status).toBe(200);
      expect(exec.body).toMatchObject({ exitCode: 0, stdout: `marker-${i}\n` });
    }
  });
});
