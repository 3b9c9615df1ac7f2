/**
 * The agent-sandbox objects K8S_MODE=agent-sandbox sends, how it reads a SandboxClaim's status,
 * and the shared boot token its templates carry: plain data, checked without any API server
 * (test/server/kubernetes-agent-sandbox.test.ts runs them against the fake one).
 */
import { SANDBOXD_ENV } from '@runtime-sandbox/contract';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../server/src/config/schema.js';
import {
  bootTokenScope,
  claimShutdownTime,
  claimStart,
  sandboxClaim,
  sandboxTemplate,
  sandboxWarmPool,
} from '../../server/src/deployers/kubernetes-agent-sandbox-objects.js';
import { sandboxPod, typeNetworkPolicy } from '../../server/src/deployers/kubernetes-objects.js';
import { SandboxTokens } from '../../server/src/manager/sandbox-tokens.js';
import { sandboxTypeSchema } from '../../server/src/sandbox-types/definition.js';
import { mergePatch } from '../support/fake-kube/agent-sandbox-api.js';

const config = configSchema.parse({ CONTAINER_DEPLOYMENT: 'k8s', K8S_MODE: 'agent-sandbox' });
const type = sandboxTypeSchema.parse({ name: 'base' });
const image = 'runtime-sandbox/runtime-sandbox-base:latest';
const spec = {
  sandboxId: '0123abcd',
  deploymentId: 'dep',
  replicaId: 'replica-1',
  type,
  image,
  name: 'rs-0123abcd',
  bootToken: 'per-sandbox',
  readonlyMounts: [],
  pooled: true,
};

const ready = (status: 'True' | 'False', reason: string) => ({
  type: 'Ready',
  status,
  reason,
  message: 'why',
});

describe('agent-sandbox objects', () => {
  it('templates the same locked-down pod as a bare pod, with the shared boot token and no sandbox of its own', () => {
    const template = sandboxTemplate(type, { deploymentId: 'dep', image, bootToken: 'shared' }, config);
    const pod = sandboxPod(spec, 'rs-0123abcd', config);
    const { podTemplate } = template.spec;
    expect(podTemplate.spec.containers).toHaveLength(1);
    const [container] = podTemplate.spec.containers;
    expect(container?.securityContext).toEqual(pod.spec?.containers[0]?.securityContext);
    expect(container?.resources).toEqual(pod.spec?.containers[0]?.resources);
    expect(container?.env).toContainEqual({ name: SANDBOXD_ENV.bootToken, value: 'shared' });
    expect(podTemplate.spec.terminationGracePeriodSeconds).toBe(0);
    expect(template.spec.networkPolicyManagement).toBe('Unmanaged');
    // Nothing per sandbox: no id, replica or pool label.
    expect(Object.keys(podTemplate.metadata.labels).sort()).toEqual([
      'runtime-sandbox.io/deployment',
      'runtime-sandbox.io/managed-by',
      'runtime-sandbox.io/type',
    ]);
    // The type's NetworkPolicy selects the template's pods.
    const policy = typeNetworkPolicy(type, 'dep', config, 'server-ns');
    expect(podTemplate.metadata.labels).toMatchObject(policy.spec?.podSelector?.matchLabels ?? { none: 'x' });
  });

  it('points the warm pool at the template and each claim at the pool, labelled for the reconciler', () => {
    const template = sandboxTemplate(type, { deploymentId: 'dep', image, bootToken: 'shared' }, config);
    const pool = sandboxWarmPool(type, 'dep', 3);
    expect(pool.spec).toEqual({ replicas: 3, sandboxTemplateRef: { name: template.metadata.name } });
    const claim = sandboxClaim(spec, 'rs-0123abcd');
    expect(claim.spec).toEqual({ warmPoolRef: { name: pool.metadata.name } });
    expect(claim.metadata.labels).toMatchObject({
      'runtime-sandbox.io/sandbox-id': '0123abcd',
      'runtime-sandbox.io/deployment': 'dep',
      'runtime-sandbox.io/replica': 'replica-1',
    });
  });

  it('reads a claim as bound only when Ready with a sandbox and a pod IP, and as failed when hopeless', () => {
    const claim = (status: unknown, deleting = false) => ({
      metadata: { name: 'c', ...(deleting ? { deletionTimestamp: new Date() } : {}) },
      status,
    });
    const bound = {
      conditions: [ready('True', 'DependenciesReady')],
      sandbox: { name: 'sb', podIPs: ['10.0.0.7'] },
    };
    expect(claimStart(claim(bound))).toEqual({ kind: 'ready', sandbox: 'sb', podIP: '10.0.0.7' });
    expect(claimStart(claim(bound, true))).toMatchObject({ kind: 'failed', reason: 'Deleted' });
    expect(claimStart(claim(undefined))).toEqual({ kind: 'pending', reason: 'Pending' });
    expect(
      claimStart(claim({ conditions: [ready('True', 'DependenciesReady')], sandbox: { name: 'sb' } })),
    ).toMatchObject({
      kind: 'pending',
    });
    expect(claimStart(claim({ conditions: [ready('False', 'DependenciesNotReady')] }))).toEqual({
      kind: 'pending',
      reason: 'DependenciesNotReady: why',
    });
    expect(claimStart(claim({ conditions: [ready('False', 'WarmPoolNotFound')] }))).toMatchObject({
      kind: 'failed',
      reason: 'WarmPoolNotFound',
    });
    const finished = {
      conditions: [ready('False', 'PodFailed'), { type: 'Finished', status: 'True', reason: 'PodFailed' }],
    };
    expect(claimStart(claim(finished))).toMatchObject({ kind: 'failed', reason: 'PodFailed' });
    // A status of another shape (a watch event's raw object) reads as not bound yet.
    expect(claimStart(claim({ conditions: 'odd' }))).toMatchObject({ kind: 'pending' });
  });

  it('sets the shutdown time past the hard expiry by the reaper grace', () => {
    const at = Date.UTC(2026, 0, 1, 0, 0, 0);
    const time = claimShutdownTime(at, { MAINTENANCE_INTERVAL_MS: 5000, LEADER_LEASE_MS: 15000 });
    expect(time).toBe('2026-01-01T00:00:30Z');
  });
});

describe('shared boot tokens', () => {
  const tokens = new SandboxTokens(Buffer.from('unit-test-sandbox-token-secret-0123456789'));

  it('gives every record of a scope its one token, apart from every sandbox’s own and other scopes', () => {
    const scope = bootTokenScope('dep', type);
    const shared = tokens.shared(scope);
    expect(tokens.shared(scope)).toEqual(shared);
    expect(tokens.tokenFor({ id: 'a1', tokenNonce: shared.nonce })).toBe(shared.token);
    expect(tokens.tokenFor({ id: 'b2', tokenNonce: shared.nonce })).toBe(shared.token);
    expect(tokens.shared(bootTokenScope('other', type)).token).not.toBe(shared.token);
    const own = tokens.issue('a1');
    expect(own.nonce).not.toContain('.');
    expect(own.token).not.toBe(shared.token);
    expect(new SandboxTokens(Buffer.from('another-secret-0123456789')).shared(scope).token).not.toBe(
      shared.token,
    );
  });
});

describe("the fake's merge patch", () => {
  it('merges objects, removes on null and replaces the rest, as RFC 7386 says', () => {
    expect(mergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1] }, { b: { c: null, x: 4 }, e: [2], f: 'g' })).toEqual(
      {
        a: 1,
        b: { d: 3, x: 4 },
        e: [2],
        f: 'g',
      },
    );
  });
});
