/**
 * A stand-in for the internet and for the addresses a sandbox must never reach, inside a network
 * namespace this test makes, so that no packet of the suite can leave the machine: one veth pair,
 * the namespace's end holding 203.0.113.10 and .11 (documentation addresses playing public hosts),
 * 169.254.169.254 (the cloud metadata address) and 10.203.0.10 (a private-range host). Host routes
 * to all three point into the veth, and are in place before any packet is sent; a plain HTTP
 * listener answers on each, and a DNS server for STAND_IN_ZONE on 203.0.113.53 (the sandboxes'
 * upstream resolver in the tests), which records every name it is asked. `stop()` kills the
 * listeners and deletes the namespace (and with it the veth and its routes).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { packageRoot } from '../../server/src/package-root.js';

const run = promisify(execFile);

export const PUBLIC_HOST = '203.0.113.10';
/** A second public stand-in, for allowlists that name one and not the other. */
export const OTHER_PUBLIC_HOST = '203.0.113.11';
export const METADATA_HOST = '169.254.169.254';
export const PRIVATE_HOST = '10.203.0.10';
/** The stand-in's DNS server: an internet resolver, as far as the sandboxes can tell. */
export const DNS_HOST = '203.0.113.53';
const HOST_SIDE = '203.0.113.1';
export const LISTEN_PORT = 8080;
/** The names the stand-in's DNS server knows; anything else is NXDOMAIN. */
export const STAND_IN_ZONE = {
  'listed.test': PUBLIC_HOST,
  'unlisted.test': OTHER_PUBLIC_HOST,
  'api.wild.test': OTHER_PUBLIC_HOST,
  'metadata.test': METADATA_HOST,
} as const;

export interface InternetStandIn {
  /** The host's own address on the veth (a host address sandboxes must not reach either). */
  hostSideAddress: string;
  /** Every name the stand-in's DNS server was asked for, in order. */
  dnsQueries(): string[];
  stop(): Promise<void>;
}

export async function startInternetStandIn(): Promise<InternetStandIn> {
  const tag = randomBytes(3).toString('hex');
  const ns = `rsbx-test-inet-${tag}`;
  // Not `rsbx…`: the host filter treats interfaces with that prefix as sandbox bridges.
  const hostVeth = `tinet${tag}`;
  const nsVeth = `tinetn${tag}`;
  const ip = (...args: string[]) => run('ip', args);
  const inNs = (...args: string[]) => run('ip', ['netns', 'exec', ns, 'ip', ...args]);
  let listener: ChildProcess | undefined;
  const stop = async () => {
    listener?.kill('SIGKILL');
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  };
  try {
    await ip('netns', 'add', ns);
    await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth);
    await ip('link', 'set', nsVeth, 'netns', ns);
    await ip('addr', 'add', `${HOST_SIDE}/24`, 'dev', hostVeth);
    await ip('link', 'set', hostVeth, 'up');
    await ip('route', 'add', `${METADATA_HOST}/32`, 'dev', hostVeth);
    await ip('route', 'add', `${PRIVATE_HOST}/32`, 'dev', hostVeth);
    await inNs('link', 'set', 'lo', 'up');
    await inNs('addr', 'add', `${PUBLIC_HOST}/24`, 'dev', nsVeth);
    await inNs('addr', 'add', `${OTHER_PUBLIC_HOST}/24`, 'dev', nsVeth);
    await inNs('addr', 'add', `${METADATA_HOST}/32`, 'dev', nsVeth);
    await inNs('addr', 'add', `${PRIVATE_HOST}/32`, 'dev', nsVeth);
    await inNs('addr', 'add', `${DNS_HOST}/24`, 'dev', nsVeth);
    await inNs('link', 'set', nsVeth, 'up');
    await inNs('route', 'add', 'default', 'via', HOST_SIDE);
    const services = join(packageRoot(), 'test', 'security', 'fixtures', 'stand-in-services.cjs');
    listener = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        services,
        String(LISTEN_PORT),
        DNS_HOST,
        JSON.stringify(STAND_IN_ZONE),
      ],
      { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const queries: string[] = [];
    const lines = createInterface({ input: listener.stdout as NodeJS.ReadableStream });
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        if (line === 'up') resolve();
        else if (line.startsWith('query ')) queries.push(line.slice('query '.length));
      });
      listener?.once('exit', (code) => reject(new Error(`stand-in listener exited with ${code}`)));
    });
    return { hostSideAddress: HOST_SIDE, dnsQueries: () => [...queries], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
