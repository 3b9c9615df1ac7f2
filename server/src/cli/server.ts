/**
 * runtime-sandbox-server [--config FILE.env] [--extension MODULE]... [--log-level LEVEL] [--help]
 * runtime-sandbox-server hash-key
 *
 * Exit codes: 0 after a clean shutdown (SIGTERM, SIGINT); 2 for a bad command line or config; 1 when
 * the server cannot start (Docker down, image missing, port or deployment id taken), a second
 * signal forces it out, or an uncaught fault stops it.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { StartupError, startServer } from '../app.js';
import { runPrimary } from '../cluster/primary.js';
import { followPrimary, workerLogger } from '../cluster/worker.js';
import { ConfigError, type LoadedConfig, loadSettings } from '../config/load.js';
import { messageOf } from '../errors.js';
import { createLogger, logLevelOf } from '../observability/logger.js';
import { ExtensionLoadError } from '../sandbox-types/extensions.js';
import { SandboxTypeDefinitionError, SandboxTypeNotFoundError } from '../sandbox-types/registry.js';
import { ApiKeysFileError, newApiKey } from '../tenants/api-keys.js';

const USAGE = `Usage: runtime-sandbox-server [options]
       runtime-sandbox-server hash-key

Runs the sandbox server: warm pools of sandboxes behind an authenticated HTTP API.
\`hash-key\` prints a new tenant API key and the hash that goes into API_KEYS_FILE, as JSON.

Options:
  --config FILE.env     Settings file (dotenv); the environment wins over it. Default: ./.env if present
  --extension MODULE    Module registering more sandbox types; may be given several times
  --log-level LEVEL     trace, debug, info, warn, error, fatal or silent (overrides LOG_LEVEL)
  -h, --help            Show this help

Settings (HOST, PORT, BEARER_TOKEN, POOL_SIZE, ...) are described in .env.example.`;

const NAME = 'runtime-sandbox-server';
/** How long cleanup may take after an uncaught fault before the process exits anyway. */
const FATAL_STOP_TIMEOUT_MS = 30_000;

async function main(): Promise<void> {
  if (process.argv[2] === 'hash-key' && process.argv.length === 3) {
    process.stdout.write(`${JSON.stringify(newApiKey())}\n`);
    return;
  }
  let args: ReturnType<typeof parseCommandLine>;
  try {
    args = parseCommandLine();
  } catch (err) {
    fail(2, `${messageOf(err)} (see --help)`);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  let loaded: LoadedConfig;
  try {
    const env =
      args['log-level'] === undefined ? process.env : { ...process.env, LOG_LEVEL: args['log-level'] };
    loaded = loadSettings({ configFile: args.config, env });
  } catch (err) {
    if (err instanceof ConfigError) fail(2, oneLine(err.message));
    throw err;
  }
  const { config, given } = loaded;

  const logger = workerLogger(createLogger(logLevelOf(config)));
  if (config.WORKERS > 1 && cluster.isPrimary) {
    // The workers run this same command line and take the branch below.
    process.exit(await runPrimary({ workers: config.WORKERS, logger }));
  }

  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let stopRequested: string | undefined;
  const shutDown = (reason: string): void => {
    if (server === undefined) {
      // Asked while still starting (a cluster worker): stop once started, cleaning up what it made.
      stopRequested ??= reason;
      return;
    }
    server.stop(reason).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const abandon = (reason: string): void => {
    logger.warn({ reason }, 'exiting without cleanup');
    process.exit(1);
  };
  // A cluster worker takes its shutdown from the primary (cluster/worker.ts), from the start.
  const inCluster = followPrimary({ stop: shutDown, abandon });

  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    running = await startServer({
      config,
      extensions: args.extension ?? [],
      logger,
      deploymentIdChosen: given.has('DEPLOYMENT_ID') || given.has('CONTAINER_PREFIX_KEY'),
    });
  } catch (err) {
    const badSetup =
      err instanceof ExtensionLoadError ||
      err instanceof SandboxTypeDefinitionError ||
      err instanceof ApiKeysFileError ||
      (err instanceof StartupError && err.cause instanceof SandboxTypeNotFoundError);
    if (badSetup || err instanceof StartupError) fail(badSetup ? 2 : 1, oneLine(messageOf(err)));
    throw err;
  }
  server = running;
  if (stopRequested !== undefined) shutDown(stopRequested);

  if (!inCluster) {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) abandon(`second signal (${signal})`);
      else shutDown(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  // A fault nothing caught: the process state is suspect, so stop (cleaning up what it can) and exit 1.
  const onFatal = (err: unknown): void => {
    logger.fatal({ err }, 'uncaught fault; stopping');
    setTimeout(() => process.exit(1), FATAL_STOP_TIMEOUT_MS).unref();
    running.stop('fatal error').finally(() => process.exit(1));
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
}

function parseCommandLine() {
  return parseArgs({
    options: {
      config: { type: 'string' },
      extension: { type: 'string', multiple: true },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
    strict: true,
  }).values;
}

/** Multi-line messages (every bad setting) joined so the error stays one line in any log. */
function oneLine(message: string): string {
  return message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ');
}

function fail(code: number, message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(code);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `${NAME}: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
