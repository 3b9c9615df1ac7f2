/**
 * Example extension: a `python-data` sandbox type, the base sandbox plus jq and sqlite3, with more
 * memory and disk and a longer idle timeout. Load it with `--extension extensions/python-data/index.ts`.
 */
import { defineSandboxType } from '../../server/src/extension-api.js';

export default defineSandboxType({
  name: 'python-data',
  description: 'The base sandbox with jq and sqlite3 for small data tasks in Python',
  // Relative to this module's folder: the Dockerfile beside this file.
  dockerfileDir: '.',
  resources: { cpus: 1, memoryMiB: 1024, pidsLimit: 512, workspaceMiB: 2048 },
  // Room for pip's cache and --user installs in the home directory; tmpfs counts against memoryMiB.
  storage: { writable: { '/tmp': 256, '/var/tmp': 64, '/home/sandbox': 256 } },
  env: { PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' },
  timeouts: { idleSeconds: 900 },
});
