/**
 * The kubeconfig a client (or the server under KUBECONFIG_PATH) loads to reach the fake: one
 * cluster on plain HTTP (client-node only allows http:// with insecure-skip-tls-verify set), one
 * token user, one context, current-context set.
 */
import { writeFileSync } from 'node:fs';

export const KUBECONFIG_CONTEXT = 'fake-kube';

export function writeKubeconfig(path: string, server: string, token: string, namespace: string): void {
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${KUBECONFIG_CONTEXT}`,
    '  cluster:',
    `    server: ${JSON.stringify(server)}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    `- name: ${KUBECONFIG_CONTEXT}`,
    '  user:',
    `    token: ${JSON.stringify(token)}`,
    'contexts:',
    `- name: ${KUBECONFIG_CONTEXT}`,
    '  context:',
    `    cluster: ${KUBECONFIG_CONTEXT}`,
    `    user: ${KUBECONFIG_CONTEXT}`,
    `    namespace: ${JSON.stringify(namespace)}`,
    `current-context: ${KUBECONFIG_CONTEXT}`,
    '',
  ].join('\n');
  writeFileSync(path, yaml, { mode: 0o600 });
}
