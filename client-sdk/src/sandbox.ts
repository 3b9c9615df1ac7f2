/**
 * A sandbox acquired from (or connected through) the server. Data-plane calls go to
 * `/v1/sandboxes/<id>/...`, which the server forwards to the sandbox's sandboxd; each one also
 * refreshes the sandbox's idle timer. Release it with `close()` (optionally snapshotting the
 * workspace first), or let `await using` do it.
 */
import './dispose.js';
import { Archive } from './archive.js';
import { Commands } from './commands.js';
import { type DirectConnectOptions, DirectSandbox, type SandboxDataPlane } from './direct-sandbox.js';
import { NotFoundError } from './errors.js';
import { Files } from './files.js';
import { Python } from './python.js';
import { SandboxSnapshots, SNAPSHOT_TIMEOUT_MS } from './snapshots.js';
import { Tools } from './tools.js';
import { type CallOptions, callSpec, type Transport } from './transport.js';
import type { CreateSnapshotOptions, KeepAliveOptions, SandboxInfo, SnapshotInfo } from './types.js';

export interface CloseOptions extends CallOptions {
  /**
   * Snapshot the workspace before releasing: `true` for a one-off snapshot, or the key (and
   * compare-and-swap head) to add it to. The sandbox is released only once the snapshot is
   * stored; when the snapshot fails, `close` throws and the sandbox keeps running.
   */
  snapshot?: boolean | CreateSnapshotOptions;
}

export class Sandbox implements SandboxDataPlane, AsyncDisposable {
  readonly id: string;
  /** The sandbox type it was created from. */
  readonly type: string;
  readonly commands: Commands;
  readonly files: Files;
  readonly archive: Archive;
  readonly tools: Tools;
  readonly python: Python;
  readonly snapshots: SandboxSnapshots;
  private readonly transport: Transport;
  private released: Promise<SnapshotInfo | null> | undefined;

  /** @internal Made by `SandboxClient.create` and `SandboxClient.connect`. */
  constructor(api: Transport, info: Pick<SandboxInfo, 'id' | 'type'>) {
    this.id = info.id;
    this.type = info.type;
    this.transport = api.withPrefix(`/v1/sandboxes/${encodeURIComponent(info.id)}`);
    this.commands = new Commands(this.transport);
    this.files = new Files(this.transport);
    this.archive = new Archive(this.transport);
    this.tools = new Tools(this.transport);
    this.python = new Python(this.transport);
    this.snapshots = new SandboxSnapshots(this.transport);
  }

  /**
   * Talks to one sandboxd directly, with no server (a sandbox you run yourself, or one whose
   * endpoint and token you were handed). Checks that sandboxd answers before resolving.
   */
  static async connectDirect(options: DirectConnectOptions): Promise<DirectSandbox> {
    const sandbox = new DirectSandbox(options);
    await sandbox.health();
    return sandbox;
  }

  /** The sandbox as the server sees it now. Throws NotFoundError once it is released or reaped. */
  async info(options: CallOptions = {}): Promise<SandboxInfo> {
    return this.transport.json<SandboxInfo>({ method: 'GET', path: '', ...callSpec(options) });
  }

  /**
   * Refreshes the idle timer (any call does that too), and with `idleTimeoutSeconds` sets a new
   * idle timeout. Retried like a read: repeating it changes nothing.
   */
  async keepAlive(options: KeepAliveOptions & CallOptions = {}): Promise<SandboxInfo> {
    const body: KeepAliveOptions =
      options.idleTimeoutSeconds === undefined ? {} : { idleTimeoutSeconds: options.idleTimeoutSeconds };
    return this.transport.json<SandboxInfo>({
      method: 'POST',
      path: '/keepalive',
      json: body,
      retry: true,
      ...callSpec(options),
    });
  }

  /**
   * Releases the sandbox: the server destroys it, with its port and workspace. Resolves with the
   * snapshot taken first when `snapshot` asked for one, else null. Idempotent: later calls resolve
   * as the first one did (a `snapshot` they ask for is not taken), and without `snapshot` a
   * sandbox that is already gone resolves null; with `snapshot` it throws NotFoundError, as
   * nothing could be saved.
   */
  close(options: CloseOptions = {}): Promise<SnapshotInfo | null> {
    this.released ??= this.release(options).catch((error: unknown) => {
      // A failed release may be tried again.
      this.released = undefined;
      throw error;
    });
    return this.released;
  }

  /** `await using sandbox = await client.create()` releases the sandbox at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async release(options: CloseOptions): Promise<SnapshotInfo | null> {
    const snapshot = options.snapshot === true ? {} : options.snapshot || undefined;
    if (snapshot !== undefined) {
      return this.transport.json<SnapshotInfo>({
        method: 'DELETE',
        path: '',
        // In a query string an empty expectedHead stands for null: the key must have no snapshot yet.
        query: {
          snapshot: true,
          key: snapshot.key,
          expectedHead: snapshot.expectedHead === null ? '' : snapshot.expectedHead,
        },
        // A repeat after a lost answer could take a second snapshot.
        retry: false,
        ...callSpec(options, SNAPSHOT_TIMEOUT_MS),
      });
    }
    try {
      await this.transport.empty({ method: 'DELETE', path: '', ...callSpec(options) });
    } catch (error) {
      if (error instanceof NotFoundError && error.code === 'SANDBOX_NOT_FOUND') return null;
      throw error;
    }
    return null;
  }
}
