/**
 * The permissions deploy/kubernetes/rbac.yaml gives the server, as the fake API server's
 * `authorization` option: the Role's rules bound in the namespace a test's sandboxes use (the
 * manifest's own namespace name is a deployment choice), the ClusterRole's cluster-wide. A fake
 * started with it refuses, with 403 as RBAC would, every call the manifest does not allow.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { z } from 'zod';
import { type Authorization, type PolicyRule, policyRuleSchema } from './fake-kube/authorization.js';

const RBAC_MANIFEST = join(import.meta.dirname, '../../deploy/kubernetes/rbac.yaml');
/** The optional Role of K8S_MODE=agent-sandbox. */
export const AGENT_SANDBOX_RBAC_MANIFEST = join(
  import.meta.dirname,
  '../../deploy/kubernetes/agent-sandbox/rbac.yaml',
);

const roleSchema = z.looseObject({
  kind: z.enum(['Role', 'ClusterRole']),
  rules: z.array(policyRuleSchema),
});

/** The rules of the manifest's Role (`Role`) and ClusterRole (`ClusterRole`). */
export function manifestRules(kind: 'Role' | 'ClusterRole', manifest = RBAC_MANIFEST): PolicyRule[] {
  const documents: unknown[] = loadAllYaml(readFileSync(manifest, 'utf8'));
  return documents
    .map((document) => roleSchema.safeParse(document))
    .flatMap((parsed) => (parsed.success && parsed.data.kind === kind ? parsed.data.rules : []));
}

/**
 * What the server's service account may do, with its Role bound in `namespace` (and with
 * `agentSandbox`, the agent-sandbox Role too).
 */
export function manifestAuthorization(
  namespace: string,
  options: { agentSandbox?: boolean } = {},
): Authorization {
  const extra = options.agentSandbox
    ? [{ namespace, rules: manifestRules('Role', AGENT_SANDBOX_RBAC_MANIFEST) }]
    : [];
  return {
    user: 'system:serviceaccount:runtime-sandbox:runtime-sandbox-server',
    roles: [{ namespace, rules: manifestRules('Role') }, { rules: manifestRules('ClusterRole') }, ...extra],
  };
}
