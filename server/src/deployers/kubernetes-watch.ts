/**
 * One watch over the deployment's objects of one kind (its pods, or its SandboxClaims), with the
 * client library's ListWatch: a list, then a watch from its resourceVersion, a fresh list on 410
 * Gone. It is shared by every create that waits for its object. Nothing is polled: a waiter hears
 * each change of its object as the watch delivers it. A watch that breaks (the API server went
 * away) is started again after a pause; until then waiters hear nothing and their own deadline
 * decides.
 *
 * Its cache is offered (`cached`) only while a watch is open: the list was taken and every change
 * since reaches it. From a break (or a clean end, before the watch is open again) it is not, as it
 * may miss deletions and new objects.
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** Pause before a broken watch is started again, milliseconds. */
const RESTART_MS = 1000;

/** What a waiter hears: the object as it is now, or that it was deleted. */
export type ObjectChange<T> = T | 'deleted';

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

export class ObjectWatch<T extends KubernetesObject> {
  private readonly listWatch: ListWatch<T>;
  private readonly waiters = new Map<string, Set<(change: ObjectChange<T>) => void>>();
  private readonly namespace: string;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private open = false;

  constructor(options: {
    kubeConfig: KubeConfig;
    /** The collection's path, e.g. `/api/v1/namespaces/<ns>/pods`. */
    path: string;
    /** Lists the collection with `labelSelector`. */
    list: () => Promise<KubernetesListObject<T>>;
    namespace: string;
    labelSelector: string;
    /** What is watched, for the log: `sandbox pods`. */
    what: string;
    logger: Logger;
  }) {
    const { namespace, labelSelector, logger } = options;
    this.namespace = namespace;
    this.listWatch = new ListWatch<T>(
      options.path,
      new TrackedWatch(options.kubeConfig, (open) => {
        this.open = open;
      }),
      options.list,
      false,
      labelSelector,
    );
    this.listWatch.on('add', (object) => this.tell(object, object));
    this.listWatch.on('update', (object) => this.tell(object, object));
    this.listWatch.on('delete', (object) => this.tell(object, 'deleted'));
    this.listWatch.on('error', (err: unknown) => {
      if (this.stopped) return;
      logger.warn({ err: messageOf(err) }, `the watch on ${options.what} broke; starting it again`);
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

  /** The object as the watch last saw it. */
  get(name: string): T | undefined {
    return this.listWatch.get(name, this.namespace);
  }

  /** Every object as the watch last saw it, while a watch is open; else undefined. */
  cached(): readonly T[] | undefined {
    return this.open && !this.stopped ? this.listWatch.list(this.namespace) : undefined;
  }

  /**
   * Calls `decide` with object `name` as it is now (if the watch has seen it) and on each change,
   * until it returns a value, which the promise then holds; or until `signal` aborts.
   */
  until<R>(
    name: string,
    decide: (change: ObjectChange<T>) => R | undefined,
    signal: AbortSignal,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const waiters = this.waiters.get(name) ?? new Set();
      this.waiters.set(name, waiters);
      const finish = (settle: () => void) => {
        waiters.delete(listener);
        if (waiters.size === 0) this.waiters.delete(name);
        signal.removeEventListener('abort', onAbort);
        settle();
      };
      const listener = (change: ObjectChange<T>) => {
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

  private tell(object: T, change: ObjectChange<T>): void {
    const name = object.metadata?.name;
    if (name === undefined) return;
    for (const listener of [...(this.waiters.get(name) ?? [])]) listener(change);
  }
}
