/** Reading this process's mount table (/proc/self/mountinfo). */
import { readFile } from 'node:fs/promises';

/** The per-mount options of the mount whose mount point is exactly `path`, if there is one. */
export async function mountOptionsAt(path: string): Promise<string[] | undefined> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  let found: string[] | undefined;
  for (const line of table.split('\n')) {
    // id parent major:minor root mount-point options ...; the mount point escapes spaces as \040.
    const fields = line.split(' ');
    const mountPoint = fields[4]?.replace(/\\([0-7]{3})/g, (_, octal: string) =>
      String.fromCharCode(Number.parseInt(octal, 8)),
    );
    // The last one listed is the one on top.
    if (mountPoint === path) found = (fields[5] ?? '').split(',');
  }
  return found;
}
