/**
 * One watch over the deployment's pods (the client library's ListWatch: a list, then a watch from
 * its resourceVersion, a fresh list on 410 Gone), shared by every create that waits for its pod.
 * No pod is polled: a waiter hears each change of its pod as the watch delivers it. A watch that
 * breaks (the API server went away) is started again after a pause; until then waiters hear
 * nothing and their own deadline decides.
 *
 * Its cache is offered (`cached`) only while a watch is open: the list was taken and every change
 * since reaches it. From a break (or a clean end, before the watch is open again) it is not, as it
 * may miss deletions and new pods.
 */
import { type CoreV1Api, type KubeConfig, ListWatch, type V1Pod, Watch } from '@kubernetes/client-node';
import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** Pause before a broken watch is started again, milliseconds. */
const RESTART_MS = 1000;

/** What a waiter hears: the pod as it is now, or that it was deleted. */
export type PodChange = V1Pod | 'deleted';

/** A Watch that says when its stream is open and when it ended (cleanly or not). */
class TrackedWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly onOpen: (open: boolean) => void,
  ) {
    super(config);
  }

  override async watch(
    ...[path, query, callback, done]: Parameters<Watch['watch']>
  ): Promise<AbortController> {
    let ended = false;
    const controller = await super.watch(path, query, callback, (err: unknown) => {
      ended = true;
      this.onOpen(false);
      done(err);
    });
    // A 200 answer with its stream under way; a refused or failed one has ended already.
    if (!ended) this.onOpen(true);
    return controller;
  }
}

export class PodWatch {
  private readonly listWatch: ListWatch<V1Pod>;
  private readonly waiters = new Map<string, Set<(change: PodChange) => void>>();
  private readonly namespace: string;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private open = false;

  constructor(options: {
    kubeConfig: KubeConfig;
    core: CoreV1Api;
    namespace: string;
    labelSelector: string;
    logger: Logger;
  }) {
    const { namespace, labelSelector, core, logger } = options;
    this.namespace = namespace;
    this.listWatch = new ListWatch<V1Pod>(
      `/api/v1/namespaces/${namespace}/pods`,
      new TrackedWatch(options.kubeConfig, (open) => {
        this.open = open;
      }),
      () => core.listNamespacedPod({ namespace, labelSelector }),
      false,
      labelSelector,
    );
    this.listWatch.on('add', (pod) => this.tell(pod, pod));
    this.listWatch.on('update', (pod) => this.tell(pod, pod));
    this.listWatch.on('delete', (pod) => this.tell(pod, 'deleted'));
    this.listWatch.on('error', (err: unknown) => {
      if (this.stopped) return;
      logger.warn({ err: messageOf(err) }, 'the watch on sandbox pods broke; starting it again');
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => void this.listWatch.start(), RESTART_MS);
    });
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.listWatch.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.listWatch.stop();
  }

  /** The pod as the watch last saw it. */
  get(name: string): V1Pod | undefined {
    return this.listWatch.get(name, this.namespace);
  }

  /** Every pod as the watch last saw it, while a watch is open; else undefined. */
  cached(): readonly V1Pod[] | undefined {
    return this.open && !this.stopped ? this.listWatch.list(this.namespace) : undefined;
  }

  /**
   * Calls `decide` with pod `name` as it is now (if the watch has seen it) and on each change, until
   * it returns a value, which the promise then holds; or until `signal` aborts.
   */
  until<T>(name: string, decide: (change: PodChange) => T | undefined, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiters = this.waiters.get(name) ?? new Set();
      this.waiters.set(name, waiters);
      const finish = (settle: () => void) => {
        waiters.delete(listener);
        if (waiters.size === 0) this.waiters.delete(name);
        signal.removeEventListener('abort', onAbort);
        settle();
      };
      const listener = (change: PodChange) => {
        const decided = decide(change);
        if (decided !== undefined) finish(() => resolve(decided));
      };
      const onAbort = () => finish(() => reject(signal.reason));
      if (signal.aborted) return onAbort();
      waiters.add(listener);
      signal.addEventListener('abort', onAbort);
      const seen = this.get(name);
      if (seen) listener(seen);
    });
  }

  private tell(pod: V1Pod, change: PodChange): void {
    const name = pod.metadata?.name;
    if (name === undefined) return;
    for (const listener of [...(this.waiters.get(name) ?? [])]) listener(change);
  }
}
