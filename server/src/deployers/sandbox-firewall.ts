/**
 * The host-side packet filter that keeps sandboxes off the host and off every network that is not
 * the internet. Docker's `enable_icc=false` stops sandbox-to-sandbox traffic on one bridge, but a
 * container can still reach any address of the host (through its gateway) and, when it masquerades
 * out, the host's LAN, private ranges and the cloud metadata address.
 *
 * Every sandbox bridge is named `rsbx…` (see docker.ts), so one set of rules covers all deployments
 * on the host and is inert when none runs:
 * - INPUT from a sandbox bridge: only replies to connections the host opened (the server dialling
 *   sandboxd); nothing a sandbox starts reaches a host address, whichever address it uses.
 * - forwarded from a sandbox bridge (in DOCKER-USER, which Docker keeps ahead of its own rules):
 *   private, shared, link-local, loopback, multicast and reserved ranges and the host's uplink
 *   subnets are dropped; everything else (the internet) goes on, except from an allowlist bridge
 *   (`rsbxa…`), where only what RSBX-ALLOW returns for the sandbox's own address goes on.
 *   RSBX-ALLOW holds one rule per allowlist sandbox, a goto into that sandbox's own chain
 *   (`RSBX-S-<address>`: its allowed ranges, then DROP), so a sandbox's rules, those its names
 *   added through DNS included, go with one atomic call that names them, never a listing.
 * - DNS: each sandbox network's gateway answers UDP port 53 (sandbox-dns.ts); RSBX-DNS, jumped to
 *   ahead of RSBX-INPUT, accepts exactly those queries (bridge and gateway) and nothing else.
 * - IPv6: sandbox networks have none; whatever a sandbox sends over link-local v6 is dropped.
 *
 * Applying is idempotent and atomic (iptables-restore declares the chains, which flushes and refills
 * them in one commit), so workers and replicas starting together cannot leave a half-made filter.
 *
 * The filter is shared by every server on the host, and a server's bridges come only with its
 * first sandbox; so "no sandbox bridge left" does not mean "no one needs the filter". Each server
 * that applied it holds a user name (abstract-socket.ts) until its teardown, or its death, and
 * the filter goes only when no bridge and no user is left. Applying and removing run under a
 * host-wide lock, so a removal never interleaves with an apply.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { type HeldName, heldNames, holdName } from '../abstract-socket.js';

/** Interface names of sandbox bridges; iptables' `+` is a prefix wildcard. */
export const SANDBOX_BRIDGE_PREFIX = 'rsbx';
const SANDBOX_INTERFACES = `${SANDBOX_BRIDGE_PREFIX}+`;
const INPUT_CHAIN = 'RSBX-INPUT';
const FORWARD_CHAIN = 'RSBX-FORWARD';
/** Per-sandbox gotos (`-s <sandbox> -g RSBX-S-<sandbox>`), then DROP; never flushed by apply. */
const ALLOW_CHAIN = 'RSBX-ALLOW';
/** A sandbox's own chain: `-d <allowed> -j RETURN` rules, then DROP; named after its address. */
const SANDBOX_CHAIN_PREFIX = 'RSBX-S-';
/** Per-network rules (`-i <bridge> -d <gateway> -j ACCEPT`) for the sandbox resolver; never flushed by apply. */
const DNS_CHAIN = 'RSBX-DNS';
const DNS_JUMP = ['-i', SANDBOX_INTERFACES, '-p', 'udp', '--dport', '53', '-j', DNS_CHAIN];
/** Bridge name prefixes by policy: the filter tells allowlist bridges apart by theirs. */
export const BRIDGE_PREFIX_BY_POLICY = { public: 'rsbxp', allowlist: 'rsbxa', none: 'rsbxn' } as const;

/**
 * Destinations no sandbox may reach (RFC 6890 special-purpose ranges that are not the public
 * internet). The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) stay open:
 * they route nowhere on the internet, and tests stand in for it there.
 */
export const BLOCKED_IPV4_RANGES = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
] as const;

/** Held while the filter is applied or removed (several iptables calls each). */
const FILTER_LOCK = 'runtime-sandbox/firewall/lock';
/** Prefix of the names held by the servers using the filter. */
const FILTER_USER_PREFIX = 'runtime-sandbox/firewall/user/';
/** A lock holder runs a few iptables calls; one that keeps it longer than this is stuck. */
const FILTER_LOCK_TIMEOUT_MS = 60_000;

/** Runs `critical` holding FILTER_LOCK, waiting (5 ms, doubling to 100 ms) while another holds it. */
async function withFilterLock<T>(critical: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + FILTER_LOCK_TIMEOUT_MS;
  let lock = await holdName(FILTER_LOCK);
  for (let delay = 5; lock === null; delay = Math.min(100, delay * 2)) {
    if (Date.now() > deadline) throw new Error(`another process has held ${FILTER_LOCK} for over a minute`);
    await sleep(delay);
    lock = await holdName(FILTER_LOCK);
  }
  try {
    return await critical();
  } finally {
    await lock.release();
  }
}

function sandboxChain(address: string): string {
  return `${SANDBOX_CHAIN_PREFIX}${address}`;
}

/** The rule in RSBX-ALLOW that sends the sandbox at `address` to its own chain. */
function gotoRule(address: string): string[] {
  return ['-s', `${address}/32`, '-g', sandboxChain(address)];
}

/** Runs a tool, with `input` on its stdin when given; resolves with its stdout. */
function run(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, (error, stdout) => (error ? reject(error) : resolve(stdout)));
    child.stdin?.end(input);
  });
}

export class SandboxFirewall {
  /** This server's hold on the filter, from `apply` to `removeIfUnused`. */
  private use: HeldName | undefined;

  /**
   * Installs (or refreshes) the rules and counts this server as their user until
   * `removeIfUnused`; throws with the tool's message when it cannot.
   */
  async apply(): Promise<void> {
    await withFilterLock(async () => {
      this.use ??= await this.holdUse();
      await this.install();
    });
  }

  /**
   * Stops counting this server as a user, and removes the rules once no sandbox bridge (another
   * deployment's included) and no other user is left.
   */
  async removeIfUnused(): Promise<boolean> {
    return withFilterLock(async () => {
      await this.use?.release();
      this.use = undefined;
      if ((await sandboxBridges()).length > 0) return false;
      if ((await heldNames(FILTER_USER_PREFIX)).length > 0) return false;
      await this.uninstall();
      return true;
    });
  }

  private async holdUse(): Promise<HeldName> {
    const held = await holdName(`${FILTER_USER_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
    if (held === null) throw new Error('a fresh random firewall user name is taken');
    return held;
  }

  private async install(): Promise<void> {
    const blocked = [...BLOCKED_IPV4_RANGES, ...(await uplinkSubnets())];
    await this.ensureChain(ALLOW_CHAIN, 'DROP');
    await this.ensureChain(DNS_CHAIN, 'RETURN');
    const rules = [
      '*filter',
      `:${INPUT_CHAIN} - [0:0]`,
      `:${FORWARD_CHAIN} - [0:0]`,
      `-A ${INPUT_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
      `-A ${INPUT_CHAIN} -j DROP`,
      `-A ${FORWARD_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN`,
      ...blocked.map((range) => `-A ${FORWARD_CHAIN} -d ${range} -j DROP`),
      `-A ${FORWARD_CHAIN} -i ${BRIDGE_PREFIX_BY_POLICY.allowlist}+ -j ${ALLOW_CHAIN}`,
      `-A ${FORWARD_CHAIN} -j RETURN`,
      'COMMIT',
      '',
    ].join('\n');
    await run('iptables-restore', ['-w', '--noflush'], rules);
    await this.ensureJump('iptables', 'INPUT', INPUT_CHAIN);
    await this.ensureDnsJumpFirst();
    await this.ensureJump('iptables', 'DOCKER-USER', FORWARD_CHAIN);
    await this.ensureJump('ip6tables', 'INPUT', 'DROP');
    await this.ensureJump('ip6tables', 'FORWARD', 'DROP');
  }

  private async uninstall(): Promise<void> {
    await this.removeJump('iptables', 'INPUT', INPUT_CHAIN);
    await this.removeRule('iptables', ['INPUT', ...DNS_JUMP]);
    await this.removeJump('iptables', 'DOCKER-USER', FORWARD_CHAIN);
    await this.removeJump('ip6tables', 'INPUT', 'DROP');
    await this.removeJump('ip6tables', 'FORWARD', 'DROP');
    const sandboxChains = (await run('iptables', ['-w', '-S']).catch(() => ''))
      .split('\n')
      .filter((line) => line.startsWith(`-N ${SANDBOX_CHAIN_PREFIX}`))
      .map((line) => line.slice(3).trim());
    // Sandbox chains after RSBX-ALLOW, whose gotos must be gone before they can be deleted.
    for (const chain of [INPUT_CHAIN, FORWARD_CHAIN, ALLOW_CHAIN, DNS_CHAIN, ...sandboxChains]) {
      await run('iptables', ['-w', '-F', chain]).catch(() => undefined);
      await run('iptables', ['-w', '-X', chain]).catch(() => undefined);
    }
  }

  /**
   * Lets the sandbox at `address` reach `ranges` (CIDRs) and nothing else, in one commit that also
   * empties whatever an earlier holder of the address left in its chain (a crash). The sandbox can
   * send nothing until this has run.
   */
  async allow(address: string, ranges: readonly string[]): Promise<void> {
    const chain = sandboxChain(address);
    const hasGoto = await run('iptables', ['-w', '-C', ALLOW_CHAIN, ...gotoRule(address)]).then(
      () => true,
      () => false,
    );
    const rules = [
      '*filter',
      // Declaring a chain creates it, or flushes it if it is there.
      `:${chain} - [0:0]`,
      ...ranges.map((range) => `-A ${chain} -d ${range} -j RETURN`),
      `-A ${chain} -j DROP`,
      ...(hasGoto ? [] : [`-I ${ALLOW_CHAIN} 1 ${gotoRule(address).join(' ')}`]),
      'COMMIT',
      '',
    ].join('\n');
    await run('iptables-restore', ['-w', '--noflush'], rules);
  }

  /**
   * Lets the sandbox at `address` reach `range` as well (an address its allowed names resolved to).
   * Fails once the sandbox's chain is gone, so a late answer cannot leave a rule behind it.
   */
  async allowMore(address: string, range: string): Promise<void> {
    await run('iptables', ['-w', '-I', sandboxChain(address), '1', '-d', range, '-j', 'RETURN']);
  }

  /**
   * Drops every allow rule for the sandbox at `address`: its goto and its chain, in one commit. Only
   * when that fails (no such goto: the address had no rules, or an earlier version wrote them
   * straight into RSBX-ALLOW) is RSBX-ALLOW listed and every rule for the address deleted.
   */
  async revoke(address: string): Promise<void> {
    const chain = sandboxChain(address);
    const rules = [
      '*filter',
      `-D ${ALLOW_CHAIN} ${gotoRule(address).join(' ')}`,
      `-F ${chain}`,
      `-X ${chain}`,
      'COMMIT',
      '',
    ].join('\n');
    const revoked = await run('iptables-restore', ['-w', '--noflush'], rules).then(
      () => true,
      () => false,
    );
    if (revoked) return;
    await deleteRulesWhere(ALLOW_CHAIN, '-s', `${address}/32`);
    await run('iptables', ['-w', '-F', chain]).catch(() => undefined);
    await run('iptables', ['-w', '-X', chain]).catch(() => undefined);
  }

  /** Lets the sandboxes on `bridge` query the resolver on their gateway (UDP 53), and nothing else there. */
  async acceptDns(bridge: string, gateway: string): Promise<void> {
    const rule = ['-i', bridge, '-d', `${gateway}/32`, '-j', 'ACCEPT'];
    try {
      await run('iptables', ['-w', '-C', DNS_CHAIN, ...rule]);
    } catch {
      await run('iptables', ['-w', '-I', DNS_CHAIN, '1', ...rule]);
    }
  }

  /** Drops the resolver rules of `bridge` (its network is gone). */
  async refuseDns(bridge: string): Promise<void> {
    // No chain (the filter is gone already): nothing to drop.
    await deleteRulesWhere(DNS_CHAIN, '-i', bridge).catch(() => undefined);
  }

  /** `chain` exists and ends in `last`; the rules before it survive every apply. */
  private async ensureChain(chain: string, last: 'DROP' | 'RETURN'): Promise<void> {
    await run('iptables', ['-w', '-N', chain]).catch(() => undefined);
    try {
      await run('iptables', ['-w', '-C', chain, '-j', last]);
    } catch {
      await run('iptables', ['-w', '-A', chain, '-j', last]);
    }
  }

  private async ensureJump(tool: string, chain: string, target: string): Promise<void> {
    const rule = [chain, '-i', SANDBOX_INTERFACES, '-j', target];
    try {
      await run(tool, ['-w', '-C', ...rule]);
    } catch {
      await run(tool, ['-w', '-I', chain, '1', '-i', SANDBOX_INTERFACES, '-j', target]);
    }
  }

  /**
   * The resolver queries' jump sits in INPUT ahead of RSBX-INPUT's (whose last rule drops them),
   * so no rewrite of RSBX-INPUT, this version's or another's, can take it out.
   */
  private async ensureDnsJumpFirst(): Promise<void> {
    const rules = (await run('iptables', ['-w', '-S', 'INPUT'])).split('\n');
    const position = (target: string) => rules.findIndex((rule) => rule.endsWith(`-j ${target}`));
    const dns = position(DNS_CHAIN);
    if (dns !== -1 && dns < position(INPUT_CHAIN)) return;
    await this.removeRule('iptables', ['INPUT', ...DNS_JUMP]);
    await run('iptables', ['-w', '-I', 'INPUT', '1', ...DNS_JUMP]);
  }

  private async removeJump(tool: string, chain: string, target: string): Promise<void> {
    await this.removeRule(tool, [chain, '-i', SANDBOX_INTERFACES, '-j', target]);
  }

  /** Deletes every copy of a rule (two servers starting at once may each have added one). */
  private async removeRule(tool: string, rule: string[]): Promise<void> {
    for (;;) {
      try {
        await run(tool, ['-w', '-D', ...rule]);
      } catch {
        return;
      }
    }
  }
}

/** Deletes the rules of `chain` whose `option` is `value`, as a listing of the chain shows them. */
async function deleteRulesWhere(chain: string, option: string, value: string): Promise<void> {
  const stdout = await run('iptables', ['-w', '-S', chain]);
  for (const line of stdout.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== '-A' || fields[fields.indexOf(option) + 1] !== value) continue;
    await run('iptables', ['-w', '-D', ...fields.slice(1)]).catch(() => undefined);
  }
}

/** The sandbox bridges present on the host now (down ones included, which networkInterfaces() omits). */
async function sandboxBridges(): Promise<string[]> {
  const names = await readdir('/sys/class/net');
  return names.filter((name) => name.startsWith(SANDBOX_BRIDGE_PREFIX));
}

/**
 * The IPv4 subnets on the interfaces that carry the host's default route: the LAN the host sits
 * on (its router, its neighbours), which masquerading would otherwise open to every sandbox.
 */
async function uplinkSubnets(): Promise<string[]> {
  const table = await readFile('/proc/net/route', 'utf8').catch(() => '');
  const uplinks = new Set(
    table
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[1] === '00000000' && fields[7] === '00000000')
      .map((fields) => fields[0]),
  );
  const subnets: string[] = [];
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (!uplinks.has(name)) continue;
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && address.cidr) subnets.push(networkOf(address.cidr));
    }
  }
  return subnets;
}

/** `192.0.2.2/24` -> `192.0.2.0/24`. */
function networkOf(cidr: string): string {
  const [ip = '', bitsText = '32'] = cidr.split('/');
  const bits = Number(bitsText);
  const value = ip.split('.').reduce((acc, octet) => (acc << 8) + Number(octet), 0) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const network = (value & mask) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 0xff).join('.')}/${bits}`;
}
