/**
 * One container's readiness probe, run like the kubelet's prober: first after
 * initialDelaySeconds, then every periodSeconds; a probe that does not answer within
 * timeoutSeconds failed; ready after successThreshold successes in a row, unready after
 * failureThreshold failures in a row; unready until the first success. httpGet (a 2xx or 3xx
 * answer) and tcpSocket go to the pod IP (only declared containerPorts are published there);
 * exec runs in the container.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { Container, Probe } from '../pod-schema.js';

export interface ProberOptions {
  probe: Probe;
  container: Container;
  podIP: string;
  /** Runs argv in the container; resolves whether it exited 0 within the time. */
  exec: (argv: string[], timeoutMs: number) => Promise<boolean>;
  onReadinessChange: (ready: boolean) => void;
}

function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  if (/^[0-9]+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function httpProbe(options: ProberOptions, timeoutMs: number): Promise<boolean> {
  const get = options.probe.httpGet;
  const port = get === undefined ? undefined : resolvePort(options.container, get.port);
  if (get === undefined || port === undefined) return Promise.resolve(false);
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.34', accept: '*/*' };
  for (const header of get.httpHeaders ?? []) headers[header.name.toLowerCase()] = header.value;
  const request = get.scheme === 'HTTPS' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(
      {
        host: options.podIP,
        port,
        path: get.path || '/',
        method: 'GET',
        headers,
        agent: false,
        timeout: timeoutMs,
        rejectUnauthorized: false,
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(code >= 200 && code < 400);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function tcpProbe(options: ProberOptions, timeoutMs: number): Promise<boolean> {
  const socket = options.probe.tcpSocket;
  const port = socket === undefined ? undefined : resolvePort(options.container, socket.port);
  if (port === undefined) return Promise.resolve(false);
  return new Promise((resolve) => {
    const connection = connect({ host: options.podIP, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      connection.destroy();
      resolve(ok);
    };
    connection.once('connect', () => done(true));
    connection.once('timeout', () => done(false));
    connection.once('error', () => done(false));
  });
}

export class ReadinessProber {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ready = false;
  private successes = 0;
  private failures = 0;

  constructor(private readonly options: ProberOptions) {}

  start(): void {
    this.schedule((this.options.probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.probeOnce().then(
        () => this.schedule(Math.max(1, this.options.probe.periodSeconds ?? 10) * 1000),
        () => this.schedule(Math.max(1, this.options.probe.periodSeconds ?? 10) * 1000),
      );
    }, delayMs);
  }

  private async probeOnce(): Promise<void> {
    const { probe } = this.options;
    const timeoutMs = Math.max(1, probe.timeoutSeconds ?? 1) * 1000;
    let ok = false;
    if (probe.httpGet) ok = await httpProbe(this.options, timeoutMs);
    else if (probe.tcpSocket) ok = await tcpProbe(this.options, timeoutMs);
    else if (probe.exec?.command)
      ok = await this.options.exec(probe.exec.command, timeoutMs).catch(() => false);
    if (this.stopped) return;
    if (ok) {
      this.successes += 1;
      this.failures = 0;
      if (!this.ready && this.successes >= (probe.successThreshold ?? 1)) this.change(true);
    } else {
      this.failures += 1;
      this.successes = 0;
      if (this.ready && this.failures >= (probe.failureThreshold ?? 3)) this.change(false);
    }
  }

  private change(ready: boolean): void {
    this.ready = ready;
    this.options.onReadinessChange(ready);
  }
}
