/**
 * The sandboxes' resolver: a DNS forwarder on each sandbox network's gateway address (UDP port 53),
 * which Docker's embedded resolver in every sandbox is pointed at. It exists because the host
 * filter (sandbox-firewall.ts) keeps sandboxes off private addresses, and the host's own resolver
 * usually is one; and because names are what an allowlist is written in:
 *
 * - `public`: every query goes to the upstream resolver (SANDBOX_DNS_UPSTREAM).
 * - `allowlist`: only names the sandbox's allowlist matches (`example.com`, or `*.example.com` for
 *   names below it) are resolved; each IPv4 address in an answer is let through the host filter
 *   for that sandbox before the answer goes back, so the connection that follows works. Any other
 *   name is NXDOMAIN, and no query for it leaves the host.
 * - `none`: every query is NXDOMAIN, so nothing leaves through DNS either.
 *
 * Which sandbox asks is told by the query's source address on the network the query came in on;
 * `allowlistOf` gives that sandbox's names (the deployer keeps them on the container). Queries
 * from an address that is no sandbox of the network are dropped. UDP only: an answer too long for
 * a datagram arrives truncated.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import type { NetworkPolicy } from '@runtime-sandbox/contract';
import dnsPacket from 'dns-packet';
import type { Logger } from '../observability/logger.js';

const DNS_PORT = 53;
const UPSTREAM_TIMEOUT_MS = 3000;
const NXDOMAIN = 3;
/** Addresses one sandbox may collect through DNS; the host filter holds a rule for each. */
const MAX_RESOLVED_PER_SANDBOX = 256;

export interface SandboxDnsOptions {
  /** Resolver the allowed queries go to (`host` or `host:port`); default: the host's first nameserver. */
  upstream: string | undefined;
  /** The names a sandbox of an allowlist network may resolve, by its address; undefined: no such sandbox. */
  allowlistOf(address: string): Promise<readonly string[] | undefined>;
  /** Lets `address` reach `resolved` (the host filter's allowlist rule). */
  allow(address: string, resolved: string): Promise<void>;
  logger: Logger;
}

/** A name the pattern `example.com` or `*.example.com` admits; names are compared without case or trailing dot. */
export function nameAllowed(name: string, patterns: readonly string[]): boolean {
  const wanted = name.toLowerCase().replace(/\.$/, '');
  return patterns.some((pattern) =>
    pattern.startsWith('*.') ? wanted.endsWith(pattern.slice(1)) : wanted === pattern,
  );
}

export class SandboxDns {
  private readonly sockets = new Map<string, Socket>();
  private readonly resolved = new Map<string, Set<string>>();
  private upstream: Promise<{ host: string; port: number }> | undefined;

  constructor(private readonly options: SandboxDnsOptions) {}

  /** Starts answering on `gateway`, port 53, for a network of `policy`; a second call is a no-op. */
  async serve(gateway: string, policy: NetworkPolicy): Promise<void> {
    if (this.sockets.has(gateway)) return;
    // reuseAddr: replicas of the deployment on this host bind it too, and take over when one stops.
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (query, from) => {
      this.answer(socket, policy, query, from).catch((err: unknown) =>
        this.options.logger.warn(
          { err: String(err), from: from.address },
          'answering a sandbox DNS query failed',
        ),
      );
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // Not exclusive: the workers of one server share the socket (cluster hands it out).
      socket.bind({ address: gateway, port: DNS_PORT, exclusive: false }, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      socket.close();
      throw new Error(
        `cannot serve DNS to sandboxes on ${gateway}:${DNS_PORT} (${String(err)}); is a resolver on the host listening on all addresses?`,
        { cause: err },
      );
    });
    socket.on('error', (err) =>
      this.options.logger.warn({ err: err.message, gateway }, 'sandbox DNS socket error'),
    );
    // The sandboxes need it, not the process: whatever else keeps it running keeps this one serving.
    socket.unref();
    this.sockets.set(gateway, socket);
  }

  /** Forgets the addresses a sandbox resolved (its filter rules go with the sandbox). */
  forget(address: string): void {
    this.resolved.delete(address);
  }

  close(): void {
    for (const socket of this.sockets.values()) socket.close();
    this.sockets.clear();
  }

  private async answer(
    socket: Socket,
    policy: NetworkPolicy,
    query: Buffer,
    from: RemoteInfo,
  ): Promise<void> {
    let decoded: dnsPacket.DecodedPacket;
    try {
      decoded = dnsPacket.decode(query);
    } catch {
      return;
    }
    const question = decoded.questions?.[0];
    if (decoded.type !== 'query' || question === undefined) return;
    let allowlist: readonly string[] | undefined;
    if (policy === 'allowlist') {
      allowlist = await this.options.allowlistOf(from.address);
      if (allowlist === undefined) return;
    }
    const admitted =
      policy === 'public' || (allowlist !== undefined && nameAllowed(question.name, allowlist));
    if (!admitted) {
      socket.send(refusal(decoded), from.port, from.address);
      return;
    }
    const reply = await this.forward(query);
    if (allowlist !== undefined) await this.letThrough(from.address, reply);
    socket.send(reply, from.port, from.address);
  }

  /** Opens the host filter for every IPv4 address the answer holds, before the sandbox sees it. */
  private async letThrough(address: string, reply: Buffer): Promise<void> {
    const seen = this.resolved.get(address) ?? new Set<string>();
    this.resolved.set(address, seen);
    for (const record of dnsPacket.decode(reply).answers ?? []) {
      if (record.type !== 'A' || seen.has(record.data)) continue;
      if (seen.size >= MAX_RESOLVED_PER_SANDBOX) break;
      await this.options.allow(address, record.data);
      seen.add(record.data);
    }
  }

  /** The upstream's answer to `query`, sent from a fresh socket (a fresh source port per query). */
  private async forward(query: Buffer): Promise<Buffer> {
    const { host, port } = await this.upstreamAddress();
    const socket = createSocket({ type: 'udp4' });
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the upstream resolver ${host}:${port} did not answer`)),
          UPSTREAM_TIMEOUT_MS,
        );
        socket.once('error', reject);
        socket.on('message', (reply, sender) => {
          // Only the resolver asked, answering this query's id, is believed.
          if (
            sender.address !== host ||
            sender.port !== port ||
            reply.readUInt16BE(0) !== query.readUInt16BE(0)
          )
            return;
          clearTimeout(timer);
          resolve(reply);
        });
        socket.send(query, port, host);
      });
    } finally {
      socket.close();
    }
  }

  private upstreamAddress(): Promise<{ host: string; port: number }> {
    this.upstream ??= resolveUpstream(this.options.upstream);
    return this.upstream;
  }
}

/** NXDOMAIN for the query's question, no answers. */
function refusal(query: dnsPacket.DecodedPacket): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | NXDOMAIN,
    questions: query.questions,
    answers: [],
  });
}

/** `host[:port]`, else the host's first IPv4 nameserver from /etc/resolv.conf. */
async function resolveUpstream(configured: string | undefined): Promise<{ host: string; port: number }> {
  const text = configured ?? (await firstNameserver());
  const [host = '', port = String(DNS_PORT)] = text.split(':');
  return { host, port: Number(port) };
}

async function firstNameserver(): Promise<string> {
  const conf = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const match = conf.match(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/m);
  if (!match?.[1]) throw new Error('no IPv4 nameserver in /etc/resolv.conf; set SANDBOX_DNS_UPSTREAM');
  return match[1];
}
