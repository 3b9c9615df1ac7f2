/**
 * PORT_RANGE slices for test servers, collision-free across test files, vitest workers and
 * checkouts running at the same time: a slice is held by a lock file created with O_EXCL that
 * holds the holder's pid, and a lock whose pid is dead is reclaimed. 40000-47999 is a band no
 * hand-picked range of the older tests and no default PORT_RANGE uses.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const FIRST_PORT = 40_000;
const LAST_PORT = 47_999;
/** Ports per slice; the largest any test asks for. */
export const SLICE_SIZE = 100;
const LOCK_DIR = '/tmp/rsbx-port-ranges';

export interface PortRange {
  /** PORT_RANGE as the server reads it, e.g. "40100-40119". */
  readonly range: string;
  readonly first: number;
  readonly last: number;
  release(): void;
}

const held = new Set<string>();
process.once('exit', () => {
  for (const lock of held) releaseLock(lock);
});

/** The first `size` ports of a free slice, held until `release()` or until this process ends. */
export function allocatePortRange(size = 20): PortRange {
  if (size < 1 || size > SLICE_SIZE) throw new Error(`a port range holds 1-${SLICE_SIZE} ports, not ${size}`);
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o1777 });
  for (let first = FIRST_PORT; first + SLICE_SIZE - 1 <= LAST_PORT; first += SLICE_SIZE) {
    const lock = join(LOCK_DIR, `${first}.pid`);
    if (!tryLock(lock)) continue;
    held.add(lock);
    const last = first + size - 1;
    return {
      range: `${first}-${last}`,
      first,
      last,
      release: () => {
        held.delete(lock);
        releaseLock(lock);
      },
    };
  }
  throw new Error(`every port slice in ${FIRST_PORT}-${LAST_PORT} is held (locks in ${LOCK_DIR})`);
}

function tryLock(lock: string): boolean {
  if (createLock(lock)) return true;
  if (holderAlive(lock)) return false;
  // Reclaiming a dead holder's lock: under a second O_EXCL lock so that two reclaimers cannot
  // both remove it (the second would remove the first's fresh lock).
  const reclaim = `${lock}.reclaim`;
  if (!createLock(reclaim)) return false;
  try {
    if (holderAlive(lock)) return false;
    rmSync(lock, { force: true });
    return createLock(lock);
  } finally {
    unlinkSync(reclaim);
  }
}

function createLock(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  writeSync(fd, String(process.pid));
  closeSync(fd);
  return true;
}

/** Whether the pid in the lock is a live process; a lock being written (empty) counts as live. */
function holderAlive(lock: string): boolean {
  let pid: number;
  try {
    const text = readFileSync(lock, 'utf8');
    if (text === '') return true;
    pid = Number(text);
  } catch {
    return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseLock(lock: string): void {
  try {
    if (readFileSync(lock, 'utf8') === String(process.pid)) unlinkSync(lock);
  } catch {
    // Already gone.
  }
}
