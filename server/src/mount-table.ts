/** Reading this process's mount table (/proc/self/mountinfo). */
import { readFile } from 'node:fs/promises';

export interface MountEntry {
  mountPoint: string;
  /** The per-mount options (field 6), e.g. ["rw", "nosuid", "nodev"]. */
  options: string[];
  /** The file system type, e.g. "ext4" (the field after the "-" that ends the optional fields). */
  fsType: string;
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
    const dash = fields.indexOf('-', 6);
    const fsType = dash < 0 ? '' : (fields[dash + 1] ?? '');
    if (mountPoint) entries.push({ mountPoint, options: (fields[5] ?? '').split(','), fsType });
  }
  return entries;
}

export async function mountTable(): Promise<MountEntry[]> {
  return parseMountTable(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** The mount whose mount point is exactly `path` (the top one), if there is one. */
export async function mountAt(path: string): Promise<MountEntry | undefined> {
  return (await mountTable()).findLast((entry) => entry.mountPoint === path);
}

/** The per-mount options of the mount whose mount point is exactly `path`, if there is one. */
export async function mountOptionsAt(path: string): Promise<string[] | undefined> {
  return (await mountAt(path))?.options;
}
