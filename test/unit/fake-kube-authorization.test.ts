/**
 * The fake API server's RBAC (test/support/fake-kube/authorization.ts): request attributes read as
 * kube-apiserver's RequestInfo reads them, and rules matched as its RBAC authorizer matches them,
 * with its 403 Status.
 */
import { describe, expect, it } from 'vitest';
import { ApiError } from '../support/fake-kube/api-status.js';
import {
  type Authorization,
  authorize,
  type RequestAttributes,
  requestAttributes,
} from '../support/fake-kube/authorization.js';

const none = new URLSearchParams();
const attributes = (method: string, path: string, query = none): RequestAttributes | undefined =>
  requestAttributes(method, path, query);

describe("the fake API server's RBAC", () => {
  it('reads verb, group, namespace, resource, subresource and name from a request', () => {
    expect(attributes('GET', '/api/v1/namespaces/ns/pods')).toEqual({
      verb: 'list',
      apiGroup: '',
      namespace: 'ns',
      resource: 'pods',
      subresource: undefined,
      name: undefined,
    });
    expect(attributes('GET', '/api/v1/namespaces/ns/pods', new URLSearchParams('watch=true'))?.verb).toBe(
      'watch',
    );
    expect(attributes('GET', '/api/v1/watch/namespaces/ns/pods')).toMatchObject({
      verb: 'watch',
      namespace: 'ns',
    });
    expect(attributes('GET', '/api/v1/namespaces/ns/pods/p')).toMatchObject({ verb: 'get', name: 'p' });
    expect(attributes('PATCH', '/api/v1/namespaces/ns/pods/p')?.verb).toBe('patch');
    expect(attributes('DELETE', '/api/v1/namespaces/ns/pods/p')?.verb).toBe('delete');
    expect(attributes('DELETE', '/api/v1/namespaces/ns/pods')?.verb).toBe('deletecollection');
    expect(attributes('POST', '/api/v1/namespaces/ns/pods/p:49983/proxy/exec')).toMatchObject({
      verb: 'create',
      resource: 'pods',
      name: 'p:49983',
      subresource: 'proxy',
    });
    expect(attributes('PUT', '/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/x')).toMatchObject({
      verb: 'update',
      apiGroup: 'networking.k8s.io',
      resource: 'networkpolicies',
    });
    expect(attributes('GET', '/apis/node.k8s.io/v1/runtimeclasses/gvisor')).toMatchObject({
      verb: 'get',
      namespace: undefined,
      resource: 'runtimeclasses',
      name: 'gvisor',
    });
    expect(attributes('GET', '/api/v1/namespaces/ns')).toMatchObject({ resource: 'namespaces', name: 'ns' });
    for (const path of ['/version', '/api', '/api/v1', '/apis', '/apis/networking.k8s.io', '/healthz']) {
      expect(attributes('GET', path)).toBeUndefined();
    }
  });

  it('allows what a rule grants in its namespace, and answers anything else 403 Forbidden', () => {
    const authorization: Authorization = {
      user: 'system:serviceaccount:a:b',
      roles: [
        { namespace: 'ns', rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] },
        {
          rules: [
            {
              apiGroups: ['node.k8s.io'],
              resources: ['runtimeclasses'],
              verbs: ['get'],
              resourceNames: ['gvisor'],
            },
          ],
        },
      ],
    };
    const check = (method: string, path: string) => {
      const request = attributes(method, path);
      if (!request) throw new Error(`${path} is no resource request`);
      return () => authorize(authorization, request);
    };
    expect(check('GET', '/api/v1/namespaces/ns/pods/p')).not.toThrow();
    expect(check('GET', '/apis/node.k8s.io/v1/runtimeclasses/gvisor')).not.toThrow();
    expect(check('GET', '/apis/node.k8s.io/v1/runtimeclasses/kata')).toThrow(ApiError);
    expect(check('GET', '/api/v1/namespaces/other/pods/p')).toThrow(ApiError);
    // A subresource needs its own rule.
    expect(check('GET', '/api/v1/namespaces/ns/pods/p/log')).toThrow(ApiError);

    const refused = (() => {
      try {
        check('POST', '/api/v1/namespaces/ns/pods')();
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'pods is forbidden: User "system:serviceaccount:a:b" cannot create resource "pods" in API group "" in the namespace "ns"',
      reason: 'Forbidden',
      details: { kind: 'pods' },
      code: 403,
    });
  });
});
