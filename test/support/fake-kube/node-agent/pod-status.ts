/**
 * The pod status a kubelet reports, built from what the agent knows of the pod: phase, the five
 * conditions (PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled) with
 * transition times that move only when a condition's status does, IPs, start time, and the
 * container's state (waiting / running / terminated, last state, readiness, restarts).
 */
import { NODE_IP } from '../cluster.js';
import { timestamp } from '../object-meta.js';
import type { ContainerState, ContainerStatus, PodCondition, PodStatus } from '../pod-schema.js';

export interface ContainerView {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  state: ContainerState;
  lastState?: ContainerState;
  ready: boolean;
  restartCount: number;
}

/** What the agent tracks of one pod, from which its status is made. */
export interface PodView {
  phase: PodStatus['phase'];
  reason?: string;
  message?: string;
  /** Unschedulable: PodScheduled False with this message; undefined once scheduled. */
  unschedulable?: string;
  /** The kubelet took the pod: startTime, hostIP and the kubelet's conditions exist. */
  admitted: boolean;
  startTime?: string;
  podIP?: string;
  containers: ContainerView[];
}

type ConditionInput = Omit<PodCondition, 'lastProbeTime' | 'lastTransitionTime'>;

function condition(input: ConditionInput, previous: readonly PodCondition[] | undefined): PodCondition {
  const before = previous?.find((c) => c.type === input.type);
  const lastTransitionTime =
    before !== undefined && before.status === input.status ? before.lastTransitionTime : timestamp();
  return {
    type: input.type,
    status: input.status,
    lastProbeTime: null,
    lastTransitionTime,
    ...withoutUndefined(input),
  };
}

function withoutUndefined(input: ConditionInput): Partial<ConditionInput> {
  const out: Partial<ConditionInput> = {};
  if (input.reason !== undefined) out.reason = input.reason;
  if (input.message !== undefined) out.message = input.message;
  return out;
}

function readiness(view: PodView): ConditionInput {
  const terminal = view.phase === 'Succeeded' || view.phase === 'Failed';
  if (terminal)
    return {
      type: 'Ready',
      status: 'False',
      reason: view.phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed',
    };
  const unready = view.containers.filter((c) => !c.ready).map((c) => c.name);
  if (unready.length === 0) return { type: 'Ready', status: 'True' };
  return {
    type: 'Ready',
    status: 'False',
    reason: 'ContainersNotReady',
    message: `containers with unready status: [${unready.join(' ')}]`,
  };
}

function containerStatus(view: ContainerView): ContainerStatus {
  return {
    name: view.name,
    state: view.state,
    lastState: view.lastState ?? {},
    ready: view.ready,
    restartCount: view.restartCount,
    image: view.image,
    imageID: view.imageID,
    ...(view.containerID === undefined ? {} : { containerID: view.containerID }),
    started: 'running' in view.state,
  };
}

export function podStatusOf(view: PodView, previous: PodStatus, qosClass: PodStatus['qosClass']): PodStatus {
  const before = previous.conditions;
  const status: PodStatus = { phase: view.phase };
  if (view.unschedulable !== undefined) {
    status.conditions = [
      condition(
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: view.unschedulable },
        before,
      ),
    ];
  } else if (!view.admitted) {
    status.conditions = [condition({ type: 'PodScheduled', status: 'True' }, before)];
  } else {
    const ready = readiness(view);
    status.conditions = [
      condition(
        { type: 'PodReadyToStartContainers', status: view.podIP === undefined ? 'False' : 'True' },
        before,
      ),
      condition({ type: 'Initialized', status: 'True' }, before),
      condition(ready, before),
      condition({ ...ready, type: 'ContainersReady' }, before),
      condition({ type: 'PodScheduled', status: 'True' }, before),
    ];
    status.hostIP = NODE_IP;
    status.hostIPs = [{ ip: NODE_IP }];
    if (view.podIP !== undefined) {
      status.podIP = view.podIP;
      status.podIPs = [{ ip: view.podIP }];
    }
    if (view.startTime !== undefined) status.startTime = view.startTime;
    status.containerStatuses = view.containers.map(containerStatus);
  }
  if (view.reason !== undefined) status.reason = view.reason;
  if (view.message !== undefined) status.message = view.message;
  if (qosClass !== undefined) status.qosClass = qosClass;
  return status;
}
