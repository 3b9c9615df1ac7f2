import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/src/config/load.js';
import { configSchema } from '../../server/src/config/schema.js';
import { packageRoot } from '../../server/src/package-root.js';

const dir = mkdtempSync(join(tmpdir(), 'rsbx-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** loadConfig with only the given env and a working directory holding no `.env`. */
function load(env: Record<string, string>, configFile?: string) {
  return loadConfig({ env, configFile, cwd: dir });
}

function problemsOf(env: Record<string, string>): string[] {
  try {
    load(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

function writeEnvFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('loadConfig', () => {
  it('gives every default with an empty environment', () => {
    const config = load({});
    expect(config).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 8000,
      WORKERS: 1,
      DEFAULT_SANDBOX_TYPE: ['base'],
      AUTO_CLEANUP: true,
      CONTAINER_DEPLOYMENT: 'docker',
      PORT_RANGE: { start: 49152, end: 59152 },
      REDIS_ENABLED: false,
      HEARTBEAT_TIMEOUT: 300,
      READONLY_MOUNTS: [],
    });
    expect(config.BEARER_TOKEN).toBeUndefined();
  });

  it('treats empty values as unset and ignores unknown keys', () => {
    const config = load({ PORT: '', DEFAULT_SANDBOX_TYPE: ' ', SOMETHING_ELSE: 'x' });
    expect(config.PORT).toBe(8000);
    expect(config.DEFAULT_SANDBOX_TYPE).toEqual(['base']);
    expect(config).not.toHaveProperty('SOMETHING_ELSE');
  });

  it('rejects an inverted PORT_RANGE', () => {
    expect(problemsOf({ PORT_RANGE: '[59152,49152]' })).toEqual([
      'PORT_RANGE: PORT_RANGE [59152,49152] is inverted or outside 1-65535',
    ]);
  });

  it('rejects WORKERS > 1 without Redis', () => {
    const [problem, ...rest] = problemsOf({ WORKERS: '2' });
    expect(rest).toEqual([]);
    expect(problem).toMatch(/^WORKERS: WORKERS > 1 needs REDIS_ENABLED=true/);
    expect(load({ WORKERS: '2', REDIS_ENABLED: 'true', BEARER_TOKEN: 'a-long-secret' }).WORKERS).toBe(2);
  });

  it('refuses REDIS_ENABLED without SANDBOX_TOKEN_SECRET or BEARER_TOKEN', () => {
    expect(problemsOf({ REDIS_ENABLED: 'true' })).toEqual([
      'SANDBOX_TOKEN_SECRET: REDIS_ENABLED needs SANDBOX_TOKEN_SECRET or BEARER_TOKEN so every replica derives the same sandbox tokens',
    ]);
    expect(load({ REDIS_ENABLED: 'true', BEARER_TOKEN: 'a-long-secret' }).REDIS_ENABLED).toBe(true);
    const secret = 's'.repeat(32);
    expect(load({ REDIS_ENABLED: 'true', SANDBOX_TOKEN_SECRET: secret }).SANDBOX_TOKEN_SECRET).toBe(secret);
  });

  it('refuses a SANDBOX_TOKEN_SECRET under 32 characters, without echoing it', () => {
    const [problem, ...rest] = problemsOf({ SANDBOX_TOKEN_SECRET: 'short-secret-xyz' });
    expect(rest).toEqual([]);
    expect(problem).toMatch(/^SANDBOX_TOKEN_SECRET: needs at least 32 characters/);
    expect(problem).not.toContain('short-secret-xyz');
  });

  it('refuses a DOCKER_HOST the Docker deployer cannot drive, and takes the one it uses', () => {
    const [remote] = problemsOf({ DOCKER_HOST: 'tcp://10.0.0.5:2376' });
    expect(remote).toContain('DOCKER_HOST=tcp://10.0.0.5:2376 names a remote engine');
    const [other] = problemsOf({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' });
    expect(other).toContain('set it to /run/user/1000/docker.sock');
    const same = {
      DOCKER_HOST: 'unix:///run/user/1000/docker.sock',
      DOCKER_SOCKET: '/run/user/1000/docker.sock',
    };
    expect(load(same).DOCKER_SOCKET).toBe('/run/user/1000/docker.sock');
    // Kubernetes has no use for the engine: DOCKER_HOST is the CLI's business there.
    expect(
      load({ DOCKER_HOST: 'tcp://10.0.0.5:2376', CONTAINER_DEPLOYMENT: 'k8s' }).CONTAINER_DEPLOYMENT,
    ).toBe('k8s');
  });

  it('rejects an unknown CONTAINER_DEPLOYMENT, saying what was given', () => {
    const [problem] = problemsOf({ CONTAINER_DEPLOYMENT: 'swarm' });
    expect(problem).toMatch(/^CONTAINER_DEPLOYMENT: .*"docker".*\(got "swarm"\)$/);
  });

  it('refuses HOST=0.0.0.0 without BEARER_TOKEN or API_KEYS_FILE', () => {
    expect(problemsOf({ HOST: '0.0.0.0' })).toEqual([
      'BEARER_TOKEN: HOST=0.0.0.0 listens beyond loopback; set BEARER_TOKEN (or API_KEYS_FILE) first',
    ]);
    expect(load({ HOST: '0.0.0.0', BEARER_TOKEN: 'a-long-secret' }).HOST).toBe('0.0.0.0');
    expect(load({ HOST: '0.0.0.0', API_KEYS_FILE: '/etc/runtime-sandbox/keys.json' }).HOST).toBe('0.0.0.0');
  });

  it('lists every bad setting in one readable message, without echoing secrets', () => {
    let error: unknown;
    try {
      load({ PORT: 'eighty', POOL_SIZE: '-1', REDIS_PASSWORD: 'hunter2', REDIS_PORT: 'x' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/^Invalid configuration \(environment\):\n/);
    expect(message).toMatch(/^ {2}PORT: .*\(got "eighty"\)$/m);
    expect(message).toMatch(/^ {2}POOL_SIZE: /m);
    expect(message).toMatch(/^ {2}REDIS_PORT: /m);
    expect(message).not.toContain('hunter2');
  });

  it('reports malformed JSON lists as a setting problem', () => {
    expect(problemsOf({ DEFAULT_SANDBOX_TYPE: '["base",' })[0]).toMatch(
      /^DEFAULT_SANDBOX_TYPE: not valid JSON/,
    );
    expect(problemsOf({ READONLY_MOUNTS: '{"/data":' })[0]).toMatch(/^READONLY_MOUNTS: not valid JSON/);
  });

  it('reads DEFAULT_SANDBOX_TYPE as a single name, a comma list or a JSON array', () => {
    expect(load({ DEFAULT_SANDBOX_TYPE: 'python-data' }).DEFAULT_SANDBOX_TYPE).toEqual(['python-data']);
    expect(load({ DEFAULT_SANDBOX_TYPE: 'base, python-data' }).DEFAULT_SANDBOX_TYPE).toEqual([
      'base',
      'python-data',
    ]);
    expect(load({ DEFAULT_SANDBOX_TYPE: '["base","python-data"]' }).DEFAULT_SANDBOX_TYPE).toEqual([
      'base',
      'python-data',
    ]);
  });

  it('puts the process environment over the --config file', () => {
    const file = writeEnvFile(
      'profile.env',
      '# a profile\nPORT=9000\nPOOL_SIZE=3\nDEFAULT_SANDBOX_TYPE="base,python-data"\nUNRELATED=1\n',
    );
    const config = load({ POOL_SIZE: '5' }, file);
    expect(config.PORT).toBe(9000);
    expect(config.POOL_SIZE).toBe(5);
    expect(config.DEFAULT_SANDBOX_TYPE).toEqual(['base', 'python-data']);
  });

  it('names the file in errors that come from it', () => {
    const file = writeEnvFile('bad.env', 'PORT_RANGE=1-0\n');
    expect(() => load({}, file)).toThrow(`Invalid configuration (environment over ${file})`);
  });

  it('fails when the --config file does not exist', () => {
    const missing = join(dir, 'nope.env');
    expect(() => load({}, missing)).toThrow(ConfigError);
    expect(() => load({}, missing)).toThrow(`--config: no such file ${missing}`);
  });

  it('reads .env from the working directory when no --config is given', () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    writeFileSync(
      join(cwd, '.env'),
      'PORT=8111\nWORKERS=2\nREDIS_ENABLED=true\nBEARER_TOKEN=a-long-secret\n',
    );
    expect(loadConfig({ env: { PORT: '8222' }, cwd })).toMatchObject({ PORT: 8222, WORKERS: 2 });
  });
});

describe('configuration files in the repository', () => {
  const root = packageRoot();
  const schemaKeys = Object.keys(configSchema.shape);

  it('.env.example lists exactly the schema keys, in schema order', () => {
    const text = readFileSync(join(root, '.env.example'), 'utf8');
    const keys = [...text.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    expect(keys).toEqual(schemaKeys);
    // Its values are the defaults, so it loads (a non-loopback HOST is not among them).
    expect(loadConfig({ configFile: join(root, '.env.example'), env: {} })).toEqual(load({}));
  });

  const profiles = readdirSync(join(root, 'config')).filter((name) => name.endsWith('.env'));

  it('has profiles', () => {
    expect(profiles).toEqual(
      expect.arrayContaining(['local.env', 'docker-compose-redis.env', 'kubernetes.env']),
    );
  });

  it.each(profiles)('config/%s uses only known keys and loads unless marked planned', (name) => {
    const path = join(root, 'config', name);
    const text = readFileSync(path, 'utf8');
    for (const [, key] of text.matchAll(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=/gm))
      expect(schemaKeys).toContain(key);
    if (text.split('\n', 1)[0]?.trim() === '# status: planned') {
      expect(() => loadConfig({ configFile: path, env: {} })).toThrow(ConfigError);
    } else {
      expect(() => loadConfig({ configFile: path, env: {} })).not.toThrow();
    }
  });
});
