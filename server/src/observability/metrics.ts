/**
 * Prometheus metrics on a registry of their own (not prom-client's global one), so two servers in
 * one process or a library user's metrics never mix. Gauges of pool and sandbox state are read from
 * the state store at scrape time: they show the whole deployment, not one worker's view.
 */
import type { ErrorCode } from '@runtime-sandbox/contract';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface PoolGaugeValues {
  type: string;
  target: number;
  warm: number;
  creating: number;
}

export interface StateGaugeSource {
  pools(): Promise<PoolGaugeValues[]>;
  /** Sandboxes by record status; keyed by plain strings, so metrics need no part of the state model. */
  countsByStatus(): Promise<Record<string, number>>;
}

const PREFIX = 'runtime_sandbox_';
/** From a pool hit (a few ms) to a cold create (seconds). */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** From an empty workspace (tens of ms) to gigabytes over a slow bucket (minutes). */
const SNAPSHOT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export class ServerMetrics {
  readonly registry = new Registry();

  readonly acquireDuration = new Histogram({
    name: `${PREFIX}acquire_duration_seconds`,
    help: 'Time to hand out a bound sandbox, by whether it came from the warm pool',
    labelNames: ['type', 'fromPool'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly createDuration = new Histogram({
    name: `${PREFIX}create_duration_seconds`,
    help: 'Time to create a sandbox until its sandboxd answers, by whether it was made for the pool',
    labelNames: ['type', 'pooled'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly execTotal = new Counter({
    name: `${PREFIX}exec_total`,
    help: 'Exec calls forwarded to sandboxes, by mode (json or stream)',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });

  readonly execDuration = new Histogram({
    name: `${PREFIX}exec_duration_seconds`,
    help: 'Exec calls from request to the end of the answer, by mode (json or stream)',
    labelNames: ['mode'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly errorsTotal = new Counter({
    name: `${PREFIX}errors_total`,
    help: 'Error answers by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly reapedTotal = new Counter({
    name: `${PREFIX}reaped_total`,
    help: 'Sandboxes destroyed by the reaper or reconciler, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'HTTP requests by method, matched route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly snapshotsTotal = new Counter({
    name: `${PREFIX}snapshot_operations_total`,
    help: 'Snapshots taken and restored, by operation (snapshot or restore) and outcome (ok or the error code)',
    labelNames: ['operation', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly snapshotBytes = new Counter({
    name: `${PREFIX}snapshot_bytes_total`,
    help: 'Compressed workspace bytes written by snapshots and read by restores that succeeded, by operation',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  readonly snapshotDuration = new Histogram({
    name: `${PREFIX}snapshot_duration_seconds`,
    help: 'Time to take or restore a snapshot, by operation and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: SNAPSHOT_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Registers the gauges read from the state store at scrape time. */
  bindState(source: StateGaugeSource): void {
    const poolGauge = (name: string, help: string, pick: (pool: PoolGaugeValues) => number): void => {
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        labelNames: ['type'] as const,
        registers: [this.registry],
        async collect() {
          const pools = await source.pools();
          this.reset();
          for (const pool of pools) this.set({ type: pool.type }, pick(pool));
        },
      });
    };
    poolGauge('pool_warm', 'Warm sandboxes waiting in the pool, by type', (pool) => pool.warm);
    poolGauge('pool_target', 'Warm pool target size, by type', (pool) => pool.target);
    poolGauge('pool_creating', 'Sandboxes being created for the pool, by type', (pool) => pool.creating);

    new Gauge({
      name: `${PREFIX}sandboxes`,
      help: 'Sandboxes of this deployment by status',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        const counts = await source.countsByStatus();
        for (const [status, count] of Object.entries(counts)) this.set({ status }, count);
      },
    });
  }

  /** The JSON body bytes this worker holds right now (JSON_BYTES_IN_FLIGHT bounds it). */
  bindJsonBytesInFlight(source: { readonly inUse: number }): void {
    new Gauge({
      name: `${PREFIX}json_bytes_in_flight`,
      help: 'Bytes of JSON request bodies this worker holds while reading them',
      registers: [this.registry],
      collect() {
        this.set(source.inUse);
      },
    });
  }

  countError(code: ErrorCode): void {
    this.errorsTotal.inc({ code });
  }
}
