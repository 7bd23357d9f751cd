// FallbackPolicy (weft.dev/v1alpha1): the issue's shape, defaults, and validation with field paths.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FallbackPolicySpec } from './fallbackpolicy.ts';
import { errorKeys, errors, load, warnings, yaml } from './testutil.ts';

const doc = (spec: string, name = 'sentiment-model') =>
  `apiVersion: weft.dev/v1alpha1\nkind: FallbackPolicy\nmetadata: {name: ${name}, namespace: default}\nspec:\n${yaml`${spec}`
    .split('\n')
    .map((l) => (l === '' ? l : `  ${l}`))
    .join('\n')}`;

const keys = (spec: string) => errorKeys(load(doc(spec)));

describe('FallbackPolicy', () => {
  it('loads the issue’s example, clean: the proxy acts on it', () => {
    const result = load(doc(`
      host: sentiment-model
      subset: v2
      on: [unavailable, overflow, timeout]
      cache:
        ttl: 10m
        maxEntries: 10000
        key: {headers: [X-User-Id], body: true}
      route:
        host: sentiment-model
        subset: v1
      response:
        status: 200
        headers: {Content-Type: application/json}
        body: '{"label":"neutral","confidence":0}'
    `));
    assert.deepEqual(errors(result), []);
    assert.deepEqual(warnings(result), []);
    assert.deepEqual(result.resources[0]!.spec as FallbackPolicySpec, {
      host: 'sentiment-model',
      subset: 'v2',
      on: ['unavailable', 'overflow', 'timeout'],
      cache: { ttl: '10m', maxEntries: 10000, key: { headers: ['x-user-id'], body: true } },
      route: { host: 'sentiment-model', subset: 'v1' },
      response: { status: 200, headers: { 'content-type': 'application/json' }, body: '{"label":"neutral","confidence":0}' },
    } satisfies FallbackPolicySpec);
  });

  it('defaults: the three non-5xx triggers; a static answer is a 200 with an empty body', () => {
    const result = load(doc('host: llm-chat.default.svc.cluster.local\nresponse: {}'));
    assert.deepEqual(errors(result), []);
    assert.deepEqual(result.resources[0]!.spec, {
      host: 'llm-chat.default.svc.cluster.local',
      on: ['unavailable', 'overflow', 'timeout'],
      response: { status: 200, headers: {}, body: '' },
    });
    assert.deepEqual((load(doc('host: a\non: [5xx]\nroute: {host: b}')).resources[0]!.spec as FallbackPolicySpec).on, ['5xx']);
  });

  it('needs a host, a spec, and at least one of cache, route or response', () => {
    assert.deepEqual(keys('route: {host: b}'), ['REQUIRED spec.host']);
    assert.deepEqual(keys('host: a'), ['REQUIRED spec']);
    assert.deepEqual(errorKeys(load('apiVersion: weft.dev/v1alpha1\nkind: FallbackPolicy\nmetadata: {name: a}\n')), ['REQUIRED spec']);
  });

  it('checks triggers', () => {
    assert.deepEqual(keys('host: a\non: [unavailable, 503]\nresponse: {}'), ['INVALID_TYPE spec.on[1]']);
    assert.deepEqual(keys('host: a\non: [unavailable, crash]\nresponse: {}'), ['INVALID_VALUE spec.on[1]']);
    assert.deepEqual(keys('host: a\non: []\nresponse: {}'), ['INVALID_VALUE spec.on']);
    assert.deepEqual(keys('host: a\non: [timeout, timeout]\nresponse: {}'), ['DUPLICATE spec.on[1]']);
  });

  it('checks hosts and subsets', () => {
    assert.deepEqual(keys('host: "*.example.com"\nresponse: {}'), ['INVALID_VALUE spec.host']);
    assert.deepEqual(keys('host: bad_host\nresponse: {}'), ['INVALID_VALUE spec.host']);
    assert.deepEqual(keys('host: a\nsubset: v_1\nresponse: {}'), ['INVALID_VALUE spec.subset']);
    assert.deepEqual(keys('host: a\nroute: {subset: v1}'), ['REQUIRED spec.route.host']);
    assert.deepEqual(keys('host: a\nroute: {host: a}'), ['CONFLICT spec.route']);
    assert.deepEqual(keys('host: a\nsubset: v2\nroute: {host: a, subset: v2}'), ['CONFLICT spec.route']);
    assert.deepEqual(keys('host: a\nsubset: v2\nroute: {host: a, subset: v1}'), []);
    assert.deepEqual(keys('host: a\nroute: {host: a, subset: v1}'), []);
  });

  it('checks the cache block', () => {
    assert.deepEqual(keys('host: a\ncache: {ttl: 0s}'), ['INVALID_VALUE spec.cache.ttl']);
    assert.deepEqual(keys('host: a\ncache: {ttl: soon}'), ['INVALID_VALUE spec.cache.ttl']);
    assert.deepEqual(keys('host: a\ncache: {maxEntries: 0, maxBytes: -1}'), ['INVALID_VALUE spec.cache.maxEntries', 'INVALID_VALUE spec.cache.maxBytes']);
    assert.deepEqual(keys('host: a\ncache: {key: {headers: ["bad header"]}}'), ['INVALID_VALUE spec.cache.key.headers[0]']);
    assert.deepEqual(keys('host: a\ncache: {key: {headers: [x-a, X-A]}}'), ['DUPLICATE spec.cache.key.headers[1]']);
    assert.deepEqual(keys('host: a\ncache: {key: {body: "yes"}}'), ['INVALID_TYPE spec.cache.key.body']);
    assert.deepEqual(keys('host: a\ncache: {tll: 10m}'), ['UNKNOWN_FIELD spec.cache.tll']);
  });

  it('checks the static response', () => {
    assert.deepEqual(keys('host: a\nresponse: {status: 99}'), ['INVALID_VALUE spec.response.status']);
    assert.deepEqual(keys('host: a\nresponse: {status: 204, body: x}'), ['CONFLICT spec.response.body']);
    assert.deepEqual(keys('host: a\nresponse: {headers: {x-weft-fallback: static}}'), ['INVALID_VALUE spec.response.headers.x-weft-fallback']);
    assert.deepEqual(keys('host: a\nresponse: {headers: {Content-Length: "3"}}'), ['INVALID_VALUE spec.response.headers.Content-Length']);
    assert.deepEqual(keys('host: a\nresponse: {headers: {a: x, A: y}}'), ['DUPLICATE spec.response.headers.A']);
    assert.deepEqual(keys('host: a\nresponse: {headers: {"bad name": x}}'), ['INVALID_VALUE spec.response.headers["bad name"]']);
    assert.deepEqual(keys('host: a\nresponse: {body: 42}'), ['INVALID_TYPE spec.response.body']);
  });

  it('field names are Weft’s camelCase; snake_case is not accepted', () => {
    assert.deepEqual(keys('host: a\ncache: {max_entries: 3}'), ['UNKNOWN_FIELD spec.cache.max_entries']);
  });
});
