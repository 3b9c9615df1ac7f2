/**
 * Valid pods the node agent cannot run faithfully. The API accepts them as a real one would; the
 * pod then stays Pending in ContainerCreating, its waiting message naming what is missing, much as
 * a kubelet leaves a pod whose volume cannot be mounted.
 */
import type { Pod } from '../pod-schema.js';

export function notModelled(pod: Pod): string[] {
  const { spec } = pod;
  const missing: string[] = [];
  if (spec.containers.length > 1) missing.push('more than one container per pod');
  if ((spec.initContainers ?? []).length > 0) missing.push('init containers');
  if (spec.hostNetwork) missing.push('hostNetwork');
  if (spec.hostPID) missing.push('hostPID');
  if (spec.hostIPC) missing.push('hostIPC');
  if (spec.hostUsers === false) missing.push('user namespaces (hostUsers: false)');
  const emptyDirs = new Set<string>();
  for (const volume of spec.volumes ?? []) {
    if (volume.emptyDir !== undefined) emptyDirs.add(volume.name);
    else
      missing.push(
        `volume "${volume.name}" of type ${Object.keys(volume).find((k) => k !== 'name') ?? 'unknown'}`,
      );
  }
  const security = spec.securityContext;
  if (security?.seccompProfile?.type === 'Localhost') missing.push('Localhost seccomp profiles');
  for (const container of spec.containers) {
    const mounted = new Set<string>();
    for (const mount of container.volumeMounts ?? []) {
      if (mount.subPath || mount.subPathExpr) missing.push(`subPath mounts (container "${container.name}")`);
      if (mounted.has(mount.name) && emptyDirs.has(mount.name)) {
        missing.push(`one emptyDir mounted at several paths (volume "${mount.name}")`);
      }
      mounted.add(mount.name);
    }
    if (container.securityContext?.seccompProfile?.type === 'Localhost')
      missing.push('Localhost seccomp profiles');
    const procMount = container.securityContext?.procMount;
    if (procMount !== undefined && procMount !== 'Default') missing.push(`procMount ${procMount}`);
    if (container.readinessProbe?.grpc) missing.push(`gRPC readiness probes (container "${container.name}")`);
  }
  return [...new Set(missing)];
}
