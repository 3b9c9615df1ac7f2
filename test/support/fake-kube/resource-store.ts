/**
 * The fake's etcd: objects per resource, one resourceVersion counter shared by every resource (an
 * etcd revision), and per resource a bounded history of changes that watches replay from, like the
 * apiserver's watch cache. A watch that asks for a version older than the history gets 410 Expired.
 */
import type { KubeObject } from './object-meta.js';

/** The single increasing counter every write takes its resourceVersion from. */
export class ResourceVersionClock {
  private value = 0;

  get current(): number {
    return this.value;
  }

  next(): number {
    this.value += 1;
    return this.value;
  }
}

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** A stored change: the object after it (for DELETED, its last state), and before it for MODIFIED. */
export interface Change<T> {
  type: ChangeType;
  object: T;
  previous: T | undefined;
  resourceVersion: number;
}

export type ChangeListener<T> = (change: Change<T>) => void;

export type Replay<T> = { kind: 'changes'; changes: Change<T>[] } | { kind: 'expired'; oldest: number };

const keyOf = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

export class ResourceStore<T extends KubeObject> {
  private readonly objects = new Map<string, T>();
  private history: Change<T>[] = [];
  /** Changes at or below this version are no longer in the history. */
  private floor = 0;
  private readonly listeners = new Set<ChangeListener<T>>();

  constructor(
    private readonly clock: ResourceVersionClock,
    private readonly historyLimit: number,
  ) {}

  get(namespace: string | undefined, name: string): T | undefined {
    const object = this.objects.get(keyOf(namespace, name));
    return object === undefined ? undefined : structuredClone(object);
  }

  has(namespace: string | undefined, name: string): boolean {
    return this.objects.has(keyOf(namespace, name));
  }

  /** Every object (or those `filter` keeps) in key order, as etcd lists them. */
  list(filter: (object: T) => boolean = () => true): T[] {
    return [...this.objects.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, object]) => object)
      .filter(filter)
      .map((object) => structuredClone(object));
  }

  /** Stores a new object (the caller checked it is absent), stamping its resourceVersion. */
  create(object: T): T {
    const stored = structuredClone(object);
    const version = this.clock.next();
    stored.metadata.resourceVersion = String(version);
    this.objects.set(keyOf(stored.metadata.namespace, stored.metadata.name), stored);
    this.record({ type: 'ADDED', object: stored, previous: undefined, resourceVersion: version });
    return structuredClone(stored);
  }

  /**
   * Applies `mutate` to a copy and stores it under a new resourceVersion; no write (and no event)
   * when nothing changed. Undefined when the object is gone or `uid` no longer matches (the object
   * was replaced by another of the same name).
   */
  update(
    namespace: string | undefined,
    name: string,
    mutate: (draft: T) => void,
    uid?: string,
  ): T | undefined {
    const key = keyOf(namespace, name);
    const current = this.objects.get(key);
    if (current === undefined || (uid !== undefined && current.metadata.uid !== uid)) return undefined;
    const draft = structuredClone(current);
    mutate(draft);
    if (JSON.stringify(draft) === JSON.stringify(current)) return structuredClone(current);
    const version = this.clock.next();
    draft.metadata.resourceVersion = String(version);
    this.objects.set(key, draft);
    this.record({ type: 'MODIFIED', object: draft, previous: current, resourceVersion: version });
    return structuredClone(draft);
  }

  /** Removes the object; its DELETED event carries the deletion's resourceVersion, as etcd's does. */
  remove(namespace: string | undefined, name: string, uid?: string): T | undefined {
    const key = keyOf(namespace, name);
    const current = this.objects.get(key);
    if (current === undefined || (uid !== undefined && current.metadata.uid !== uid)) return undefined;
    this.objects.delete(key);
    const version = this.clock.next();
    const last = structuredClone(current);
    last.metadata.resourceVersion = String(version);
    this.record({ type: 'DELETED', object: last, previous: current, resourceVersion: version });
    return structuredClone(last);
  }

  /** Calls `listener` for every later change, synchronously; returns the unsubscribe. */
  subscribe(listener: ChangeListener<T>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The changes after `version`, or expired when the history no longer reaches back that far. */
  changesSince(version: number): Replay<T> {
    // At the floor itself nothing was missed: only changes at or below it are gone.
    if (version < this.floor) return { kind: 'expired', oldest: this.floor };
    return { kind: 'changes', changes: this.history.filter((change) => change.resourceVersion > version) };
  }

  /**
   * Forgets the history, as an etcd compaction does. The compaction point is a fresh version, so
   * every version a client holds (even the latest) is now too old: its watch gets 410.
   */
  expireHistory(): void {
    this.history = [];
    this.floor = this.clock.next();
  }

  private record(change: Change<T>): void {
    this.history.push(change);
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift();
      if (dropped !== undefined) this.floor = dropped.resourceVersion;
    }
    for (const listener of [...this.listeners]) listener(change);
  }
}
