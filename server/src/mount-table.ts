/** Reading this process's mount table (/proc/self/mountinfo). */
import { readFile } from 'node:fs/promises';

export interface MountEntry {
  mountPoint: string;
  /** The per-mount options (field 6), e.g. ["rw", "nosuid", "nodev"]. */
  options: string[];
}

/** The entries of a mountinfo text, in the order listed (the last one on a path is on top). */
export function parseMountTable(table: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of table.split('\n')) {
    // id parent major:minor root mount-point options ...; the mount point escapes spaces as \040.
    const fields = line.split(' ');
    const mountPoint = fields[4]?.replace(/\\([0-7]{3})/g, (_, octal: string) =>
      String.fromCharCode(Number.parseInt(octal, 8)),
    );
    if (mountPoint) entries.push({ mountPoint, options: (fields[5] ?? '').split(',') });
  }
  return entries;
}

/** The per-mount options of the mount whose mount point is exactly `path`, if there is one. */
export async function mountOptionsAt(path: string): Promise<string[] | undefined> {
  const entries = parseMountTable(await readFile('/proc/self/mountinfo', 'utf8'));
  return entries.findLast((entry) => entry.mountPoint === path)?.options;
}
