/**
 * sandboxd's entry point: reads its settings from the environment (refusing to start without a
 * boot token), listens on all interfaces of the sandbox, and stops cleanly on SIGTERM.
 */
import { z } from 'zod';
import { createSandboxd } from './app.js';
import { DEFAULT_LIMITS, SANDBOXD_ENV, SANDBOXD_PORT } from './protocol.js';

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
});

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
  // Processes run here get the image's env, not sandboxd's settings (the boot token least of all).
  const processEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('SANDBOXD_') && value !== undefined) processEnv[name] = value;
  }
  delete process.env[SANDBOXD_ENV.bootToken];

  const sandboxd = await createSandboxd({
    bootToken: settings[SANDBOXD_ENV.bootToken],
    workspaceRoot: settings[SANDBOXD_ENV.workspaceRoot],
    limits: {
      maxJsonBytes: settings[SANDBOXD_ENV.maxJsonBytes],
      maxUploadBytes: settings[SANDBOXD_ENV.maxUploadBytes],
      maxOutputBytes: settings[SANDBOXD_ENV.maxOutputBytes],
    },
    processEnv,
  }).catch((err: unknown) => fail(`cannot open the workspace: ${err instanceof Error ? err.message : err}`));

  const port = settings[SANDBOXD_ENV.port];
  sandboxd.server.on('error', (err) => fail(`cannot listen on port ${port}: ${err.message}`));
  sandboxd.server.listen(port, '0.0.0.0', () => {
    console.log(`sandboxd listening on 0.0.0.0:${port}, workspace ${settings[SANDBOXD_ENV.workspaceRoot]}`);
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
