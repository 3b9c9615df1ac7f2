/**
 * Host-wide names on Linux's abstract unix sockets (server/src/abstract-socket.ts): one holder at
 * a time, listed while held, free again once released.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { heldNames, holdName } from '../../server/src/abstract-socket.js';

describe('abstract socket names', () => {
  it('are held by one at a time, listed while held, and free once released', async () => {
    const prefix = `runtime-sandbox-test/${randomBytes(6).toString('hex')}/`;
    const first = await holdName(`${prefix}a`);
    expect(first).not.toBeNull();
    expect(await holdName(`${prefix}a`)).toBeNull();
    const second = await holdName(`${prefix}b`);
    expect((await heldNames(prefix)).sort()).toEqual([`${prefix}a`, `${prefix}b`]);

    await first?.release();
    expect(await heldNames(prefix)).toEqual([`${prefix}b`]);
    const again = await holdName(`${prefix}a`);
    expect(again).not.toBeNull();
    await again?.release();
    await second?.release();
    expect(await heldNames(prefix)).toEqual([]);
  });

  it('refuses a name longer than a socket path can hold', async () => {
    await expect(holdName('x'.repeat(107))).rejects.toThrow(/too long/);
  });
});
