// A sidecar's inbound side driven by a test control plane: AuthorizationPolicies and path
// normalisation on plaintext (a proxy without a CA has no principal to offer), and snapshots with
// policies the proxy cannot enforce NACKed while the last good ones stay in force.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startHarness, snapshotFor, type Harness } from './helpers/proxy-harness.ts';
import { recorder, type Recorder } from './helpers/recorder.ts';
import type { AuthorizationPolicyConfig, ProxySnapshot } from '../src/wire/snapshot.ts';

let h: Harness;
let app: Recorder;

before(async () => {
  app = await recorder('app');
  h = await startHarness({ inbound: true });
});
after(async () => {
  await h?.close();
  await app?.close();
});

const withPolicies = (version: number, authorization: AuthorizationPolicyConfig[], mode?: 'STRICT' | 'PERMISSIVE' | 'DISABLE'): ProxySnapshot => {
  const s = snapshotFor(version, [], { inbound: { appHost: '127.0.0.1', appPort: app.port } });
  s.inbound!.authorization = authorization;
  if (mode) s.inbound!.mtls = { mode };
  return s;
};

const get = async (path: string, headers: Record<string, string> = {}) => {
  const r = await request(`http://${h.inbound}${path}`, { headers: { host: 'svc', ...headers } });
  return { status: r.statusCode, body: await r.body.text() };
};

const DENY_ADMIN: AuthorizationPolicyConfig = { namespace: 'default', name: 'no-admin', spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }] } };

test('a DENY policy on /admin: 403 RBAC: access denied, whatever the spelling; the app gets the normalised path', async () => {
  assert.equal((await h.send(withPolicies(1, [DENY_ADMIN]))).type, 'ack');
  for (const p of ['/admin', '//admin', '/%61dmin', '/x/../admin', '/admin%2fx', '/./admin/']) {
    assert.deepEqual(await get(p), { status: 403, body: 'RBAC: access denied' }, p);
  }
  assert.equal((await get('/admin%00')).status, 400);
  const ok = await get('/a/./b//c/../d?q=%2F');
  assert.equal(ok.status, 200);
  assert.equal(app.seen.at(-1)!.url, '/a/b/d?q=%2F');
});

test('an ALLOW policy that names principals never matches a plaintext caller', async () => {
  const onlyFrontend: AuthorizationPolicyConfig = {
    namespace: 'default',
    name: 'frontend-only',
    spec: { rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/frontend'] } }] }] },
  };
  assert.equal((await h.send(withPolicies(2, [onlyFrontend]))).type, 'ack');
  // Claiming the identity in the peer header changes nothing: only a certificate counts.
  assert.equal((await get('/', { 'x-weft-peer': 'frontend;default;frontend;v1;spiffe%3A%2F%2Fcluster.local%2Fns%2Fdefault%2Fsa%2Ffrontend' })).status, 403);
  const anyone: AuthorizationPolicyConfig = { namespace: 'default', name: 'get-only', spec: { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] } };
  assert.equal((await h.send(withPolicies(3, [anyone]))).type, 'ack');
  assert.equal((await get('/')).status, 200);
});

test('a CUSTOM policy, or a malformed one, is NACKed and the last good policies stay in force', async () => {
  assert.equal((await h.send(withPolicies(4, [DENY_ADMIN]))).type, 'ack');
  const custom: AuthorizationPolicyConfig = { namespace: 'default', name: 'ext', spec: { action: 'CUSTOM', provider: { name: 'x' }, rules: [{}] } };
  const nack = await h.send(withPolicies(5, [custom]));
  assert.equal(nack.type, 'nack');
  assert.match(nack.error!, /AuthorizationPolicy default\/ext: the CUSTOM action .* is not supported/);
  const bad = await h.send(withPolicies(6, [{ namespace: 'default', name: 'bad', spec: { rules: [{ to: [{ operation: { ports: ['http'] } }] }] } }]));
  assert.equal(bad.type, 'nack');
  assert.equal((await h.send(withPolicies(7, [], 'BOGUS' as 'STRICT'))).type, 'nack');
  assert.equal((await get('/admin')).status, 403, 'version 4 still enforced');
});

test('STRICT on a proxy without a workload certificate: plaintext is reset', async () => {
  assert.equal((await h.send(withPolicies(8, [], 'STRICT'))).type, 'ack');
  await assert.rejects(get('/'), (e: NodeJS.ErrnoException) => /ECONNRESET|socket|closed/i.test(`${e.code} ${e.message}`));
  assert.equal((await h.send(withPolicies(9, [], 'PERMISSIVE'))).type, 'ack');
  assert.equal((await get('/')).status, 200);
});
