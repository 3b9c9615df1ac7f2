/**
 * The control plane: acquire, find and list sandboxes, and read types and size pools, on one server.
 */
import { Sandbox } from './sandbox.js';
import { SNAPSHOT_TIMEOUT_MS, Snapshots } from './snapshots.js';
import {
  type CallOptions,
  type ConnectionOptions,
  callSpec,
  Transport,
  transportConfig,
} from './transport.js';
import type {
  CreateSandboxOptions,
  ListSandboxesFilter,
  PoolInfo,
  PoolResizeRequest,
  SandboxInfo,
  SandboxTypeInfo,
} from './types.js';

export interface SandboxClientOptions extends ConnectionOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
}

export class SandboxClient {
  /** Every snapshot the server keeps: list, find a key's latest, get, delete. */
  readonly snapshots: Snapshots;
  private readonly api: Transport;

  constructor(options: SandboxClientOptions) {
    this.api = new Transport(transportConfig(options.baseUrl, options));
    this.snapshots = new Snapshots(this.api);
  }

  /**
   * Acquires a sandbox: a warm one from the pool when there is one, else a new one (which takes
   * longer); with `restore`, its workspace is hydrated from a snapshot before it is handed out.
   * Never retried, so a lost answer cannot leak a second sandbox. Throws CapacityError when the
   * server's instance limit is reached, NotFoundError for an unknown type or snapshot,
   * UpstreamError (RESTORE_FAILED) when a restore failed.
   */
  async create(options: CreateSandboxOptions = {}, call: CallOptions = {}): Promise<Sandbox> {
    const info = await this.api.json<SandboxInfo>({
      method: 'POST',
      path: '/v1/sandboxes',
      json: options,
      ...callSpec(call, options.restore === undefined ? undefined : SNAPSHOT_TIMEOUT_MS),
    });
    return new Sandbox(this.api, info);
  }

  /** A handle on a live sandbox by id; throws NotFoundError when there is none. */
  async connect(id: string, call: CallOptions = {}): Promise<Sandbox> {
    const info = await this.api.json<SandboxInfo>({
      method: 'GET',
      path: `/v1/sandboxes/${encodeURIComponent(id)}`,
      ...callSpec(call),
    });
    return new Sandbox(this.api, info);
  }

  /** Live sandboxes bound to callers, optionally filtered. */
  async list(filter: ListSandboxesFilter = {}, call: CallOptions = {}): Promise<SandboxInfo[]> {
    const answer = await this.api.json<{ sandboxes: SandboxInfo[] }>({
      method: 'GET',
      path: '/v1/sandboxes',
      query: { sessionId: filter.sessionId, type: filter.type, status: filter.status },
      ...callSpec(call),
    });
    return answer.sandboxes;
  }

  /** The registered sandbox types. */
  async types(call: CallOptions = {}): Promise<SandboxTypeInfo[]> {
    const answer = await this.api.json<{ types: SandboxTypeInfo[] }>({
      method: 'GET',
      path: '/v1/sandbox-types',
      ...callSpec(call),
    });
    return answer.types;
  }

  /** Sets a type's warm pool target, shared by every worker; the pool grows or shrinks to it. */
  async resizePool(type: string, size: number, call: CallOptions = {}): Promise<PoolInfo> {
    const body: PoolResizeRequest = { size };
    return this.api.json<PoolInfo>({
      method: 'PUT',
      path: `/v1/pools/${encodeURIComponent(type)}`,
      json: body,
      // Setting the same target twice is the same as once.
      retry: true,
      ...callSpec(call),
    });
  }

  /** Each type's warm pool: target and live counts. */
  async pools(call: CallOptions = {}): Promise<PoolInfo[]> {
    const answer = await this.api.json<{ pools: PoolInfo[] }>({
      method: 'GET',
      path: '/v1/pools',
      ...callSpec(call),
    });
    return answer.pools;
  }
}
