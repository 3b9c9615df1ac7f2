/**
 * A pod's container as a Docker container, the way a kubelet would configure its runtime:
 * command/args over the image's entrypoint/cmd, env, the security context (user and group,
 * capabilities, no-new-privileges, read-only root, privileged, seccomp: unset is Unconfined, as a
 * kubelet without --seccomp-default runs it), CPU and memory limits (no swap), fsGroup and
 * supplemental groups, sysctls, and emptyDir volumes as size-capped tmpfs volumes owned by the
 * fsGroup. Every containerPort is published on the pod's loopback address. Docker never restarts
 * it: the agent does, as a kubelet does. runtimeClassName is ignored: every pod runs on the
 * engine's default runtime.
 */
import type Dockerode from 'dockerode';
import type { Container, Pod } from '../pod-schema.js';
import { parseQuantity } from '../quantity.js';

export interface ImageFacts {
  id: string;
  /** The image's USER (`name`, `uid` or `uid:gid`); empty for root. */
  user: string;
}

export interface ContainerInputs {
  pod: Pod;
  container: Container;
  image: ImageFacts;
  env: Array<[string, string]>;
  command: string[] | undefined;
  args: string[] | undefined;
  podIP: string;
  network: string;
  name: string;
  labels: Record<string, string>;
}

/** `name_namespace(uid)`, the kubelet's way of naming a pod in messages. */
export function podRef(pod: Pod): string {
  return `${pod.metadata.name}_${pod.metadata.namespace ?? ''}(${pod.metadata.uid})`;
}

function effective<K extends 'runAsUser' | 'runAsGroup' | 'runAsNonRoot'>(
  pod: Pod,
  container: Container,
  key: K,
) {
  return container.securityContext?.[key] ?? pod.spec.securityContext?.[key];
}

/** The kubelet's runAsNonRoot verification: the reason it refuses to start the container, if any. */
export function runAsNonRootError(pod: Pod, container: Container, image: ImageFacts): string | undefined {
  if (effective(pod, container, 'runAsNonRoot') !== true) return undefined;
  const where = `(pod: ${JSON.stringify(podRef(pod))}, container: ${container.name})`;
  const uid = effective(pod, container, 'runAsUser');
  if (uid !== undefined)
    return uid === 0 ? `container's runAsUser breaks non-root policy ${where}` : undefined;
  const user = image.user.split(':')[0] ?? '';
  if (user === '' || user === '0' || user === 'root')
    return `container has runAsNonRoot and image will run as root ${where}`;
  if (!/^[0-9]+$/.test(user)) {
    return `container has runAsNonRoot and image has non-numeric user (${user}), cannot verify user is non-root ${where}`;
  }
  return undefined;
}

function dockerUser(pod: Pod, container: Container, image: ImageFacts): string | undefined {
  const uid = effective(pod, container, 'runAsUser');
  const gid = effective(pod, container, 'runAsGroup');
  if (uid === undefined && gid === undefined) return undefined;
  const user = uid === undefined ? image.user.split(':')[0] || '0' : String(uid);
  return gid === undefined ? user : `${user}:${gid}`;
}

/**
 * emptyDirs as anonymous Docker volumes on tmpfs, without copy-up: a kubelet's emptyDir starts
 * empty and world-writable (0777; with fsGroup that group's and setgid), whatever the image has at
 * that path. (A Docker tmpfs mount would take the mode of the image's folder instead.) The
 * volumes go with the container (removed with `v: true`).
 */
function emptyDirMounts(
  pod: Pod,
  container: Container,
  labels: Record<string, string>,
): Dockerode.MountSettings[] {
  const fsGroup = pod.spec.securityContext?.fsGroup;
  const mounts: Dockerode.MountSettings[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = (pod.spec.volumes ?? []).find((v) => v.name === mount.name);
    if (volume?.emptyDir === undefined) continue;
    const options = ['nosuid', 'nodev'];
    const size =
      volume.emptyDir.sizeLimit === undefined ? undefined : parseQuantity(volume.emptyDir.sizeLimit);
    if (size !== undefined && size > 0) options.push(`size=${Math.ceil(size)}`);
    options.push(fsGroup === undefined ? 'mode=0777' : `mode=2777,gid=${fsGroup}`);
    mounts.push({
      Type: 'volume',
      // No name: an anonymous volume, removed with its container.
      Source: '',
      Target: mount.mountPath,
      ReadOnly: mount.readOnly === true,
      VolumeOptions: {
        NoCopy: true,
        Labels: labels,
        DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs', o: options.join(',') } },
      },
    });
  }
  return mounts;
}

function securityOptions(pod: Pod, container: Container): string[] {
  const options: string[] = [];
  if (container.securityContext?.allowPrivilegeEscalation === false) options.push('no-new-privileges:true');
  const seccomp =
    container.securityContext?.seccompProfile?.type ?? pod.spec.securityContext?.seccompProfile?.type;
  // RuntimeDefault is Docker's default profile; Localhost pods are not run (not-modelled.ts).
  if (seccomp === undefined || seccomp === 'Unconfined') options.push('seccomp=unconfined');
  return options;
}

export function containerCreateOptions(inputs: ContainerInputs): Dockerode.ContainerCreateOptions {
  const { pod, container, podIP } = inputs;
  const security = container.securityContext;
  const limits = container.resources?.limits ?? {};
  const cpu = limits.cpu === undefined ? undefined : parseQuantity(limits.cpu);
  const memory = limits.memory === undefined ? undefined : parseQuantity(limits.memory);
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const port of container.ports ?? []) {
    const key = `${port.containerPort}/${(port.protocol ?? 'TCP').toLowerCase()}`;
    exposed[key] = {};
    bindings[key] = [{ HostIp: podIP, HostPort: String(port.containerPort) }];
  }
  const podSecurity = pod.spec.securityContext;
  const groups = [podSecurity?.fsGroup, ...(podSecurity?.supplementalGroups ?? [])].filter(
    (group): group is number => group !== undefined,
  );
  const user = dockerUser(pod, container, inputs.image);
  const hostConfig: Dockerode.HostConfig = {
    NetworkMode: inputs.network,
    PortBindings: bindings,
    RestartPolicy: { Name: 'no' },
    Privileged: security?.privileged === true,
    ReadonlyRootfs: security?.readOnlyRootFilesystem === true,
    CapAdd: security?.capabilities?.add ?? [],
    CapDrop: security?.capabilities?.drop ?? [],
    SecurityOpt: securityOptions(pod, container),
    Mounts: emptyDirMounts(pod, container, inputs.labels),
    GroupAdd: groups.map(String),
    Sysctls: Object.fromEntries((podSecurity?.sysctls ?? []).map((s) => [s.name, s.value])),
  };
  if (cpu !== undefined) hostConfig.NanoCpus = Math.round(cpu * 1e9);
  if (memory !== undefined) {
    hostConfig.Memory = Math.ceil(memory);
    hostConfig.MemorySwap = Math.ceil(memory);
  }
  const options: Dockerode.ContainerCreateOptions = {
    name: inputs.name,
    Image: inputs.image.id,
    Hostname: (pod.spec.hostname ?? pod.metadata.name).slice(0, 63),
    Env: inputs.env.map(([name, value]) => `${name}=${value}`),
    Labels: inputs.labels,
    ExposedPorts: exposed,
    Tty: container.tty === true,
    OpenStdin: container.stdin === true,
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: { [inputs.network]: {} } },
  };
  if (user !== undefined) options.User = user;
  if (inputs.command !== undefined) options.Entrypoint = inputs.command;
  if (inputs.args !== undefined) options.Cmd = inputs.args;
  // command without args runs without the image's CMD, as Kubernetes specifies.
  if (inputs.command !== undefined && inputs.args === undefined) options.Cmd = [];
  if (container.workingDir) options.WorkingDir = container.workingDir;
  return options;
}
