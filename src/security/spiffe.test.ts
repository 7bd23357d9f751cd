import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpiffeId, spiffeId } from './spiffe.ts';

test('spiffeId and parseSpiffeId round-trip canonical Istio identities', () => {
  const id = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sleep' };
  assert.equal(spiffeId(id), 'spiffe://cluster.local/ns/default/sa/sleep');
  assert.deepEqual(parseSpiffeId('spiffe://cluster.local/ns/default/sa/sleep'), id);
  assert.deepEqual(parseSpiffeId('spiffe://example.org/ns/a-b/sa/my.sa')?.serviceAccount, 'my.sa');
});

test('anything else is not an identity', () => {
  for (const bad of ['', 'cluster.local/ns/a/sa/b', 'spiffe://cluster.local/ns/a', 'spiffe://cluster.local/ns/a/sa/b/c', 'spiffe://cluster.local/sa/b/ns/a',
    'spiffe://Cluster.local/ns/a/sa/b', 'spiffe:///ns/a/sa/b', 'spiffe://td/ns//sa/b', 'spiffe://td/ns/a/sa/', 'spiffe://td/ns/-a/sa/b', 'spiffe://td/ns/a/sa/b%2F']) {
    assert.equal(parseSpiffeId(bad), undefined, bad);
  }
  assert.throws(() => spiffeId({ trustDomain: 'cluster.local', namespace: 'a/b', serviceAccount: 'c' }), /invalid namespace/);
});
