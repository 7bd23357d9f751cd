import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseText } from '../api/parse.ts';
import {
  authzPolicyProblems,
  AuthzConfigError,
  compileAuthz,
  pathTemplate,
  selectAuthzPolicies,
  type AuthorizationPolicySpec,
  type AuthzPolicy,
  type AuthzRequest,
} from './authz.ts';
import { normalizePath } from './path.ts';

const WORKLOAD = { namespace: 'default', labels: { app: 'httpbin', version: 'v1' } };
const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
const OTHER = 'spiffe://cluster.local/ns/other/sa/client';

function policy(name: string, spec: AuthorizationPolicySpec, namespace = 'default', dryRun = false): AuthzPolicy {
  return { name, namespace, spec, dryRun };
}

function request(over: Partial<AuthzRequest> & { path?: string; method?: string; host?: string; headers?: Record<string, string | string[]> } = {}): AuthzRequest {
  const { path = '/', method = 'GET', host = 'httpbin.default.svc.cluster.local', headers = {}, ...rest } = over;
  return { principal: SLEEP, sourceIp: '10.0.0.5', port: 8000, http: { host, method, path, headers }, ...rest };
}

function decide(policies: AuthzPolicy[], req: AuthzRequest = request()) {
  return compileAuthz(policies, WORKLOAD).evaluate(req);
}

test('no policy: allow', () => {
  const d = decide([]);
  assert.equal(d.allowed, true);
  assert.equal(d.policy, undefined);
  assert.match(d.reason, /no ALLOW policy applies/);
});

test('spec: {} denies everything; rules: [{}] allows everything', () => {
  const denyAll = policy('deny-all', {});
  const d = decide([denyAll]);
  assert.equal(d.allowed, false);
  assert.equal(d.policy, undefined);
  assert.equal(d.details, 'rbac_access_denied_matched_policy[none]');
  assert.equal(decide([denyAll, policy('allow-all', { rules: [{}] })]).allowed, true);
  assert.equal(decide([policy('allow-all', { rules: [{}] })]).policy, 'default/allow-all');
});

test('evaluation order: DENY beats ALLOW; ALLOW only matters once one applies; AUDIT only marks', () => {
  const allowAll = policy('allow-all', { rules: [{}] });
  const denyAdmin = policy('deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] });
  const audit = policy('audit-post', { action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] });
  const all = [allowAll, denyAdmin, audit];

  const admin = decide(all, request({ path: '/admin/users' }));
  assert.equal(admin.allowed, false);
  assert.equal(admin.policy, 'default/deny-admin');
  assert.equal(admin.rule, 0);
  assert.equal(admin.details, 'rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]');

  const post = decide(all, request({ method: 'POST', path: '/data' }));
  assert.equal(post.allowed, true);
  assert.equal(post.policy, 'default/allow-all');
  assert.deepEqual(post.audited, ['default/audit-post']);

  // DENY only: whatever it does not deny is allowed.
  assert.equal(decide([denyAdmin], request({ path: '/data' })).allowed, true);
  // AUDIT alone never denies.
  assert.equal(decide([audit], request({ method: 'POST' })).allowed, true);
});

test('CUSTOM is refused at compile time with a clear message', () => {
  const custom = policy('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] });
  assert.throws(() => compileAuthz([custom], WORKLOAD), (e: unknown) => e instanceof AuthzConfigError && /CUSTOM action .* not supported/.test(e.message) && e.policy === 'default/ext');
  assert.match(authzPolicyProblems(custom)[0]!, /not supported/);
  // A CUSTOM policy that does not select this workload does not stop it.
  const elsewhere = policy('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] }, 'prod');
  assert.equal(compileAuthz([elsewhere], WORKLOAD).policies.length, 0);
});

test('which policies apply: namespace, root namespace, selector, targetRef', () => {
  const policies = [
    policy('ns-wide', { rules: [{}] }),
    policy('mesh-wide', { rules: [{}] }, 'istio-system'),
    policy('mesh-httpbin', { selector: { matchLabels: { app: 'httpbin' } }, rules: [{}] }, 'istio-system'),
    policy('other-ns', { rules: [{}] }, 'prod'),
    policy('v2-only', { selector: { matchLabels: { app: 'httpbin', version: 'v2' } }, rules: [{}] }),
    policy('empty-selector', { selector: {}, rules: [{}] }),
    policy('gateway', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' }], rules: [{}] }),
  ];
  const { applied, skipped } = selectAuthzPolicies(policies, WORKLOAD);
  assert.deepEqual(applied.map((p) => p.name), ['ns-wide', 'mesh-wide', 'mesh-httpbin', 'empty-selector']);
  assert.deepEqual(skipped.map((s) => s.policy), ['default/gateway']);
  // The root namespace is a parameter.
  const custom = selectAuthzPolicies(policies, WORKLOAD, { rootNamespace: 'mesh-root' });
  assert.deepEqual(custom.applied.map((p) => p.name), ['ns-wide', 'empty-selector']);
});

test('a mesh-wide DENY in the root namespace applies to every namespace', () => {
  const deny = policy('deny-other', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['other'] } }] }] }, 'istio-system');
  assert.equal(decide([deny], request({ principal: OTHER })).allowed, false);
  assert.equal(decide([deny], request({ principal: SLEEP })).allowed, true);
});

test('from: principals (without spiffe://), exact / prefix / suffix / presence', () => {
  const allow = (principals: string[]) => [policy('p', { rules: [{ from: [{ source: { principals } }] }] })];
  assert.equal(decide(allow(['cluster.local/ns/default/sa/sleep'])).allowed, true);
  assert.equal(decide(allow(['spiffe://cluster.local/ns/default/sa/sleep'])).allowed, false, 'the spiffe:// prefix is added by the matcher');
  assert.equal(decide(allow(['cluster.local/ns/default/*'])).allowed, true);
  assert.equal(decide(allow(['*/sa/sleep'])).allowed, true);
  assert.equal(decide(allow(['*/sa/other'])).allowed, false);
  assert.equal(decide(allow(['*'])).allowed, true);
  assert.equal(decide(allow(['*']), request({ principal: '' })).allowed, false, '"*" needs an authenticated peer');
  // notPrincipals: ["*"] matches only plaintext peers.
  const plaintextOnly = [policy('p', { rules: [{ from: [{ source: { notPrincipals: ['*'] } }] }] })];
  assert.equal(decide(plaintextOnly, request({ principal: '' })).allowed, true);
  assert.equal(decide(plaintextOnly).allowed, false);
});

test('from: namespaces, serviceAccounts and trustDomains come from the verified SPIFFE ID', () => {
  const ns = (namespaces: string[], notNamespaces?: string[]) => [policy('p', { rules: [{ from: [{ source: { namespaces, notNamespaces } }] }] })];
  assert.equal(decide(ns(['default'])).allowed, true);
  assert.equal(decide(ns(['def*'])).allowed, true);
  assert.equal(decide(ns(['*ult'])).allowed, true);
  assert.equal(decide(ns(['other'])).allowed, false);
  assert.equal(decide(ns(['*']), request({ principal: '' })).allowed, false, 'no certificate, no namespace');
  assert.equal(decide(ns(['*'], ['other']), request({ principal: OTHER })).allowed, false);
  // A principal that is not a canonical SPIFFE ID carries no namespace.
  assert.equal(decide(ns(['default']), request({ principal: 'spiffe://cluster.local/ns/default/sa/a/ns/x' })).allowed, false);

  const sa = (serviceAccounts: string[]) => [policy('p', { rules: [{ from: [{ source: { serviceAccounts } }] }] })];
  assert.equal(decide(sa(['sleep'])).allowed, true, 'bare name: the policy namespace');
  assert.equal(decide(sa(['default/sleep'])).allowed, true);
  assert.equal(decide(sa(['other/sleep'])).allowed, false);
  assert.equal(decide(sa(['client'])).allowed, false);
  assert.equal(decide(sa(['other/client']), request({ principal: OTHER })).allowed, true);

  const td = (trustDomains: string[]) => [policy('p', { rules: [{ from: [{ source: { trustDomains } }] }] })];
  assert.equal(decide(td(['cluster.local'])).allowed, true);
  assert.equal(decide(td(['*.local'])).allowed, true);
  assert.equal(decide(td(['example.org'])).allowed, false);
});

test('from: ipBlocks, remoteIpBlocks and their not* forms, IPv4 and IPv6', () => {
  const ip = (source: object) => [policy('p', { rules: [{ from: [{ source }] }] })];
  assert.equal(decide(ip({ ipBlocks: ['10.0.0.0/24'] })).allowed, true);
  assert.equal(decide(ip({ ipBlocks: ['10.0.1.0/24'] })).allowed, false);
  assert.equal(decide(ip({ ipBlocks: ['10.0.0.5'] })).allowed, true);
  assert.equal(decide(ip({ ipBlocks: ['10.0.0.0/8'], notIpBlocks: ['10.0.0.5'] })).allowed, false);
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: still inside the IPv4 block.
  assert.equal(decide(ip({ ipBlocks: ['10.0.0.0/24'] }), request({ sourceIp: '::ffff:10.0.0.5' })).allowed, true);
  assert.equal(decide(ip({ ipBlocks: ['2001:db8::/32'] }), request({ sourceIp: '2001:db8::7' })).allowed, true);
  assert.equal(decide(ip({ ipBlocks: ['2001:db8::/32'] }), request({ sourceIp: '2001:db9::7' })).allowed, false);
  // remoteIpBlocks default to the connection's address, and use remoteIp when known.
  assert.equal(decide(ip({ remoteIpBlocks: ['10.0.0.0/24'] })).allowed, true);
  assert.equal(decide(ip({ remoteIpBlocks: ['192.168.0.0/16'] }), request({ remoteIp: '192.168.3.4' })).allowed, true);
  assert.equal(decide(ip({ notRemoteIpBlocks: ['192.168.0.0/16'] }), request({ remoteIp: '192.168.3.4' })).allowed, false);
});

test('to: hosts (no case), ports, methods (case), paths; and their not* forms', () => {
  const op = (operation: object) => [policy('p', { rules: [{ to: [{ operation }] }] })];
  assert.equal(decide(op({ hosts: ['HTTPBIN.default.svc.cluster.local'] })).allowed, true);
  assert.equal(decide(op({ hosts: ['*.svc.cluster.local'] })).allowed, true);
  assert.equal(decide(op({ hosts: ['httpbin.*'] })).allowed, true);
  assert.equal(decide(op({ hosts: ['httpbin'] })).allowed, false);
  assert.equal(decide(op({ hosts: ['httpbin'] }), request({ host: 'httpbin:8000' })).allowed, false, 'Host is compared as sent, port included');
  assert.equal(decide(op({ notHosts: ['evil.com'] })).allowed, true);
  assert.equal(decide(op({ ports: ['8000'] })).allowed, true);
  assert.equal(decide(op({ ports: ['9000'] })).allowed, false);
  assert.equal(decide(op({ notPorts: ['8000'] })).allowed, false);
  assert.equal(decide(op({ methods: ['GET', 'HEAD'] })).allowed, true);
  assert.equal(decide(op({ methods: ['get'] })).allowed, false, 'methods compare with case');
  assert.equal(decide(op({ notMethods: ['GET'] })).allowed, false);
  assert.equal(decide(op({ paths: ['/api/*'] }), request({ path: '/api/v1' })).allowed, true);
  assert.equal(decide(op({ paths: ['/api/*'] }), request({ path: '/apiv1' })).allowed, false);
  assert.equal(decide(op({ paths: ['*.json'] }), request({ path: '/x/data.json' })).allowed, true);
  assert.equal(decide(op({ paths: ['/exact'] }), request({ path: '/exact?debug=1' })).allowed, true, 'the query string is not part of the path');
  assert.equal(decide(op({ paths: ['/exact'] }), request({ path: '/Exact' })).allowed, false);
  assert.equal(decide(op({ paths: ['/api/*'], notPaths: ['/api/admin*'] }), request({ path: '/api/admin/x' })).allowed, false);
});

test('path templates: {*} is one segment, {**} the rest', () => {
  const re = (t: string) => pathTemplate(t);
  assert.ok(re('/foo/{*}').test('/foo/bar'));
  assert.ok(!re('/foo/{*}').test('/foo/bar/baz'));
  assert.ok(!re('/foo/{*}').test('/foo/'));
  assert.ok(re('/foo/{**}/').test('/foo/bar/'));
  assert.ok(re('/foo/{**}/').test('/foo//'));
  assert.ok(!re('/foo/{**}/').test('/foo/bar'));
  assert.ok(re('/foo/{*}/bar/{**}').test('/foo/buzz/bar/'));
  assert.ok(re('/foo/{*}/bar/{**}').test('/foo/buzz/bar/baz'));
  assert.ok(re('/{**}/path/template').test('/a/b/path/template'));
  assert.ok(!re('/path/template/{*}').test('/path/template/a.b?c'));
  assert.ok(re('/a.b/{*}').test('/a.b/x') && !re('/a.b/{*}').test('/aXb/x'), 'literals are escaped');
  assert.throws(() => re('/{**}/foo/{*}'), /must be the last operator/);
  assert.throws(() => re('/foo/{*}.txt'), /not a valid literal/);

  const allow = [policy('p', { rules: [{ to: [{ operation: { paths: ['/models/{*}/predict'] } }] }] })];
  assert.equal(decide(allow, request({ path: '/models/llm/predict' })).allowed, true);
  assert.equal(decide(allow, request({ path: '/models/llm/v2/predict' })).allowed, false);
  assert.equal(decide(allow, request({ path: '/models/llm/predict?x=1' })).allowed, true);
});

test('when: request headers (name without case, comma-separated values), presence and notValues', () => {
  const when = (values?: string[], notValues?: string[]) => [policy('p', { rules: [{ when: [{ key: 'request.headers[X-Tenant]', values, notValues }] }] })];
  assert.equal(decide(when(['acme']), request({ headers: { 'x-tenant': 'acme' } })).allowed, true);
  assert.equal(decide(when(['acme']), request({ headers: { 'x-tenant': 'other, acme' } })).allowed, true);
  assert.equal(decide(when(['acme']), request({ headers: { 'x-tenant': ['other', 'acme'] } })).allowed, true);
  assert.equal(decide(when(['acme']), request({ headers: { 'x-tenant': 'acme-corp' } })).allowed, false);
  assert.equal(decide(when(['acme*']), request({ headers: { 'x-tenant': 'acme-corp' } })).allowed, true);
  assert.equal(decide(when(['*corp']), request({ headers: { 'x-tenant': 'x,acme-corp' } })).allowed, true);
  assert.equal(decide(when(['*']), request({ headers: { 'x-tenant': '' } })).allowed, true, '"*" on a header means present');
  assert.equal(decide(when(['*'])).allowed, false);
  assert.equal(decide(when(undefined, ['blocked']), request({ headers: { 'x-tenant': 'blocked' } })).allowed, false);
  assert.equal(decide(when(undefined, ['blocked'])).allowed, true, 'absent header: notValues do not match');
});

test('when: source.ip, remote.ip, source.namespace, source.principal, destination.port, destination.ip, connection.sni', () => {
  const when = (key: string, values?: string[], notValues?: string[]) => [policy('p', { rules: [{ when: [{ key, values, notValues }] }] })];
  assert.equal(decide(when('source.ip', ['10.0.0.0/16'])).allowed, true);
  assert.equal(decide(when('source.ip', undefined, ['10.0.0.5'])).allowed, false);
  assert.equal(decide(when('remote.ip', ['10.0.0.5'])).allowed, true);
  assert.equal(decide(when('source.namespace', ['default'])).allowed, true);
  assert.equal(decide(when('source.namespace', ['default']), request({ principal: OTHER })).allowed, false);
  assert.equal(decide(when('source.principal', ['cluster.local/ns/default/sa/sleep'])).allowed, true);
  assert.equal(decide(when('source.serviceAccount', ['sleep'])).allowed, true);
  assert.equal(decide(when('source.trustDomain', ['cluster.local'])).allowed, true);
  assert.equal(decide(when('destination.port', ['8000'])).allowed, true);
  assert.equal(decide(when('destination.port', ['80'])).allowed, false);
  assert.equal(decide(when('destination.ip', ['127.0.0.0/8']), request({ destinationIp: '127.0.0.1' })).allowed, true);
  assert.equal(decide(when('destination.ip', ['127.0.0.0/8'])).allowed, false, 'unknown destination address');
  assert.equal(decide(when('connection.sni', ['*.svc.cluster.local']), request({ sni: 'httpbin.default.svc.cluster.local' })).allowed, true);
  assert.equal(decide(when('connection.sni', ['*'])).allowed, false, 'no SNI');
});

test('no RequestAuthentication in Weft: request principals and request.auth.* never match, their not* always do', () => {
  assert.equal(decide([policy('p', { rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] })]).allowed, false);
  assert.equal(decide([policy('p', { rules: [{ from: [{ source: { notRequestPrincipals: ['*'] } }] }] })]).allowed, true);
  assert.equal(decide([policy('p', { rules: [{ when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }] })]).allowed, false);
  assert.equal(decide([policy('p', { rules: [{ when: [{ key: 'request.auth.audiences', notValues: ['x'] }] }] })]).allowed, true);
});

test('a rule needs from AND to AND every when; list entries are OR-ed', () => {
  const p = policy('p', {
    rules: [
      {
        from: [{ source: { namespaces: ['other'] } }, { source: { principals: ['cluster.local/ns/default/sa/sleep'] } }],
        to: [{ operation: { methods: ['GET'], paths: ['/read*'] } }, { operation: { methods: ['POST'], paths: ['/write'] } }],
        when: [{ key: 'request.headers[x-ok]', values: ['1'] }, { key: 'source.ip', values: ['10.0.0.0/8'] }],
      },
    ],
  });
  const ok = { headers: { 'x-ok': '1' } };
  assert.equal(decide([p], request({ ...ok, path: '/read/x' })).allowed, true);
  assert.equal(decide([p], request({ ...ok, method: 'POST', path: '/write' })).allowed, true);
  assert.equal(decide([p], request({ ...ok, method: 'POST', path: '/read/x' })).allowed, false, 'fields of one operation are AND-ed');
  assert.equal(decide([p], request({ path: '/read/x' })).allowed, false, 'every when must match');
  assert.equal(decide([p], request({ ...ok, path: '/read/x', sourceIp: '192.168.0.1' })).allowed, false);
  assert.equal(decide([p], request({ ...ok, path: '/read/x', principal: 'spiffe://cluster.local/ns/default/sa/x' })).allowed, false);
  const d = decide([policy('first', { rules: [{ to: [{ operation: { paths: ['/nope'] } }] }, { from: [{ source: { principals: ['*'] } }] }] })]);
  assert.equal(d.rule, 1, 'the matching rule is reported');
});

test('TCP: HTTP-only attributes void an ALLOW rule and are dropped from a DENY rule (fail closed)', () => {
  const tcp = (over: Partial<AuthzRequest> = {}): AuthzRequest => ({ principal: SLEEP, sourceIp: '10.0.0.5', port: 5432, ...over });
  const allowGet = policy('allow-get', { rules: [{ from: [{ source: { principals: ['*'] } }], to: [{ operation: { methods: ['GET'] } }] }] });
  assert.equal(decide([allowGet], tcp()).allowed, false, 'an ALLOW rule with HTTP fields never matches TCP');
  const allowPort = policy('allow-port', { rules: [{ to: [{ operation: { ports: ['5432'] } }] }] });
  assert.equal(decide([allowGet, allowPort], tcp()).allowed, true);
  const denyAdmin = policy('deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] });
  assert.equal(decide([denyAdmin], tcp()).allowed, false, 'a DENY rule on paths denies all TCP traffic');
  const denyAdminPort = policy('deny-admin-port', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'], ports: ['8080'] } }] }] });
  assert.equal(decide([denyAdminPort], tcp()).allowed, true, 'the ports still narrow it');
  assert.equal(decide([denyAdminPort], tcp({ port: 8080 })).allowed, false);
  // Mixed from entries: one HTTP-only entry voids the whole ALLOW rule on TCP, as Istio skips generating it.
  const mixed = policy('mixed', { rules: [{ from: [{ source: { requestPrincipals: ['*'] } }, { source: { principals: ['*'] } }] }] });
  assert.equal(decide([mixed], tcp()).allowed, false);
  assert.equal(decide([mixed]).allowed, true, 'on HTTP the second entry matches');
});

test('attributes Weft cannot evaluate fail closed, with a note', () => {
  const key = 'experimental.envoy.filters.a.b[c]';
  const allow = policy('allow', { rules: [{ when: [{ key, values: ['x'] }] }] });
  const c = compileAuthz([allow], WORKLOAD);
  assert.equal(c.evaluate(request()).allowed, false);
  assert.match(c.notes[0]!, /cannot evaluate experimental\.envoy\.filters\.a\.b\[c\]/);
  const deny = policy('deny', { action: 'DENY', rules: [{ when: [{ key, values: ['x'] }] }] });
  assert.equal(decide([deny]).allowed, false);
});

test('dry-run policies are reported, never enforced', () => {
  const dry = policy('dry-deny', { action: 'DENY', rules: [{}] }, 'default', true);
  const d = decide([dry]);
  assert.equal(d.allowed, true);
  assert.deepEqual(d.dryRun, ['DENY default/dry-deny']);
  assert.deepEqual(compileAuthz([dry], WORKLOAD).policies, [{ policy: 'default/dry-deny', action: 'DENY', dryRun: true }]);
});

test('invalid values are refused at compile time', () => {
  const bad = (spec: AuthorizationPolicySpec) => () => compileAuthz([policy('bad', spec)], WORKLOAD);
  assert.throws(bad({ rules: [{ when: [{ key: 'source.color', values: ['red'] }] }] }), /unknown attribute/);
  assert.throws(bad({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }] }), /not a valid IP/);
  assert.throws(bad({ rules: [{ to: [{ operation: { ports: ['http'] } }] }] }), /bad port/);
  assert.throws(bad({ rules: [{ when: [{ key: 'request.headers', values: ['x'] }] }] }), /should have format a\[b\]/);
  assert.throws(bad({ rules: [{ to: [{ operation: { paths: ['/{**}/a/{*}'] } }] }] }), /last operator/);
  assert.throws(bad({ rules: [{ from: [{ source: { serviceAccounts: ['a/b/c'] } }] }] }), /expected/);
});

test('path tricks cannot bypass a DENY on /admin once normalised', () => {
  const deny = policy('deny-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }] });
  const authz = compileAuthz([deny], WORKLOAD);
  for (const raw of ['/admin', '//admin', '/%61dmin', '/./admin', '/x/../admin', '/admin%2Fusers', '/admin%2fusers', '/admin/', '/%2e%2e/admin', '/x/%2E%2E/admin', '\\admin', '/admin%5Cx', '///admin//x', '/admin?x=1', '/admin#frag']) {
    const n = normalizePath(raw);
    assert.ok(n.ok, raw);
    if (!n.ok) continue;
    assert.equal(authz.evaluate(request({ path: n.target })).allowed, false, `${raw} → ${n.path}`);
  }
  const nul = normalizePath('/admin%00');
  assert.equal(nul.ok, false);
});

// Every valid AuthorizationPolicy in the shared Istio corpus compiles (except CUSTOM, refused by
// design) and gives an answer that follows from its rules.
test('corpus: authz-valid.yaml policies compile and evaluate sensibly', () => {
  const file = fileURLToPath(new URL('../../../shared/corpus/istio/validation/authz-valid.yaml', import.meta.url));
  const loaded = parseText(readFileSync(file, 'utf8'), file);
  const policies = loaded.resources
    .filter((r) => r.kind === 'AuthorizationPolicy')
    .map((r) => ({ name: r.metadata.name, namespace: r.metadata.namespace, spec: r.spec as AuthorizationPolicySpec }));
  assert.ok(policies.length >= 2);
  for (const p of policies) {
    if (p.spec.action === 'CUSTOM') {
      assert.throws(() => compileAuthz([p], WORKLOAD), /not supported/);
      continue;
    }
    const c = compileAuthz([p], WORKLOAD);
    for (const req of [request(), request({ principal: '' }), { principal: '', sourceIp: '10.0.0.5', port: 80 }]) {
      const d = c.evaluate(req);
      assert.equal(typeof d.allowed, 'boolean');
      assert.ok(d.reason.length > 0);
    }
  }
  const byName = new Map(policies.map((p) => [p.name, p]));

  // "full" selects app=httpbin and needs, among much else, requestPrincipals: Weft has no JWT, so it never allows.
  const full = byName.get('full')!;
  const fullDecision = compileAuthz([full], WORKLOAD).evaluate(request({ principal: 'spiffe://principal', path: '/exact', method: 'method', host: 'exact.com', port: 80 }));
  assert.equal(fullDecision.allowed, false);
  assert.equal(compileAuthz([full], { namespace: 'default', labels: { app: 'other' } }).policies.length, 0, 'selector does not match');

  // "service-account-and-namespace-principal-split": ALLOW from sa baz/sa or sa (its own namespace), principal bar, or namespace bar.
  const split = byName.get('service-account-and-namespace-principal-split')!;
  const c = compileAuthz([split], WORKLOAD);
  assert.equal(c.evaluate(request({ principal: 'spiffe://cluster.local/ns/baz/sa/sa' })).allowed, true);
  assert.equal(c.evaluate(request({ principal: 'spiffe://cluster.local/ns/default/sa/sa' })).allowed, true);
  assert.equal(c.evaluate(request({ principal: 'spiffe://bar' })).allowed, true);
  assert.equal(c.evaluate(request({ principal: 'spiffe://cluster.local/ns/bar/sa/anyone' })).allowed, true);
  assert.equal(c.evaluate(request({ principal: SLEEP })).allowed, false);
  assert.equal(c.evaluate(request({ principal: '' })).allowed, false);
});

test('the compiled result is frozen', () => {
  const c = compileAuthz([policy('p', { rules: [{}] })], WORKLOAD);
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.policies));
});
