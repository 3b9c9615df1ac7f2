/**
 * The wire shape of a core/v1 Pod, as far as the fake reads it. Decoding checks JSON types only
 * (a type error is the apiserver's 400 "cannot be handled as a Pod"); field rules are
 * pod-validation.ts (422). Objects are loose: fields the fake does not read are kept as sent.
 */
import { z } from 'zod';
import { type KubeObject, objectMetaSchema } from './object-meta.js';

const int = z.number().int();
const bool = z.boolean();
const str = z.string();
const strings = z.array(z.string());
const stringMap = z.record(z.string(), z.string());
/** Quantities arrive as strings ("500m", "1Gi") or bare JSON numbers. */
export const quantitySchema = z.union([z.string(), z.number()]);
const intOrString = z.union([int, z.string()]);

const seccompProfileSchema = z.looseObject({ type: str, localhostProfile: str.optional() });
const appArmorProfileSchema = z.looseObject({ type: str, localhostProfile: str.optional() });
const seLinuxOptionsSchema = z.looseObject({
  user: str.optional(),
  role: str.optional(),
  type: str.optional(),
  level: str.optional(),
});

const containerSecurityContextSchema = z.looseObject({
  runAsUser: int.optional(),
  runAsGroup: int.optional(),
  runAsNonRoot: bool.optional(),
  allowPrivilegeEscalation: bool.optional(),
  privileged: bool.optional(),
  readOnlyRootFilesystem: bool.optional(),
  capabilities: z.looseObject({ add: strings.optional(), drop: strings.optional() }).optional(),
  seccompProfile: seccompProfileSchema.optional(),
  appArmorProfile: appArmorProfileSchema.optional(),
  seLinuxOptions: seLinuxOptionsSchema.optional(),
  procMount: str.optional(),
});

const podSecurityContextSchema = z.looseObject({
  runAsUser: int.optional(),
  runAsGroup: int.optional(),
  runAsNonRoot: bool.optional(),
  fsGroup: int.optional(),
  supplementalGroups: z.array(int).optional(),
  seccompProfile: seccompProfileSchema.optional(),
  appArmorProfile: appArmorProfileSchema.optional(),
  seLinuxOptions: seLinuxOptionsSchema.optional(),
  sysctls: z.array(z.looseObject({ name: str, value: str })).optional(),
});

const httpGetSchema = z.looseObject({
  path: str.optional(),
  port: intOrString,
  host: str.optional(),
  scheme: str.optional(),
  httpHeaders: z.array(z.looseObject({ name: str, value: str })).optional(),
});
const tcpSocketSchema = z.looseObject({ port: intOrString, host: str.optional() });

const probeSchema = z.looseObject({
  httpGet: httpGetSchema.optional(),
  tcpSocket: tcpSocketSchema.optional(),
  exec: z.looseObject({ command: strings.optional() }).optional(),
  grpc: z.looseObject({ port: int, service: str.optional() }).optional(),
  initialDelaySeconds: int.optional(),
  periodSeconds: int.optional(),
  timeoutSeconds: int.optional(),
  successThreshold: int.optional(),
  failureThreshold: int.optional(),
  terminationGracePeriodSeconds: int.optional(),
});

const lifecycleHandlerSchema = z.looseObject({
  httpGet: httpGetSchema.optional(),
  tcpSocket: tcpSocketSchema.optional(),
});

const envVarSchema = z.looseObject({
  name: str,
  value: str.optional(),
  valueFrom: z
    .looseObject({
      fieldRef: z.looseObject({ fieldPath: str, apiVersion: str.optional() }).optional(),
      resourceFieldRef: z
        .looseObject({ resource: str, containerName: str.optional(), divisor: quantitySchema.optional() })
        .optional(),
      secretKeyRef: z.looseObject({ name: str.optional(), key: str, optional: bool.optional() }).optional(),
      configMapKeyRef: z
        .looseObject({ name: str.optional(), key: str, optional: bool.optional() })
        .optional(),
    })
    .optional(),
});

const containerPortSchema = z.looseObject({
  name: str.optional(),
  containerPort: int,
  hostPort: int.optional(),
  hostIP: str.optional(),
  protocol: str.optional(),
});

const volumeMountSchema = z.looseObject({
  name: str,
  mountPath: str,
  readOnly: bool.optional(),
  subPath: str.optional(),
  subPathExpr: str.optional(),
});

const resourcesSchema = z.looseObject({
  limits: z.record(z.string(), quantitySchema).optional(),
  requests: z.record(z.string(), quantitySchema).optional(),
});

export const containerSchema = z.looseObject({
  name: str,
  image: str.optional(),
  command: strings.optional(),
  args: strings.optional(),
  workingDir: str.optional(),
  env: z.array(envVarSchema).optional(),
  envFrom: z.array(z.looseObject({})).optional(),
  ports: z.array(containerPortSchema).optional(),
  resources: resourcesSchema.optional(),
  volumeMounts: z.array(volumeMountSchema).optional(),
  readinessProbe: probeSchema.optional(),
  livenessProbe: probeSchema.optional(),
  startupProbe: probeSchema.optional(),
  lifecycle: z
    .looseObject({ postStart: lifecycleHandlerSchema.optional(), preStop: lifecycleHandlerSchema.optional() })
    .optional(),
  securityContext: containerSecurityContextSchema.optional(),
  imagePullPolicy: str.optional(),
  terminationMessagePath: str.optional(),
  terminationMessagePolicy: str.optional(),
  stdin: bool.optional(),
  tty: bool.optional(),
});

export const volumeSchema = z.looseObject({
  name: str,
  emptyDir: z.looseObject({ medium: str.optional(), sizeLimit: quantitySchema.optional() }).optional(),
  hostPath: z.looseObject({ path: str, type: str.optional() }).optional(),
});

export const podSpecSchema = z.looseObject({
  containers: z.array(containerSchema).optional(),
  initContainers: z.array(containerSchema).optional(),
  ephemeralContainers: z.array(containerSchema).optional(),
  volumes: z.array(volumeSchema).optional(),
  restartPolicy: str.optional(),
  terminationGracePeriodSeconds: int.optional(),
  activeDeadlineSeconds: int.optional(),
  nodeSelector: stringMap.optional(),
  nodeName: str.optional(),
  tolerations: z.array(z.looseObject({})).optional(),
  hostNetwork: bool.optional(),
  hostPID: bool.optional(),
  hostIPC: bool.optional(),
  hostUsers: bool.optional(),
  securityContext: podSecurityContextSchema.optional(),
  runtimeClassName: str.optional(),
  serviceAccountName: str.optional(),
  automountServiceAccountToken: bool.optional(),
  hostname: str.optional(),
  dnsPolicy: str.optional(),
  schedulerName: str.optional(),
  enableServiceLinks: bool.optional(),
  readinessGates: z.array(z.looseObject({})).optional(),
});

export const podSchema = z.looseObject({
  apiVersion: str.optional(),
  kind: str.optional(),
  metadata: objectMetaSchema.optional(),
  spec: podSpecSchema.optional(),
});

export type PodSpec = z.infer<typeof podSpecSchema>;
export type Container = z.infer<typeof containerSchema>;
export type Volume = z.infer<typeof volumeSchema>;
export type Probe = z.infer<typeof probeSchema>;
export type EnvVar = z.infer<typeof envVarSchema>;
export type ContainerSecurityContext = z.infer<typeof containerSecurityContextSchema>;
export type PodSecurityContext = z.infer<typeof podSecurityContextSchema>;
export type PodInput = z.infer<typeof podSchema>;

export type ContainerState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | {
      terminated: {
        exitCode: number;
        reason: string;
        message?: string;
        startedAt: string;
        finishedAt: string;
        containerID?: string;
      };
    };

export interface ContainerStatus {
  name: string;
  state: ContainerState;
  lastState: ContainerState | Record<string, never>;
  ready: boolean;
  restartCount: number;
  image: string;
  imageID: string;
  containerID?: string;
  started: boolean;
}

export interface PodCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastProbeTime: null;
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

export interface PodStatus {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  conditions?: PodCondition[];
  message?: string;
  reason?: string;
  hostIP?: string;
  hostIPs?: Array<{ ip: string }>;
  podIP?: string;
  podIPs?: Array<{ ip: string }>;
  startTime?: string;
  containerStatuses?: ContainerStatus[];
  qosClass?: 'Guaranteed' | 'Burstable' | 'BestEffort';
}

/** A stored pod: defaulted spec with its containers, server-set metadata, and the kubelet's status. */
export interface Pod extends KubeObject {
  apiVersion: 'v1';
  kind: 'Pod';
  spec: PodSpec & { containers: Container[] };
  status: PodStatus;
}
