/**
 * The harness's per-call session. `runTurn` runs one turn of an agent on the workspace of a scope
 * key: it takes the key's guard lease, reuses this process's warm sandbox for the key when it is
 * healthy and still at the key's head, or else acquires a sandbox restored from the key's latest
 * snapshot; projects the workspace definition; hands the tools to the turn; checks the lease and
 * persists a snapshot under the key (compare-and-swap on the head it started from); then releases
 * the sandbox, or keeps it warm for the key's next turn in this process within its idle timeout.
 *
 * A turn that throws persists nothing: its sandbox is released and the next turn starts from the
 * last snapshot. Across processes the snapshot is what carries the workspace.
 */
import '../dispose.js';
import type { SandboxClient } from '../client.js';
import { NotFoundError, UpstreamError } from '../errors.js';
import type { Sandbox } from '../sandbox.js';
import type { CallOptions } from '../transport.js';
import type { CreateSandboxOptions, SnapshotInfo } from '../types.js';
import { type ExecutionGuard, InProcessGuard } from './guard.js';
import { type ProjectionOptions, type ProjectionResult, projectWorkspace } from './projection.js';
import { type IsolationScope, type RuntimeContext, scopeKey } from './scope.js';
import { AgentTools, type AgentToolsOptions } from './tools/index.js';
import type { WorkspaceSource } from './workspace-source.js';

/** The sandbox each turn runs in: what `client.create` takes, less what the harness sets itself. */
export type HarnessSandboxOptions = Omit<CreateSandboxOptions, 'restore' | 'sessionId'>;

export interface HarnessOptions {
  client: SandboxClient;
  /** Whose workspace a turn works in; the context's matching id must be set at every turn. */
  scope: IsolationScope;
  /** The agent's workspace definition, projected at the start of every turn. None: nothing is projected. */
  source?: WorkspaceSource;
  /** First part of every workspace key, to keep apps sharing a server apart. Default `harness`. */
  namespace?: string;
  /** Serialises turns on one key. Default an `InProcessGuard`; use a `RedisGuard` across processes. */
  guard?: ExecutionGuard;
  /** Longest wait for a key another turn holds, milliseconds. Default the guard's. */
  guardWaitMs?: number;
  sandbox?: HarnessSandboxOptions;
  /**
   * Keep the sandbox after a turn for the key's next turn in this process, until its idle timeout.
   * Default false: release it once its snapshot is stored.
   */
  keepWarm?: boolean;
  /** Where the workspace lands and where its manifest is kept. */
  projection?: Omit<ProjectionOptions, 'signal'>;
  /** Limits of the agent tools. */
  tools?: Omit<AgentToolsOptions, 'workspaceRoot' | 'signal'>;
}

/** What a turn's work gets besides the tools and the sandbox. */
export interface TurnContext {
  key: string;
  fencingToken: number;
  /** Aborted when the turn's lease is lost; the tools already obey it. */
  signal: AbortSignal;
  /** The snapshot the workspace came from (or a warm sandbox was at), null for a new workspace. */
  restoredFrom: string | null;
  /** Whether a warm sandbox of an earlier turn in this process was reused. */
  reused: boolean;
  projection: ProjectionResult;
}

export type TurnWork<T> = (tools: AgentTools, sandbox: Sandbox, turn: TurnContext) => Promise<T>;

export interface TurnResult<T> extends TurnContext {
  /** What the work returned. */
  value: T;
  /** The snapshot the turn left: the key's new head. */
  snapshot: SnapshotInfo;
  sandboxId: string;
}

/** A sandbox kept for the key's next turn. */
interface WarmSandbox {
  sandbox: Sandbox;
  /** The snapshot its workspace matches: the key's head when it was put aside. */
  head: string;
  workspaceRoot: string;
  /** Past this (epoch ms) the server has reaped it for idleness. */
  idleUntil: number;
}

interface TurnSandbox {
  sandbox: Sandbox;
  head: string | null;
  workspaceRoot: string;
  reused: boolean;
}

/** How long a health probe of a warm sandbox may take, milliseconds. */
const HEALTH_PROBE_MS = 10_000;

export class Harness implements AsyncDisposable {
  private readonly client: SandboxClient;
  private readonly guard: ExecutionGuard;
  private readonly warm = new Map<string, WarmSandbox>();

  constructor(private readonly options: HarnessOptions) {
    this.client = options.client;
    this.guard = options.guard ?? new InProcessGuard();
  }

  /** The workspace key of a context under this harness's scope; throws ValidationError when its id is missing. */
  keyOf(context: RuntimeContext): string {
    return scopeKey(this.options.scope, context, this.options.namespace);
  }

  /** Runs one turn on the context's workspace (see the module comment). */
  async runTurn<T>(
    context: RuntimeContext,
    work: TurnWork<T>,
    call: CallOptions = {},
  ): Promise<TurnResult<T>> {
    const key = this.keyOf(context);
    this.forgetIdle();
    const lease = await this.guard.acquire(key, {
      ...(this.options.guardWaitMs === undefined ? {} : { waitMs: this.options.guardWaitMs }),
      ...(call.signal ? { signal: call.signal } : {}),
    });
    try {
      const signal = call.signal ? AbortSignal.any([call.signal, lease.signal]) : lease.signal;
      const { sandbox, head, workspaceRoot, reused } = await this.sandboxFor(key, context, signal);
      try {
        const projection = await this.project(sandbox, signal);
        const tools = new AgentTools(sandbox, { ...this.options.tools, workspaceRoot, signal });
        const turn: TurnContext = {
          key,
          fencingToken: lease.fencingToken,
          signal,
          restoredFrom: head,
          reused,
          projection,
        };
        const value = await work(tools, sandbox, turn);
        // The fencing check: only the lease's current holder may move the key's head. The head
        // compare-and-swap below covers the moment between this check and the write.
        await lease.assertHeld();
        const snapshot = await this.persist(sandbox, key, head, workspaceRoot);
        return { ...turn, value, snapshot, sandboxId: sandbox.id };
      } catch (error) {
        // Its workspace is ahead of (or apart from) the key's head now: it must not be reused.
        await sandbox.close().catch(() => undefined);
        throw error;
      }
    } finally {
      await lease.release();
    }
  }

  /** Releases every warm sandbox. The harness stays usable. */
  async close(): Promise<void> {
    const warm = [...this.warm.values()];
    this.warm.clear();
    await Promise.all(warm.map(({ sandbox }) => sandbox.close().catch(() => undefined)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The key's warm sandbox if it is healthy and still at the key's head, else a new one restored from the head. */
  private async sandboxFor(
    key: string,
    context: RuntimeContext,
    signal: AbortSignal,
    retried = false,
  ): Promise<TurnSandbox> {
    const head = (await this.client.snapshots.latest(key, { signal }))?.id ?? null;
    const warm = this.warm.get(key);
    if (warm) {
      this.warm.delete(key);
      // Another process may have moved the head since; then this workspace is stale.
      const workspaceRoot = warm.head === head ? await probe(warm.sandbox) : undefined;
      if (workspaceRoot !== undefined) return { sandbox: warm.sandbox, head, workspaceRoot, reused: true };
      await warm.sandbox.close().catch(() => undefined);
    }
    let sandbox: Sandbox;
    try {
      sandbox = await this.acquire(key, context, head, signal);
    } catch (error) {
      // The head was deleted between reading it and restoring it: restore what the key has now.
      if (!retried && error instanceof NotFoundError && error.code === 'SNAPSHOT_NOT_FOUND') {
        return this.sandboxFor(key, context, signal, true);
      }
      throw error;
    }
    const workspaceRoot = await probe(sandbox);
    if (workspaceRoot === undefined) {
      await sandbox.close().catch(() => undefined);
      throw new UpstreamError({
        code: 'UPSTREAM_ERROR',
        message: `the new sandbox ${sandbox.id} does not answer a command`,
        details: { sandboxId: sandbox.id },
      });
    }
    return { sandbox, head, workspaceRoot, reused: false };
  }

  private async acquire(
    key: string,
    context: RuntimeContext,
    head: string | null,
    signal: AbortSignal,
  ): Promise<Sandbox> {
    const options = this.options.sandbox ?? {};
    return this.client.create(
      {
        ...options,
        ...(context.sessionId ? { sessionId: context.sessionId } : {}),
        metadata: { ...options.metadata, 'harness-key': key },
        // By id, not by key: the head read above is then exactly what the snapshot's CAS expects.
        ...(head === null ? {} : { restore: { snapshotId: head } }),
      },
      { signal },
    );
  }

  private async project(sandbox: Sandbox, signal: AbortSignal): Promise<ProjectionResult> {
    if (!this.options.source) return { uploaded: [], removed: [], unchanged: 0, archiveBytes: 0 };
    return projectWorkspace(sandbox, this.options.source, { ...this.options.projection, signal });
  }

  /** Writes the key's new head, then keeps the sandbox warm or releases it. */
  private async persist(
    sandbox: Sandbox,
    key: string,
    head: string | null,
    workspaceRoot: string,
  ): Promise<SnapshotInfo> {
    if (!this.options.keepWarm) {
      const snapshot = await sandbox.close({ snapshot: { key, expectedHead: head } });
      if (snapshot === null) throw new Error(`closing ${sandbox.id} with a snapshot returned none`);
      return snapshot;
    }
    const snapshot = await sandbox.snapshots.create({ key, expectedHead: head });
    const { idleTimeoutSeconds } = await sandbox.keepAlive();
    this.warm.set(key, {
      sandbox,
      head: snapshot.id,
      workspaceRoot,
      idleUntil: Date.now() + idleTimeoutSeconds * 1000,
    });
    return snapshot;
  }

  /** Drops warm sandboxes the server has reaped for idleness by now. */
  private forgetIdle(): void {
    const now = Date.now();
    for (const [key, warm] of this.warm) {
      if (warm.idleUntil <= now) {
        this.warm.delete(key);
        void warm.sandbox.close().catch(() => undefined);
      }
    }
  }
}

/** The workspace root if the sandbox is claimed and runs a command, else undefined. */
async function probe(sandbox: Sandbox): Promise<string | undefined> {
  try {
    const info = await sandbox.info({ timeoutMs: HEALTH_PROBE_MS });
    if (info.status !== 'claimed') return undefined;
    const pwd = await sandbox.commands.run(['pwd'], { timeoutMs: HEALTH_PROBE_MS });
    return pwd.exitCode === 0 ? pwd.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}
