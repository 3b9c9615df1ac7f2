/** Puts the fake together: stores, cluster, node agent, HTTP server and kubeconfig (see index.ts). */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { type AgentSandboxObject, type AgentSandboxStores, agentSandboxRoutes } from './agent-sandbox-api.js';
import { AgentSandboxController } from './agent-sandbox-controller.js';
import { ApiServer, type RecordedRequest, type Route } from './api-server.js';
import { makeCluster } from './cluster.js';
import { clusterRoutes } from './cluster-api.js';
import { writeKubeconfig } from './kubeconfig.js';
import { type NetworkPolicy, networkPolicyRoutes } from './network-policy-api.js';
import { NodeAgent } from './node-agent/node-agent.js';
import { type FakeKubeOptions, fakeKubeOptionsSchema } from './options.js';
import type { CreateGate } from './pod-admission.js';
import { podRoutes } from './pod-api.js';
import type { Pod } from './pod-schema.js';
import { ResourceStore, ResourceVersionClock } from './resource-store.js';
import { makeTlsMaterial, type TlsMaterial } from './tls.js';

export interface FakeKube {
  /** `http://127.0.0.1:<port>`, or `https://` with the tls option: the cluster's server. */
  readonly url: string;
  /** With the tls option, the CA (PEM) the server's certificate chains to. */
  readonly caPem: string | undefined;
  readonly port: number;
  /** The bearer token every request must carry. */
  readonly token: string;
  /** A kubeconfig for the fake (cluster, token user, context, current-context); for KUBECONFIG_PATH. */
  readonly kubeconfigPath: string;
  /** The value of the `io.runtime-sandbox.fake-kube` label on everything it made in Docker. */
  readonly instanceId: string;
  /** The Docker bridge network the pods run on. */
  readonly networkName: string;
  /** Every request so far, in order: method, path and query. */
  readonly requests: readonly RecordedRequest[];
  /** How many pod lists (GETs of a pods collection that are not watches) it has answered so far. */
  podLists(): number;
  /** The current pod objects (copies), of one namespace or all. */
  pods(namespace?: string): Pod[];
  networkPolicies(namespace?: string): NetworkPolicy[];
  /** With `agentSandbox`: its current objects (copies) by kind, of one namespace or all. */
  agentSandboxObjects(kind: keyof AgentSandboxStores, namespace?: string): AgentSandboxObject[];
  /** The Docker container id running a pod, once created. */
  containerIdOf(podName: string, namespace?: string): string | undefined;
  /** Pod creates answer 403 `pods "x" is forbidden: <message>` (a ResourceQuota refusal) until acceptCreates(). */
  refuseCreates(message?: string): void;
  acceptCreates(): void;
  /** Forgets the watch history: a watch from any earlier resourceVersion gets the 410 Expired ERROR event. */
  expireWatchHistory(): void;
  /** Ends every open watch cleanly, as an apiserver restart does. */
  dropWatches(): void;
  /** Closes the listener and every connection; the cluster keeps running. */
  goDown(): Promise<void>;
  /** Listens again on the same port, with the state kept. */
  comeBack(): Promise<void>;
  /** Closes the listener, removes every container and network it made, its kubeconfig and TLS files. */
  stop(): Promise<void>;
}

const DEFAULT_QUOTA_REFUSAL =
  'exceeded quota: fake-kube-quota, requested: pods=1, used: pods=0, limited: pods=0';

export async function startFakeKube(options: FakeKubeOptions = {}): Promise<FakeKube> {
  const settings = fakeKubeOptionsSchema.parse(options);
  const docker = new Dockerode({ socketPath: settings.dockerSocket });
  await docker.ping().catch((error: unknown) => {
    throw new Error(
      `fake-kube needs a Docker engine at ${settings.dockerSocket} for its node agent and none answers: ${String(error)}`,
    );
  });
  const instanceId = randomBytes(8).toString('hex');
  const token = settings.token ?? randomBytes(24).toString('hex');
  const clock = new ResourceVersionClock();
  const pods = new ResourceStore<Pod>(clock, settings.watchHistorySize);
  const policies = new ResourceStore<NetworkPolicy>(clock, settings.watchHistorySize);
  const cluster = makeCluster(settings, clock);
  const gate: CreateGate = { quotaRefusal: undefined };
  const agentSandbox: AgentSandboxStores = {
    sandboxes: new ResourceStore(clock, settings.watchHistorySize),
    claims: new ResourceStore(clock, settings.watchHistorySize),
    templates: new ResourceStore(clock, settings.watchHistorySize),
    warmPools: new ResourceStore(clock, settings.watchHistorySize),
  };
  const agent = new NodeAgent({
    docker,
    pods,
    instanceId,
    nodeLabels: settings.nodeLabels,
    backoffInitialMs: settings.backoffInitialMs,
    backoffMaxMs: settings.backoffMaxMs,
    unroutablePodIPs: settings.unroutablePodIPs,
  });
  const dir = mkdtempSync(join(tmpdir(), 'fake-kube-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  let tls: TlsMaterial | undefined;
  try {
    tls = settings.tls ? makeTlsMaterial(dir) : undefined;
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const openWatches = new Set<ServerResponse>();
  const { bookmarkIntervalMs } = settings;
  const routes: Route[] = [
    ...clusterRoutes(cluster, clock, (): string => `127.0.0.1:${server.port}`),
    ...podRoutes({ pods, clock, cluster, runtime: agent, gate, bookmarkIntervalMs, openWatches }),
    ...networkPolicyRoutes({ policies, clock, cluster, bookmarkIntervalMs, openWatches }),
    ...(settings.agentSandbox
      ? agentSandboxRoutes({ stores: agentSandbox, clock, cluster, bookmarkIntervalMs, openWatches })
      : []),
  ];
  const controller = new AgentSandboxController({
    stores: agentSandbox,
    pods,
    cluster,
    gate,
    runtime: agent,
  });
  const serving = tls === undefined ? undefined : { cert: tls.certPem, key: tls.keyPem };
  const server: ApiServer = new ApiServer(routes, token, openWatches, serving, settings.authorization);
  try {
    await agent.start();
    if (settings.agentSandbox) controller.start();
    await server.listen();
  } catch (error) {
    await server.close();
    await controller.stop();
    await agent.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${server.port}`;
  const namespace = Object.keys(settings.namespaces)[0] ?? 'default';
  writeKubeconfig(kubeconfigPath, { server: url, token, namespace, caPem: tls?.caPem });

  let stopped: Promise<void> | undefined;
  return {
    url,
    caPem: tls?.caPem,
    port: server.port,
    token,
    kubeconfigPath,
    instanceId,
    networkName: agent.networkName,
    requests: server.requests,
    podLists: () =>
      server.requests.filter(
        (request) =>
          request.method === 'GET' && request.path.endsWith('/pods') && request.query.watch === undefined,
      ).length,
    pods: (namespace) => pods.list((pod) => namespace === undefined || pod.metadata.namespace === namespace),
    networkPolicies: (namespace) =>
      policies.list((policy) => namespace === undefined || policy.metadata.namespace === namespace),
    agentSandboxObjects: (kind, namespace) =>
      agentSandbox[kind].list((object) => namespace === undefined || object.metadata.namespace === namespace),
    containerIdOf: (podName, namespace = Object.keys(settings.namespaces)[0] ?? 'default') =>
      agent.containerIdOf(namespace, podName),
    refuseCreates: (message = DEFAULT_QUOTA_REFUSAL) => {
      gate.quotaRefusal = message;
    },
    acceptCreates: () => {
      gate.quotaRefusal = undefined;
    },
    expireWatchHistory: () => {
      pods.expireHistory();
      policies.expireHistory();
      for (const store of Object.values(agentSandbox)) store.expireHistory();
    },
    dropWatches: () => server.dropWatches(),
    goDown: () => server.close(),
    comeBack: () => server.listen(),
    stop: () => {
      stopped ??= (async () => {
        server.dropWatches();
        await server.close();
        await controller.stop();
        await agent.stop();
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
