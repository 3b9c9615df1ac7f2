/**
 * Pod IPs: 127.0.0.N, N from 2 upward, the lowest free one, reused once its pod is gone. Several
 * fake instances (other test files, other checkouts) share one machine, so each address is
 * claimed with a lock file naming the claiming process; a claim whose process is dead is stale
 * and taken over. Pods' twins 127.0.1.N, where nothing is published, stand in for a pod network
 * the caller cannot route to.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../docker-labels.js';

const FIRST = 2;
const LAST = 254;
const LOCK_DIR = join(tmpdir(), 'fake-kube-pod-addresses');

/** 127.0.0.N's twin 127.0.1.N: loopback too, but no pod's port is ever published there. */
export function unroutableTwin(address: string): string {
  return address.replace(/^127\.0\.0\./, '127.0.1.');
}

export class PodAddresses {
  private readonly held = new Set<string>();
  /** Addresses that turned out to be in use by something else (a bind failed); skipped from now on. */
  private readonly avoided = new Set<string>();

  constructor(private readonly instanceId: string) {
    mkdirSync(LOCK_DIR, { recursive: true });
  }

  /** The lowest free address, claimed; undefined when all are taken. */
  take(): string | undefined {
    for (let n = FIRST; n <= LAST; n += 1) {
      const address = `127.0.0.${n}`;
      if (this.held.has(address) || this.avoided.has(address)) continue;
      if (this.claim(address)) {
        this.held.add(address);
        return address;
      }
    }
    return undefined;
  }

  release(address: string): void {
    if (!this.held.delete(address)) return;
    try {
      unlinkSync(join(LOCK_DIR, address));
    } catch {
      // Already gone: nothing to release.
    }
  }

  /** Gives the address back and never hands it out again in this instance (a port on it was taken). */
  avoid(address: string): void {
    this.release(address);
    this.avoided.add(address);
  }

  releaseAll(): void {
    for (const address of [...this.held]) this.release(address);
  }

  private claim(address: string): boolean {
    const path = join(LOCK_DIR, address);
    const content = `${process.pid} ${this.instanceId}\n`;
    try {
      writeFileSync(path, content, { flag: 'wx' });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let owner: number;
    try {
      owner = Number(readFileSync(path, 'utf8').split(' ')[0]);
    } catch {
      return false;
    }
    if (processAlive(owner)) return false;
    // A dead process's claim: remove it and race for the address like anyone else.
    try {
      unlinkSync(path);
      writeFileSync(path, content, { flag: 'wx' });
      return true;
    } catch {
      return false;
    }
  }
}
