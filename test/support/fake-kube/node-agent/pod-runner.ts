/**
 * One pod's life on the fake node, the scheduler's and the kubelet's part of it:
 *
 * 1. scheduled: nodeSelector must fit the node, else PodScheduled False / Unschedulable and it
 *    stays Pending; bound: spec.nodeName, PodScheduled True;
 * 2. admitted: startTime, hostIP, the container waiting in ContainerCreating;
 * 3. the "sandbox": a loopback pod IP; the image must be in the local engine (never pulled), else
 *    ErrImagePull then ImagePullBackOff, retried with the kubelet's back-off;
 * 4. runAsNonRoot verified against the image's user and env resolved (CreateContainerConfigError),
 *    the container created (CreateContainerError) and started (a failed start: terminated
 *    StartError, 128), then Running;
 * 5. readiness from the readiness probe (Ready without one); an exit ends in Succeeded/Failed
 *    (restartPolicy Never, or OnFailure on 0) or a restart, immediately the first time and then
 *    after CrashLoopBackOff; activeDeadlineSeconds (counted from startTime, and moved when an
 *    update sets or lowers it) kills it: Failed, DeadlineExceeded;
 * 6. deleted: at once (grace 0) or stopped within the grace period, then the object removed.
 *
 * Every change of what the kubelet would report is one status write (one MODIFIED event). Steps
 * run one at a time through a queue, so an exit can never overtake the start it follows.
 */
import type Dockerode from 'dockerode';
import { badRequest } from '../api-status.js';
import { NODE_NAME } from '../cluster.js';
import { instanceLabels } from '../docker-labels.js';
import { timestamp } from '../object-meta.js';
import type { Container, ContainerState, Pod } from '../pod-schema.js';
import type { ResourceStore } from '../resource-store.js';
import { containerEnv, expand } from './container-env.js';
import { containerLogs } from './container-logs.js';
import { containerCreateOptions, type ImageFacts, podRef, runAsNonRootError } from './container-options.js';
import { notModelled } from './not-modelled.js';
import { type PodAddresses, unroutableTwin } from './pod-addresses.js';
import { type ContainerView, type PodView, podStatusOf } from './pod-status.js';
import { ReadinessProber } from './readiness-prober.js';
import { fitsNode, UNSCHEDULABLE_MESSAGE } from './scheduling.js';

export interface RunnerDeps {
  docker: Dockerode;
  pods: ResourceStore<Pod>;
  addresses: PodAddresses;
  network: string;
  instanceId: string;
  nodeLabels: Readonly<Record<string, string>>;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Report an address nothing answers on as status.podIP (options.ts: unroutablePodIPs). */
  unroutablePodIPs: boolean;
  /** Routes the container's exits to this runner. */
  registerContainer: (containerId: string) => void;
}

/** Docker's words for a host address:port another process or container holds. */
const PORT_TAKEN = /port is already allocated|address already in use/i;
const MAX_ADDRESS_ATTEMPTS = 10;
/** How long ErrImagePull shows before ImagePullBackOff, as a kubelet's next sync would switch. */
const PULL_ERROR_SHOWN_MS = 1000;

const statusCodeOf = (error: unknown) => (error as { statusCode?: number }).statusCode;
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
/** Docker's RFC 3339 nanosecond times as metav1.Time (seconds). */
const fromDocker = (time: string) => timestamp(new Date(time));

export class PodRunner {
  private readonly view: PodView;
  private readonly container: Container;
  private queue: Promise<void> = Promise.resolve();
  private readonly timers = new Set<NodeJS.Timeout>();
  private prober: ReadinessProber | undefined;
  private containerId: string | undefined;
  private podIP: string | undefined;
  /** No more status writes or container work: removed, or being removed. */
  private closed = false;
  private terminating = false;
  private pullFailures = 0;
  private crashes = 0;
  private handledFinish: string | undefined;
  /** spec.activeDeadlineSeconds as last stored; an update may set or lower it. */
  private deadlineSeconds: number | undefined;
  /** When the kubelet took the pod (its startTime, to the millisecond): the deadline counts from here. */
  private admittedAt: number | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly pod: Pod,
  ) {
    // Validation guarantees one; more are not modelled (the pod then waits, see not-modelled.ts).
    this.container = pod.spec.containers[0] as Container;
    this.view = { phase: 'Pending', admitted: false, containers: [] };
    this.deadlineSeconds = pod.spec.activeDeadlineSeconds;
  }

  get namespace(): string {
    return this.pod.metadata.namespace ?? '';
  }

  get name(): string {
    return this.pod.metadata.name;
  }

  get dockerContainerId(): string | undefined {
    return this.containerId;
  }

  /** The address the pod's ports are published on, whatever status.podIP reports. */
  get address(): string | undefined {
    return this.podIP;
  }

  /** status.podIP: the address, or with unroutablePodIPs its twin where nothing listens. */
  private reportedIP(): string | undefined {
    return this.deps.unroutablePodIPs && this.podIP !== undefined ? unroutableTwin(this.podIP) : this.podIP;
  }

  start(): void {
    this.enqueue(() => this.scheduleAndAdmit());
  }

  /** A container of this pod stopped (from the engine's event stream). */
  containerDied(): void {
    this.enqueue(() => this.handleExit());
  }

  /** The stored pod's activeDeadlineSeconds changed: the kubelet's next sync goes by the new one. */
  deadlineChanged(seconds: number | undefined): void {
    this.deadlineSeconds = seconds;
    if (!this.closed) this.armDeadline();
  }

  /** Grace 0: everything goes now; resolves once the container and the address are gone. */
  async removeNow(): Promise<void> {
    this.close();
    await this.cleanup();
    await this.queue;
    await this.cleanup();
  }

  /** Graceful deletion: stop within `graceSeconds` (SIGTERM, then SIGKILL), then remove the pod object. */
  terminate(graceSeconds: number): void {
    if (this.closed) return;
    if (this.terminating) {
      // A second delete with a shorter grace period: a second stop with the shorter timeout overtakes the first.
      if (this.containerId !== undefined) {
        this.deps.docker
          .getContainer(this.containerId)
          .stop({ t: graceSeconds })
          .catch(() => undefined);
      }
      return;
    }
    this.terminating = true;
    this.stopActivity();
    this.enqueue(async () => {
      if (this.containerId !== undefined) {
        await this.deps.docker
          .getContainer(this.containerId)
          .stop({ t: graceSeconds })
          .catch(() => undefined);
      }
      this.close();
      await this.cleanup();
      this.deps.pods.remove(this.namespace, this.name, this.pod.metadata.uid);
    });
  }

  async logs(options: { container?: string; tailLines?: number; timestamps: boolean }): Promise<string> {
    if (options.container !== undefined && options.container !== this.container.name) {
      throw badRequest(`container ${options.container} is not valid for pod ${this.name}`);
    }
    const state = this.view.containers[0]?.state;
    if (this.containerId === undefined || state === undefined || 'waiting' in state) {
      const reason = state !== undefined && 'waiting' in state ? state.waiting.reason : 'ContainerCreating';
      throw badRequest(
        `container "${this.container.name}" in pod "${this.name}" is waiting to start: ${reason}`,
      );
    }
    return containerLogs(this.deps.docker.getContainer(this.containerId), {
      tty: this.container.tty === true,
      timestamps: options.timestamps,
      ...(options.tailLines === undefined ? {} : { tailLines: options.tailLines }),
    });
  }

  /** Stops timers and probes and makes every later step a no-op (idempotent). */
  close(): void {
    this.closed = true;
    this.stopActivity();
  }

  private stopActivity(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.prober?.stop();
    this.prober = undefined;
  }

  private enqueue(step: () => Promise<void> | void): void {
    this.queue = this.queue.then(async () => {
      if (this.closed) return;
      try {
        await step();
      } catch (error) {
        // An engine failure the steps did not expect: shown on the container, as a kubelet's sync error.
        if (!this.closed) this.setWaiting('CreateContainerError', messageOf(error));
      }
    });
  }

  private later(delayMs: number, step: () => Promise<void> | void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.enqueue(step);
    }, delayMs);
    this.timers.add(timer);
    return timer;
  }

  private backoff(failures: number): number {
    return Math.min(this.deps.backoffInitialMs * 2 ** Math.max(0, failures - 1), this.deps.backoffMaxMs);
  }

  /** Writes the status made from the view; `bind` also sets spec.nodeName, as the scheduler's binding does. */
  private publish(bind = false): void {
    if (this.closed) return;
    const updated = this.deps.pods.update(
      this.namespace,
      this.name,
      (draft) => {
        if (bind) draft.spec.nodeName = NODE_NAME;
        draft.status = podStatusOf(this.view, draft.status, draft.status.qosClass);
      },
      this.pod.metadata.uid,
    );
    if (updated === undefined) this.close();
  }

  private setContainer(change: Partial<ContainerView>): void {
    const current = this.view.containers[0];
    if (current === undefined) return;
    this.view.containers[0] = { ...current, ...change };
  }

  private setWaiting(reason: string, message?: string): void {
    this.setContainer({
      state: { waiting: message === undefined ? { reason } : { reason, message } },
      ready: false,
    });
    this.publish();
  }

  private scheduleAndAdmit(): Promise<void> | void {
    const { spec } = this.pod;
    if (spec.nodeName !== undefined && spec.nodeName !== '' && spec.nodeName !== NODE_NAME) return; // no such kubelet
    if (!fitsNode(this.pod, this.deps.nodeLabels)) {
      this.view.unschedulable = UNSCHEDULABLE_MESSAGE;
      this.publish();
      return;
    }
    this.publish(true);
    this.view.admitted = true;
    this.admittedAt = Date.now();
    this.view.startTime = timestamp(new Date(this.admittedAt));
    this.view.containers = [
      {
        name: this.container.name,
        image: this.container.image ?? '',
        imageID: '',
        state: { waiting: { reason: 'ContainerCreating' } },
        ready: false,
        restartCount: 0,
      },
    ];
    this.publish();
    this.armDeadline();
    const missing = notModelled(this.pod);
    if (missing.length > 0) {
      this.setWaiting('ContainerCreating', `fake-kube does not model ${missing.join(', ')}`);
      return;
    }
    this.podIP = this.deps.addresses.take();
    if (this.podIP === undefined) {
      this.setWaiting('ContainerCreating', 'fake-kube has no free pod address left (127.0.0.2-254)');
      return;
    }
    this.view.podIP = this.reportedIP();
    return this.createAndStart(0);
  }

  /** (Re)sets the deadline timer; before admission there is no startTime to count from yet. */
  private armDeadline(): void {
    if (this.deadlineTimer !== undefined) {
      clearTimeout(this.deadlineTimer);
      this.timers.delete(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    const seconds = this.deadlineSeconds;
    if (seconds === undefined || this.admittedAt === undefined) return;
    const delay = Math.max(0, this.admittedAt + seconds * 1000 - Date.now());
    this.deadlineTimer = this.later(delay, () => this.deadlineExceeded());
  }

  private async inspectImage(image: string): Promise<ImageFacts | undefined> {
    try {
      const info = await this.deps.docker.getImage(image).inspect();
      return { id: info.Id, user: info.Config?.User ?? '' };
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw error;
    }
  }

  private imageMissing(image: string): void {
    this.pullFailures += 1;
    const pullError = `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": fake-kube never pulls and the image is not in the local Docker engine`;
    this.setWaiting('ErrImagePull', pullError);
    this.later(Math.min(PULL_ERROR_SHOWN_MS, this.deps.backoffInitialMs), () => {
      this.setWaiting('ImagePullBackOff', `Back-off pulling image "${image}": ErrImagePull: ${pullError}`);
    });
    this.later(this.backoff(this.pullFailures), () => this.createAndStart(0));
  }

  private async createAndStart(attempt: number): Promise<void> {
    const image = this.container.image ?? '';
    const facts = await this.inspectImage(image);
    if (this.closed) return;
    if (facts === undefined) {
      this.imageMissing(image);
      return;
    }
    this.setContainer({ imageID: facts.id });
    const nonRoot = runAsNonRootError(this.pod, this.container, facts);
    const podIP = this.podIP ?? '';
    const env = containerEnv(this.pod, this.container, podIP);
    if (nonRoot !== undefined || env.kind === 'configError') {
      this.setWaiting(
        'CreateContainerConfigError',
        nonRoot ?? (env.kind === 'configError' ? env.message : ''),
      );
      return;
    }
    const mapping = new Map(env.entries);
    let created: Dockerode.Container;
    try {
      created = await this.deps.docker.createContainer(
        containerCreateOptions({
          pod: this.pod,
          container: this.container,
          image: facts,
          env: env.entries,
          command: this.container.command?.map((part) => expand(part, mapping)),
          args: this.container.args?.map((part) => expand(part, mapping)),
          podIP,
          network: this.deps.network,
          name: this.dockerName(),
          labels: this.dockerLabels(),
        }),
      );
    } catch (error) {
      this.setWaiting('CreateContainerError', messageOf(error));
      return;
    }
    this.containerId = created.id;
    this.deps.registerContainer(created.id);
    if (this.closed) {
      await this.cleanup();
      return;
    }
    try {
      await created.start();
    } catch (error) {
      if (PORT_TAKEN.test(messageOf(error)) && attempt < MAX_ADDRESS_ATTEMPTS) {
        // Another process publishes on this address: take the next one, as a new sandbox would get a new IP.
        await created.remove({ force: true, v: true }).catch(() => undefined);
        this.containerId = undefined;
        if (this.podIP !== undefined) this.deps.addresses.avoid(this.podIP);
        this.podIP = this.deps.addresses.take();
        if (this.podIP === undefined) {
          this.view.podIP = undefined;
          this.setWaiting('ContainerCreating', 'fake-kube has no free pod address left (127.0.0.2-254)');
          return;
        }
        this.view.podIP = this.reportedIP();
        await this.createAndStart(attempt + 1);
        return;
      }
      this.startFailed(messageOf(error));
      return;
    }
    await this.markRunning();
  }

  private async markRunning(): Promise<void> {
    if (this.containerId === undefined) return;
    const info = await this.deps.docker.getContainer(this.containerId).inspect();
    if (this.closed) return;
    // Already stopped: its die event is queued behind this step and reports it.
    if (!info.State.Running) return;
    const probe = this.container.readinessProbe;
    this.setContainer({
      containerID: `docker://${this.containerId}`,
      state: { running: { startedAt: fromDocker(info.State.StartedAt) } },
      ready: probe === undefined,
    });
    this.view.phase = 'Running';
    this.publish();
    if (probe !== undefined && this.podIP !== undefined) {
      const containerId = this.containerId;
      this.prober = new ReadinessProber({
        probe,
        container: this.container,
        podIP: this.podIP,
        exec: (argv, timeoutMs) => this.execSucceeds(containerId, argv, timeoutMs),
        onReadinessChange: (ready) => {
          if (this.closed || this.terminating) return;
          this.setContainer({ ready });
          this.publish();
        },
      });
      this.prober.start();
    }
  }

  private async execSucceeds(containerId: string, argv: string[], timeoutMs: number): Promise<boolean> {
    const exec = await this.deps.docker
      .getContainer(containerId)
      .exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const finished = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
      stream.resume();
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      stream.destroy();
      return false;
    }
    return (await exec.inspect()).ExitCode === 0;
  }

  /** The runtime could not start the process (a missing executable, say): exit 128, StartError. */
  private startFailed(message: string): void {
    const now = timestamp();
    this.afterTermination({ exitCode: 128, reason: 'StartError', message, startedAt: now, finishedAt: now });
  }

  private async handleExit(): Promise<void> {
    if (this.containerId === undefined || this.terminating) return;
    if (this.view.phase === 'Succeeded' || this.view.phase === 'Failed') return;
    const info = await this.deps.docker
      .getContainer(this.containerId)
      .inspect()
      .catch(() => undefined);
    if (info === undefined || info.State.Running || this.closed) return;
    if (info.State.FinishedAt === this.handledFinish) return; // the same exit, seen twice
    this.handledFinish = info.State.FinishedAt;
    this.prober?.stop();
    this.prober = undefined;
    const exitCode = info.State.ExitCode;
    const reason = info.State.OOMKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error';
    this.afterTermination({
      exitCode,
      reason,
      startedAt: fromDocker(info.State.StartedAt),
      finishedAt: fromDocker(info.State.FinishedAt),
    });
  }

  private afterTermination(terminated: {
    exitCode: number;
    reason: string;
    message?: string;
    startedAt: string;
    finishedAt: string;
  }): void {
    const containerID = this.containerId === undefined ? undefined : `docker://${this.containerId}`;
    const state: ContainerState = {
      terminated: { ...terminated, ...(containerID === undefined ? {} : { containerID }) },
    };
    const policy = this.pod.spec.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && terminated.exitCode !== 0);
    this.setContainer({ state, ready: false, ...(containerID === undefined ? {} : { containerID }) });
    if (!restart) {
      this.view.phase = terminated.exitCode === 0 ? 'Succeeded' : 'Failed';
      this.stopActivity();
      this.publish();
      return;
    }
    // Restarting counts as running in the kubelet's phase (getPhase), even before it ever ran.
    this.view.phase = 'Running';
    this.publish();
    // Ran long enough: the back-off starts over, as the kubelet's does after twice its cap.
    const ranMs = Date.parse(terminated.finishedAt) - Date.parse(terminated.startedAt);
    if (ranMs > 2 * this.deps.backoffMaxMs) this.crashes = 0;
    this.crashes += 1;
    if (this.crashes === 1) {
      this.enqueue(() => this.restart(state));
      return;
    }
    const delay = this.backoff(this.crashes - 1);
    this.setContainer({
      state: {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${this.container.name} pod=${podRef(this.pod)}`,
        },
      },
      lastState: state,
    });
    this.publish();
    this.later(delay, () => this.restart(state));
  }

  private async restart(last: ContainerState): Promise<void> {
    const current = this.view.containers[0];
    this.setContainer({ lastState: last, restartCount: (current?.restartCount ?? 0) + 1 });
    if (this.containerId === undefined) {
      await this.createAndStart(0);
      return;
    }
    try {
      await this.deps.docker.getContainer(this.containerId).start();
    } catch (error) {
      this.startFailed(messageOf(error));
      return;
    }
    await this.markRunning();
  }

  private async deadlineExceeded(): Promise<void> {
    if (this.view.phase === 'Succeeded' || this.view.phase === 'Failed' || this.terminating) return;
    this.stopActivity();
    const now = timestamp();
    if (this.containerId !== undefined) {
      const container = this.deps.docker.getContainer(this.containerId);
      await container.kill().catch(() => undefined);
      const info = await container.inspect().catch(() => undefined);
      const state = this.view.containers[0]?.state;
      if (info !== undefined && state !== undefined && 'running' in state) {
        this.handledFinish = info.State.FinishedAt;
        this.setContainer({
          state: {
            terminated: {
              exitCode: info.State.ExitCode || 137,
              reason: 'Error',
              startedAt: state.running.startedAt,
              finishedAt: info.State.FinishedAt.startsWith('0001') ? now : fromDocker(info.State.FinishedAt),
              containerID: `docker://${this.containerId}`,
            },
          },
          ready: false,
        });
      }
    }
    this.view.phase = 'Failed';
    this.view.reason = 'DeadlineExceeded';
    this.view.message = 'Pod was active on the node longer than the specified deadline';
    this.setContainer({ ready: false });
    this.publish();
  }

  /** Removes the container (if any) and gives the address back; safe to call more than once. */
  private async cleanup(): Promise<void> {
    const id = this.containerId;
    if (id !== undefined) {
      await this.deps.docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch((error: unknown) => {
          const code = statusCodeOf(error);
          if (code !== 404 && !(code === 409 && /already in progress/i.test(messageOf(error)))) throw error;
        });
      if (this.containerId === id) this.containerId = undefined;
    }
    if (this.podIP !== undefined) {
      this.deps.addresses.release(this.podIP);
      this.podIP = undefined;
    }
  }

  private dockerName(): string {
    const safe = `${this.namespace}-${this.name}`.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 80);
    return `fakekube-${this.deps.instanceId.slice(0, 8)}-${safe}-${this.pod.metadata.uid.slice(0, 8)}`;
  }

  private dockerLabels(): Record<string, string> {
    return {
      ...instanceLabels(this.deps.instanceId),
      'io.kubernetes.pod.name': this.name,
      'io.kubernetes.pod.namespace': this.namespace,
      'io.kubernetes.pod.uid': this.pod.metadata.uid,
      'io.kubernetes.container.name': this.container.name,
    };
  }
}
