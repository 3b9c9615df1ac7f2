/**
 * Endpoints in Redis records: one written before `proxyPath` existed still parses, a proxied one
 * keeps its path, and nothing but addresses is kept. Also where K8S_ACCESS=proxy puts a pod's
 * sandboxd, from a kubeconfig, and what it refuses.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podProxyEndpoint, podProxyOf } from '../../server/src/deployers/kubernetes-proxy.js';
import { decodeRecord, encodeFields } from '../../server/src/state/redis-record.js';
import type { SandboxRecord } from '../../server/src/state/state-store.js';

const record: SandboxRecord = {
  id: 'sbx-1',
  type: 'base',
  deploymentId: 'dep',
  status: 'warm',
  handle: 'pod-1',
  endpoint: { host: '10.0.0.7', port: 49983 },
  hostPort: null,
  tokenNonce: 'nonce',
  sessionId: null,
  metadata: {},
  fromPool: true,
  createdAt: 1,
  claimedAt: null,
  lastActiveAt: 1,
  idleTimeoutSeconds: 300,
  expiresAt: null,
  creator: 'replica',
  tenantId: null,
};

/** `field, json, ...` as HSET gets them, back into the object HGETALL gives. */
const stored = (fields: Partial<SandboxRecord>) => {
  const flat = encodeFields(fields);
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i] ?? ''] = flat[i + 1] ?? '';
  return out;
};

function kubeConfigFor(server: string, extra: { proxyUrl?: string } = {}): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: false, ...extra }],
    users: [{ name: 'u', token: 'kube-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kubeConfig;
}

describe('endpoints in Redis records', () => {
  it('parses a record written before proxyPath existed', () => {
    const old = { ...stored(record), endpoint: '{"host":"10.0.0.7","port":49983}' };
    expect(decodeRecord(old).endpoint).toEqual({ host: '10.0.0.7', port: 49983 });
  });

  it('keeps a proxied endpoint’s path and drops anything else written into it', () => {
    const endpoint = {
      host: 'api.example',
      port: 6443,
      proxyPath: '/api/v1/namespaces/n/pods/p:49983/proxy',
    };
    expect(decodeRecord(stored({ ...record, endpoint })).endpoint).toEqual(endpoint);
    const tampered = { ...stored(record), endpoint: JSON.stringify({ ...endpoint, token: 'secret' }) };
    expect(decodeRecord(tampered).endpoint).toEqual(endpoint);
  });

  it('refuses an endpoint whose proxyPath is not a string', () => {
    const bad = { ...stored(record), endpoint: '{"host":"h","port":1,"proxyPath":7}' };
    expect(() => decodeRecord(bad)).toThrow(/malformed/);
  });
});

describe('K8S_ACCESS=proxy endpoints', () => {
  it('puts sandboxd under the pod’s proxy path on the API server, after the server URL’s own path', () => {
    const proxy = podProxyOf(kubeConfigFor('https://gateway.example/k8s/clusters/c-1/'), 'sandboxes');
    expect(podProxyEndpoint(proxy, 'rsbx-abc')).toEqual({
      host: 'gateway.example',
      port: 443,
      proxyPath: '/k8s/clusters/c-1/api/v1/namespaces/sandboxes/pods/rsbx-abc:49983/proxy',
    });
    const ipv6 = podProxyOf(kubeConfigFor('https://[fd00::1]:6443'), 'default');
    expect(ipv6).toMatchObject({ host: 'fd00::1', port: 6443 });
  });

  it('refuses a plain HTTP API server and a kubeconfig proxy-url, naming the setting', () => {
    expect(() => podProxyOf(kubeConfigFor('http://127.0.0.1:8080'), 'default')).toThrow(
      /K8S_ACCESS=proxy needs an https:\/\/ API server/,
    );
    expect(() =>
      podProxyOf(kubeConfigFor('https://api.example', { proxyUrl: 'http://corp-proxy:3128' }), 'default'),
    ).toThrow(/proxy-url/);
  });
});
