/**
 * deploy/kubernetes, read as `kubectl apply -k` would: every object validates against the
 * Kubernetes OpenAPI schemas (kubernetes-models), the kustomization lists every file, the settings
 * load in the server's own config schema, the server's pods pass the restricted Pod Security
 * profile that their namespace enforces, and the pieces point at each other (namespaces, labels,
 * service account, ConfigMap, Secret).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../server/src/config/load.js';
import { AGENT_SANDBOX_RBAC_MANIFEST, manifestRules } from '../support/deploy-rbac.js';
import { makeCluster } from '../support/fake-kube/cluster.js';
import { fakeKubeOptionsSchema } from '../support/fake-kube/options.js';
import { admitPod } from '../support/fake-kube/pod-admission.js';
import { ResourceVersionClock } from '../support/fake-kube/resource-store.js';

const DIR = join(import.meta.dirname, '../../deploy/kubernetes');
const DEPLOYERS = join(import.meta.dirname, '../../server/src/deployers');

/** The API group of each generated client the deployer makes with makeApiClient. */
const GROUP_OF_CLIENT: Record<string, string> = {
  CoreV1Api: '',
  NetworkingV1Api: 'networking.k8s.io',
  NodeV1Api: 'node.k8s.io',
};
/** The RBAC verb of each operation prefix of the generated clients. */
const VERB_OF_OPERATION: Record<string, string> = {
  create: 'create',
  read: 'get',
  list: 'list',
  replace: 'update',
  patch: 'patch',
  delete: 'delete',
};

/** `NetworkPolicy` -> `networkpolicies`, as resources are named in RBAC rules. */
function resourceOf(kind: string): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith('y')) return `${lower.slice(0, -1)}ies`;
  return lower.endsWith('s') ? `${lower}es` : `${lower}s`;
}

/** The source of a deployer file. */
const sourceOf = (file: string) => readFileSync(join(DEPLOYERS, file), 'utf8');

/**
 * Every `group/resource verb` the given deployer sources call: `this.<client>.<operation>(` on the
 * clients they make (VersionApi's /version is a non-resource URL every user may read), and the
 * watch on the pods path an ObjectWatch is given (its list is one of those calls).
 */
function permissionsCalled(files: readonly string[]): Set<string> {
  const sources = files.map(sourceOf);
  const groupOfField = new Map<string, string>();
  for (const source of sources) {
    for (const [, field = '', client = ''] of source.matchAll(
      /this\.(\w+) = kubeConfig\.makeApiClient\((\w+)\)/g,
    )) {
      const group = GROUP_OF_CLIENT[client];
      if (group !== undefined) groupOfField.set(field, group);
    }
  }
  const called = new Set<string>();
  const operation = /(create|read|list|replace|patch|delete)(?:Namespaced)?(\w+)\(/;
  for (const source of sources) {
    for (const [, field = '', call = ''] of source.matchAll(/this\.(\w+)\.(\w+\()/g)) {
      const group = groupOfField.get(field);
      const [, prefix = '', kind = ''] = operation.exec(call) ?? [];
      if (group !== undefined && prefix !== '')
        called.add(`${group}/${resourceOf(kind)} ${VERB_OF_OPERATION[prefix]}`);
    }
    for (const [, resource = ''] of source.matchAll(
      /path: `\/api\/v1\/namespaces\/\$\{namespace\}\/(\w+)`/g,
    )) {
      called.add(`/${resource} watch`);
    }
  }
  return called;
}

/**
 * Every `group/resource verb` the agent-sandbox deployer calls through CustomObjectsApi:
 * `this.custom.<operation>NamespacedCustomObject({ ...RESOURCE` names its resource constant (from
 * kubernetes-agent-sandbox-objects.ts); a call spreading the variable `resource` is made for each
 * constant that its method is called with (`this.<method>(RESOURCE`) or iterates over
 * (`for (const resource of [A, B])`); and the watch on the path `resourcePath(RESOURCE` names.
 */
function customPermissionsCalled(): Set<string> {
  const objects = sourceOf('kubernetes-agent-sandbox-objects.ts');
  const resources = new Map<string, string>();
  for (const [, constant = '', group = '', plural = ''] of objects.matchAll(
    /export const (\w+): CustomResource = \{\s*group: '([^']+)',\s*version: '[^']+',\s*plural: '([^']+)',?\s*\}/g,
  )) {
    resources.set(constant, `${group}/${plural}`);
  }
  const source = sourceOf('kubernetes-agent-sandbox.ts');
  const headers = [...source.matchAll(/^ {2}(?:(?:private|protected|override|async|readonly) )*(\w+)\(/gm)];
  const called = new Set<string>();
  const verbs = { ...VERB_OF_OPERATION, get: 'get' } as Record<string, string>;
  headers.forEach((header, index) => {
    const body = source.slice(header.index, headers[index + 1]?.index ?? source.length);
    const passed = [...source.matchAll(new RegExp(`this\\.${header[1]}\\((\\w+)`, 'g'))].map(
      ([, c = '']) => c,
    );
    const iterated = [...body.matchAll(/for \(const resource of \[([^\]]+)\]\)/g)].flatMap(([, list = '']) =>
      list.split(',').map((c) => c.trim()),
    );
    for (const [, op = '', spread = ''] of body.matchAll(
      /this\.custom\.(\w+)NamespacedCustomObject\(\s*\{\s*\.\.\.(\w+)/g,
    )) {
      for (const constant of spread === 'resource' ? [...passed, ...iterated] : [spread]) {
        const resource = resources.get(constant);
        if (resource !== undefined) called.add(`${resource} ${verbs[op]}`);
      }
    }
  });
  for (const [, constant = ''] of source.matchAll(/path: resourcePath\((\w+)/g)) {
    called.add(`${resources.get(constant)} watch`);
  }
  return called;
}

/** Every `group/resource verb` that rules grant (no wildcards: the manifest names each). */
function permissionsGranted(rules: ReturnType<typeof manifestRules>): Set<string> {
  const granted = new Set<string>();
  for (const rule of rules) {
    for (const group of rule.apiGroups)
      for (const resource of rule.resources)
        for (const verb of rule.verbs) granted.add(`${group}/${resource} ${verb}`);
  }
  return granted;
}

const objectSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
});
type KubeObject = z.infer<typeof objectSchema>;

const kustomizationSchema = z.object({
  apiVersion: z.literal('kustomize.config.k8s.io/v1beta1'),
  kind: z.literal('Kustomization'),
  resources: z.array(z.string()),
  images: z.array(z.object({ name: z.string(), newName: z.string().optional(), newTag: z.string() })),
});

const kustomization = kustomizationSchema.parse(
  loadAllYaml(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8'))[0],
);
const objects: KubeObject[] = kustomization.resources.flatMap((file) =>
  loadAllYaml(readFileSync(join(DIR, file), 'utf8')).map((doc: unknown) => objectSchema.parse(doc)),
);

/** kubernetes-models' module for an apiVersion: `v1`, `apps/v1`, `rbac.authorization.k8s.io/v1`. */
async function modelOf(object: KubeObject): Promise<new (data: unknown) => { validate(): void }> {
  const module: Record<string, unknown> = await import(`kubernetes-models/${object.apiVersion}`);
  const model = module[object.kind];
  if (typeof model !== 'function')
    throw new Error(`kubernetes-models has no ${object.apiVersion} ${object.kind}`);
  return model as new (
    data: unknown,
  ) => { validate(): void };
}

function only(kind: string, name?: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0] as KubeObject;
}

const stringMap = z.record(z.string(), z.string());
const deploymentSchema = z.looseObject({
  metadata: z.looseObject({ namespace: z.string() }),
  spec: z.looseObject({
    replicas: z.number(),
    selector: z.object({ matchLabels: stringMap }),
    template: z.looseObject({
      metadata: z.object({ labels: stringMap }),
      spec: z.looseObject({
        serviceAccountName: z.string(),
        containers: z.array(
          z.looseObject({
            envFrom: z.array(
              z.object({
                configMapRef: z.object({ name: z.string() }).optional(),
                secretRef: z.object({ name: z.string() }).optional(),
              }),
            ),
          }),
        ),
      }),
    }),
  }),
});

describe('deploy/kubernetes', () => {
  it('lists every manifest in its kustomization', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
  });

  it('holds only objects that validate against the Kubernetes schemas', async () => {
    expect(objects.length).toBeGreaterThan(8);
    for (const object of objects) {
      const Model = await modelOf(object);
      expect(() => new Model(object).validate(), `${object.kind} ${object.metadata.name}`).not.toThrow();
    }
  });

  it('gives the server settings its config schema accepts, in a namespace apart from the sandboxes', () => {
    const settings = stringMap.parse(only('ConfigMap').data);
    const secrets = stringMap.parse(only('Secret').stringData);
    const config = loadConfig({ env: { ...settings, ...secrets }, cwd: DIR });
    const deployment = deploymentSchema.parse(only('Deployment'));
    expect(config.CONTAINER_DEPLOYMENT).toBe('k8s');
    expect(config.K8S_SERVER_NAMESPACE).toBe(deployment.metadata.namespace);
    expect(config.K8S_NAMESPACE).not.toBe(deployment.metadata.namespace);
    // Only pods with these labels may reach sandboxd: the server's pods must carry them.
    expect(deployment.spec.template.metadata.labels).toMatchObject(config.K8S_SERVER_POD_LABELS);

    const sandboxNamespace = only('Namespace', config.K8S_NAMESPACE);
    expect(sandboxNamespace.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe(
      config.K8S_POD_SECURITY,
    );
    const floor = only('NetworkPolicy');
    expect(floor.metadata.namespace).toBe(config.K8S_NAMESPACE);
    expect(floor.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });

    const [server] = deployment.spec.template.spec.containers;
    const from = server?.envFrom ?? [];
    expect(from.map((source) => source.configMapRef?.name ?? source.secretRef?.name)).toEqual([
      only('ConfigMap').metadata.name,
      only('Secret').metadata.name,
    ]);
  });

  it("runs the server's pods under the restricted profile that their namespace enforces", () => {
    const deployment = deploymentSchema.parse(only('Deployment'));
    const namespace = only('Namespace', deployment.metadata.namespace);
    expect(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    // The fake API server's own admission: the pod spec's validation, then Pod Security at the
    // namespace's enforced level, as a create of one of the Deployment's pods would meet them.
    const level = z
      .enum(['baseline', 'restricted'])
      .parse(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce']);
    const cluster = makeCluster(
      fakeKubeOptionsSchema.parse({
        namespaces: { [deployment.metadata.namespace]: { podSecurity: level } },
      }),
      new ResourceVersionClock(),
    );
    const pod = admitPod(
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'server' }, spec: deployment.spec.template.spec },
      deployment.metadata.namespace,
      cluster,
      { quotaRefusal: undefined },
    );
    expect(pod.spec.containers[0]?.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    const budget = z.object({ spec: z.object({ selector: z.object({ matchLabels: stringMap }) }) });
    expect(budget.parse(only('PodDisruptionBudget')).spec.selector.matchLabels).toEqual(
      deployment.spec.selector.matchLabels,
    );
  });

  it('binds the Role, in the sandbox namespace only, to the service account the server runs as', () => {
    const deployment = deploymentSchema.parse(only('Deployment'));
    const config = stringMap.parse(only('ConfigMap').data);
    const account = only('ServiceAccount');
    expect(account.metadata.name).toBe(deployment.spec.template.spec.serviceAccountName);
    const role = only('Role');
    const binding = only('RoleBinding');
    expect(role.metadata.namespace).toBe(config.K8S_NAMESPACE);
    expect(binding.metadata.namespace).toBe(config.K8S_NAMESPACE);
    expect(binding).toMatchObject({
      roleRef: { kind: 'Role', name: role.metadata.name },
      subjects: [
        { kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace },
      ],
    });
  });

  it('grants the server exactly the API calls the Kubernetes deployer makes, and nothing more', () => {
    const called = permissionsCalled(['kubernetes-base.ts', 'kubernetes.ts']);
    // The parse found the calls it should (a changed call style would otherwise pass silently).
    expect(called).toContain('/pods create');
    expect(called).toContain('/pods watch');
    const granted = permissionsGranted([...manifestRules('Role'), ...manifestRules('ClusterRole')]);
    expect([...granted].sort()).toEqual([...called].sort());
    expect(JSON.stringify(manifestRules('Role'))).not.toContain('*');
  });

  it('grants K8S_MODE=agent-sandbox, in its optional Role, exactly the custom objects its deployer uses', () => {
    const custom = customPermissionsCalled();
    // The parse found the calls it should (a changed call style would otherwise pass silently).
    expect(custom).toContain('extensions.agents.x-k8s.io/sandboxclaims create');
    expect(custom).toContain('extensions.agents.x-k8s.io/sandboxclaims watch');
    expect(custom).toContain('extensions.agents.x-k8s.io/sandboxtemplates update');
    const role = permissionsGranted(manifestRules('Role', AGENT_SANDBOX_RBAC_MANIFEST));
    expect([...role].sort()).toEqual([...custom].sort());
    // Its other calls are the base deployer's, which the main Role grants.
    const base = permissionsGranted([...manifestRules('Role'), ...manifestRules('ClusterRole')]);
    for (const call of permissionsCalled(['kubernetes-base.ts', 'kubernetes-agent-sandbox.ts'])) {
      expect(base).toContain(call);
    }
    const [binding] = loadAllYaml(readFileSync(AGENT_SANDBOX_RBAC_MANIFEST, 'utf8')).filter(
      (doc: unknown) => objectSchema.parse(doc).kind === 'RoleBinding',
    );
    expect(binding).toMatchObject({
      subjects: [{ kind: 'ServiceAccount', name: only('ServiceAccount').metadata.name }],
    });
  });
});
