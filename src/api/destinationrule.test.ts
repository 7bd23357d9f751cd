// DestinationRule: load balancer one-ofs, warmup, subsets, traffic policy rules, and what Weft ignores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DestinationRuleSpec } from './types.ts';
import { destinationRule, errorKeys, load, warnings, yaml } from './testutil.ts';

const dr = (spec: string) => load(destinationRule(spec));
const lb = (lbBody: string) => dr(`host: r\ntrafficPolicy:\n  loadBalancer: ${lbBody}`);

test('implemented load balancing loads without warnings', () => {
  for (const body of [
    '{simple: ROUND_ROBIN}',
    '{simple: LEAST_REQUEST}',
    '{simple: RANDOM}',
    '{simple: LEAST_CONN}',
    '{consistentHash: {httpHeaderName: x-user}}',
    '{consistentHash: {httpCookie: {name: s, ttl: 0s}, ringHash: {minimumRingSize: 1024}}}',
    '{consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}',
    '{consistentHash: {httpQueryParameterName: u}}',
    '{simple: ROUND_ROBIN, warmup: {duration: 60s, minimumPercent: 5, aggression: 2}}',
    '{warmup: {duration: 60s}}',
  ]) {
    const result = lb(body);
    assert.deepEqual(result.diagnostics, [], body);
  }
});

test('simple and consistentHash are one-of; so are the hash keys and the hash algorithms', () => {
  assert.deepEqual(errorKeys(lb('{simple: RANDOM, consistentHash: {useSourceIp: true}}')), ['CONFLICT spec.trafficPolicy.loadBalancer.consistentHash']);
  assert.deepEqual(errorKeys(lb('{consistentHash: {useSourceIp: true, httpHeaderName: x}}')), ['CONFLICT spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName']);
  assert.deepEqual(errorKeys(lb('{consistentHash: {useSourceIp: true, ringHash: {}, maglev: {tableSize: 7}}}')), ['CONFLICT spec.trafficPolicy.loadBalancer.consistentHash.maglev']);
  assert.deepEqual(errorKeys(lb('{simple: FASTEST}')), ['INVALID_VALUE spec.trafficPolicy.loadBalancer.simple']);
});

test('maglev table sizes must be prime and below 5000011; cookies need a name', () => {
  assert.deepEqual(errorKeys(lb('{consistentHash: {useSourceIp: true, maglev: {tableSize: 65536}}}')), ['INVALID_VALUE spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize']);
  assert.deepEqual(errorKeys(lb('{consistentHash: {useSourceIp: true, maglev: {tableSize: 5000011}}}')), ['INVALID_VALUE spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize']);
  assert.deepEqual(errorKeys(lb('{consistentHash: {httpCookie: {ttl: 10s}}}')), ['REQUIRED spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name']);
  assert.deepEqual(errorKeys(lb('{consistentHash: {useSourceIp: true, minimumRingSize: 5, ringHash: {minimumRingSize: 5}}}')), ['CONFLICT spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize']);
});

test('warmup: duration required, minimumPercent 0..100, aggression above 0', () => {
  assert.deepEqual(errorKeys(lb('{warmup: {duration: 60s, minimumPercent: 10, aggression: 1.5}}')), []);
  assert.deepEqual(errorKeys(lb('{warmup: {minimumPercent: 10}}')), ['REQUIRED spec.trafficPolicy.loadBalancer.warmup.duration']);
  assert.deepEqual(errorKeys(lb('{warmup: {duration: 60s, minimumPercent: 101}}')), ['INVALID_VALUE spec.trafficPolicy.loadBalancer.warmup.minimumPercent']);
  assert.deepEqual(errorKeys(lb('{warmup: {duration: 60s, aggression: 0}}')), ['INVALID_VALUE spec.trafficPolicy.loadBalancer.warmup.aggression']);
});

test('subsets: names are unique DNS labels; labels are valid', () => {
  assert.deepEqual(errorKeys(dr('host: r\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v1, labels: {version: v2}}')), ['DUPLICATE spec.subsets[1].name']);
  assert.deepEqual(errorKeys(dr('host: r\nsubsets:\n- {name: V_1}')), ['INVALID_VALUE spec.subsets[0].name']);
  assert.deepEqual(errorKeys(dr('host: r\nsubsets:\n- {labels: {version: v1}}')), ['REQUIRED spec.subsets[0].name']);
  assert.deepEqual(errorKeys(dr('host: r\nsubsets:\n- {name: v1, labels: {version: "not valid!"}}')), ['INVALID_VALUE spec.subsets[0].labels.version']);
});

test('host is required and must be a valid (wildcard) domain', () => {
  assert.deepEqual(errorKeys(dr('subsets: []')), ['REQUIRED spec.host']);
  assert.deepEqual(errorKeys(dr('host: "*.example.com"')), []);
  assert.deepEqual(errorKeys(dr('host: "exa mple"')), ['INVALID_VALUE spec.host']);
});

test('traffic policy rules: not empty, connection pool sanity, outlier percentages, mutual TLS certificates', () => {
  const tp = (body: string) => errorKeys(dr(`host: r\ntrafficPolicy: ${body}`));
  assert.deepEqual(tp('{}'), ['REQUIRED spec.trafficPolicy']);
  assert.deepEqual(tp('{connectionPool: {}}'), ['REQUIRED spec.trafficPolicy.connectionPool']);
  assert.deepEqual(tp('{connectionPool: {tcp: {maxConnections: -1}}}'), ['INVALID_VALUE spec.trafficPolicy.connectionPool.tcp.maxConnections']);
  assert.deepEqual(tp('{connectionPool: {tcp: {idleTimeout: 0s}}}'), []);
  assert.deepEqual(tp('{connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}}'), ['CONFLICT spec.trafficPolicy.connectionPool.http.useClientProtocol']);
  assert.deepEqual(tp('{connectionPool: {http: {http2KeepAlive: {interval: 15s}}}}'), ['REQUIRED spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout']);
  assert.deepEqual(tp('{outlierDetection: {maxEjectionPercent: 150}}'), ['INVALID_VALUE spec.trafficPolicy.outlierDetection.maxEjectionPercent']);
  assert.deepEqual(tp('{outlierDetection: {consecutiveLocalOriginFailures: 3}}'), ['INVALID_VALUE spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures']);
  assert.deepEqual(tp('{tls: {mode: MUTUAL}}'), ['REQUIRED spec.trafficPolicy.tls.clientCertificate', 'REQUIRED spec.trafficPolicy.tls.privateKey']);
  assert.deepEqual(tp('{portLevelSettings: [{port: {number: 80}}]}'), ['REQUIRED spec.trafficPolicy.portLevelSettings[0]']);
  assert.deepEqual(tp('{loadBalancer: {localityLbSetting: {distribute: [{from: a/*, to: {"b/*": 60}}]}}}'), ['INVALID_VALUE spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to']);
});

test('snake_case names are accepted and the spec comes back in camelCase', () => {
  const result = dr(yaml`
    host: r
    traffic_policy:
      load_balancer:
        consistent_hash: {http_header_name: x-user, ring_hash: {minimum_ring_size: 2048}}
      outlier_detection: {consecutive_5xx_errors: 3}
  `);
  assert.deepEqual(errorKeys(result), []);
  const spec = result.resources[0]!.spec as DestinationRuleSpec;
  assert.deepEqual(spec.trafficPolicy!.loadBalancer, { consistentHash: { httpHeaderName: 'x-user', ringHash: { minimumRingSize: 2048 } } });
  assert.deepEqual(spec.trafficPolicy!.outlierDetection, { consecutive5xxErrors: 3 });
});

test('policies Weft does not implement yet are warned about, field by field', () => {
  const result = dr(yaml`
    host: r
    trafficPolicy:
      loadBalancer: {simple: PASSTHROUGH, warmup: {duration: 10s}}
      connectionPool: {tcp: {maxConnections: 10, maxConnectionDuration: 1h, tcpKeepalive: {time: 60s, probes: 3, interval: 10s}}, http: {useClientProtocol: true, http2KeepAlive: {interval: 10s, timeout: 5s}}}
      outlierDetection: {consecutive5xxErrors: 3}
      tls: {mode: ISTIO_MUTUAL}
      portLevelSettings:
      - {port: {number: 80}, loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 30s}}, connectionPool: {tcp: {maxConnections: 5}}}
    subsets:
    - name: v1
      labels: {version: v1}
      trafficPolicy:
        loadBalancer: {simple: RANDOM, warmup: {duration: 10s}}
        connectionPool: {tcp: {maxConnections: 1}}
        portLevelSettings: [{port: {number: 80}, loadBalancer: {consistentHash: {httpCookie: {name: s, ttl: 0s, attributes: [{name: Secure}]}}}}]
  `);
  assert.deepEqual(errorKeys(result), []);
  assert.deepEqual(warnings(result).map((d) => `${d.code} ${d.path}`), [
    'NOT_IMPLEMENTED spec.trafficPolicy.loadBalancer.simple',
    // connectionPool (every field) and outlierDetection are implemented at every level.
    // tls ISTIO_MUTUAL (mTLS with the workload certificate), SIMPLE and DISABLE are implemented.
  ]);
  const mutual = dr('host: r\ntrafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}}');
  // MUTUAL with given files (services outside the mesh) is implemented.
  assert.deepEqual(warnings(mutual), []);
  const pinned = dr('host: r\ntrafficPolicy: {tls: {mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/a/sa/b]}}');
  assert.deepEqual(warnings(pinned).map((d) => `${d.code} ${d.path}`), ['NOT_IMPLEMENTED spec.trafficPolicy.tls']);
});

test('deprecated fields still work, with a warning', () => {
  const result = lb('{consistentHash: {httpHeaderName: x, minimumRingSize: 1024}}');
  assert.deepEqual(errorKeys(result), []);
  assert.ok(warnings(result).some((d) => d.code === 'DEPRECATED' && d.path === 'spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize'));
});
