/**
 * A deployer for the unit tier: each sandbox is a small HTTP server on loopback that speaks just
 * enough of sandboxd (`GET /healthz`, `POST /init`, `POST /exec`) for the manager's rules to run
 * over real sockets with the real SandboxdClient, and no Docker. Each create can be scripted to
 * fail, to never get ready, or to come up with a sandboxd whose /init fails (a dead warm sandbox).
 *
 * Not modelled: networks, host ports (the endpoint is the fake's own port), images (every image
 * exists), resource limits, workspace storage (a workspace is the sandbox id in a set), tokens (any
 * bearer is accepted), and the data plane beyond answering `/exec` with exit code 0.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  ContainerSummary,
  CreateSpec,
  DeployedSandbox,
  Deployer,
} from '../../../server/src/deployers/deployer.js';
import type { SandboxType } from '../../../server/src/sandbox-types/definition.js';

export interface FakeSandboxScript {
  /** `create` throws this instead of starting anything. */
  createError?: Error;
  /** `/healthz` never answers 200, so readiness times out. */
  neverReady?: boolean;
  /** The status `/init` answers with (500: a sandboxd that died after the pool made it). */
  initStatus?: number;
}

export interface FakeSandbox {
  readonly spec: CreateSpec;
  readonly handle: string;
  /** Changeable after the create, e.g. to kill a warm sandbox's sandboxd. */
  behaviour: FakeSandboxScript;
  readonly server: Server;
}

export class FakeDeployer implements Deployer {
  readonly kind = 'fake';
  readonly location = 'this process';
  readonly live = new Map<string, FakeSandbox>();
  readonly destroyed: string[] = [];
  /** Ids of the sandboxes whose workspace is provided. */
  readonly workspaces = new Set<string>();
  /** The hard expiry each sandbox was bound to (bindExpiry), by handle. */
  readonly expiries = new Map<string, number>();
  private readonly scripts: FakeSandboxScript[] = [];
  private created = 0;

  /** The next creates behave as given, in order; later ones are healthy. */
  script(...next: FakeSandboxScript[]): void {
    this.scripts.push(...next);
  }

  async prepare(): Promise<void> {}

  async teardown(): Promise<void> {}

  /** Like Docker's: a host port unless the sandbox has no network. */
  needsHostPort(type: SandboxType): boolean {
    return type.security.network !== 'none';
  }

  async create(spec: CreateSpec): Promise<DeployedSandbox> {
    const behaviour = this.scripts.shift() ?? {};
    if (behaviour.createError) throw behaviour.createError;
    const handle = `fake-${++this.created}`;
    const sandbox: FakeSandbox = { spec, handle, behaviour, server: createServer() };
    sandbox.server.on('request', (request, response) => {
      request.resume();
      const answer = (status: number, body: unknown) =>
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (request.url === '/healthz') {
        if (!sandbox.behaviour.neverReady) answer(200, { status: 'ok' });
        return;
      }
      if (request.url === '/init') {
        const status = sandbox.behaviour.initStatus ?? 204;
        if (status === 204) response.writeHead(204).end();
        else answer(status, { error: { code: 'INTERNAL_ERROR', message: 'fake sandboxd failed' } });
        return;
      }
      if (request.url === '/exec') {
        answer(200, { exitCode: 0, signal: null, timedOut: false, durationMs: 1, stdout: '', stderr: '' });
        return;
      }
      answer(404, { error: { code: 'ROUTE_NOT_FOUND', message: 'not in the fake' } });
    });
    await new Promise<void>((resolve) => sandbox.server.listen(0, '127.0.0.1', resolve));
    this.live.set(handle, sandbox);
    const { port } = sandbox.server.address() as AddressInfo;
    return { handle, endpoint: { host: '127.0.0.1', port } };
  }

  async destroy(handle: string): Promise<void> {
    const sandbox = this.live.get(handle);
    if (!sandbox) return;
    this.live.delete(handle);
    this.destroyed.push(handle);
    sandbox.server.closeAllConnections();
    await new Promise<void>((resolve) => sandbox.server.close(() => resolve()));
  }

  async provideWorkspace(sandboxId: string): Promise<void> {
    if (this.workspaces.has(sandboxId)) throw new Error(`workspace of ${sandboxId} exists already`);
    this.workspaces.add(sandboxId);
  }

  async releaseWorkspace(sandboxId: string): Promise<void> {
    this.workspaces.delete(sandboxId);
  }

  async workspaceIds(): Promise<string[]> {
    return [...this.workspaces];
  }

  async list(deploymentId: string): Promise<ContainerSummary[]> {
    return [...this.live.values()]
      .filter((sandbox) => sandbox.spec.deploymentId === deploymentId)
      .map((sandbox) => ({
        handle: sandbox.handle,
        sandboxId: sandbox.spec.sandboxId,
        deploymentId: sandbox.spec.deploymentId,
        replicaId: sandbox.spec.replicaId,
        running: true,
      }));
  }

  async bindExpiry(handle: string, expiresAt: number): Promise<void> {
    this.expiries.set(handle, expiresAt);
  }

  async ping(): Promise<void> {}

  async hasImage(): Promise<boolean> {
    return true;
  }

  /** The fake sandbox a record names. */
  sandboxOf(sandboxId: string): FakeSandbox | undefined {
    return [...this.live.values()].find((sandbox) => sandbox.spec.sandboxId === sandboxId);
  }
}
