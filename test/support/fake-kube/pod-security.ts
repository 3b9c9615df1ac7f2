/**
 * Pod Security admission (the pod-security-admission library's checks at policy version "latest"),
 * enforcing a namespace's `pod-security.kubernetes.io/enforce` level. Checks run in the library's
 * order (baseline ones, then for baseline the ones restricted replaces, else the restricted ones)
 * and the refusal reads as the real one:
 * `violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "x" must
 * set securityContext.allowPrivilegeEscalation=false), ...`.
 */
import type { Container, Pod, PodSpec } from './pod-schema.js';

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';

interface Violation {
  reason: string;
  detail: string;
}

type Check = (pod: Pod) => Violation | undefined;

const joinQuote = (items: readonly string[]) => (items.length === 0 ? '' : `"${items.join('", "')}"`);
const pluralize = (singular: string, plural: string, count: number) => (count === 1 ? singular : plural);
const containersPhrase = (names: readonly string[]) =>
  `${pluralize('container', 'containers', names.length)} ${joinQuote(names)}`;
const sortedUnique = (items: Iterable<string>) => [...new Set(items)].sort();

/** Containers, init containers and ephemeral containers, as the library's visitContainers walks them. */
function allContainers(spec: PodSpec & { containers: Container[] }): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers, ...(spec.ephemeralContainers ?? [])];
}

/** User-namespaced pods (hostUsers: false) relax the runAsNonRoot, runAsUser and procMount checks. */
const userNamespaced = (pod: Pod) => pod.spec.hostUsers === false;

const appArmorProfile: Check = (pod) => {
  const forbidden: string[] = [];
  const prefix = 'container.apparmor.security.beta.kubernetes.io/';
  for (const [key, value] of Object.entries(pod.metadata.annotations ?? {})) {
    if (
      key.startsWith(prefix) &&
      value !== '' &&
      value !== 'runtime/default' &&
      !value.startsWith('localhost/')
    ) {
      forbidden.push(`${key}=${JSON.stringify(value)}`);
    }
  }
  if (pod.spec.securityContext?.appArmorProfile?.type === 'Unconfined') forbidden.push('pod');
  for (const container of allContainers(pod.spec)) {
    if (container.securityContext?.appArmorProfile?.type === 'Unconfined')
      forbidden.push(`container "${container.name}"`);
  }
  if (forbidden.length === 0) return undefined;
  forbidden.sort();
  return {
    reason: pluralize('forbidden AppArmor profile', 'forbidden AppArmor profiles', forbidden.length),
    detail: forbidden.join(', '),
  };
};

const hostNamespaces: Check = ({ spec }) => {
  const used = sortedUnique(
    [spec.hostNetwork && 'hostNetwork', spec.hostPID && 'hostPID', spec.hostIPC && 'hostIPC'].filter(
      (entry): entry is string => typeof entry === 'string',
    ),
  );
  return used.length === 0 ? undefined : { reason: 'host namespaces', detail: used.join(', ') };
};

const hostPorts: Check = ({ spec }) => {
  const bad: string[] = [];
  const ports = new Set<string>();
  for (const container of allContainers(spec)) {
    const used = (container.ports ?? []).filter((port) => (port.hostPort ?? 0) !== 0);
    if (used.length === 0) continue;
    bad.push(container.name);
    for (const port of used) ports.add(String(port.hostPort));
  }
  if (bad.length === 0) return undefined;
  const list = sortedUnique(ports);
  return {
    reason: 'hostPort',
    detail: `${containersPhrase(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('hostPort', 'hostPorts', list.length)} ${list.join(', ')}`,
  };
};

const hostProbesAndLifecycle: Check = ({ spec }) => {
  const bad = new Set<string>();
  const hosts = new Set<string>();
  for (const container of allContainers(spec)) {
    const handlers = [
      container.livenessProbe?.httpGet,
      container.livenessProbe?.tcpSocket,
      container.readinessProbe?.httpGet,
      container.readinessProbe?.tcpSocket,
      container.startupProbe?.httpGet,
      container.startupProbe?.tcpSocket,
      container.lifecycle?.postStart?.httpGet,
      container.lifecycle?.postStart?.tcpSocket,
      container.lifecycle?.preStop?.httpGet,
      container.lifecycle?.preStop?.tcpSocket,
    ];
    for (const handler of handlers) {
      if (handler?.host) {
        bad.add(container.name);
        hosts.add(handler.host);
      }
    }
  }
  if (bad.size === 0) return undefined;
  const names = sortedUnique(bad);
  const list = sortedUnique(hosts);
  return {
    reason: 'probe or lifecycle host',
    detail: `${containersPhrase(names)} ${pluralize('uses', 'use', names.length)} ${pluralize('probe or lifecycle host', 'probe or lifecycle hosts', list.length)} ${joinQuote(list)}`,
  };
};

const privileged: Check = ({ spec }) => {
  const bad = allContainers(spec)
    .filter((container) => container.securityContext?.privileged === true)
    .map((container) => container.name);
  return bad.length === 0
    ? undefined
    : {
        reason: 'privileged',
        detail: `${containersPhrase(bad)} must not set securityContext.privileged=true`,
      };
};

const procMount: Check = (pod) => {
  if (userNamespaced(pod)) return undefined;
  const bad: string[] = [];
  const types = new Set<string>();
  for (const container of allContainers(pod.spec)) {
    const type = container.securityContext?.procMount;
    if (type !== undefined && type !== 'Default') {
      bad.push(container.name);
      types.add(type);
    }
  }
  return bad.length === 0
    ? undefined
    : {
        reason: 'procMount',
        detail: `${containersPhrase(bad)} must not set securityContext.procMount to ${joinQuote(sortedUnique(types))}`,
      };
};

const SELINUX_TYPES = new Set([
  '',
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);

const seLinuxOptions: Check = ({ spec }) => {
  const setters: string[] = [];
  const badTypes = new Set<string>();
  let userSet = false;
  let roleSet = false;
  const inspect = (options: { type?: string; user?: string; role?: string } | undefined): boolean => {
    if (options === undefined) return false;
    let bad = false;
    if (options.type !== undefined && !SELINUX_TYPES.has(options.type)) {
      badTypes.add(options.type);
      bad = true;
    }
    if (options.user) {
      userSet = true;
      bad = true;
    }
    if (options.role) {
      roleSet = true;
      bad = true;
    }
    return bad;
  };
  if (inspect(spec.securityContext?.seLinuxOptions)) setters.push('pod');
  const badContainers = allContainers(spec)
    .filter((container) => inspect(container.securityContext?.seLinuxOptions))
    .map((container) => container.name);
  if (badContainers.length > 0) setters.push(containersPhrase(badContainers));
  if (setters.length === 0) return undefined;
  const what: string[] = [];
  if (badTypes.size > 0)
    what.push(`${pluralize('type', 'types', badTypes.size)} ${joinQuote(sortedUnique(badTypes))}`);
  if (userSet) what.push('user may not be set');
  if (roleSet) what.push('role may not be set');
  return {
    reason: 'seLinuxOptions',
    detail: `${setters.join(' and ')} set forbidden securityContext.seLinuxOptions: ${what.join('; ')}`,
  };
};

const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
]);

const sysctls: Check = ({ spec }) => {
  const bad = (spec.securityContext?.sysctls ?? [])
    .map((s) => s.name)
    .filter((name) => !SAFE_SYSCTLS.has(name));
  return bad.length === 0 ? undefined : { reason: 'forbidden sysctls', detail: bad.join(', ') };
};

const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

const capabilitiesBaseline: Check = ({ spec }) => {
  const bad: string[] = [];
  const capabilities = new Set<string>();
  for (const container of allContainers(spec)) {
    const added = (container.securityContext?.capabilities?.add ?? []).filter(
      (c) => !BASELINE_CAPABILITIES.has(c),
    );
    if (added.length === 0) continue;
    bad.push(container.name);
    for (const capability of added) capabilities.add(capability);
  }
  return bad.length === 0
    ? undefined
    : {
        reason: 'non-default capabilities',
        detail: `${containersPhrase(bad)} must not include ${joinQuote(sortedUnique(capabilities))} in securityContext.capabilities.add`,
      };
};

const hostPathVolumes: Check = ({ spec }) => {
  const bad = (spec.volumes ?? [])
    .filter((volume) => volume.hostPath !== undefined)
    .map((volume) => volume.name);
  return bad.length === 0
    ? undefined
    : {
        reason: 'hostPath volumes',
        detail: `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)}`,
      };
};

const validSeccomp = (type: string) => type === 'RuntimeDefault' || type === 'Localhost';

const seccompProfileBaseline: Check = ({ spec }) => {
  const setters: string[] = [];
  const values = new Set<string>();
  const podType = spec.securityContext?.seccompProfile?.type;
  if (podType !== undefined && !validSeccomp(podType)) {
    setters.push('pod');
    values.add(podType);
  }
  const bad: string[] = [];
  for (const container of allContainers(spec)) {
    const type = container.securityContext?.seccompProfile?.type;
    if (type !== undefined && !validSeccomp(type)) {
      bad.push(container.name);
      values.add(type);
    }
  }
  if (bad.length > 0) setters.push(containersPhrase(bad));
  return setters.length === 0
    ? undefined
    : {
        reason: 'seccompProfile',
        detail: `${setters.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(sortedUnique(values))}`,
      };
};

const allowPrivilegeEscalation: Check = ({ spec }) => {
  const bad = allContainers(spec)
    .filter((container) => container.securityContext?.allowPrivilegeEscalation !== false)
    .map((container) => container.name);
  return bad.length === 0
    ? undefined
    : {
        reason: 'allowPrivilegeEscalation != false',
        detail: `${containersPhrase(bad)} must set securityContext.allowPrivilegeEscalation=false`,
      };
};

const capabilitiesRestricted: Check = ({ spec }) => {
  const missingDropAll: string[] = [];
  const addingForbidden: string[] = [];
  const forbiddenCapabilities = new Set<string>();
  for (const container of allContainers(spec)) {
    const capabilities = container.securityContext?.capabilities;
    if (capabilities === undefined) {
      missingDropAll.push(container.name);
      continue;
    }
    if (!(capabilities.drop ?? []).includes('ALL')) missingDropAll.push(container.name);
    const added = (capabilities.add ?? []).filter((c) => c !== 'NET_BIND_SERVICE');
    if (added.length > 0) {
      addingForbidden.push(container.name);
      for (const capability of added) forbiddenCapabilities.add(capability);
    }
  }
  const details: string[] = [];
  if (missingDropAll.length > 0) {
    details.push(`${containersPhrase(missingDropAll)} must set securityContext.capabilities.drop=["ALL"]`);
  }
  if (addingForbidden.length > 0) {
    details.push(
      `${containersPhrase(addingForbidden)} must not include ${joinQuote(sortedUnique(forbiddenCapabilities))} in securityContext.capabilities.add`,
    );
  }
  return details.length === 0
    ? undefined
    : { reason: 'unrestricted capabilities', detail: details.join('; ') };
};

/** The restricted profile's allowed volume sources; anything else is named by its field. */
const RESTRICTED_ALLOWED_VOLUMES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

const restrictedVolumes: Check = ({ spec }) => {
  const bad: string[] = [];
  const types = new Set<string>();
  for (const volume of spec.volumes ?? []) {
    const sources = Object.keys(volume).filter((key) => key !== 'name');
    if (sources.some((source) => RESTRICTED_ALLOWED_VOLUMES.has(source))) continue;
    bad.push(volume.name);
    types.add(sources[0] ?? 'unknown');
  }
  if (bad.length === 0) return undefined;
  const list = sortedUnique(types);
  return {
    reason: 'restricted volume types',
    detail: `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('restricted volume type', 'restricted volume types', list.length)} ${joinQuote(list)}`,
  };
};

const runAsNonRoot: Check = (pod) => {
  if (userNamespaced(pod)) return undefined;
  const badSetters: string[] = [];
  const podValue = pod.spec.securityContext?.runAsNonRoot;
  if (podValue === false) badSetters.push('pod');
  const explicitlyBad: string[] = [];
  const implicitlyBad: string[] = [];
  for (const container of allContainers(pod.spec)) {
    const value = container.securityContext?.runAsNonRoot;
    if (value === false) explicitlyBad.push(container.name);
    else if (value === undefined && podValue !== true) implicitlyBad.push(container.name);
  }
  if (explicitlyBad.length > 0) badSetters.push(containersPhrase(explicitlyBad));
  if (badSetters.length > 0) {
    return {
      reason: 'runAsNonRoot != true',
      detail: `${badSetters.join(' and ')} must not set securityContext.runAsNonRoot=false`,
    };
  }
  if (implicitlyBad.length > 0) {
    return {
      reason: 'runAsNonRoot != true',
      detail: `pod or ${containersPhrase(implicitlyBad)} must set securityContext.runAsNonRoot=true`,
    };
  }
  return undefined;
};

const runAsUser: Check = (pod) => {
  if (userNamespaced(pod)) return undefined;
  const setters: string[] = [];
  if (pod.spec.securityContext?.runAsUser === 0) setters.push('pod');
  const bad = allContainers(pod.spec)
    .filter((container) => container.securityContext?.runAsUser === 0)
    .map((container) => container.name);
  if (bad.length > 0) setters.push(containersPhrase(bad));
  return setters.length === 0
    ? undefined
    : { reason: 'runAsUser=0', detail: `${setters.join(' and ')} must not set runAsUser=0` };
};

const seccompProfileRestricted: Check = ({ spec }) => {
  const setters: string[] = [];
  const values = new Set<string>();
  const podType = spec.securityContext?.seccompProfile?.type;
  let podSet = false;
  if (podType !== undefined) {
    if (validSeccomp(podType)) podSet = true;
    else {
      setters.push('pod');
      values.add(podType);
    }
  }
  const explicitlyBad: string[] = [];
  const implicitlyBad: string[] = [];
  for (const container of allContainers(spec)) {
    const type = container.securityContext?.seccompProfile?.type;
    if (type !== undefined) {
      if (!validSeccomp(type)) {
        explicitlyBad.push(container.name);
        values.add(type);
      }
    } else if (!podSet) {
      implicitlyBad.push(container.name);
    }
  }
  if (explicitlyBad.length > 0) setters.push(containersPhrase(explicitlyBad));
  if (setters.length > 0) {
    return {
      reason: 'seccompProfile',
      detail: `${setters.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(sortedUnique(values))}`,
    };
  }
  if (implicitlyBad.length > 0) {
    return {
      reason: 'seccompProfile',
      detail: `pod or ${containersPhrase(implicitlyBad)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
    };
  }
  return undefined;
};

/** Baseline checks that restricted keeps, in the library's (file name) order. */
const BASELINE = [
  appArmorProfile,
  hostNamespaces,
  hostPorts,
  hostProbesAndLifecycle,
  privileged,
  procMount,
  seLinuxOptions,
  sysctls,
];
/** Baseline checks that restricted replaces with stricter ones. */
const BASELINE_ONLY = [capabilitiesBaseline, hostPathVolumes, seccompProfileBaseline];
const RESTRICTED = [
  allowPrivilegeEscalation,
  capabilitiesRestricted,
  restrictedVolumes,
  runAsNonRoot,
  runAsUser,
  seccompProfileRestricted,
];

/** The refusal text (without the `pods "x" is forbidden: ` prefix), or undefined when the pod passes. */
export function podSecurityViolation(level: PodSecurityLevel, pod: Pod): string | undefined {
  if (level === 'privileged') return undefined;
  const checks = [...BASELINE, ...(level === 'baseline' ? BASELINE_ONLY : RESTRICTED)];
  const violations = checks.map((check) => check(pod)).filter((v): v is Violation => v !== undefined);
  if (violations.length === 0) return undefined;
  const listed = violations.map((v) => (v.detail === '' ? v.reason : `${v.reason} (${v.detail})`)).join(', ');
  return `violates PodSecurity "${level}:latest": ${listed}`;
}
