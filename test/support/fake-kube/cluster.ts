/**
 * The fixed part of the fake cluster, made once at start: its namespaces (with their Pod Security
 * labels), RuntimeClasses and its one node. None of these can be created or changed over the API.
 */
import { cpus, totalmem } from 'node:os';
import { type KubeObject, newUid, timestamp } from './object-meta.js';
import type { FakeKubeSettings } from './options.js';
import type { PodSecurityLevel } from './pod-security.js';
import type { ResourceVersionClock } from './resource-store.js';

export const NODE_NAME = 'fake-node';
/** The node's address, the pods' status.hostIP. */
export const NODE_IP = '127.0.0.1';
export const ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';

export interface Cluster {
  namespaces: Map<string, KubeObject>;
  runtimeClasses: Map<string, KubeObject>;
  node: KubeObject;
  nodeLabels: Readonly<Record<string, string>>;
  /** The namespace's enforced Pod Security level (privileged without the label). */
  podSecurityOf(namespace: string): PodSecurityLevel;
}

function meta(clock: ResourceVersionClock, name: string, labels?: Record<string, string>) {
  return {
    name,
    uid: newUid(),
    resourceVersion: String(clock.next()),
    creationTimestamp: timestamp(),
    ...(labels === undefined ? {} : { labels }),
  };
}

export function makeCluster(settings: FakeKubeSettings, clock: ResourceVersionClock): Cluster {
  const namespaces = new Map<string, KubeObject>();
  const levels = new Map<string, PodSecurityLevel>();
  for (const [name, options] of Object.entries(settings.namespaces)) {
    const labels: Record<string, string> = { 'kubernetes.io/metadata.name': name, ...options.labels };
    if (options.podSecurity !== undefined) labels[ENFORCE_LABEL] = options.podSecurity;
    levels.set(name, options.podSecurity ?? 'privileged');
    namespaces.set(name, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: meta(clock, name, labels),
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    } as KubeObject);
  }
  const runtimeClasses = new Map<string, KubeObject>();
  for (const [name, handler] of Object.entries(settings.runtimeClasses)) {
    runtimeClasses.set(name, {
      apiVersion: 'node.k8s.io/v1',
      kind: 'RuntimeClass',
      metadata: meta(clock, name),
      handler,
    } as KubeObject);
  }
  const now = timestamp();
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: meta(clock, NODE_NAME, { ...settings.nodeLabels }),
    spec: {},
    status: {
      capacity: { cpu: String(cpus().length), memory: `${Math.floor(totalmem() / 1024)}Ki`, pods: '110' },
      allocatable: { cpu: String(cpus().length), memory: `${Math.floor(totalmem() / 1024)}Ki`, pods: '110' },
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'kubelet is posting ready status',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
      addresses: [
        { type: 'InternalIP', address: NODE_IP },
        { type: 'Hostname', address: NODE_NAME },
      ],
      nodeInfo: {
        kubeletVersion: 'v1.34.0-fake-kube',
        containerRuntimeVersion: 'docker://fake-kube',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    },
  } as KubeObject;
  return {
    namespaces,
    runtimeClasses,
    node,
    nodeLabels: settings.nodeLabels,
    podSecurityOf: (namespace) => levels.get(namespace) ?? 'privileged',
  };
}
