/**
 * Untrusted code stays inside its sandbox's network policy. One row per attack: code in sandbox A
 * (policy `public`) or C (policy `none`) opens a TCP connection, and the row says whether it may
 * get through. Every target is live, which the test checks from the host first (a blocked row
 * would otherwise pass for the wrong reason): another sandbox's listener and its sandboxd, a host
 * listener on all interfaces, a Redis bound to all interfaces, the server itself (listening on all
 * interfaces behind a token), and, in a network namespace this test makes, a public stand-in, the
 * metadata address and a private-range host (so no probe can leave the machine). Names resolve
 * through the server's resolver on each sandbox network, whose upstream is the stand-in's DNS
 * server: the rows at the end say which names each policy may resolve, and what leaves the host.
 * Last, the filter is shared: another deployment's teardown leaves it to one that still runs.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { SANDBOXD_PORT } from '@runtime-sandbox/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../../server/src/deployers/deployer.js';
import { type RedisServer, startRedisServer } from '../../support/redis-server.js';
import { docker, eventually, waitForWarm } from '../../support/server-process.js';
import { withDeployment, withServer } from '../support/fixture.js';
import {
  DNS_HOST,
  type InternetStandIn,
  LISTEN_PORT,
  METADATA_HOST,
  OTHER_PUBLIC_HOST,
  PRIVATE_HOST,
  PUBLIC_HOST,
  startInternetStandIn,
} from './internet-stand-in.js';

const run = promisify(execFile);
const PEER_PORT = 8080;
const CONNECT_TIMEOUT_S = 2;

type Verdict = 'open' | 'blocked';
/**
 * A and B: `public`; C: `none` from its type; D: a `public` type asked for `none` at acquire;
 * E: `allowlist` from its type (PUBLIC_HOST and PRIVATE_HOST listed); F: a `public` type asked for
 * an allowlist of OTHER_PUBLIC_HOST at acquire; G: a `public` type asked for an allowlist of
 * domains at acquire.
 */
type Name = 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G';

interface Targets {
  peer: string;
  gateway: string;
  offlineGateway: string;
  allowlistGateway: string;
  hostAddress: string;
  hostListenerPort: number;
  redisPort: number;
  serverPort: number;
  standInHostSide: string;
}

let redis: RedisServer;
let standIn: InternetStandIn;
let hostListener: Server;

// The file's hooks, around the describe's: the stand-in's namespace and routes exist before the
// server (and its resolver) starts and go only after it stopped, so no packet for a stand-in
// address ever takes the default route.
beforeAll(async () => {
  standIn = await startInternetStandIn();
  hostListener = createServer((_req, res) => res.end('host'));
  await new Promise<void>((resolve) => hostListener.listen(0, '0.0.0.0', resolve));
  redis = await startRedisServer({ bind: '0.0.0.0' });
});

afterAll(async () => {
  await redis?.stop();
  await standIn?.stop();
  hostListener?.close();
});

describe('network isolation', () => {
  const ids: Record<Name, string> = { A: '', B: '', C: '', D: '', E: '', F: '', G: '' };
  const targets: Partial<Targets> = {};
  const server = withServer('rsbx-sec-network', {
    ports: 30,
    env: {
      HOST: '0.0.0.0',
      BEARER_TOKEN: randomBytes(24).toString('hex'),
      POOL_SIZE: '0',
      SANDBOX_DNS_UPSTREAM: DNS_HOST,
    },
    args: ['--extension', 'test/security/fixtures/network-types.ts'],
  });
  const DEPLOYMENT = server.deployment.id;

  beforeAll(async () => {
    for (const [name, request] of [
      ['A', { type: 'base' }],
      ['B', { type: 'base' }],
      ['C', { type: 'offline' }],
      ['D', { type: 'base', network: 'none' }],
      ['E', { type: 'allowlisted' }],
      ['F', { type: 'base', network: 'allowlist', allow: [OTHER_PUBLIC_HOST] }],
      ['G', { type: 'base', allow: ['listed.test', '*.wild.test', 'metadata.test'] }],
    ] as const) {
      const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', request);
      expect(acquired.status).toBe(201);
      ids[name] = acquired.body.id;
    }
    // B serves on a port of its own, as every process in a sandbox may.
    const started = await exec('B', `setsid python3 -m http.server ${PEER_PORT} >/dev/null 2>&1 & echo ok`);
    expect(started.stdout).toBe('ok\n');

    const peer = await containerOf(ids.B);
    const peerAddress = Object.values(peer.NetworkSettings.Networks)[0]?.IPAddress;
    targets.peer = peerAddress;
    targets.gateway = await gatewayOf(ids.A);
    targets.offlineGateway = await gatewayOf(ids.C);
    targets.allowlistGateway = await gatewayOf(ids.E);
    targets.hostAddress = uplinkAddress();
    targets.hostListenerPort = (hostListener.address() as AddressInfo).port;
    targets.redisPort = redis.port;
    targets.serverPort = Number(new URL(server.url).port);
    targets.standInHostSide = standIn.hostSideAddress;

    // Every target answers the host, so a blocked row means the sandbox was stopped, not the target.
    await eventually('the peer listener to answer the host', () => reachableFromHost(peerAddress, PEER_PORT));
    for (const [host, port] of [
      [peerAddress, SANDBOXD_PORT],
      [targets.gateway, targets.hostListenerPort],
      [targets.offlineGateway, targets.serverPort],
      [targets.hostAddress, targets.redisPort],
      [targets.hostAddress, targets.serverPort],
      [PUBLIC_HOST, LISTEN_PORT],
      [OTHER_PUBLIC_HOST, LISTEN_PORT],
      [METADATA_HOST, LISTEN_PORT],
      [PRIVATE_HOST, LISTEN_PORT],
    ] as const) {
      expect(await reachableFromHost(host, port), `${host}:${port} from the host`).toBe(true);
    }
  });

  const rows: Array<{
    attack: string;
    from: Exclude<Name, 'B'>;
    target: (t: Targets) => [string, number];
    verdict: Verdict;
  }> = [
    {
      attack: 'the internet (public stand-in)',
      from: 'A',
      target: () => [PUBLIC_HOST, LISTEN_PORT],
      verdict: 'open',
    },
    {
      attack: "another sandbox's listener",
      from: 'A',
      target: (t) => [t.peer, PEER_PORT],
      verdict: 'blocked',
    },
    {
      attack: "another sandbox's sandboxd",
      from: 'A',
      target: (t) => [t.peer, SANDBOXD_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'a host listener via the gateway',
      from: 'A',
      target: (t) => [t.gateway, t.hostListenerPort],
      verdict: 'blocked',
    },
    {
      attack: "a host listener via the host's uplink address",
      from: 'A',
      target: (t) => [t.hostAddress, t.hostListenerPort],
      verdict: 'blocked',
    },
    {
      attack: "a host listener via the stand-in's host side",
      from: 'A',
      target: (t) => [t.standInHostSide, t.hostListenerPort],
      verdict: 'blocked',
    },
    { attack: 'Redis on the host', from: 'A', target: (t) => [t.gateway, t.redisPort], verdict: 'blocked' },
    { attack: 'the server itself', from: 'A', target: (t) => [t.gateway, t.serverPort], verdict: 'blocked' },
    {
      attack: 'the cloud metadata address',
      from: 'A',
      target: () => [METADATA_HOST, LISTEN_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'a private-range host',
      from: 'A',
      target: () => [PRIVATE_HOST, LISTEN_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'the internet under policy none',
      from: 'C',
      target: () => [PUBLIC_HOST, LISTEN_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'another sandbox under policy none',
      from: 'C',
      target: (t) => [t.peer, PEER_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'a host listener via its own gateway under policy none',
      from: 'C',
      target: (t) => [t.offlineGateway, t.hostListenerPort],
      verdict: 'blocked',
    },
    {
      attack: 'the server via its own gateway under policy none',
      from: 'C',
      target: (t) => [t.offlineGateway, t.serverPort],
      verdict: 'blocked',
    },
    {
      attack: 'the internet under none asked for at acquire',
      from: 'D',
      target: () => [PUBLIC_HOST, LISTEN_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'another sandbox under none asked for at acquire',
      from: 'D',
      target: (t) => [t.peer, PEER_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'a listed public host under allowlist',
      from: 'E',
      target: () => [PUBLIC_HOST, LISTEN_PORT],
      verdict: 'open',
    },
    {
      attack: 'an unlisted public host under allowlist',
      from: 'E',
      target: () => [OTHER_PUBLIC_HOST, LISTEN_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'a listed private-range host under allowlist',
      from: 'E',
      target: () => [PRIVATE_HOST, LISTEN_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'the metadata address under allowlist',
      from: 'E',
      target: () => [METADATA_HOST, LISTEN_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'another sandbox under allowlist',
      from: 'E',
      target: (t) => [t.peer, PEER_PORT],
      verdict: 'blocked',
    },
    {
      attack: 'a host listener under allowlist',
      from: 'E',
      target: (t) => [t.allowlistGateway, t.hostListenerPort],
      verdict: 'blocked',
    },
    {
      attack: 'the host listed at acquire under allowlist',
      from: 'F',
      target: () => [OTHER_PUBLIC_HOST, LISTEN_PORT],
      verdict: 'open',
    },
    {
      attack: "the type's public host, unlisted at acquire",
      from: 'F',
      target: () => [PUBLIC_HOST, LISTEN_PORT],
      verdict: 'blocked',
    },
  ];

  it.each(rows)('$from -> $attack: $verdict', async ({ from, target, verdict }) => {
    const [host, port] = target(targets as Targets);
    expect(host).toBeTruthy();
    expect(await connectFrom(from, host, port)).toBe(verdict);
  });

  it('puts sandboxes only on networks of their own, which no server, Redis or other container shares', async () => {
    for (const id of [ids.A, ids.C, ids.D, ids.E, ids.F, ids.G]) {
      const info = await containerOf(id);
      for (const name of Object.keys(info.NetworkSettings.Networks)) {
        expect(name.startsWith(`${DEPLOYMENT}-`)).toBe(true);
        const members = Object.keys((await docker.getNetwork(name).inspect()).Containers ?? {});
        for (const member of members) {
          const labels = (await docker.getContainer(member).inspect()).Config.Labels;
          expect(labels[LABELS.deployment]).toBe(DEPLOYMENT);
        }
      }
    }
  });

  it('refuses an acquire that asks for a looser policy than the type has', async () => {
    const refused = await server.call<{ error: { code: string } }>('POST', '/v1/sandboxes', {
      type: 'offline',
      network: 'public',
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('NETWORK_POLICY_DENIED');
  });

  it.each([
    ['an allowlist type asked for public', { type: 'allowlisted', network: 'public' }],
    [
      'an allowlist type asked for a host it does not list',
      { type: 'allowlisted', allow: [OTHER_PUBLIC_HOST] },
    ],
  ])('refuses %s with 403 NETWORK_POLICY_DENIED', async (_what, request) => {
    const refused = await server.call<{ error: { code: string } }>('POST', '/v1/sandboxes', request);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('NETWORK_POLICY_DENIED');
  });

  it('refuses an allowlist entry that is no IPv4 address, CIDR or domain, and `allow` without allowlist', async () => {
    for (const request of [
      { type: 'base', allow: ['http://example.com'] },
      { type: 'base', allow: ['*'] },
      { type: 'base', allow: ['10.0.0.0/33'] },
      { type: 'base', network: 'none', allow: [PUBLIC_HOST] },
    ]) {
      const refused = await server.call<{ error: { code: string } }>('POST', '/v1/sandboxes', request);
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('VALIDATION_ERROR');
    }
  });

  it.each<{ from: Exclude<Name, 'B'>; name: string; resolves: string | null }>([
    { from: 'A', name: 'unlisted.test', resolves: OTHER_PUBLIC_HOST },
    { from: 'C', name: 'unlisted.test', resolves: null },
    { from: 'D', name: 'unlisted.test', resolves: null },
    { from: 'G', name: 'unlisted.test', resolves: null },
    { from: 'G', name: 'metadata.test', resolves: METADATA_HOST },
  ])('$from resolves $name: $resolves', async ({ from, name, resolves }) => {
    expect(await resolveFrom(from, name)).toBe(resolves);
  });

  it('lets an allowlist of domains reach what its names resolve to, and nothing else', async () => {
    // Nothing before a name is resolved, the listed hosts included.
    expect(await connectFrom('G', PUBLIC_HOST, LISTEN_PORT)).toBe('blocked');
    expect(await connectFrom('G', OTHER_PUBLIC_HOST, LISTEN_PORT)).toBe('blocked');
    expect(await resolveFrom('G', 'listed.test')).toBe(PUBLIC_HOST);
    expect(await connectFrom('G', PUBLIC_HOST, LISTEN_PORT)).toBe('open');
    expect(await connectFrom('G', OTHER_PUBLIC_HOST, LISTEN_PORT)).toBe('blocked');
    // `*.wild.test` admits the names below it.
    expect(await resolveFrom('G', 'api.wild.test')).toBe(OTHER_PUBLIC_HOST);
    expect(await connectFrom('G', OTHER_PUBLIC_HOST, LISTEN_PORT)).toBe('open');
    // A listed name that resolves into a blocked range stays blocked.
    expect(await resolveFrom('G', 'metadata.test')).toBe(METADATA_HOST);
    expect(await connectFrom('G', METADATA_HOST, LISTEN_PORT)).toBe('blocked');
  });

  it('lets no query for a refused name leave the host, nor any query past the resolver', async () => {
    for (const [from, name] of [
      ['G', 'exfil-g.test'],
      ['C', 'exfil-c.test'],
      ['D', 'exfil-d.test'],
    ] as const) {
      expect(await resolveFrom(from, name)).toBeNull();
    }
    // Straight to a resolver on the internet, around the sandbox's own: dropped like any packet.
    for (const from of ['C', 'G'] as const) {
      expect(await directQueryFrom(from, DNS_HOST, `direct-${from.toLowerCase()}.test`)).toBe('no answer');
    }
    expect(await directQueryFrom('A', DNS_HOST, 'direct-a.test')).toBe('answered');
    const asked = standIn.dnsQueries();
    expect(asked).toContain('direct-a.test');
    for (const name of ['exfil-g.test', 'exfil-c.test', 'exfil-d.test', 'direct-c.test', 'direct-g.test']) {
      expect(asked).not.toContain(name);
    }
  });

  it("drops an allowlist sandbox's rules, the ones its names added too, when it is released", async () => {
    for (const name of ['F', 'G'] as const) {
      const address = Object.values((await containerOf(ids[name])).NetworkSettings.Networks)[0]?.IPAddress;
      expect(await allowRulesFor(address)).not.toEqual([]);
      expect((await server.call('DELETE', `/v1/sandboxes/${ids[name]}`)).status).toBe(204);
      expect(await allowRulesFor(address)).toEqual([]);
    }
  });

  async function exec(name: Name, command: string) {
    const response = await server.call<{ exitCode: number; stdout: string; stderr: string }>(
      'POST',
      `/v1/sandboxes/${ids[name]}/exec`,
      { command, timeoutMs: 20_000 },
    );
    expect(response.status).toBe(200);
    return response.body;
  }

  /** A TCP connect from inside the sandbox, as its code would make it. */
  async function connectFrom(name: Exclude<Name, 'B'>, host: string, port: number): Promise<Verdict> {
    const result = await exec(
      name,
      `timeout ${CONNECT_TIMEOUT_S} bash -c 'exec 3<>/dev/tcp/${host}/${port}' 2>/dev/null && echo open || echo blocked`,
    );
    return result.stdout.trim() === 'open' ? 'open' : 'blocked';
  }

  /** The IPv4 address `name` resolves to inside the sandbox (through its resolver), or null. */
  async function resolveFrom(name: Exclude<Name, 'B'>, host: string): Promise<string | null> {
    const result = await exec(
      name,
      `python3 -c 'import socket,sys; print(socket.gethostbyname(sys.argv[1]))' ${host}`,
    );
    return result.exitCode === 0 ? result.stdout.trim() : null;
  }

  /** One DNS query for `host` sent by the sandbox's code straight to `resolver`, port 53. */
  async function directQueryFrom(name: Exclude<Name, 'B'>, resolver: string, host: string) {
    const script = [
      'import socket, struct, sys',
      'name = b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[2].split(".")) + b"\\0"',
      'query = struct.pack(">HHHHHH", 0x5253, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      `s.settimeout(${CONNECT_TIMEOUT_S})`,
      's.sendto(query, (sys.argv[1], 53))',
      'try:',
      '    s.recvfrom(512)',
      '    print("answered")',
      'except socket.timeout:',
      '    print("no answer")',
    ].join('\n');
    const result = await exec(name, `python3 -c '${script}' ${resolver} ${host}`);
    return result.stdout.trim();
  }
});

/**
 * The host filter is shared by every deployment on the host, and a deployment's bridges come with
 * its first sandbox. So one deployment's teardown must not remove the filter while another runs
 * with no sandbox yet: the sandboxes that one makes afterwards would have no filter at all.
 */
describe('the host filter, shared between deployments', () => {
  const quiet = withServer('rsbx-sec-shared-quiet', { env: { POOL_SIZE: '0' } });
  const other = withDeployment('rsbx-sec-shared-other');

  it("stays for a deployment with no sandbox yet when another one's teardown finds no bridge left", async () => {
    const leaving = await other.start({ env: { POOL_SIZE: '1' } });
    await waitForWarm(leaving, 'base', 1);
    // SIGTERM: its sandbox and bridges go, then its teardown; no sandbox bridge is left on the host.
    expect(await leaving.stop()).toBe(0);

    const acquired = await quiet.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(acquired.status).toBe(201);
    const gateway = await gatewayOf(acquired.body.id);
    const port = (hostListener.address() as AddressInfo).port;
    expect(await reachableFromHost(gateway, port), 'the host listener from the host').toBe(true);
    const probe = await quiet.call<{ stdout: string }>('POST', `/v1/sandboxes/${acquired.body.id}/exec`, {
      command: `timeout ${CONNECT_TIMEOUT_S} bash -c 'exec 3<>/dev/tcp/${gateway}/${port}' 2>/dev/null && echo open || echo blocked`,
    });
    expect(probe.body.stdout.trim()).toBe('blocked');
  });
});

async function containerOf(sandboxId: string) {
  const [summary] = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.sandboxId}=${sandboxId}`] },
  });
  if (!summary) throw new Error(`no container for sandbox ${sandboxId}`);
  return docker.getContainer(summary.Id).inspect();
}

/** The host filter's allow rules for sources at `address`. */
async function allowRulesFor(address: string | undefined): Promise<string[]> {
  if (!address) throw new Error('no address');
  const { stdout } = await run('iptables', ['-w', '-S', 'RSBX-ALLOW']);
  return stdout.split('\n').filter((line) => line.includes(`-s ${address}/32`));
}

/** The gateway (a host address) of the sandbox's network. */
async function gatewayOf(sandboxId: string): Promise<string | undefined> {
  const networkName = Object.keys((await containerOf(sandboxId)).NetworkSettings.Networks)[0] ?? '';
  return (await docker.getNetwork(networkName).inspect()).IPAM?.Config?.[0]?.Gateway;
}

async function reachableFromHost(host: string | undefined, port: number): Promise<true | undefined> {
  if (!host) return undefined;
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', () => resolve(undefined));
  });
}

/** An IPv4 address of the host's default-route interface: a host address that is not the gateway. */
function uplinkAddress(): string {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (name === 'lo' || name.startsWith('docker') || name.startsWith('rsbx') || name.startsWith('tinet')) {
      continue;
    }
    const v4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  throw new Error('the host has no non-loopback IPv4 address');
}
