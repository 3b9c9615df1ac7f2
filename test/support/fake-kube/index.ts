/**
 * fake-kube: a fake Kubernetes API server with a Docker-backed node agent, for tests.
 *
 * Why it exists: the Kubernetes deployer must be tested with CONTAINER_DEPLOYMENT=k8s, and no real
 * API server can run on these machines. So this one follows the API reference closely enough that
 * the real @kubernetes/client-node (CoreV1Api, NetworkingV1Api, NodeV1Api, VersionApi, Watch,
 * informers) works against it unchanged: the same paths and verbs, status codes, `Status` error
 * bodies, resourceVersions and watch semantics. Each pod runs as a real Docker container, so a
 * test reaches the real sandboxd in it at the pod IP (or, with `unroutablePodIPs`, only through
 * pods/proxy, as a server outside a cluster would).
 *
 * What it serves (on 127.0.0.1, plain HTTP by default or, with `tls`, HTTPS under a CA made at
 * start by the openssl CLI; every request with `Authorization: Bearer <token>`, else 401, and
 * with the `authorization` option only what its RBAC rules grant, else 403; a kubeconfig is
 * written for it, with that CA as certificate-authority-data, or with insecure-skip-tls-verify
 * over plain HTTP):
 * - /version, /readyz, /livez, /healthz; discovery: /api, /api/v1, /apis, the two group versions;
 * - namespaces (fixed at start, with the `pod-security.kubernetes.io/enforce` label), the node
 *   `fake-node`, RuntimeClasses (fixed at start, cluster-scoped);
 * - pods: create (decode 400, namespace 404, RuntimeClass 403, validation 422, Pod Security 403,
 *   the refuseCreates() quota hook 403, AlreadyExists 409), get, list and watch (label and field
 *   selectors, the legacy /watch/ paths too), patch (merge and strategic merge patches, other
 *   Content-Types 415; labels and annotations change, the spec only in activeDeadlineSeconds,
 *   set where there is none or lowered, else 422 Invalid; a stale resourceVersion 409), delete
 *   (grace period from DeleteOptions or terminationGracePeriodSeconds, preconditions), pods/log
 *   (no follow), pods/proxy (HTTP to the pod, streaming both ways, `Authorization` and
 *   hop-by-hop headers dropped as the apiserver does);
 * - networkpolicies: create, get, list, watch, delete;
 * - with `agentSandbox`, kubernetes-sigs/agent-sandbox's CRDs and controller (agent-sandbox-api.ts,
 *   agent-sandbox-controller.ts): `agents.x-k8s.io/v1beta1` sandboxes and
 *   `extensions.agents.x-k8s.io/v1beta1` sandboxclaims, sandboxtemplates and sandboxwarmpools
 *   (create, get, list, watch, replace under a resourceVersion, merge patch, delete; 404 without
 *   the option, as a cluster without the CRDs answers). Written from that project's Go source
 *   (github.com/kubernetes-sigs/agent-sandbox at 2fd412d, Aug 2026): api/v1beta1/sandbox_types.go,
 *   extensions/api/v1beta1/{sandboxclaim,sandboxtemplate,sandboxwarmpool}_types.go,
 *   controllers/sandbox_controller.go, extensions/controllers/{sandboxclaim,sandboxwarmpool}_controller.go.
 *   v1beta1 is the storage version there (v1alpha1 is still served through a conversion webhook);
 *   a claim names its pool (`spec.warmPoolRef`, since it replaced `spec.sandboxTemplateRef`), the
 *   pool its template (`spec.sandboxTemplateRef`), and the claim reports its Sandbox (whose pod has
 *   the same name) in `status.sandbox.name` and `.podIPs`, with a Ready condition mirrored from
 *   the Sandbox's (True once the pod is Running and Ready with an IP); adopting a warm sandbox moves
 *   its controller ownerReference from the pool to the claim, and garbage collection deletes the
 *   Sandbox and pod when the claim goes. What the controller here does not model is listed in
 *   agent-sandbox-controller.ts; the CRDs' OpenAPI validation and discovery entries are not served;
 * - watches: chunked newline-delimited events; replay from a bounded history; 410 Expired as a
 *   single ERROR event when the version is older than the history; BOOKMARKs (every
 *   bookmarkIntervalMs, default a minute like the apiserver's); timeoutSeconds.
 *
 * The node agent: schedules by nodeSelector (else Unschedulable), gives each pod a loopback IP
 * 127.0.0.N published with every containerPort, runs the container from the local image (never
 * pulling: ErrImagePull / ImagePullBackOff), maps the security context, limits and emptyDirs onto
 * Docker, reports status as a kubelet (phases, conditions, container states, readiness probes,
 * restarts with CrashLoopBackOff, activeDeadlineSeconds from startTime, a patched one included),
 * and stops and removes the container on delete. With `unroutablePodIPs` status.podIP is the
 * address's twin 127.0.1.N, where nothing listens; pods/proxy and readiness probes still use the
 * real one. Everything it makes in Docker carries `io.runtime-sandbox.fake-kube=<instance id>`;
 * pod addresses are claimed across processes by lock files in $TMPDIR/fake-kube-pod-addresses/
 * (each removed with its pod; the shared folder stays).
 *
 * What it does NOT model:
 * - client certificates, other authentication than the one token, TLS client auth; the serving
 *   certificate is for 127.0.0.1 only and is not rotated;
 * - enforcement of NetworkPolicies (they are stored only; that needs a CNI plugin); pod-to-pod
 *   traffic over pod IPs (the 127.0.0.N addresses are the host's loopback, reachable only from
 *   the host), Services, DNS, egress beyond this machine (the bridge does not masquerade);
 * - only declared containerPorts are reachable at the pod IP (a real pod answers on any port),
 *   readiness probes included;
 * - update (PUT) of anything but NetworkPolicies and agent-sandbox objects, patch of anything but
 *   pods and agent-sandbox objects, and deleteCollection
 *   (405); JSON patches and server-side apply (415); the other fields a pod update may change
 *   (container images, added tolerations: refused as immutable), strategic merge's list merging
 *   and directives; status subresources (agent-sandbox objects drop a sent status), managedFields,
 *   finalizers, ownerReferences and garbage collection (except agent-sandbox's own), dryRun, list pagination (limit/continue are ignored), sendInitialEvents,
 *   resourceVersionMatch;
 * - unknown fields are kept as sent (no strict field validation, no warnings); quantities are kept
 *   as sent (not canonicalised);
 * - other resources: Secrets, ConfigMaps, ServiceAccounts (no token volume is mounted), Events,
 *   Services, Deployments and the rest; RBAC beyond the rules given at start (authorization.ts:
 *   without them one token may do everything); ResourceQuota beyond
 *   the refuseCreates() hook; LimitRanges; other admission plugins and webhooks;
 * - scheduling beyond nodeSelector on one node: affinity, taints (tolerations are accepted and
 *   ignored), resource requests, priorities, preemption;
 * - runtimeClassName is admitted (the RuntimeClass must exist) and then ignored: every pod runs on
 *   the engine's default runtime; AppArmor and SELinux options are ignored;
 * - on the node (the pod stays Pending in ContainerCreating with a message saying so): more than
 *   one container, init containers, volumes other than emptyDir, subPath mounts, one emptyDir
 *   mounted twice, hostNetwork/hostPID/hostIPC, user namespaces, Localhost seccomp, procMount,
 *   gRPC probes; secret/configMap env references fail as no such object exists;
 * - liveness and startup probes and lifecycle hooks are ignored; readiness gates are ignored;
 *   emptyDirs are tmpfs (sizeLimit is the tmpfs size: writes past it fail instead of the pod being
 *   evicted); a restarted container is the same Docker container started again; no eviction,
 *   node pressure, or node failure; imagePullPolicy is ignored (images are never pulled);
 *   pods/log has no follow, previous or sinceSeconds.
 */
export type { RecordedRequest } from './api-server.js';
export { FAKE_KUBE_LABEL } from './docker-labels.js';
export { type FakeKube, startFakeKube } from './fake-kube.js';
export { type KubeconfigInput, writeKubeconfig } from './kubeconfig.js';
export { removeFakeKubeLeftovers } from './leftovers.js';
export type { NetworkPolicy } from './network-policy-api.js';
export type { FakeKubeOptions } from './options.js';
export type { Pod, PodStatus } from './pod-schema.js';
export { makeTlsMaterial, type TlsMaterial } from './tls.js';
