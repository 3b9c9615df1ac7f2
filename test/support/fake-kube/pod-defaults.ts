/**
 * What a stored pod gains over what was sent: core/v1 defaulting (SetDefaults_Pod and friends), the
 * default admission plugins' additions (ServiceAccount's name, DefaultTolerationSeconds, Priority),
 * and the QoS class. A client reading its pod back sees these fields as on a real cluster.
 */
import type { Container, PodSpec, PodStatus, Probe } from './pod-schema.js';
import { parseQuantity } from './quantity.js';

function defaultProbe(probe: Probe | undefined): void {
  if (probe === undefined) return;
  // Go defaults zero values too: 0 here means "not set".
  probe.timeoutSeconds ||= 1;
  probe.periodSeconds ||= 10;
  probe.successThreshold ||= 1;
  probe.failureThreshold ||= 3;
  if (probe.httpGet) probe.httpGet.scheme ||= 'HTTP';
}

/** `Always` for `:latest` or an untagged image, else `IfNotPresent`. */
function defaultPullPolicy(image: string | undefined): string {
  if (image === undefined || image.includes('@')) return 'IfNotPresent';
  const lastPart = image.slice(image.lastIndexOf('/') + 1);
  const tag = lastPart.includes(':') ? lastPart.slice(lastPart.indexOf(':') + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultContainer(container: Container): void {
  container.imagePullPolicy ||= defaultPullPolicy(container.image);
  container.terminationMessagePath ||= '/dev/termination-log';
  container.terminationMessagePolicy ||= 'File';
  container.resources ??= {};
  // Requests default to limits where only limits are given.
  const { limits } = container.resources;
  if (limits !== undefined) {
    const requests = { ...limits, ...container.resources.requests };
    container.resources.requests = requests;
  }
  for (const port of container.ports ?? []) port.protocol ||= 'TCP';
  for (const env of container.env ?? []) {
    if (env.valueFrom?.fieldRef) env.valueFrom.fieldRef.apiVersion ||= 'v1';
  }
  defaultProbe(container.readinessProbe);
  defaultProbe(container.livenessProbe);
  defaultProbe(container.startupProbe);
}

export function defaultPodSpec(spec: PodSpec & { containers: Container[] }): void {
  spec.restartPolicy ||= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ||= 'ClusterFirst';
  spec.schedulerName ||= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.serviceAccountName ||= 'default';
  spec.serviceAccount ??= spec.serviceAccountName;
  spec.priority ??= 0;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  const tolerations = spec.tolerations ?? [];
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    if (!tolerations.some((toleration) => toleration.key === key)) {
      tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
    }
  }
  spec.tolerations = tolerations;
  for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) defaultContainer(container);
}

/** Guaranteed when every container limits CPU and memory with equal requests; BestEffort without any. */
export function qosClassOf(containers: readonly Container[]): NonNullable<PodStatus['qosClass']> {
  let anySet = false;
  let guaranteed = true;
  for (const container of containers) {
    const limits = container.resources?.limits ?? {};
    const requests = container.resources?.requests ?? {};
    if (Object.keys(limits).length > 0 || Object.keys(requests).length > 0) anySet = true;
    for (const resource of ['cpu', 'memory']) {
      const limit = limits[resource];
      const request = requests[resource];
      if (limit === undefined || request === undefined || parseQuantity(limit) !== parseQuantity(request)) {
        guaranteed = false;
      }
    }
  }
  if (!anySet) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}
