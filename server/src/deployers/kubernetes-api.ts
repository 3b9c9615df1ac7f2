/**
 * What every Kubernetes deployer shares about talking to the API server: where the kubeconfig
 * comes from, and what an API call's failure is to callers. The API server being away (no answer,
 * or 5xx) is DEPLOYER_UNAVAILABLE (503, with a Retry-After); its refusals (4xx) are a
 * KubernetesRefusal naming the API's reason, SANDBOX_CREATE_FAILED on the way to a new sandbox,
 * UPSTREAM_ERROR elsewhere.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import type { ErrorCode } from '@runtime-sandbox/contract';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { messageOf, ServiceError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** A Retry-After for callers while the API server is away, seconds. */
const UNAVAILABLE_RETRY_SECONDS = 5;
/** Where a pod's service account credentials are mounted when the server runs in a cluster. */
const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** Beside the token: the namespace the server's own pod runs in. */
const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** What a refusal is to callers: a create's failure, or the backend answering badly. */
export type RefusalCode = Extract<ErrorCode, 'SANDBOX_CREATE_FAILED' | 'UPSTREAM_ERROR'>;

/** The parts of a Kubernetes `Status` error body used here. */
const statusBodySchema = z.object({ reason: z.string().optional(), message: z.string().optional() });

/** The API server answered with an error status (4xx). */
export class KubernetesRefusal extends ServiceError {
  constructor(
    code: RefusalCode,
    readonly status: number,
    readonly reason: string,
    message: string,
    cause: unknown,
  ) {
    super(code, message, { status, reason }, { cause });
    this.name = 'KubernetesRefusal';
  }
}

/**
 * One API call against the API server at `location`. A refusal (an answer with a status) is a
 * KubernetesRefusal with `refusal` as its code; no answer at all, or 5xx, is DEPLOYER_UNAVAILABLE.
 */
export async function kubeCall<T>(
  context: { location: string; logger: Logger },
  what: string,
  request: () => Promise<T>,
  refusal: RefusalCode = 'UPSTREAM_ERROR',
): Promise<T> {
  try {
    return await request();
  } catch (err) {
    const code = apiCodeOf(err);
    if (code === undefined || code >= 500) {
      throw new ServiceError(
        'DEPLOYER_UNAVAILABLE',
        `the Kubernetes API server (${context.location}) cannot ${what}: ${messageOf(err)}`,
        { retryAfterSeconds: UNAVAILABLE_RETRY_SECONDS },
        { cause: err },
      );
    }
    const status = statusBodySchema.safeParse(
      err instanceof ApiException ? statusBodyOf(err.body) : undefined,
    );
    const reason = (status.success && status.data.reason) || String(code);
    const message = (status.success && status.data.message) || messageOf(err);
    context.logger.debug({ what, code, reason }, 'the Kubernetes API refused a call');
    throw new KubernetesRefusal(
      refusal,
      code,
      reason,
      `the Kubernetes API refused to ${what}: ${reason}: ${message}`,
      err,
    );
  }
}

/** The client hands an error answer's body over as its text: the Status JSON, unparsed. */
function statusBodyOf(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** The HTTP status of a failed call; undefined when there was no answer. */
export function apiCodeOf(err: unknown): number | undefined {
  if (err instanceof KubernetesRefusal) return err.status;
  if (err instanceof ApiException) return err.code;
  return undefined;
}

/** A catch handler that turns an answer with one of `codes` into `value`, and rethrows the rest. */
export function unless<T>(codes: readonly number[], value: T): (err: unknown) => T {
  return (err) => {
    const code = apiCodeOf(err);
    if (code === undefined || !codes.includes(code)) throw err;
    return value;
  };
}

/** The namespace of the pod the server runs in, when it runs in a cluster. */
export function inClusterNamespace(): string | undefined {
  if (!process.env.KUBERNETES_SERVICE_HOST || !existsSync(IN_CLUSTER_NAMESPACE)) return undefined;
  return readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim() || undefined;
}

/** KUBECONFIG_PATH; else the pod's service account in a cluster; else ~/.kube/config (or $KUBECONFIG). */
export function loadKubeConfig(config: Config): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (config.KUBECONFIG_PATH !== undefined) kubeConfig.loadFromFile(config.KUBECONFIG_PATH);
  else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) kubeConfig.loadFromCluster();
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}
