// `weft explain` as users run it: the split-mesh fixture and Istio's Bookinfo rules, text and JSON.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, WEFT } from './helpers/mesh.ts';

const CORPUS = fileURLToPath(new URL('../../shared/corpus/', import.meta.url));
const BOOKINFO = join(CORPUS, 'istio/bookinfo');
const SPLIT = join(FIXTURES, 'split-mesh');

const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [WEFT, 'explain', ...args]).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

interface Report {
  request: { authority: string; port: number; path: string; query: string; headers: Record<string, string>; from: { kind: string; workload: string } };
  note: string;
  virtualHost: { name: string; matchedDomain: string } | null;
  knownHosts?: Array<{ name: string; domains: string[] }>;
  routes: Array<{ name: string; verdict: string; matchedBy?: string; reasons: string[] }>;
  notOnThisProxy: Array<{ route: string; why: string }>;
  winner: string | null;
  result: {
    kind: string;
    status?: number;
    destinations?: Array<{ subset: string | null; probability: number; balancing: string; endpoints: Array<{ workload: string; address: string; weight: number }> }>;
  };
}
const json = async (args: string[]): Promise<Report> => {
  const r = await run([...args, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Report;
};

test('split mesh, no canary header: the header route is skipped with its reason, the 90/10 split wins', async () => {
  const r = await run(['-f', SPLIT, '--host', 'echo-model', '--path', '/predict']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Virtual host {2}echo-model\.default\.svc\.cluster\.local:80/);
  assert.match(r.stdout, /Host "echo-model" matched domain "echo-model"/);
  assert.match(r.stdout, /1\. default\/echo-model\/canary-testers {2}✘ no match.*\n {7}match\[0\]: header x-canary absent\n/);
  assert.match(r.stdout, /2\. default\/echo-model\/split {2}✔ matches/);
  assert.match(r.stdout, /Result {4}route default\/echo-model\/split\n/);
  assert.match(r.stdout, /^ +90 % {2}outbound\|80\|v1\|echo-model\.default\.svc\.cluster\.local {2}\(subset v1\)/m);
  assert.match(r.stdout, /^ +10 % {2}outbound\|80\|v2\|echo-model\.default\.svc\.cluster\.local {2}\(subset v2\)/m);
  assert.match(r.stdout, /balancing ROUND_ROBIN/);
  assert.match(r.stdout, /endpoint default\/echo-v1 {2}127\.0\.0\.1:0 {2}weight 1/);
  assert.match(r.stdout, /endpoints as configured; not live health/);

  const j = await json(['-f', SPLIT, '--host', 'echo-model', '--path', '/predict']);
  assert.equal(j.winner, 'default/echo-model/split');
  assert.deepEqual(
    j.routes.map((x) => [x.name, x.verdict, x.reasons]),
    [
      ['default/echo-model/canary-testers', 'no match', ['match[0]: header x-canary absent']],
      ['default/echo-model/split', 'matched', []],
    ],
  );
  assert.deepEqual(
    j.result.destinations!.map((d) => [d.subset, d.probability, d.endpoints.map((e) => e.workload)]),
    [
      ['v1', 0.9, ['echo-v1']],
      ['v2', 0.1, ['echo-v2']],
    ],
  );
  assert.equal(j.note, 'endpoints as configured; not live health');
  assert.equal(j.request.from.kind, 'edge');
});

test('split mesh: a wrong header value says expected vs actual; the right one wins the canary route', async () => {
  const [wrong, right] = await Promise.all([
    json(['-f', SPLIT, '--host', 'echo-model', '-H', 'x-canary: sometimes']),
    json(['-f', SPLIT, '--host', 'echo-model:80', '-H', 'X-Canary: always', '--from', 'caller']),
  ]);
  assert.deepEqual(wrong.routes[0].reasons, ['match[0].headers[x-canary]: exact "always" ≠ "sometimes"']);
  assert.equal(wrong.winner, 'default/echo-model/split');

  assert.equal(right.request.from.kind, 'sidecar');
  assert.equal(right.request.from.workload, 'caller');
  assert.equal(right.virtualHost?.matchedDomain, 'echo-model:80');
  assert.equal(right.winner, 'default/echo-model/canary-testers');
  assert.equal(right.routes[0].matchedBy, 'match[0]: headers[x-canary] exact "always"');
  assert.equal(right.routes[1].verdict, 'not reached');
  assert.deepEqual(
    right.result.destinations!.map((d) => [d.subset, d.probability]),
    [['v2', 1]],
  );
  const text = await run(['-f', SPLIT, '--host', 'echo-model', '-H', 'x-canary: always']);
  assert.match(text.stdout, /^ +100 % {2}outbound\|80\|v2\|/m);
});

test('Bookinfo: end-user jason goes to v2; anyone else is told why and goes to v1', async () => {
  const files = ['-f', join(BOOKINFO, 'destination-rule-all.yaml'), '-f', join(BOOKINFO, 'virtual-service-reviews-test-v2.yaml')];
  const [jason, alice] = await Promise.all([
    json([...files, '--host', 'reviews', '-H', 'end-user: jason']),
    run([...files, '--host', 'reviews', '-H', 'end-user: alice']),
  ]);
  assert.equal(jason.winner, 'default/reviews/0');
  assert.equal(jason.result.destinations![0].subset, 'v2');
  assert.equal(alice.code, 0, alice.stderr);
  assert.match(alice.stdout, /1\. default\/reviews\/0 {2}✘ no match.*\n {7}match\[0\]\.headers\[end-user\]: exact "jason" ≠ "alice"\n/);
  assert.match(alice.stdout, /Result {4}route default\/reviews\/1\n +100 % {2}outbound\|80\|v1\|reviews\.default\.svc\.cluster\.local/);
  // Bookinfo's files carry no Services, so there is no endpoint, and explain says why.
  assert.match(alice.stdout, /no endpoints: no Service or ServiceEntry defines reviews\.default\.svc\.cluster\.local → 503 UH/);
});

test('Bookinfo 80/20: the probabilities are weight / Σ weights', async () => {
  const r = await run(['-f', join(BOOKINFO, 'destination-rule-all.yaml'), '-f', join(BOOKINFO, 'virtual-service-reviews-80-20.yaml'), '--host', 'reviews']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ +80 % {2}outbound\|80\|v1\|reviews/m);
  assert.match(r.stdout, /^ +20 % {2}outbound\|80\|v2\|reviews/m);
});

test('an unknown host: 404 NR, and the hosts that would route', async () => {
  const r = await run(['-f', SPLIT, '--host', 'echo-modle']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Virtual host: none for Host "echo-modle" → 404 NR/);
  assert.match(r.stdout, /Known hosts:\n(.*\n)*  echo-model\.default\.svc\.cluster\.local:80 {2}\(echo-model, /);
  const j = await json(['-f', SPLIT, '--host', 'echo-modle']);
  assert.equal(j.virtualHost, null);
  assert.equal(j.result.kind, 'noRoute');
  assert.ok(j.knownHosts!.some((h) => h.domains.includes('echo-model')));
});

test('no route matches: 404 NR with the reason for every route; sourceLabels routes are named as not on this proxy', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-explain-'));
  await writeFile(
    join(dir, 'vs.yaml'),
    [
      'apiVersion: networking.istio.io/v1',
      'kind: VirtualService',
      'metadata: {name: llm}',
      'spec:',
      '  hosts: [llm]',
      '  http:',
      '  - name: from-client',
      '    match: [{sourceLabels: {app: client}, uri: {prefix: /admin}}]',
      '    route: [{destination: {host: llm}}]',
      '  - name: api',
      '    match: [{uri: {prefix: /api}}, {sourceLabels: {app: client}}, {queryParams: {model: {exact: big}}}]',
      '    directResponse: {status: 418}',
      '',
    ].join('\n'),
  );
  const j = await json(['-f', dir, '--host', 'llm', '--path', '/v2/x']);
  assert.equal(j.winner, null);
  assert.deepEqual(j.result, { kind: 'noRoute', status: 404, flag: 'NR', message: 'no route matches' });
  assert.deepEqual(j.routes[0].reasons, [
    'match[0].uri: prefix "/api" does not match "/v2/x"',
    'match[1]: only for other sources (sourceLabels app=client)',
    'match[2]: query parameter model absent',
  ]);
  assert.equal(j.notOnThisProxy[0].route, 'default/llm/from-client');
  const text = await run(['-f', dir, '--host', 'llm', '--path', '/api/x', '--query', 'a=1']);
  assert.match(text.stdout, /Result {4}direct response from default\/llm\/api: 418/);
});

test('configuration errors exit 1 with diagnostics; usage errors exit 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-explain-'));
  await writeFile(join(dir, 'bad.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [x]\n  http:\n  - route:\n    - destination: {host: x}\n      wieght: 3\n');
  const [bad, noHost, badFrom] = await Promise.all([
    run(['-f', dir, '--host', 'x']),
    run(['-f', SPLIT]),
    run(['-f', SPLIT, '--host', 'echo-model', '--from', 'nobody']),
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /bad\.yaml:9:7: error UNKNOWN_FIELD/);
  assert.equal(noHost.code, 2);
  assert.match(noHost.stderr, /--host HOST is required/);
  assert.equal(badFrom.code, 2);
  assert.match(badFrom.stderr, /no Workload "nobody".*default\/caller/);
});

test('security: which AuthorizationPolicy allows or denies the call, by the caller\'s principal (the demo mesh)', async () => {
  const DEMO = fileURLToPath(new URL('../src/demo/mesh/', import.meta.url));
  const call = ['-f', DEMO, '--host', 'llm-chat', '--path', '/v1/chat/completions', '--method', 'POST'];
  const [client, sentiment, admin, plaintext, badPrincipal] = await Promise.all([
    run([...call, '--from', 'demo-client']),
    json([...call, '--from', 'sentiment-v1']),
    json(['-f', DEMO, '--host', 'llm-chat', '--path', '/x/../admin', '--principal', 'cluster.local/ns/default/sa/demo-client']),
    json([...call, '--principal', 'none']),
    run([...call, '--principal', 'spiffe://cluster.local/default/x']),
  ]);
  assert.equal(client.code, 0, client.stderr);
  assert.match(client.stdout, /Security {2}\(caller's principal: spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo-client\)/);
  assert.match(client.stdout, /default\/llm-chat {2}mTLS STRICT \(istio-system\/default\) on port 80, connection mutual_tls\n {4}✔ allowed by ALLOW policy default\/llm-chat \(rule 0\)/);

  type Sec = { security: Array<{ workload: string; verdict: string; policy: string | null; reason: string; principal: string | null }> };
  const s = (r: unknown) => (r as Sec).security[0]!;
  assert.deepEqual([s(sentiment).verdict, s(sentiment).principal], ['denied', 'spiffe://cluster.local/ns/default/sa/sentiment']);
  assert.match(s(sentiment).reason, /no rule of the ALLOW policies that apply matched \(default\/llm-chat\) → 403 RBAC: access denied/);
  // The path is normalised first, as the sidecar does: /x/../admin is /admin, outside /v1/*.
  assert.equal(s(admin).verdict, 'denied');
  assert.equal(s(plaintext).verdict, 'refused');
  assert.match(s(plaintext).reason, /no certificate/);
  assert.equal(badPrincipal.code, 2);
  assert.match(badPrincipal.stderr, /--principal takes a SPIFFE ID/);
});
