/**
 * Helpers for the snapshot API tests: acquiring over HTTP, running shell in a sandbox, a workspace
 * with every kind of entry a snapshot must carry (a big incompressible file, modes 755/600/700/750,
 * symlinks to files, directories and nowhere, empty and nested directories, names with spaces), and
 * a fingerprint of a workspace to compare before and after a round trip.
 */
import { expect } from 'vitest';
import type { SnapshotRecord } from '../../server/src/snapshots/snapshot-store.js';
import type { ServerProcess } from '../../support/server-process.js';
import type { SandboxBackend } from '../support/backends.js';

export const MiB = 1024 * 1024;

export interface SandboxInfo {
  id: string;
  type: string;
  status: string;
}

export interface ErrorAnswer {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** POST /v1/sandboxes, expecting 201. */
export async function acquire(server: ServerProcess, body: Record<string, unknown> = {}): Promise<string> {
  const { status, body: answer } = await server.call<SandboxInfo & ErrorAnswer>(
    'POST',
    '/v1/sandboxes',
    body,
  );
  expect({ status, error: answer.error }).toEqual({ status: 201, error: undefined });
  return answer.id;
}

/** POST .../snapshots, expecting 201. */
export async function snapshot(
  server: ServerProcess,
  sandboxId: string,
  body: { key?: string; expectedHead?: string | null } = {},
): Promise<SnapshotRecord> {
  const { status, body: answer } = await server.call<SnapshotRecord & ErrorAnswer>(
    'POST',
    `/v1/sandboxes/${sandboxId}/snapshots`,
    body,
  );
  expect({ status, error: answer.error }).toEqual({ status: 201, error: undefined });
  return answer;
}

/** Runs `sh -c command` in the workspace and gives its stdout; fails the test on a non-zero exit. */
export async function sh(server: ServerProcess, sandboxId: string, command: string): Promise<string> {
  const { status, body } = await server.call<
    { exitCode: number; stdout: string; stderr: string } & ErrorAnswer
  >('POST', `/v1/sandboxes/${sandboxId}/exec`, { command });
  expect({ status, exitCode: body.exitCode, stderr: body.stderr, error: body.error }).toEqual({
    status: 200,
    exitCode: 0,
    stderr: '',
    error: undefined,
  });
  return body.stdout;
}

/** Fills the workspace: `bigMiB` of /dev/urandom in big.bin, plus a small tree of every entry kind. */
export async function makeWorkspace(server: ServerProcess, sandboxId: string, bigMiB: number): Promise<void> {
  await sh(
    server,
    sandboxId,
    [
      'set -e',
      `head -c ${bigMiB}M /dev/urandom > big.bin`,
      "mkdir -p nested/deeper/deepest nested/empty-inner empty-dir 'dir with space'",
      "printf '#!/bin/sh\\necho run\\n' > nested/run.sh && chmod 755 nested/run.sh",
      'printf secret > nested/deeper/private.key && chmod 600 nested/deeper/private.key',
      'echo leaf > nested/deeper/deepest/leaf.txt',
      "echo spaced > 'dir with space/file name.txt'",
      'ln -s nested/run.sh run-link',
      'ln -s ../../big.bin nested/deeper/big-link',
      'ln -s deepest nested/deeper/deepest-link',
      'ln -s no-such-file dangling-link',
      'chmod 700 nested/deeper && chmod 750 empty-dir',
    ].join('\n'),
  );
}

export interface Fingerprint {
  /** `%a %F %N` of every entry: mode (but a directory's setgid bit), kind, name and symlink target. */
  listing: string;
  /** sha256sum of every regular file. */
  hashes: string;
}

export async function fingerprint(server: ServerProcess, sandboxId: string): Promise<Fingerprint> {
  const listed = await sh(
    server,
    sandboxId,
    "find . -mindepth 1 | LC_ALL=C sort | xargs -r -d '\\n' stat -c '%a %F %N'",
  );
  // A pod's fsGroup makes its volume's directories setgid (kubelet's volume ownership) and new ones
  // inherit the bit, while a restore never sets a set-id bit (sandboxd's archive rule): on
  // Kubernetes a made 750 directory reads 2750, and its restored copy 750.
  const listing = listed.replace(/^2([0-7]{3} directory )/gm, '$1');
  const hashes = await sh(server, sandboxId, "find . -type f | LC_ALL=C sort | xargs -r -d '\\n' sha256sum");
  return { listing, hashes };
}

/** What makeWorkspace made, so a comparison of two fingerprints cannot pass on two empty workspaces. */
export function expectMadeWorkspace(print: Fingerprint): void {
  const lines = print.listing.split('\n');
  for (const line of [
    "644 regular file './big.bin'",
    "755 regular file './nested/run.sh'",
    "600 regular file './nested/deeper/private.key'",
    "700 directory './nested/deeper'",
    "750 directory './empty-dir'",
    "755 directory './nested/empty-inner'",
    "777 symbolic link './run-link' -> 'nested/run.sh'",
    "777 symbolic link './nested/deeper/big-link' -> '../../big.bin'",
    "777 symbolic link './nested/deeper/deepest-link' -> 'deepest'",
    "777 symbolic link './dangling-link' -> 'no-such-file'",
    "644 regular file './dir with space/file name.txt'",
  ]) {
    expect(lines).toContain(line);
  }
  expect(print.hashes).toMatch(/^[0-9a-f]{64} {2}\.\/big\.bin$/m);
}

/** Sandboxes of the deployment with a container or pod that no live record (warm, creating or claimed) owns. */
export async function straySandboxes(server: ServerProcess, backend: SandboxBackend): Promise<string[]> {
  const present = await backend.sandboxIds(server);
  const { body } = await server.call<{ sandboxes: SandboxInfo[] }>('GET', '/v1/sandboxes');
  const live = new Set(body.sandboxes.map((s) => s.id));
  return present.filter((id) => !live.has(id));
}

/** Ids of the sandboxes bound to callers. */
export async function claimedIds(server: ServerProcess): Promise<string[]> {
  const { body } = await server.call<{ sandboxes: SandboxInfo[] }>('GET', '/v1/sandboxes?status=claimed');
  return body.sandboxes.map((s) => s.id).sort();
}
