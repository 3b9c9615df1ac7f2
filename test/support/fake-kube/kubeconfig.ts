/**
 * The kubeconfig a client (or the server under KUBECONFIG_PATH) loads to reach the fake: one
 * cluster, one token user, one context, current-context set. Over HTTPS the cluster carries its
 * CA as certificate-authority-data and TLS is verified; over plain HTTP it needs
 * insecure-skip-tls-verify (client-node allows http:// only with it).
 */
import { writeFileSync } from 'node:fs';

export const KUBECONFIG_CONTEXT = 'fake-kube';

export interface KubeconfigInput {
  server: string;
  token: string;
  namespace: string;
  /** The CA (PEM) to trust; required for an https:// server. */
  caPem?: string;
}

export function writeKubeconfig(path: string, input: KubeconfigInput): void {
  const trust =
    input.caPem === undefined
      ? '    insecure-skip-tls-verify: true'
      : `    certificate-authority-data: ${Buffer.from(input.caPem).toString('base64')}`;
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${KUBECONFIG_CONTEXT}`,
    '  cluster:',
    `    server: ${JSON.stringify(input.server)}`,
    trust,
    'users:',
    `- name: ${KUBECONFIG_CONTEXT}`,
    '  user:',
    `    token: ${JSON.stringify(input.token)}`,
    'contexts:',
    `- name: ${KUBECONFIG_CONTEXT}`,
    '  context:',
    `    cluster: ${KUBECONFIG_CONTEXT}`,
    `    user: ${KUBECONFIG_CONTEXT}`,
    `    namespace: ${JSON.stringify(input.namespace)}`,
    `current-context: ${KUBECONFIG_CONTEXT}`,
    '',
  ].join('\n');
  writeFileSync(path, yaml, { mode: 0o600 });
}
