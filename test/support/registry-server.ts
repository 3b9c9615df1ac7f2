/**
 * A real image registry for tests: Debian's docker-registry (the CNCF distribution registry) as a
 * child process on a loopback port, storing in its own temp dir. The Docker engine pushes to a
 * registry on 127.0.0.0/8 over plain HTTP without being told to. It fails loudly when
 * docker-registry is missing (scripts/bootstrap.sh installs it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../../support/eventually.js';
import { allocatePortRange } from './port-ranges.js';

export interface RegistryServer {
  /** `127.0.0.1:<port>`, as RUNTIME_SANDBOX_REGISTRY takes it. */
  readonly address: string;
  /** GET on the registry's HTTP API (`/v2/...`), parsed as JSON. */
  get(path: string): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startRegistryServer(): Promise<RegistryServer> {
  const ports = allocatePortRange(1);
  const address = `127.0.0.1:${ports.first}`;
  const dir = mkdtempSync(join(tmpdir(), 'rsbx-test-registry-'));
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: ${address}\n`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT' ? new Error('docker-registry is not installed: run scripts/bootstrap.sh') : err,
      ),
    ),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
    ports.release();
  };
  const get = async (path: string) => (await fetch(`http://${address}${path}`)).json();
  try {
    await Promise.race([
      spawnError,
      eventually(
        `the registry on ${address} to answer`,
        () =>
          fetch(`http://${address}/v2/`).then(
            (response) => (response.ok ? true : undefined),
            () =>
              child.exitCode !== null
                ? Promise.reject(new Error(`docker-registry exited:\n${output}`))
                : undefined,
          ),
        10_000,
        50,
      ),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, get, stop };
}
