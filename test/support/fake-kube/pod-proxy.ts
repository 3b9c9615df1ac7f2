/**
 * The pods/proxy subresource: `/api/v1/namespaces/{ns}/pods/{[scheme:]name[:port]}/proxy/{path}`
 * forwarded, streaming both ways, to the pod on the pod network (the node agent's address of it,
 * which with unroutablePodIPs is not status.podIP). Without a port it takes the first declared
 * container port, else 80. Plain HTTP to the pod only; no WebSocket upgrades.
 */
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import type { ApiRequest } from './api-server.js';
import { writeStatus } from './api-server.js';
import { badRequest, serviceUnavailable } from './api-status.js';
import type { Pod } from './pod-schema.js';

/** Hop-by-hop headers and the caller's credentials stay at the proxy. */
const DROPPED_HEADERS = new Set([
  'authorization',
  'connection',
  'host',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
]);

function parseTarget(raw: string): { name: string; port: string | undefined } {
  const parts = raw.split(':');
  if (parts.length === 1) return { name: raw, port: undefined };
  if (parts.length === 2) return { name: parts[0] ?? '', port: parts[1] };
  if (parts.length === 3 && (parts[0] === 'http' || parts[0] === ''))
    return { name: parts[1] ?? '', port: parts[2] };
  throw badRequest(`invalid pod proxy target ${JSON.stringify(raw)}: fake-kube proxies http only`);
}

function portOf(pod: Pod, port: string | undefined): number {
  if (port === undefined || port === '') {
    return pod.spec.containers.flatMap((c) => c.ports ?? [])[0]?.containerPort ?? 80;
  }
  if (/^[0-9]+$/.test(port)) return Number(port);
  const named = pod.spec.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === port);
  if (named === undefined)
    throw badRequest(`no such port ${JSON.stringify(port)} on pod ${pod.metadata.name}`);
  return named.containerPort;
}

export function proxyToPod(
  request: ApiRequest,
  podNamed: (name: string) => Pod,
  addressOf: (pod: Pod) => string | undefined,
): void {
  const target = parseTarget(request.params.name ?? '');
  const pod = podNamed(target.name);
  const port = portOf(pod, target.port);
  const ip = pod.status.podIP === undefined ? undefined : addressOf(pod);
  if (ip === undefined)
    throw serviceUnavailable(`error trying to reach service: pod ${pod.metadata.name} has no IP`);
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(request.raw.headers)) {
    if (!DROPPED_HEADERS.has(name) && value !== undefined) headers[name] = value;
  }
  const search = request.query.toString();
  const path = `/${request.params['*'] ?? ''}${search === '' ? '' : `?${search}`}`;
  const upstream = httpRequest(
    { host: ip, port, method: request.method, path, headers, agent: false },
    (answer) => {
      const { connection: _connection, 'transfer-encoding': _encoding, ...passed } = answer.headers;
      request.res.writeHead(answer.statusCode ?? 502, passed);
      answer.pipe(request.res);
    },
  );
  upstream.on('error', (error) => {
    writeStatus(request.res, serviceUnavailable(`error trying to reach service: ${error.message}`).status);
  });
  request.res.on('close', () => upstream.destroy());
  request.raw.pipe(upstream);
}
