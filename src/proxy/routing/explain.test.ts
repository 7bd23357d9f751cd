import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRoute, findRoute, type RequestView } from './match.ts';
import { explainMatch, explainRoute, simulatedRequest } from './explain.ts';
import type { MatchConfig, RouteConfig } from '../../wire/snapshot.ts';

function req(p: Partial<Omit<RequestView, 'header'>> & { headers?: Record<string, string> } = {}): RequestView {
  return simulatedRequest({
    method: p.method ?? 'GET',
    path: p.path ?? '/',
    query: p.query ?? '',
    scheme: p.scheme,
    authority: p.authority ?? 'reviews',
    port: p.port ?? 80,
    headers: p.headers ?? {},
  });
}

function route(name: string, match: MatchConfig[]): RouteConfig {
  return { name, match, action: { kind: 'route', destinations: [{ cluster: 'c', weight: 1 }] } };
}

// Every field kind, alone and combined, so the table exercises each single-field split.
const routes: RouteConfig[] = [
  route('user', [{ headers: [{ name: 'x-user', match: { exact: 'jason' } }] }]),
  route('canary', [{ headers: [{ name: 'x-canary' }] }]),
  route('api-or-health', [{ uri: { prefix: '/api' }, method: { exact: 'POST' } }, { uri: { exact: '/health' } }]),
  route('models', [{ uri: { regex: '/v[0-9]+/models' } }]),
  route('ci', [{ uri: { prefix: '/Predict' }, ignoreUriCase: true }]),
  route('ci-regex', [{ uri: { regex: '/Chat' }, ignoreUriCase: true }]),
  route('not-beta', [{ uri: { prefix: '/tier' }, withoutHeaders: [{ name: 'x-tier', match: { prefix: 'be' } }] }]),
  route('no-debug', [{ uri: { prefix: '/debug' }, withoutHeaders: [{ name: 'x-debug' }] }]),
  route('query', [{ queryParams: [{ name: 'model', match: { exact: 'big' } }] }]),
  route('query-regex', [{ queryParams: [{ name: 'm', match: { regex: 'gpt-[0-9]' } }, { name: 'stream' }] }]),
  route('port', [{ port: 9080, uri: { prefix: '/p' } }]),
  route('authority', [{ authority: { prefix: 'llm' }, scheme: { exact: 'https' } }]),
  route('hdr-regex', [{ headers: [{ name: 'x-ver', match: { regex: 'v[12]' } }, { name: 'x-gpu', match: { prefix: 'a100' } }] }]),
  route('method', [{ method: { regex: 'PUT|PATCH' } }]),
  route('empty-item', [{ uri: { exact: '/never' } }, {}]),
];
const routesWithoutCatchAll = routes.slice(0, -1);

const requests: RequestView[] = [
  req(),
  req({ headers: { 'x-user': 'jason' } }),
  req({ headers: { 'x-user': 'alice' } }),
  req({ headers: { 'x-canary': '' } }),
  req({ path: '/api/x', method: 'POST' }),
  req({ path: '/api/x', method: 'GET' }),
  req({ path: '/apiary', method: 'POST' }),
  req({ path: '/health' }),
  req({ path: '/v2/models' }),
  req({ path: '/x/v2/models' }),
  req({ path: '/PREDICT/now' }),
  req({ path: '/chat' }),
  req({ path: '/Chat' }),
  req({ path: '/tier', headers: { 'x-tier': 'beta' } }),
  req({ path: '/tier', headers: { 'x-tier': 'gold' } }),
  req({ path: '/tier' }),
  req({ path: '/debug', headers: { 'x-debug': '1' } }),
  req({ path: '/debug' }),
  req({ query: 'a=1&model=big' }),
  req({ query: 'model=small' }),
  req({ query: 'm=gpt-4&stream=1' }),
  req({ query: 'm=gpt-4' }),
  req({ query: 'm=llama&stream' }),
  req({ path: '/p', port: 9080 }),
  req({ path: '/p', port: 80 }),
  req({ authority: 'llm-chat', scheme: 'https' }),
  req({ authority: 'llm-chat', scheme: 'http' }),
  req({ headers: { 'x-ver': 'v1', 'x-gpu': 'a100-80g' } }),
  req({ headers: { 'x-ver': 'v3', 'x-gpu': 'h100' } }),
  req({ headers: { 'x-ver': 'v2' } }),
  req({ method: 'PATCH' }),
  req({ method: 'DELETE' }),
];

for (const table of [routes, routesWithoutCatchAll]) {
  test(`explain's verdict is findRoute's, over every request (${table.length} routes)`, () => {
    const compiled = table.map(compileRoute);
    for (const r of requests) {
      const want = findRoute(compiled, r)?.config.name;
      const got = table.find((rt) => explainRoute(rt, r).matched)?.name;
      assert.equal(got, want, `${r.method} ${r.path}?${r.query} headers`);
    }
  });
}

test('a match item fails exactly when explain finds a failing field (the single-field split is exact)', () => {
  for (const rt of routes)
    rt.match.forEach((m, i) => {
      for (const r of requests) {
        const e = explainMatch(m, r, `match[${i}]`);
        assert.equal(e.reasons.length === 0, e.matched, `${rt.name} match[${i}] on ${r.method} ${r.path}?${r.query}: ${e.reasons}`);
      }
    });
});

test('a route that did not match gives a reason per failing field, never a bare "does not match"', () => {
  for (const rt of routes)
    for (const r of requests) {
      const e = explainRoute(rt, r);
      if (e.matched) assert.deepEqual(e.reasons, []);
      else {
        assert.ok(e.reasons.length >= rt.match.length, rt.name);
        for (const why of e.reasons) assert.doesNotMatch(why, /: does not match$/);
      }
    }
});

const byName = (n: string) => routes.find((r) => r.name === n)!;
const reasons: Array<[string, string, RequestView, string[]]> = [
  ['header value differs', 'user', req({ headers: { 'x-user': 'alice' } }), ['match[0].headers[x-user]: exact "jason" ≠ "alice"']],
  ['header absent', 'user', req(), ['match[0]: header x-user absent']],
  [
    'OR-ed items: each item says why',
    'api-or-health',
    req({ path: '/v2/x', method: 'GET' }),
    ['match[0].uri: prefix "/api" does not match "/v2/x"', 'match[0].method: exact "POST" ≠ "GET"', 'match[1].uri: exact "/health" ≠ "/v2/x"'],
  ],
  ['regex is anchored', 'models', req({ path: '/x/v2/models' }), ['match[0].uri: regex "/v[0-9]+/models" does not match "/x/v2/models"']],
  ['ignoreUriCase is mentioned for prefix', 'ci', req({ path: '/other' }), ['match[0].uri: prefix "/Predict" does not match "/other" (ignoring case)']],
  ['ignoreUriCase does not apply to regex', 'ci-regex', req({ path: '/chat' }), ['match[0].uri: regex "/Chat" does not match "/chat"']],
  [
    'withoutHeaders with a value',
    'not-beta',
    req({ path: '/tier', headers: { 'x-tier': 'beta' } }),
    ['match[0].withoutHeaders[x-tier]: prefix "be" matches "beta", and must not'],
  ],
  [
    'withoutHeaders, presence only',
    'no-debug',
    req({ path: '/debug', headers: { 'x-debug': '1' } }),
    ['match[0].withoutHeaders[x-debug]: header present ("1"), and must be absent'],
  ],
  ['query parameter differs', 'query', req({ query: 'model=small' }), ['match[0].queryParams[model]: exact "big" ≠ "small"']],
  [
    'query parameters: regex and presence',
    'query-regex',
    req({ query: 'm=llama' }),
    ['match[0].queryParams[m]: regex "gpt-[0-9]" does not match "llama"', 'match[0]: query parameter stream absent'],
  ],
  ['port', 'port', req({ path: '/p', port: 80 }), ['match[0].port: 9080 ≠ 80']],
  [
    'authority and scheme',
    'authority',
    req({ authority: 'reviews', scheme: 'http' }),
    ['match[0].scheme: exact "https" ≠ "http"', 'match[0].authority: prefix "llm" does not match "reviews"'],
  ],
  ['method regex', 'method', req({ method: 'DELETE' }), ['match[0].method: regex "PUT|PATCH" does not match "DELETE"']],
];
for (const [name, routeName, r, want] of reasons) {
  test(`reason: ${name}`, () => {
    assert.deepEqual(explainRoute(byName(routeName), r), { matched: false, reasons: want });
  });
}

test('a matched route says which item matched, or that it has no conditions', () => {
  assert.deepEqual(explainRoute(byName('api-or-health'), req({ path: '/health' })), {
    matched: true,
    reasons: [],
    matchedBy: 'match[1]: uri exact "/health"',
  });
  assert.equal(
    explainRoute(byName('not-beta'), req({ path: '/tier' })).matchedBy,
    'match[0]: uri prefix "/tier", withoutHeaders[x-tier] prefix "be"',
  );
  assert.equal(explainRoute(byName('empty-item'), req()).matchedBy, 'match[1] (no conditions)');
  assert.deepEqual(explainRoute(route('all', []), req()), {
    matched: true,
    reasons: [],
    matchedBy: 'no conditions (matches every request)',
  });
});

test("matchIndex keeps the VirtualService's numbering when translation left items out", () => {
  const r = route('some', [{ uri: { exact: '/a' } }, { uri: { exact: '/b' } }]);
  assert.deepEqual(explainRoute(r, req({ path: '/c' }), { matchIndex: [1, 3] }).reasons, [
    'match[1].uri: exact "/a" ≠ "/c"',
    'match[3].uri: exact "/b" ≠ "/c"',
  ]);
  assert.equal(explainRoute(r, req({ path: '/b' }), { matchIndex: [1, 3] }).matchedBy, 'match[3]: uri exact "/b"');
});

test('simulatedRequest answers host and :authority with the authority, other names case-insensitively', () => {
  const r = simulatedRequest({ method: 'GET', authority: 'echo:80', port: 80, path: '/', query: '', headers: { 'X-Canary': 'always' } });
  assert.equal(r.header('host'), 'echo:80');
  assert.equal(r.header(':authority'), 'echo:80');
  assert.equal(r.header('x-canary'), 'always');
  assert.equal(r.scheme, 'http');
});
