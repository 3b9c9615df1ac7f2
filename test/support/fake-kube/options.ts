/** startFakeKube's options, checked with zod and filled with defaults. */
import { z } from 'zod';
import { authorizationSchema } from './authorization.js';

const labels = z.record(z.string(), z.string());

const namespaceSchema = z.object({
  /** The namespace's `pod-security.kubernetes.io/enforce` label; none: privileged, as on a real cluster. */
  podSecurity: z.enum(['privileged', 'baseline', 'restricted']).optional(),
  labels: labels.optional(),
});

export const fakeKubeOptionsSchema = z.object({
  /** Namespaces that exist (others answer 404). Default: `default`, enforcing restricted. */
  namespaces: z.record(z.string(), namespaceSchema).default({ default: { podSecurity: 'restricted' } }),
  /** RuntimeClasses that exist: name -> handler. Default none. */
  runtimeClasses: z.record(z.string(), z.string()).default({}),
  /** The one node's labels, which nodeSelectors match against. */
  nodeLabels: labels.default({ 'kubernetes.io/hostname': 'fake-node', 'kubernetes.io/os': 'linux' }),
  /** The bearer token every request must carry; default a random one. */
  token: z.string().min(1).optional(),
  /** How many changes per resource a watch can replay from before answering 410 Expired. */
  watchHistorySize: z.number().int().positive().default(1000),
  /** How often a watch with allowWatchBookmarks gets a BOOKMARK (the apiserver: about a minute). */
  bookmarkIntervalMs: z.number().int().positive().default(60_000),
  /** The kubelet's back-off for image pulls and container restarts: first delay, cap (10 s, 5 min). */
  backoffInitialMs: z.number().int().positive().default(10_000),
  backoffMaxMs: z.number().int().positive().default(300_000),
  /** RBAC for the token's user (authorization.ts); default none: it may do everything. */
  authorization: authorizationSchema.optional(),
  /**
   * Serve HTTPS with a certificate authority made at start (the openssl CLI): the kubeconfig then
   * carries that CA and no insecure-skip-tls-verify. Default plain HTTP.
   */
  tls: z.boolean().default(false),
  /**
   * Report as status.podIP an address where nothing listens (127.0.1.N for 127.0.0.N), as a
   * cluster's pod network looks from outside it: only the pods/proxy subresource reaches the pods.
   */
  unroutablePodIPs: z.boolean().default(false),
  /**
   * Serve kubernetes-sigs/agent-sandbox's CRDs (agent-sandbox-api.ts) and run its controller
   * (agent-sandbox-controller.ts). Default off: their paths answer 404, as without the CRDs.
   */
  agentSandbox: z.boolean().default(false),
  /** The Docker engine's socket. */
  dockerSocket: z.string().default('/var/run/docker.sock'),
});

export type FakeKubeOptions = z.input<typeof fakeKubeOptionsSchema>;
export type FakeKubeSettings = z.output<typeof fakeKubeOptionsSchema>;
export type NamespaceSettings = z.output<typeof namespaceSchema>;
