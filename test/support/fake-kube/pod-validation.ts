/**
 * Pod field validation as core/v1's ValidatePodCreate does it, for the fields the fake models:
 * names and labels, containers and their ports, env, mounts, resources and probes, volumes, and
 * the pod-level settings. Returns apimachinery field errors; the caller answers 422 Invalid.
 */
import { type FieldError, fieldError } from './api-status.js';
import {
  dns1123LabelProblems,
  dns1123SubdomainProblems,
  envVarNameProblems,
  labelValueProblems,
  portNameProblems,
  qualifiedNameProblems,
} from './name-rules.js';
import type { Container, Pod, Probe, Volume } from './pod-schema.js';
import { parseQuantity } from './quantity.js';

const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'];
const DNS_POLICIES = ['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'];
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];
const SECCOMP_TYPES = ['RuntimeDefault', 'Unconfined', 'Localhost'];
const FIELD_REF_PATHS = [
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
];
const MAX_INT32 = 2147483647;

type Errors = FieldError[];

function checkLabels(errors: Errors, field: string, labels: Record<string, string> | undefined): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    for (const problem of qualifiedNameProblems(key)) errors.push(fieldError.invalid(field, key, problem));
    for (const problem of labelValueProblems(value)) errors.push(fieldError.invalid(field, value, problem));
  }
}

function checkAnnotations(errors: Errors, annotations: Record<string, string> | undefined): void {
  let size = 0;
  for (const [key, value] of Object.entries(annotations ?? {})) {
    for (const problem of qualifiedNameProblems(key.toLowerCase())) {
      errors.push(fieldError.invalid('metadata.annotations', key, problem));
    }
    size += key.length + value.length;
  }
  if (size > 256 * 1024) errors.push(fieldError.tooLong('metadata.annotations', '', 256 * 1024));
}

function checkNonNegative(errors: Errors, field: string, value: number | undefined): void {
  if (value !== undefined && value < 0)
    errors.push(fieldError.invalid(field, value, 'must be greater than or equal to 0'));
}

function checkPortRef(errors: Errors, field: string, port: number | string): void {
  if (typeof port === 'number') {
    if (port < 1 || port > 65535)
      errors.push(fieldError.invalid(field, port, 'must be between 1 and 65535, inclusive'));
    return;
  }
  for (const problem of portNameProblems(port)) errors.push(fieldError.invalid(field, port, problem));
}

function checkProbe(errors: Errors, field: string, probe: Probe | undefined): void {
  if (probe === undefined) return;
  const handlers = (['httpGet', 'tcpSocket', 'exec', 'grpc'] as const).filter((h) => probe[h] !== undefined);
  if (handlers.length === 0) errors.push(fieldError.required(field, 'must specify a handler type'));
  if (handlers.length > 1)
    errors.push(fieldError.forbidden(`${field}.${handlers[1]}`, 'may not specify more than 1 handler type'));
  if (probe.httpGet) checkPortRef(errors, `${field}.httpGet.port`, probe.httpGet.port);
  if (probe.tcpSocket) checkPortRef(errors, `${field}.tcpSocket.port`, probe.tcpSocket.port);
  if (probe.httpGet?.scheme !== undefined && !['HTTP', 'HTTPS'].includes(probe.httpGet.scheme)) {
    errors.push(fieldError.notSupported(`${field}.httpGet.scheme`, probe.httpGet.scheme, ['HTTP', 'HTTPS']));
  }
  for (const key of [
    'initialDelaySeconds',
    'periodSeconds',
    'timeoutSeconds',
    'successThreshold',
    'failureThreshold',
  ] as const) {
    checkNonNegative(errors, `${field}.${key}`, probe[key]);
  }
}

function isResourceName(name: string): boolean {
  return (
    ['cpu', 'memory', 'ephemeral-storage'].includes(name) ||
    name.startsWith('hugepages-') ||
    name.includes('/')
  );
}

function checkResources(errors: Errors, field: string, container: Container): void {
  const { limits = {}, requests = {} } = container.resources ?? {};
  for (const [kind, values] of [
    ['limits', limits],
    ['requests', requests],
  ] as const) {
    for (const [name, raw] of Object.entries(values)) {
      const at = `${field}.resources.${kind}[${name}]`;
      if (!isResourceName(name))
        errors.push(fieldError.invalid(at, name, 'must be a standard resource type or fully qualified'));
      const value = parseQuantity(raw);
      if (value !== undefined && value < 0)
        errors.push(fieldError.invalid(at, raw, 'must be greater than or equal to 0'));
    }
  }
  for (const [name, raw] of Object.entries(requests)) {
    const limit = limits[name];
    const request = parseQuantity(raw);
    const limitValue = limit === undefined ? undefined : parseQuantity(limit);
    if (limitValue !== undefined && request !== undefined && request > limitValue) {
      errors.push(
        fieldError.invalid(
          `${field}.resources.requests`,
          String(raw),
          `must be less than or equal to ${name} limit of ${limit}`,
        ),
      );
    }
  }
}

function checkContainer(
  errors: Errors,
  field: string,
  container: Container,
  volumes: ReadonlySet<string>,
): void {
  if (container.name === '') errors.push(fieldError.required(`${field}.name`));
  else
    for (const problem of dns1123LabelProblems(container.name))
      errors.push(fieldError.invalid(`${field}.name`, container.name, problem));
  if (container.image === undefined || container.image.trim() === '')
    errors.push(fieldError.required(`${field}.image`));

  const portNames = new Set<string>();
  container.ports?.forEach((port, index) => {
    const at = `${field}.ports[${index}]`;
    if (port.containerPort === 0) errors.push(fieldError.required(`${at}.containerPort`));
    else if (port.containerPort < 1 || port.containerPort > 65535) {
      errors.push(
        fieldError.invalid(
          `${at}.containerPort`,
          port.containerPort,
          'must be between 1 and 65535, inclusive',
        ),
      );
    }
    if (port.hostPort !== undefined && (port.hostPort < 0 || port.hostPort > 65535)) {
      errors.push(
        fieldError.invalid(`${at}.hostPort`, port.hostPort, 'must be between 1 and 65535, inclusive'),
      );
    }
    if (port.protocol !== undefined && !PROTOCOLS.includes(port.protocol)) {
      errors.push(fieldError.notSupported(`${at}.protocol`, port.protocol, PROTOCOLS));
    }
    if (port.name !== undefined && port.name !== '') {
      for (const problem of portNameProblems(port.name))
        errors.push(fieldError.invalid(`${at}.name`, port.name, problem));
      if (portNames.has(port.name)) errors.push(fieldError.duplicate(`${at}.name`, port.name));
      portNames.add(port.name);
    }
  });

  container.env?.forEach((env, index) => {
    const at = `${field}.env[${index}]`;
    for (const problem of envVarNameProblems(env.name))
      errors.push(fieldError.invalid(`${at}.name`, env.name, problem));
    const from = env.valueFrom;
    if (from === undefined) return;
    const sources = (['fieldRef', 'resourceFieldRef', 'secretKeyRef', 'configMapKeyRef'] as const).filter(
      (s) => from[s] !== undefined,
    );
    if (env.value !== undefined && env.value !== '') {
      errors.push(
        fieldError.invalid(`${at}.valueFrom`, '', 'may not be specified when `value` is not empty'),
      );
    }
    if (sources.length === 0)
      errors.push(
        fieldError.invalid(
          `${at}.valueFrom`,
          '',
          'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
        ),
      );
    if (sources.length > 1)
      errors.push(
        fieldError.invalid(`${at}.valueFrom`, '', 'may not have more than one field specified at a time'),
      );
    const path = from.fieldRef?.fieldPath;
    if (
      path !== undefined &&
      !FIELD_REF_PATHS.includes(path) &&
      !/^metadata\.(labels|annotations)\['[^']+'\]$/.test(path)
    ) {
      errors.push(
        fieldError.notSupported(`${at}.valueFrom.fieldRef.fieldPath`, path, [
          ...FIELD_REF_PATHS,
          'metadata.labels',
          'metadata.annotations',
        ]),
      );
    }
  });

  const mountPaths = new Set<string>();
  container.volumeMounts?.forEach((mount, index) => {
    const at = `${field}.volumeMounts[${index}]`;
    if (mount.name === '') errors.push(fieldError.required(`${at}.name`));
    else if (!volumes.has(mount.name)) errors.push(fieldError.notFound(`${at}.name`, mount.name));
    if (mount.mountPath === '') errors.push(fieldError.required(`${at}.mountPath`));
    else if (mountPaths.has(mount.mountPath))
      errors.push(fieldError.invalid(`${at}.mountPath`, mount.mountPath, 'must be unique'));
    mountPaths.add(mount.mountPath);
  });

  checkResources(errors, field, container);
  checkProbe(errors, `${field}.readinessProbe`, container.readinessProbe);
  checkProbe(errors, `${field}.livenessProbe`, container.livenessProbe);
  checkProbe(errors, `${field}.startupProbe`, container.startupProbe);

  const security = container.securityContext;
  if (security !== undefined) {
    checkNonNegative(errors, `${field}.securityContext.runAsUser`, security.runAsUser);
    checkNonNegative(errors, `${field}.securityContext.runAsGroup`, security.runAsGroup);
    if (security.privileged === true && security.allowPrivilegeEscalation === false) {
      errors.push(
        fieldError.invalid(
          `${field}.securityContext`,
          security,
          'cannot set `allowPrivilegeEscalation` to false and `privileged` to true',
        ),
      );
    }
    checkSeccomp(errors, `${field}.securityContext.seccompProfile`, security.seccompProfile);
  }
}

function checkSeccomp(
  errors: Errors,
  field: string,
  profile: { type: string; localhostProfile?: string } | undefined,
): void {
  if (profile === undefined) return;
  if (!SECCOMP_TYPES.includes(profile.type))
    errors.push(fieldError.notSupported(`${field}.type`, profile.type, SECCOMP_TYPES));
  if (profile.type === 'Localhost' && !profile.localhostProfile)
    errors.push(
      fieldError.required(`${field}.localhostProfile`, 'must be set when seccomp type is Localhost'),
    );
}

/** The one volume source a volume must name (any field other than `name`). */
function volumeSources(volume: Volume): string[] {
  return Object.keys(volume).filter((key) => key !== 'name');
}

function checkVolumes(errors: Errors, volumes: readonly Volume[]): Set<string> {
  const names = new Set<string>();
  volumes.forEach((volume, index) => {
    const at = `spec.volumes[${index}]`;
    if (volume.name === '') errors.push(fieldError.required(`${at}.name`));
    else
      for (const problem of dns1123LabelProblems(volume.name))
        errors.push(fieldError.invalid(`${at}.name`, volume.name, problem));
    if (names.has(volume.name)) errors.push(fieldError.duplicate(`${at}.name`, volume.name));
    names.add(volume.name);
    const sources = volumeSources(volume);
    if (sources.length === 0) errors.push(fieldError.required(at, 'must specify a volume type'));
    if (sources.length > 1)
      errors.push(fieldError.forbidden(`${at}.${sources[1]}`, 'may not specify more than 1 volume type'));
    const sizeLimit = volume.emptyDir?.sizeLimit;
    if (sizeLimit !== undefined && (parseQuantity(sizeLimit) ?? 0) < 0) {
      errors.push(
        fieldError.invalid(`${at}.emptyDir.sizeLimit`, sizeLimit, 'must be greater than or equal to 0'),
      );
    }
  });
  return names;
}

/** The field errors of a defaulted pod about to be created (empty: valid). */
export function validatePod(pod: Pod): FieldError[] {
  const errors: Errors = [];
  const { metadata, spec } = pod;
  if (metadata.name === '')
    errors.push(fieldError.required('metadata.name', 'name or generateName is required'));
  else
    for (const problem of dns1123SubdomainProblems(metadata.name))
      errors.push(fieldError.invalid('metadata.name', metadata.name, problem));
  checkLabels(errors, 'metadata.labels', metadata.labels);
  checkAnnotations(errors, metadata.annotations);

  const volumes = checkVolumes(errors, spec.volumes ?? []);
  if (spec.containers.length === 0) errors.push(fieldError.required('spec.containers'));
  const containerNames = new Set<string>();
  const groups = [
    ['spec.containers', spec.containers],
    ['spec.initContainers', spec.initContainers ?? []],
  ] as const;
  for (const [field, containers] of groups) {
    containers.forEach((container, index) => {
      checkContainer(errors, `${field}[${index}]`, container, volumes);
      if (container.name !== '' && containerNames.has(container.name)) {
        errors.push(fieldError.duplicate(`${field}[${index}].name`, container.name));
      }
      containerNames.add(container.name);
    });
  }

  if (spec.restartPolicy !== undefined && !RESTART_POLICIES.includes(spec.restartPolicy)) {
    errors.push(fieldError.notSupported('spec.restartPolicy', spec.restartPolicy, RESTART_POLICIES));
  }
  if (spec.dnsPolicy !== undefined && !DNS_POLICIES.includes(spec.dnsPolicy)) {
    errors.push(fieldError.notSupported('spec.dnsPolicy', spec.dnsPolicy, DNS_POLICIES));
  }
  const deadline = spec.activeDeadlineSeconds;
  if (deadline !== undefined && (deadline < 1 || deadline > MAX_INT32)) {
    errors.push(
      fieldError.invalid(
        'spec.activeDeadlineSeconds',
        deadline,
        `must be between 1 and ${MAX_INT32}, inclusive`,
      ),
    );
  }
  checkNonNegative(errors, 'spec.terminationGracePeriodSeconds', spec.terminationGracePeriodSeconds);
  checkLabels(errors, 'spec.nodeSelector', spec.nodeSelector);
  if (spec.runtimeClassName !== undefined) {
    for (const problem of dns1123SubdomainProblems(spec.runtimeClassName)) {
      errors.push(fieldError.invalid('spec.runtimeClassName', spec.runtimeClassName, problem));
    }
  }
  const security = spec.securityContext;
  if (security !== undefined) {
    checkNonNegative(errors, 'spec.securityContext.runAsUser', security.runAsUser);
    checkNonNegative(errors, 'spec.securityContext.runAsGroup', security.runAsGroup);
    checkNonNegative(errors, 'spec.securityContext.fsGroup', security.fsGroup);
    checkSeccomp(errors, 'spec.securityContext.seccompProfile', security.seccompProfile);
  }
  return errors;
}

/** Every quantity of the pod parses; the apiserver's decoder refuses the body (400) otherwise. */
export function badQuantityOf(pod: {
  spec: { containers: Container[]; initContainers?: Container[]; volumes?: Volume[] };
}): string | undefined {
  const quantities: Array<string | number> = [];
  for (const container of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
    quantities.push(
      ...Object.values(container.resources?.limits ?? {}),
      ...Object.values(container.resources?.requests ?? {}),
    );
    for (const env of container.env ?? []) {
      const divisor = env.valueFrom?.resourceFieldRef?.divisor;
      if (divisor !== undefined) quantities.push(divisor);
    }
  }
  for (const volume of pod.spec.volumes ?? [])
    if (volume.emptyDir?.sizeLimit !== undefined) quantities.push(volume.emptyDir.sizeLimit);
  return quantities.map(String).find((quantity) => parseQuantity(quantity) === undefined);
}
