/**
 * A sandboxd reached directly, with no server: the same `commands`, `files`, `archive`, `tools` and
 * `python` as a
 * pooled `Sandbox`, so agent code written against `SandboxDataPlane` runs unchanged on either.
 * sandboxd's routes are the v1 data-plane routes without the `/v1/sandboxes/:id` prefix.
 */
import { Archive } from './archive.js';
import { Commands } from './commands.js';
import { Files } from './files.js';
import { Python } from './python.js';
import { Tools } from './tools.js';
import {
  type CallOptions,
  type ConnectionOptions,
  callSpec,
  Transport,
  transportConfig,
} from './transport.js';
import type { SandboxdHealth } from './types.js';

/** What agent code needs from a sandbox, whether pooled behind the server or reached directly. */
export interface SandboxDataPlane {
  readonly commands: Commands;
  readonly files: Files;
  readonly archive: Archive;
  readonly tools: Tools;
  readonly python: Python;
}

export interface DirectConnectOptions extends ConnectionOptions {
  /** sandboxd's base URL, e.g. `http://127.0.0.1:49983`. */
  url: string;
  /** sandboxd's current token: its `SANDBOXD_TOKEN` until a server bound it, the bound one after. */
  token: string;
}

export class DirectSandbox implements SandboxDataPlane {
  readonly url: string;
  readonly commands: Commands;
  readonly files: Files;
  readonly archive: Archive;
  readonly tools: Tools;
  readonly python: Python;
  private readonly transport: Transport;

  /** @internal Use `Sandbox.connectDirect`, which also checks that sandboxd answers. */
  constructor(options: DirectConnectOptions) {
    this.url = options.url;
    this.transport = new Transport(transportConfig(options.url, options));
    this.commands = new Commands(this.transport);
    this.files = new Files(this.transport);
    this.archive = new Archive(this.transport);
    this.tools = new Tools(this.transport);
    this.python = new Python(this.transport);
  }

  /** sandboxd's health answer; throws UpstreamError when it cannot be reached. */
  async health(options: CallOptions = {}): Promise<SandboxdHealth> {
    return this.transport.json<SandboxdHealth>({ method: 'GET', path: '/healthz', ...callSpec(options) });
  }
}
