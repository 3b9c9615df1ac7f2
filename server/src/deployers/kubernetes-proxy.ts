/**
 * K8S_ACCESS=proxy: sandboxd reached through the API server's pods/proxy subresource, for a
 * server outside the cluster. Endpoints are the API server's host and port with the pod's proxy
 * path; the transport is the kubeconfig's own TLS settings and credentials, as client-node applies
 * them (applyToHTTPSOptions), with verification on unless the kubeconfig turns it off.
 */
import type { RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { SANDBOXD_PORT } from '@runtime-sandbox/contract';
import type { Endpoint, ProxyTransport, ProxyTransportSource } from './deployer.js';

/**
 * How long one reading of the kubeconfig's credentials is used. Reading costs file reads (CA and
 * key files) and, with an exec plugin, maybe a process; a minute still follows rotated tokens.
 */
const TRANSPORT_REUSE_MS = 60_000;

/** Where pods' proxies are: the API server's address and the path prefix of `namespace`'s pods. */
export interface PodProxy {
  host: string;
  port: number;
  /** The server URL's own path (a cluster behind a gateway), then `/api/v1/namespaces/<ns>/pods`. */
  podsPath: string;
}

/** Throws, naming the setting, when the kubeconfig's cluster cannot be used this way. */
export function podProxyOf(kubeConfig: KubeConfig, namespace: string): PodProxy {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error('K8S_ACCESS=proxy: the kubeconfig has no current cluster');
  const url = new URL(cluster.server);
  if (url.protocol !== 'https:') {
    throw new Error(`K8S_ACCESS=proxy needs an https:// API server; the kubeconfig's is ${url.origin}`);
  }
  if (cluster.proxyUrl !== undefined) {
    throw new Error('K8S_ACCESS=proxy does not support a kubeconfig cluster with proxy-url');
  }
  const prefix = url.pathname.replace(/\/+$/, '');
  return {
    // URL keeps IPv6 hosts in brackets; a socket wants them bare.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 443 : Number(url.port),
    podsPath: `${prefix}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
  };
}

/** sandboxd of pod `name`, through its proxy. */
export function podProxyEndpoint(proxy: PodProxy, name: string): Endpoint {
  return {
    host: proxy.host,
    port: proxy.port,
    proxyPath: `${proxy.podsPath}/${encodeURIComponent(name)}:${SANDBOXD_PORT}/proxy`,
  };
}

/** The kubeconfig's TLS settings and credentials, read again once TRANSPORT_REUSE_MS has passed. */
export function kubeProxyTransport(kubeConfig: KubeConfig): ProxyTransportSource {
  let cached: { transport: Promise<ProxyTransport>; at: number } | undefined;
  return () => {
    const now = Date.now();
    if (cached === undefined || now - cached.at >= TRANSPORT_REUSE_MS) {
      const transport = readTransport(kubeConfig);
      cached = { transport, at: now };
      // A failed reading is not kept: the next request tries again.
      transport.catch(() => {
        if (cached?.transport === transport) cached = undefined;
      });
    }
    return cached.transport;
  };
}

async function readTransport(kubeConfig: KubeConfig): Promise<ProxyTransport> {
  const options: RequestOptions = {};
  await kubeConfig.applyToHTTPSOptions(options);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (value !== undefined)
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  // A username and password in the kubeconfig come back as `auth`, for Basic authentication.
  if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
  const { ca, cert, key, pfx, passphrase, servername } = options;
  return {
    // Verified unless the kubeconfig itself says insecure-skip-tls-verify (never left to the environment).
    tls: {
      ca,
      cert,
      key,
      pfx,
      passphrase,
      rejectUnauthorized: kubeConfig.getCurrentCluster()?.skipTLSVerify !== true,
      ...(servername === undefined ? {} : { servername }),
    },
    headers,
  };
}
