// VirtualService: Istio's rules (conflicts, weights, regexes, headers, retries, hosts) and what Weft ignores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualServiceSpec } from './types.ts';
import { errorKeys, errors, load, virtualService, warnings, yaml } from './testutil.ts';

const vs = (spec: string) => load(virtualService(spec));
const route = 'route:\n  - destination: {host: r}';

test('a plain canary is valid and loads with its spec in camelCase', () => {
  const result = vs(yaml`
    hosts: [reviews]
    http:
    - name: canary
      match:
      - uri: {prefix: /api}
        headers: {x-user: {exact: jason}}
        ignore_uri_case: true
      route:
      - destination: {host: reviews, subset: v1, port: {number: 9080}}
        weight: 90
      - destination: {host: reviews, subset: v2}
        weight: 10
      timeout: 2s
  `);
  assert.deepEqual(result.diagnostics, []);
  const spec = result.resources[0]!.spec as VirtualServiceSpec;
  assert.equal(spec.http![0]!.match![0]!.ignoreUriCase, true);
  assert.equal(spec.http![0]!.route![1]!.weight, 10);
});

test('conflicting route actions are rejected', () => {
  const redirect = 'redirect: {uri: /new}';
  const direct = 'directResponse: {status: 503}';
  const cases: Array<[string, string[]]> = [
    [`- ${route}\n  ${redirect}`, ['CONFLICT spec.http[0].redirect']],
    [`- ${route}\n  ${direct}`, ['CONFLICT spec.http[0].directResponse']],
    [`- ${redirect}\n  fault: {abort: {httpStatus: 500, percentage: {value: 1}}}`, ['CONFLICT spec.http[0].fault']],
    [`- ${redirect}\n  rewrite: {uri: /x}`, ['CONFLICT spec.http[0].rewrite']],
    [`- ${redirect}\n  ${direct}`, ['CONFLICT spec.http[0].directResponse']],
    [`- ${route}\n  mirror: {host: m}\n  mirrors: [{destination: {host: m2}}]`, ['CONFLICT spec.http[0].mirrors']],
    ['- name: nothing\n  timeout: 1s', ['REQUIRED spec.http[0]']],
  ];
  for (const [http, expected] of cases) {
    assert.deepEqual(errorKeys(vs(`hosts: [r]\nhttp:\n${http}`)), expected, http);
  }
});

test('a route may delegate instead, but not delegate and route', () => {
  assert.deepEqual(errorKeys(vs('hosts: [r]\nhttp:\n- delegate: {name: d, namespace: x}')), []);
  assert.deepEqual(errorKeys(vs(`hosts: [r]\nhttp:\n- delegate: {name: d}\n  ${route}`)), ['CONFLICT spec.http[0].route']);
});

test('weights are relative: one destination any weight; several need a non-zero sum; none negative', () => {
  const two = (a: number, b: number) => `hosts: [r]\nhttp:\n- route:\n  - destination: {host: r, subset: a}\n    weight: ${a}\n  - destination: {host: r, subset: b}\n    weight: ${b}`;
  assert.deepEqual(errorKeys(vs(two(1, 3))), []);
  assert.deepEqual(errorKeys(vs(two(0, 5))), []);
  assert.deepEqual(errorKeys(vs(two(0, 0))), ['INVALID_VALUE spec.http[0].route']);
  assert.deepEqual(errorKeys(vs(two(-1, 5))), ['INVALID_VALUE spec.http[0].route[0].weight']);
  assert.deepEqual(errorKeys(vs('hosts: [r]\nhttp:\n- route:\n  - destination: {host: r}\n    weight: 0')), []);
  assert.deepEqual(errorKeys(vs('hosts: [r]\nhttp:\n- route:\n  - destination: {host: r}\n    weight: 7')), []);
});

test('regexes must be RE2: lookarounds, backreferences and possessive repeats are rejected where they appear', () => {
  const match = (m: string) => vs(`hosts: [r]\nhttp:\n- match:\n  - ${m}\n  ${route}`);
  assert.deepEqual(errorKeys(match('uri: {regex: "/v[0-9]+/.*"}')), []);
  assert.deepEqual(errorKeys(match('uri: {regex: "/(?!admin).*"}')), ['INVALID_VALUE spec.http[0].match[0].uri.regex']);
  assert.deepEqual(errorKeys(match('headers: {cookie: {regex: "(a)\\\\1"}}')), ['INVALID_VALUE spec.http[0].match[0].headers.cookie.regex']);
  assert.deepEqual(errorKeys(match('queryParams: {q: {regex: "a++"}}')), ['INVALID_VALUE spec.http[0].match[0].queryParams.q.regex']);
  assert.deepEqual(errorKeys(match('authority: {regex: "(?<=x)y"}')), ['INVALID_VALUE spec.http[0].match[0].authority.regex']);
  const message = errors(match('uri: {regex: "/(?=a)"}'))[0]!.message;
  assert.match(message, /lookahead .* not supported by RE2.*RE2 syntax/);
  // withoutHeaders: {regex: "*"} is Istio's "header absent", not a regex.
  assert.deepEqual(errorKeys(match('withoutHeaders: {x-a: {regex: "*"}}')), []);
  // Empty prefixes: fine for uri, not for headers.
  assert.deepEqual(errorKeys(match('uri: {prefix: ""}')), []);
  assert.deepEqual(errorKeys(match('headers: {x-a: {prefix: ""}}')), ['INVALID_VALUE spec.http[0].match[0].headers.x-a.prefix']);
  // A StringMatch takes one of exact, prefix, regex.
  assert.deepEqual(errorKeys(match('uri: {exact: /a, prefix: /b}')), ['CONFLICT spec.http[0].match[0].uri.prefix']);
});

test('header names follow Istio: tokens, pseudo-headers, JWT claims only on gateways; lowercased in the spec', () => {
  const match = (m: string, gateways = '') => vs(`hosts: [r.example.com]\n${gateways}http:\n- match:\n  - ${m}\n  ${route}`);
  assert.deepEqual(errorKeys(match('headers: {"bad header": {exact: x}}')), ['INVALID_VALUE spec.http[0].match[0].headers["bad header"]']);
  assert.deepEqual(errorKeys(match('headers: {":authority": {exact: x}}')), []);
  assert.deepEqual(errorKeys(match('headers: {"@request.auth.claims.sub": {exact: x}}')), ['INVALID_VALUE spec.http[0].match[0].headers["@request.auth.claims.sub"]']);
  assert.deepEqual(errorKeys(match('headers: {"@request.auth.claims.sub": {exact: x}}', 'gateways: [istio-system/ingress]\n')), []);
  const result = match('headers: {End-User: {exact: jason}, X-B: {}}');
  assert.deepEqual(errorKeys(result), []);
  assert.deepEqual((result.resources[0]!.spec as VirtualServiceSpec).http![0]!.match![0]!.headers, { 'end-user': { exact: 'jason' }, 'x-b': {} });
  assert.deepEqual(errorKeys(match('headers: {X-A: {exact: a}, x-a: {exact: b}}')), ['DUPLICATE spec.http[0].match[0].headers.x-a']);
});

test('header operations: no pseudo-headers except the authority on requests, valid values', () => {
  const ops = (h: string) => vs(`hosts: [r]\nhttp:\n- ${route}\n  headers:\n    ${h}`);
  assert.deepEqual(errorKeys(ops('request: {set: {x-a: "1", ":authority": new.host}}')), []);
  assert.deepEqual(errorKeys(ops('request: {set: {":path": /x}}')), ['INVALID_VALUE spec.http[0].headers.request.set[":path"]']);
  assert.deepEqual(errorKeys(ops('response: {remove: [host]}')), ['INVALID_VALUE spec.http[0].headers.response.remove[0]']);
  assert.deepEqual(errorKeys(ops('request: {add: {x-a: "%UNCLOSED"}}')), ['INVALID_VALUE spec.http[0].headers.request.add.x-a']);
  assert.deepEqual(errorKeys(ops('request: {add: {x-a: "100%% %HOSTNAME% %REQ(:path)%"}}')), []);
  assert.deepEqual(errorKeys(ops('request: {set: {host: a, ":authority": b}}')), ['CONFLICT spec.http[0].headers.request.set[":authority"]']);
});

test('retries: attempts, Envoy retryOn policies or status codes, durations', () => {
  const retries = (r: string) => vs(`hosts: [r]\nhttp:\n- ${route}\n  retries: ${r}`);
  assert.deepEqual(errorKeys(retries('{attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure,503,unavailable"}')), []);
  assert.deepEqual(errorKeys(retries('{attempts: 3, retryOn: "5xx,sometimes"}')), ['INVALID_VALUE spec.http[0].retries.retryOn']);
  assert.deepEqual(errorKeys(retries('{attempts: 3, retryOn: "999"}')), ['INVALID_VALUE spec.http[0].retries.retryOn']);
  assert.deepEqual(errorKeys(retries('{attempts: -1}')), ['INVALID_VALUE spec.http[0].retries.attempts']);
  assert.deepEqual(errorKeys(retries('{retryOn: 5xx}')), ['INVALID_VALUE spec.http[0].retries.attempts']);
  assert.deepEqual(errorKeys(retries('{attempts: 2, perTryTimeout: 0.5ms}')), ['INVALID_VALUE spec.http[0].retries.perTryTimeout']);
});

test('timeouts, fault percentages, redirects and direct responses follow Istio ranges', () => {
  const http = (h: string) => errorKeys(vs(`hosts: [r]\nhttp:\n- ${h}`));
  assert.deepEqual(http(`${route}\n  timeout: 10`), ['INVALID_TYPE spec.http[0].timeout']);
  assert.deepEqual(http(`${route}\n  timeout: "10"`), ['INVALID_VALUE spec.http[0].timeout']);
  assert.deepEqual(http(`${route}\n  fault: {delay: {fixedDelay: 5s, percentage: {value: 120}}}`), ['INVALID_VALUE spec.http[0].fault.delay.percentage.value']);
  assert.deepEqual(http(`${route}\n  fault: {abort: {httpStatus: 700}}`), ['INVALID_VALUE spec.http[0].fault.abort.httpStatus']);
  assert.deepEqual(http(`${route}\n  fault: {}`), ['REQUIRED spec.http[0].fault']);
  assert.deepEqual(http('redirect: {uri: /x, redirectCode: 200}'), ['INVALID_VALUE spec.http[0].redirect.redirectCode']);
  assert.deepEqual(http('redirect: {}'), ['REQUIRED spec.http[0].redirect']);
  assert.deepEqual(http('directResponse: {status: 99}'), ['INVALID_VALUE spec.http[0].directResponse.status']);
  assert.deepEqual(http('directResponse: {body: {string: x}}'), ['REQUIRED spec.http[0].directResponse.status']);
  assert.deepEqual(http(`${route}\n  mirrorPercentage: {value: 101}`), ['INVALID_VALUE spec.http[0].mirrorPercentage.value']);
  assert.deepEqual(http(`${route}\n  corsPolicy: {allowMethods: [GET, FETCH], maxAge: 1.5s}`), [
    'INVALID_VALUE spec.http[0].corsPolicy.allowMethods[1]',
    'INVALID_VALUE spec.http[0].corsPolicy.maxAge',
  ]);
  assert.deepEqual(http(`${route}\n  rewrite: {uri: /a, uriRegexRewrite: {match: x, rewrite: y}}`), ['CONFLICT spec.http[0].rewrite.uriRegexRewrite']);
});

test('hosts: required for a root VirtualService, no * on the mesh, no duplicates', () => {
  assert.deepEqual(errorKeys(vs(`hosts: ["*"]\nhttp:\n- ${route}`)), ['INVALID_VALUE spec.hosts[0]']);
  assert.deepEqual(errorKeys(vs(`hosts: ["*"]\ngateways: [ingress]\nhttp:\n- ${route}`)), []);
  assert.deepEqual(errorKeys(vs(`hosts: [a.example.com, "*.example.com"]\nhttp:\n- ${route}`)), ['DUPLICATE spec.hosts[1]']);
  assert.deepEqual(errorKeys(vs(`hosts: [bad_host]\nhttp:\n- ${route}`)), ['INVALID_VALUE spec.hosts[0]']);
  assert.deepEqual(errorKeys(vs('hosts: [r]')), ['REQUIRED spec']);
  // Without hosts it is a delegate VirtualService: valid Istio, used through a root's `delegate`.
  const delegate = vs(`http:\n- ${route}`);
  assert.deepEqual(errorKeys(delegate), []);
  assert.deepEqual(warnings(delegate), []);
  assert.deepEqual(errorKeys(vs(`gateways: [g]\nhttp:\n- ${route}`)), ['INVALID_VALUE spec.gateways']);
});

test('gateway names: mesh, namespace/name, or a plain name', () => {
  assert.deepEqual(errorKeys(vs(`hosts: [r]\ngateways: [mesh, istio-system/ingress, my-gw]\nhttp:\n- ${route}`)), []);
  assert.deepEqual(errorKeys(vs(`hosts: [r]\ngateways: ["a/b/c"]\nhttp:\n- ${route}`)), ['INVALID_VALUE spec.gateways[0]']);
});

test('tcp and tls routes are validated (and reported as not implemented)', () => {
  const tls = vs(yaml`
    hosts: [api.example.com]
    tls:
    - match:
      - port: 443
        sniHosts: [api.example.com]
      route:
      - destination: {host: api.example.com}
    tcp:
    - match:
      - port: 27017
      route:
      - destination: {host: mongo, port: {number: 27017}}
  `);
  assert.deepEqual(errorKeys(tls), []);
  assert.deepEqual(warnings(tls).map((d) => `${d.code} ${d.path}`), ['NOT_IMPLEMENTED spec.tls', 'NOT_IMPLEMENTED spec.tcp']);
  assert.deepEqual(errorKeys(vs('hosts: [a.example.com]\ntls:\n- match: [{sniHosts: [b.example.com]}]\n  route: [{destination: {host: b}}]')), ['INVALID_VALUE spec.tls[0].match[0].sniHosts[0]']);
  assert.deepEqual(errorKeys(vs('hosts: [a]\ntcp:\n- match: [{port: 1}]')), ['REQUIRED spec.tcp[0].route']);
});

test('routes after a catch-all route are reported as unreachable', () => {
  const result = vs(`hosts: [r]\nhttp:\n- ${route}\n- match: [{uri: {prefix: /a}}]\n  ${route}`);
  assert.deepEqual(warnings(result).map((d) => `${d.code} ${d.path}`), ['UNREACHABLE_ROUTE spec.http[1]']);
  const dup = vs(`hosts: [r]\nhttp:\n- match: [{uri: {prefix: /a}}]\n  ${route}\n- match: [{uri: {prefix: /a}, name: again}]\n  ${route}`);
  assert.deepEqual(warnings(dup).map((d) => `${d.code} ${d.path}`), ['UNREACHABLE_ROUTE spec.http[1].match[0]']);
});

test('fields Weft does not implement yet produce one NOT_IMPLEMENTED warning each, at the field', () => {
  const result = vs(yaml`
    hosts: [r]
    gateways: [mesh, istio-system/ingress]
    http:
    - match:
      - sourceLabels: {app: web}
        gateways: [mesh]
      fault: {delay: {fixedDelay: 1s, percentage: {value: 1}}}
      rewrite: {uri: /v2}
      retries: {attempts: 2, retryRemoteLocalities: true}
      mirror: {host: shadow}
      corsPolicy: {allowOrigins: [{exact: "https://a"}]}
      headers: {request: {set: {x-a: b}}}
      route:
      - destination: {host: r}
        headers: {response: {remove: [x-b]}}
      timeout: 3s
    - directResponse: {status: 404}
  `);
  assert.deepEqual(errorKeys(result), []);
  // fault, rewrite, retries, mirror, corsPolicy and headers are implemented; only these parts are not.
  // Binding to a gateway is implemented (the edge serves Gateways); analyze checks the gateway exists.
  assert.deepEqual(warnings(result).map((d) => `${d.code} ${d.path}`), [
    'NOT_IMPLEMENTED spec.http[0].retries.retryRemoteLocalities',
  ]);
  assert.match(warnings(result)[0]!.message, /spec\.http\[0\]\.retries\.retryRemoteLocalities: valid Istio but not implemented by Weft yet; it will be ignored/);
});

test('snake_case field names are accepted throughout a VirtualService', () => {
  const result = vs(yaml`
    hosts: [r]
    http:
    - match:
      - without_headers: {x-debug: {}}
        query_params: {v: {exact: "2"}}
      direct_response: {status: 200, body: {string: ok}}
  `);
  assert.deepEqual(errorKeys(result), []);
  const http = (result.resources[0]!.spec as VirtualServiceSpec).http![0]!;
  assert.deepEqual(http.directResponse, { status: 200, body: { string: 'ok' } });
  assert.deepEqual(http.match![0]!.queryParams, { v: { exact: '2' } });
});
