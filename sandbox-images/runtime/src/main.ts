/**
 * sandboxd's entry point: reads its settings from the environment (refusing to start without a
 * boot token), settles who the code runs as, listens on all interfaces of the sandbox, and stops
 * cleanly on SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import {
  DEFAULT_RUN_AS,
  parseRunAs,
  type RunAsIds,
  runAsSchema,
  SANDBOXD_ENV,
  SANDBOXD_PORT,
} from '@runtime-sandbox/contract';
import { z } from 'zod';
import { createSandboxd } from './app.js';
import { DEFAULT_LIMITS } from './context.js';
import type { RunAs } from './handles.js';

/** How long in-flight answers get after SIGTERM before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 2000;

const byteCount = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const settingsSchema = z.object({
  [SANDBOXD_ENV.port]: z.coerce.number().int().min(1).max(65535).default(SANDBOXD_PORT),
  [SANDBOXD_ENV.bootToken]: z.string({ error: 'is required (the token callers must present)' }).min(1),
  [SANDBOXD_ENV.workspaceRoot]: z.string().min(1).default('/workspace'),
  [SANDBOXD_ENV.maxJsonBytes]: byteCount(DEFAULT_LIMITS.maxJsonBytes),
  [SANDBOXD_ENV.maxUploadBytes]: byteCount(DEFAULT_LIMITS.maxUploadBytes),
  [SANDBOXD_ENV.maxOutputBytes]: byteCount(DEFAULT_LIMITS.maxOutputBytes),
  [SANDBOXD_ENV.runAs]: runAsSchema.default(DEFAULT_RUN_AS).transform(parseRunAs),
});

/**
 * Root switches to the run-as user for every process it starts; anyone else can only run code as
 * itself, so it must be that user already.
 */
function runAsFor(wanted: RunAsIds): RunAs {
  const uid = process.geteuid?.();
  const gid = process.getegid?.();
  if (uid === undefined || gid === undefined) fail('needs a POSIX system (user and group ids)');
  if (uid === 0) return { ...wanted, switchUser: true };
  if (uid !== wanted.uid || gid !== wanted.gid) {
    fail(
      `runs as ${uid}:${gid}, not root, so it cannot run code as ${SANDBOXD_ENV.runAs}=${wanted.uid}:${wanted.gid}; ` +
        `start it as root (it keeps only the capabilities it needs) or set ${SANDBOXD_ENV.runAs}=${uid}:${gid}`,
    );
  }
  return { ...wanted, switchUser: false };
}

/** HOME, USER and LOGNAME of `uid` from /etc/passwd; its number and `/` for a user not listed there. */
async function accountEnv(uid: number): Promise<Record<string, string>> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const fields = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((entry) => entry.length >= 7 && entry[2] === String(uid));
  const name = fields?.[0] || String(uid);
  return { HOME: fields?.[5] || '/', USER: name, LOGNAME: name };
}

function fail(message: string): never {
  console.error(`sandboxd: ${message}`);
  process.exit(1);
}

async function main(): Promise<void> {
  const parsed = settingsSchema.safeParse(process.env);
  if (!parsed.success) {
    fail(parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; '));
  }
  const settings = parsed.data;
  const runAs = runAsFor(settings[SANDBOXD_ENV.runAs]);
  // Processes run here get the image's env, not sandboxd's settings (the boot token least of all),
  // and the run-as user's own HOME and names rather than root's.
  const processEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('SANDBOXD_') && value !== undefined) processEnv[name] = value;
  }
  Object.assign(processEnv, await accountEnv(runAs.uid));
  delete process.env[SANDBOXD_ENV.bootToken];

  const sandboxd = await createSandboxd({
    bootToken: settings[SANDBOXD_ENV.bootToken],
    workspaceRoot: settings[SANDBOXD_ENV.workspaceRoot],
    limits: {
      maxJsonBytes: settings[SANDBOXD_ENV.maxJsonBytes],
      maxUploadBytes: settings[SANDBOXD_ENV.maxUploadBytes],
      maxOutputBytes: settings[SANDBOXD_ENV.maxOutputBytes],
    },
    runAs,
    processEnv,
  }).catch((err: unknown) => fail(`cannot open the workspace: ${err instanceof Error ? err.message : err}`));

  const port = settings[SANDBOXD_ENV.port];
  sandboxd.server.on('error', (err) => fail(`cannot listen on port ${port}: ${err.message}`));
  sandboxd.server.listen(port, '0.0.0.0', () => {
    console.log(
      `sandboxd listening on 0.0.0.0:${port}, workspace ${settings[SANDBOXD_ENV.workspaceRoot]}, ` +
        `running code as ${runAs.uid}:${runAs.gid}`,
    );
  });

  const stop = (signal: string) => {
    console.log(`sandboxd: ${signal}, stopping`);
    sandboxd.shutdown();
    sandboxd.server.on('close', () => process.exit(0));
    setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

await main();
