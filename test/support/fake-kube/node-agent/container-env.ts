/**
 * A container's environment as the kubelet builds it: `value`s with `$(VAR)` references to earlier
 * variables expanded (`$$` escapes), the downward API (`fieldRef`, `resourceFieldRef`), and
 * secret and config map references, which fail like a kubelet's do here since the fake stores no
 * Secrets or ConfigMaps (an optional one is left out). Command and args expand the same way.
 * No service links (the KUBERNETES_SERVICE_* variables) are added.
 */
import { NODE_IP } from '../cluster.js';
import type { Container, Pod } from '../pod-schema.js';
import { parseQuantity } from '../quantity.js';

export type ContainerEnv =
  | { kind: 'env'; entries: Array<[string, string]> }
  | { kind: 'configError'; message: string };

/** Kubernetes' expansion.Expand: `$(NAME)` from `mapping` (left as written when unknown), `$$` -> `$`. */
export function expand(input: string, mapping: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i += 1) {
    const ch = input[i];
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i += 1;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close === -1) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      out += mapping.get(name) ?? `$(${name})`;
      i = close;
    } else {
      out += ch;
    }
  }
  return out;
}

function fieldValue(pod: Pod, path: string, podIP: string): string {
  const keyed = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
  if (keyed) {
    const map = keyed[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[keyed[2] ?? ''] ?? '';
  }
  switch (path) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata.uid;
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return NODE_IP;
    case 'status.podIP':
    case 'status.podIPs':
      return podIP;
    default:
      return '';
  }
}

/** `limits.cpu` and friends, divided by the divisor and rounded up, as the downward API reports them. */
function resourceValue(container: Container, resource: string, divisor: string | number | undefined): string {
  const [kind, name = ''] = resource.split('.');
  const values = kind === 'limits' ? container.resources?.limits : container.resources?.requests;
  const raw = values?.[name];
  const divideBy = divisor === undefined ? 1 : (parseQuantity(divisor) ?? 1);
  // An unset limit would report the node's allocatable; the fake reports 0.
  if (raw === undefined) return '0';
  const value = parseQuantity(raw) ?? 0;
  return String(Math.ceil(value / divideBy));
}

export function containerEnv(pod: Pod, container: Container, podIP: string): ContainerEnv {
  const mapping = new Map<string, string>();
  const entries: Array<[string, string]> = [];
  if ((container.envFrom ?? []).length > 0) {
    return {
      kind: 'configError',
      message: `fake-kube stores no ConfigMaps or Secrets: envFrom of container ${container.name} cannot be resolved`,
    };
  }
  for (const env of container.env ?? []) {
    let value: string | undefined;
    const from = env.valueFrom;
    if (from === undefined) value = expand(env.value ?? '', mapping);
    else if (from.fieldRef) value = fieldValue(pod, from.fieldRef.fieldPath, podIP);
    else if (from.resourceFieldRef)
      value = resourceValue(container, from.resourceFieldRef.resource, from.resourceFieldRef.divisor);
    else if (from.secretKeyRef) {
      if (from.secretKeyRef.optional === true) continue;
      return { kind: 'configError', message: `secret "${from.secretKeyRef.name ?? ''}" not found` };
    } else if (from.configMapKeyRef) {
      if (from.configMapKeyRef.optional === true) continue;
      return { kind: 'configError', message: `configmap "${from.configMapKeyRef.name ?? ''}" not found` };
    }
    if (value === undefined) continue;
    mapping.set(env.name, value);
    entries.push([env.name, value]);
  }
  return { kind: 'env', entries };
}
