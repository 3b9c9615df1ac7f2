/**
 * The read-only cluster endpoints: /version, health, minimal discovery (/api, /apis and the group
 * versions the fake serves), namespaces, the node, and RuntimeClasses (cluster-scoped).
 */
import type { Route } from './api-server.js';
import { type GroupResource, NAMESPACES, NODES, notFound, RUNTIME_CLASSES } from './api-status.js';
import type { Cluster } from './cluster.js';
import type { KubeObject } from './object-meta.js';
import type { ResourceVersionClock } from './resource-store.js';

const VERSION = {
  major: '1',
  minor: '34',
  gitVersion: 'v1.34.0-fake-kube',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.24.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

interface ResourceEntry {
  name: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
}

const resourceList = (groupVersion: string, resources: ResourceEntry[]) => ({
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion,
  resources: resources.map((r) => ({ singularName: r.kind.toLowerCase(), ...r })),
});

const group = (name: string) => ({
  name,
  versions: [{ groupVersion: `${name}/v1`, version: 'v1' }],
  preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' },
});

function listOf(
  kind: string,
  apiVersion: string,
  objects: Iterable<KubeObject>,
  clock: ResourceVersionClock,
) {
  const items = [...objects].map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest);
  return { kind: `${kind}List`, apiVersion, metadata: { resourceVersion: String(clock.current) }, items };
}

function lookup(objects: ReadonlyMap<string, KubeObject>, resource: GroupResource, name: string) {
  const object = objects.get(name);
  if (object === undefined) throw notFound(resource, name);
  return { status: 200, json: object };
}

export function clusterRoutes(
  cluster: Cluster,
  clock: ResourceVersionClock,
  serverAddress: () => string,
): Route[] {
  const ok = () => ({ status: 200, text: 'ok' });
  const nodes = new Map([[cluster.node.metadata.name, cluster.node]]);
  return [
    { method: 'GET', pattern: '/version', handler: () => ({ status: 200, json: VERSION }) },
    { method: 'GET', pattern: '/readyz', handler: ok },
    { method: 'GET', pattern: '/livez', handler: ok },
    { method: 'GET', pattern: '/healthz', handler: ok },
    {
      method: 'GET',
      pattern: '/api',
      handler: () => ({
        status: 200,
        json: {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: serverAddress() }],
        },
      }),
    },
    {
      method: 'GET',
      pattern: '/api/v1',
      handler: () => ({
        status: 200,
        json: resourceList('v1', [
          { name: 'namespaces', kind: 'Namespace', namespaced: false, verbs: ['get', 'list'] },
          { name: 'nodes', kind: 'Node', namespaced: false, verbs: ['get', 'list'] },
          {
            name: 'pods',
            kind: 'Pod',
            namespaced: true,
            verbs: ['create', 'delete', 'get', 'list', 'watch'],
          },
          { name: 'pods/log', kind: 'Pod', namespaced: true, verbs: ['get'] },
          {
            name: 'pods/proxy',
            kind: 'PodProxyOptions',
            namespaced: true,
            verbs: ['create', 'delete', 'get', 'patch', 'update'],
          },
        ]),
      }),
    },
    {
      method: 'GET',
      pattern: '/apis',
      handler: () => ({
        status: 200,
        json: {
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: [group('networking.k8s.io'), group('node.k8s.io')],
        },
      }),
    },
    {
      method: 'GET',
      pattern: '/apis/networking.k8s.io/v1',
      handler: () => ({
        status: 200,
        json: resourceList('networking.k8s.io/v1', [
          {
            name: 'networkpolicies',
            kind: 'NetworkPolicy',
            namespaced: true,
            verbs: ['create', 'delete', 'get', 'list', 'watch'],
          },
        ]),
      }),
    },
    {
      method: 'GET',
      pattern: '/apis/node.k8s.io/v1',
      handler: () => ({
        status: 200,
        json: resourceList('node.k8s.io/v1', [
          { name: 'runtimeclasses', kind: 'RuntimeClass', namespaced: false, verbs: ['get', 'list'] },
        ]),
      }),
    },
    {
      method: 'GET',
      pattern: '/api/v1/namespaces',
      handler: () => ({ status: 200, json: listOf('Namespace', 'v1', cluster.namespaces.values(), clock) }),
    },
    {
      method: 'GET',
      pattern: '/api/v1/namespaces/:name',
      handler: (request) => lookup(cluster.namespaces, NAMESPACES, request.params.name ?? ''),
    },
    {
      method: 'GET',
      pattern: '/api/v1/nodes',
      handler: () => ({ status: 200, json: listOf('Node', 'v1', nodes.values(), clock) }),
    },
    {
      method: 'GET',
      pattern: '/api/v1/nodes/:name',
      handler: (request) => lookup(nodes, NODES, request.params.name ?? ''),
    },
    {
      method: 'GET',
      pattern: '/apis/node.k8s.io/v1/runtimeclasses',
      handler: () => ({
        status: 200,
        json: listOf('RuntimeClass', 'node.k8s.io/v1', cluster.runtimeClasses.values(), clock),
      }),
    },
    {
      method: 'GET',
      pattern: '/apis/node.k8s.io/v1/runtimeclasses/:name',
      handler: (request) => lookup(cluster.runtimeClasses, RUNTIME_CLASSES, request.params.name ?? ''),
    },
  ];
}
