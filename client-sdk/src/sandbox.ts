/**
 * A sandbox acquired from (or connected through) the server. Data-plane calls go to
 * `/v1/sandboxes/<id>/...`, which the server forwards to the sandbox's sandboxd; each one also
 * refreshes the sandbox's idle timer. Release it with `close()`, or let `await using` do it.
 */
import './dispose.js';
import { Archive } from './archive.js';
import { Commands } from './commands.js';
import { type DirectConnectOptions, DirectSandbox, type SandboxDataPlane } from './direct-sandbox.js';
import { NotFoundError } from './errors.js';
import { Files } from './files.js';
import { type CallOptions, callSpec, type Transport } from './transport.js';
import type { KeepAliveOptions, SandboxInfo } from './types.js';

export class Sandbox implements SandboxDataPlane, AsyncDisposable {
  readonly id: string;
  /** The sandbox type it was created from. */
  readonly type: string;
  readonly commands: Commands;
  readonly files: Files;
  readonly archive: Archive;
  private readonly transport: Transport;
  private released: Promise<void> | undefined;

  /** @internal Made by `SandboxClient.create` and `SandboxClient.connect`. */
  constructor(api: Transport, info: Pick<SandboxInfo, 'id' | 'type'>) {
    this.id = info.id;
    this.type = info.type;
    this.transport = api.withPrefix(`/v1/sandboxes/${encodeURIComponent(info.id)}`);
    this.commands = new Commands(this.transport);
    this.files = new Files(this.transport);
    this.archive = new Archive(this.transport);
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
   * Releases the sandbox: the server destroys it, with its port and workspace. Idempotent: later
   * calls, and a sandbox that is already gone, resolve without error.
   */
  close(options: CallOptions = {}): Promise<void> {
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

  private async release(options: CallOptions): Promise<void> {
    try {
      await this.transport.empty({ method: 'DELETE', path: '', ...callSpec(options) });
    } catch (error) {
      if (error instanceof NotFoundError && error.code === 'SANDBOX_NOT_FOUND') return;
      throw error;
    }
  }
}
