import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRoute, findRoute, findRouteMatch, type RequestView } from './match.ts';
import type { RouteConfig, MatchConfig } from '../../wire/snapshot.ts';

function req(p: Partial<Omit<RequestView, 'header'>> & { headers?: Record<string, string> } = {}): RequestView {
  const headers = p.headers ?? {};
  return {
    method: p.method ?? 'GET',
    path: p.path ?? '/',
    query: p.query ?? '',
    scheme: p.scheme ?? 'http',
    authority: p.authority ?? 'reviews',
    port: p.port ?? 80,
    header: (n) => headers[n],
  };
}

function route(name: string, match: MatchConfig[]): RouteConfig {
  return { name, match, action: { kind: 'route', destinations: [{ cluster: 'c', weight: 1 }] } };
}

const table = [
  route('jason', [{ headers: [{ name: 'end-user', match: { exact: 'jason' } }] }]),
  route('api', [{ uri: { prefix: '/api' }, method: { exact: 'POST' } }, { uri: { exact: '/health' } }]),
  route('regex', [{ uri: { regex: '/v[0-9]+/models' } }]),
  route('default', []),
].map(compileRoute);

const cases: Array<[string, RequestView, string]> = [
  ['header exact match wins first', req({ path: '/api', method: 'POST', headers: { 'end-user': 'jason' } }), 'jason'],
  ['header value differs', req({ headers: { 'end-user': 'json' } }), 'default'],
  ['prefix AND method', req({ path: '/api/x', method: 'POST' }), 'api'],
  ['prefix is a raw string prefix', req({ path: '/apiary', method: 'POST' }), 'api'],
  ['prefix but wrong method', req({ path: '/api/x', method: 'GET' }), 'default'],
  ['second match item is OR-ed', req({ path: '/health' }), 'api'],
  ['regex matches the whole path', req({ path: '/v2/models' }), 'regex'],
  ['regex is anchored (no substring match)', req({ path: '/x/v2/models' }), 'default'],
  ['route without match catches all', req({ path: '/anything' }), 'default'],
];

for (const [name, r, want] of cases) {
  test(`findRoute: ${name}`, () => {
    assert.equal(findRoute(table, r)?.config.name, want);
  });
}

test('no route matches → undefined (the pipeline answers 404 NR)', () => {
  const only = [compileRoute(route('only', [{ uri: { exact: '/a' } }]))];
  assert.equal(findRoute(only, req({ path: '/b' })), undefined);
});

test('header present ({}) and withoutHeaders', () => {
  const t = [
    compileRoute(route('present', [{ headers: [{ name: 'x-canary' }] }])),
    compileRoute(route('not-beta', [{ withoutHeaders: [{ name: 'x-tier', match: { exact: 'beta' } }] }])),
    compileRoute(route('rest', [])),
  ];
  assert.equal(findRoute(t, req({ headers: { 'x-canary': '' } }))?.config.name, 'present');
  assert.equal(findRoute(t, req({ headers: { 'x-tier': 'gold' } }))?.config.name, 'not-beta');
  assert.equal(findRoute(t, req({}))?.config.name, 'not-beta');
  assert.equal(findRoute(t, req({ headers: { 'x-tier': 'beta' } }))?.config.name, 'rest');
});

test('ignoreUriCase applies to exact and prefix', () => {
  const t = [compileRoute(route('ci', [{ uri: { prefix: '/Predict' }, ignoreUriCase: true }]))];
  assert.equal(findRoute(t, req({ path: '/PREDICT/x' }))?.config.name, 'ci');
  const cs = [compileRoute(route('cs', [{ uri: { prefix: '/Predict' } }]))];
  assert.equal(findRoute(cs, req({ path: '/predict' })), undefined);
});

test('queryParams, port and authority', () => {
  const t = [
    compileRoute(route('q', [{ queryParams: [{ name: 'model', match: { exact: 'big' } }] }])),
    compileRoute(route('port', [{ port: 9080 }])),
    compileRoute(route('auth', [{ authority: { prefix: 'llm' } }])),
  ];
  assert.equal(findRoute(t, req({ query: 'a=1&model=big' }))?.config.name, 'q');
  assert.equal(findRoute(t, req({ query: 'model=small', port: 9080 }))?.config.name, 'port');
  assert.equal(findRoute(t, req({ authority: 'llm-chat' }))?.config.name, 'auth');
  assert.equal(findRoute(t, req({ authority: 'reviews' })), undefined);
});

test('a regex JavaScript cannot compile throws at compile time (NACK), not per request', () => {
  assert.throws(() => compileRoute(route('bad', [{ uri: { regex: '(unclosed' } }])));
});

test('regex is RE2: inline flags and RE2-only escapes work, lookarounds are refused', () => {
  const t = [compileRoute(route('ci', [{ uri: { regex: '(?i)/v\\x{31}/[[:alpha:]]+' } }]))];
  assert.equal(findRoute(t, req({ path: '/V1/Models' }))?.config.name, 'ci');
  assert.equal(findRoute(t, req({ path: '/v1/models2' })), undefined);
  assert.throws(() => compileRoute(route('look', [{ uri: { regex: '/(?=a)' } }])));
});

test('the route index finds exactly what a scan finds, in first-match order', () => {
  // Many routes so the index is used: pinned exact/prefix routes, unpinned ones, overlaps, order.
  const configs: RouteConfig[] = [];
  for (let i = 0; i < 40; i++) configs.push(route(`exact-${i}`, [{ uri: { exact: `/m/${i}` } }]));
  configs.push(route('method-only', [{ method: { exact: 'DELETE' } }]));
  for (let i = 0; i < 40; i++) configs.push(route(`prefix-${i}`, [{ uri: { prefix: `/p/${i}` } }, { uri: { exact: `/alt/${i}` } }]));
  configs.push(route('ci', [{ uri: { prefix: '/CASE' }, ignoreUriCase: true }]));
  configs.push(route('short-prefix', [{ uri: { prefix: '/p' } }]));
  configs.push(route('regex', [{ uri: { regex: '/r/[0-9]+' } }]));
  configs.push(route('catch-all', []));
  const table = configs.map(compileRoute);
  const paths = ['/m/3', '/m/39', '/m/40', '/p/1', '/p/10/x', '/p/', '/p', '/alt/7', '/case/x', '/r/12', '/', '/zzz'];
  for (const path of paths)
    for (const method of ['GET', 'DELETE']) {
      const r = req({ path, method });
      const scan = findRoute(table, r)?.config.name;
      assert.equal(findRouteMatch(table, r)?.route.config.name, scan, `${method} ${path}`);
    }
  assert.equal(findRouteMatch(table, req({ path: '/p/10/x' }))?.route.config.name, 'prefix-1', 'first match wins, not longest');
});
