/**
 * One HTTP request to a path of sandboxd at an Endpoint: plain HTTP to host:port, or, for an
 * endpoint with a `proxyPath`, HTTPS to the proxy with its TLS settings and credentials and the
 * path under the prefix. The sandboxd token then travels in SANDBOXD_AUTHORIZATION_HEADER, as the
 * proxy consumes `Authorization`. Used by the readiness wait and by the manager's sandboxd client,
 * so both reach sandboxd the same way.
 */
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type OutgoingHttpHeaders,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { SANDBOXD_AUTHORIZATION_HEADER } from '@runtime-sandbox/contract';
import type { Endpoint, ProxyTransport, ProxyTransportSource } from './deployer.js';

export interface EndpointRequest {
  method: string;
  /** sandboxd path with its query, e.g. `/files?path=a`. */
  path: string;
  headers?: OutgoingHttpHeaders;
  /** sandboxd's token; none for its open routes (/healthz). */
  token?: string;
  /** An agent from `agentFor`, or undefined for a one-off connection. */
  agent?: HttpAgent;
  signal?: AbortSignal;
}

/** The transport an endpoint needs: undefined for a direct one; throws when a proxied one has none. */
export async function transportFor(
  endpoint: Endpoint,
  source: ProxyTransportSource | undefined,
): Promise<ProxyTransport | undefined> {
  if (endpoint.proxyPath === undefined) return undefined;
  if (source === undefined) {
    throw new Error(
      `endpoint ${describeEndpoint(endpoint)} is behind a proxy, and the deployer gives no way through it`,
    );
  }
  return source();
}

/** A keep-alive agent fit for the endpoint: HTTPS with the transport's TLS settings when proxied. */
export function agentFor(
  transport: ProxyTransport | undefined,
  options: { keepAlive: boolean; timeout: number },
): HttpAgent {
  return transport === undefined ? new HttpAgent(options) : new HttpsAgent({ ...options, ...transport.tls });
}

/** Starts the request; the caller writes the body and listens for `response` and `error`. */
export function requestEndpoint(
  endpoint: Endpoint,
  transport: ProxyTransport | undefined,
  request: EndpointRequest,
): ClientRequest {
  const common = { host: endpoint.host, port: endpoint.port, method: request.method, signal: request.signal };
  if (transport === undefined || endpoint.proxyPath === undefined) {
    const headers = { ...request.headers, ...tokenHeader('authorization', request.token) };
    return httpRequest({ ...common, path: request.path, headers, agent: request.agent ?? false });
  }
  const headers = {
    ...request.headers,
    ...transport.headers,
    ...tokenHeader(SANDBOXD_AUTHORIZATION_HEADER, request.token),
  };
  const path = `${endpoint.proxyPath}${request.path}`;
  // With no shared agent, the TLS settings go on the request itself (a one-off connection).
  return httpsRequest({ ...common, ...transport.tls, path, headers, agent: request.agent ?? false });
}

/** host:port, and the proxy path if any; never credentials. */
export function describeEndpoint(endpoint: Endpoint): string {
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return `${host}:${endpoint.port}${endpoint.proxyPath ?? ''}`;
}

function tokenHeader(name: string, token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { [name]: `Bearer ${token}` };
}
