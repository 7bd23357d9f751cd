// DestinationRule → cluster policy: subset and port-level overrides (Istio's merge), and LoadBalancerSettings → LbConfig.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DestinationRuleSpec, LoadBalancerSettings, TrafficPolicy } from '../api/types.ts';
import type { LbConfig } from '../wire/snapshot.ts';
import { clusterTrafficPolicy, lbConfig, lbPolicy, mergeTrafficPolicy, portTrafficPolicy } from './destination-rule.ts';

const RR = { simple: 'ROUND_ROBIN' } as const;
const RANDOM = { simple: 'RANDOM' } as const;
const pool = (n: number) => ({ tcp: { maxConnections: n } });
const outlier = (n: number) => ({ consecutive5xxErrors: n });

describe('mergeTrafficPolicy: a subset overrides the rule field by field', () => {
  const rule: TrafficPolicy = { loadBalancer: RR, connectionPool: pool(10), outlierDetection: outlier(5), tls: { mode: 'ISTIO_MUTUAL' } };

  it('keeps the rule policy when the subset sets none', () => {
    assert.deepEqual(mergeTrafficPolicy(rule, undefined), rule);
    assert.equal(mergeTrafficPolicy(undefined, undefined), undefined);
  });

  it('takes the subset policy when the rule sets none', () => {
    assert.deepEqual(mergeTrafficPolicy(undefined, { loadBalancer: RANDOM }), { loadBalancer: RANDOM });
  });

  it('replaces each field the subset sets, as a whole, and keeps the others', () => {
    const cases: Array<[TrafficPolicy, TrafficPolicy]> = [
      [{ loadBalancer: RANDOM }, { ...rule, loadBalancer: RANDOM }],
      [{ connectionPool: pool(1) }, { ...rule, connectionPool: pool(1) }],
      [{ outlierDetection: outlier(1) }, { ...rule, outlierDetection: outlier(1) }],
      [{ tls: { mode: 'DISABLE' } }, { ...rule, tls: { mode: 'DISABLE' } }],
      [{ tunnel: { targetHost: 'h', targetPort: 8443 } }, { ...rule, tunnel: { targetHost: 'h', targetPort: 8443 } }],
    ];
    for (const [subset, expected] of cases) assert.deepEqual(mergeTrafficPolicy(rule, subset), expected, JSON.stringify(subset));
  });

  it('does not merge inside a field: a subset loadBalancer drops the rule warmup', () => {
    const warm: TrafficPolicy = { loadBalancer: { simple: 'ROUND_ROBIN', warmup: { duration: '60s' } } };
    assert.deepEqual(mergeTrafficPolicy(warm, { loadBalancer: { simple: 'LEAST_REQUEST' } }), { loadBalancer: { simple: 'LEAST_REQUEST' } });
  });

  it('never mutates its inputs', () => {
    const r = structuredClone(rule);
    const s: TrafficPolicy = { loadBalancer: RANDOM, portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'DISABLE' } }] };
    const copy = structuredClone(s);
    mergeTrafficPolicy(r, s, 80);
    assert.deepEqual(r, rule);
    assert.deepEqual(s, copy);
  });
});

describe('portLevelSettings replace the policy for their port', () => {
  const rule: TrafficPolicy = {
    loadBalancer: RR,
    connectionPool: pool(10),
    tunnel: { targetHost: 'proxy', targetPort: 3128 },
    portLevelSettings: [
      { port: { number: 9090 }, loadBalancer: RANDOM },
      { port: { number: 9090 }, loadBalancer: { simple: 'PASSTHROUGH' } },
      { port: { number: 8080 }, connectionPool: pool(2) },
    ],
  };

  it('applies the first entry for the port; other ports keep the rule policy without portLevelSettings', () => {
    assert.deepEqual(portTrafficPolicy(rule, 9090), { policy: { loadBalancer: RANDOM }, portLevel: true });
    const { portLevelSettings: _, ...plain } = rule;
    assert.deepEqual(portTrafficPolicy(rule, 80), { policy: plain, portLevel: false });
    assert.deepEqual(portTrafficPolicy(rule, undefined), { policy: plain, portLevel: false });
  });

  it('does not inherit: fields the entry leaves out take their defaults, not the rule values', () => {
    // Istio: "default values will be applied to fields omitted in port-level traffic policies".
    assert.deepEqual(mergeTrafficPolicy(rule, undefined, 8080), { connectionPool: pool(2) });
    assert.deepEqual(lbPolicy({ host: 'r', trafficPolicy: rule }, undefined, 8080), { simple: 'LEAST_REQUEST' });
    assert.deepEqual(lbPolicy({ host: 'r', trafficPolicy: rule }, undefined, 9090), RANDOM);
    assert.deepEqual(lbPolicy({ host: 'r', trafficPolicy: rule }, undefined, 80), RR);
  });

  it('precedence: subset port level > subset > rule port level > rule', () => {
    const subsetPort: TrafficPolicy = { portLevelSettings: [{ port: { number: 9090 }, loadBalancer: { simple: 'LEAST_REQUEST' } }] };
    const dr: DestinationRuleSpec = {
      host: 'r',
      trafficPolicy: rule,
      subsets: [
        { name: 'plain' },
        { name: 'lb', trafficPolicy: { loadBalancer: { simple: 'PASSTHROUGH' } } },
        { name: 'pool', trafficPolicy: { connectionPool: pool(1) } },
        { name: 'port', trafficPolicy: { loadBalancer: { simple: 'PASSTHROUGH' }, ...subsetPort } },
        { name: 'port-pool', trafficPolicy: { portLevelSettings: [{ port: { number: 9090 }, connectionPool: pool(3) }] } },
      ],
    };
    const table: Array<[string | undefined, number, LbConfig]> = [
      [undefined, 80, RR],
      [undefined, 9090, RANDOM],
      ['plain', 9090, RANDOM], // a subset without a policy changes nothing
      ['lb', 80, { simple: 'PASSTHROUGH' }],
      ['lb', 9090, { simple: 'PASSTHROUGH' }], // the subset's field beats the rule's port level
      ['pool', 9090, RANDOM], // ... but only the fields it sets
      ['port', 80, { simple: 'PASSTHROUGH' }],
      ['port', 9090, { simple: 'LEAST_REQUEST' }],
      ['port-pool', 9090, { simple: 'LEAST_REQUEST' }], // a subset port entry without loadBalancer resets it
      ['unknown', 9090, RANDOM],
    ];
    for (const [subset, port, expected] of table) assert.deepEqual(lbPolicy(dr, subset, port), expected, `${subset}:${port}`);
    assert.deepEqual(clusterTrafficPolicy(dr, 'port-pool', 9090), { connectionPool: pool(3) });
    assert.deepEqual(clusterTrafficPolicy(dr, 'port-pool', 80), { loadBalancer: RR, connectionPool: pool(10), tunnel: rule.tunnel });
    assert.deepEqual(clusterTrafficPolicy(dr, 'pool', 9090), { loadBalancer: RANDOM, connectionPool: pool(1) });
  });

  it('a rule port entry drops the whole-service fields for its port, as Istio does; a subset keeps them', () => {
    assert.deepEqual(clusterTrafficPolicy({ host: 'r', trafficPolicy: rule }, undefined, 9090), { loadBalancer: RANDOM });
    assert.deepEqual(clusterTrafficPolicy({ host: 'r', trafficPolicy: rule }, undefined, 80)?.tunnel, rule.tunnel);
  });
});

describe('lbConfig: LoadBalancerSettings as the proxy sees them', () => {
  const lb = (settings: LoadBalancerSettings) => lbConfig(settings);

  it('maps simple policies; unset, UNSPECIFIED and LEAST_CONN are LEAST_REQUEST', () => {
    assert.deepEqual(lbConfig(undefined), { simple: 'LEAST_REQUEST' });
    for (const simple of ['UNSPECIFIED', 'LEAST_CONN', 'LEAST_REQUEST'] as const) assert.deepEqual(lb({ simple }), { simple: 'LEAST_REQUEST' });
    for (const simple of ['ROUND_ROBIN', 'RANDOM', 'PASSTHROUGH'] as const) assert.deepEqual(lb({ simple }), { simple });
  });

  it('carries warmup with Istio defaults (minimumPercent 10, aggression 1) for ROUND_ROBIN and LEAST_REQUEST', () => {
    assert.deepEqual(lb({ simple: 'ROUND_ROBIN', warmup: { duration: '90s' } }), {
      simple: 'ROUND_ROBIN',
      warmup: { durationMs: 90_000, minimumPercent: 10, aggression: 1 },
    });
    // Unset simple is LEAST_REQUEST, which Istio gives slow start too.
    assert.deepEqual(lb({ warmup: { duration: '1m', minimumPercent: 0, aggression: 2.5 } }), {
      simple: 'LEAST_REQUEST',
      warmup: { durationMs: 60_000, minimumPercent: 0, aggression: 2.5 },
    });
  });

  it('reads the deprecated warmupDurationSecs; warmup wins when both are set', () => {
    assert.deepEqual(lb({ simple: 'LEAST_CONN', warmupDurationSecs: '30s' }), {
      simple: 'LEAST_REQUEST',
      warmup: { durationMs: 30_000, minimumPercent: 10, aggression: 1 },
    });
    assert.deepEqual(lb({ simple: 'ROUND_ROBIN', warmupDurationSecs: '30s', warmup: { duration: '5s', minimumPercent: 50 } }), {
      simple: 'ROUND_ROBIN',
      warmup: { durationMs: 5000, minimumPercent: 50, aggression: 1 },
    });
  });

  it('drops warmup where Istio does: RANDOM, PASSTHROUGH, consistent hashing, and a zero window', () => {
    assert.deepEqual(lb({ simple: 'RANDOM', warmup: { duration: '60s' } }), RANDOM);
    assert.deepEqual(lb({ simple: 'PASSTHROUGH', warmupDurationSecs: '60s' }), { simple: 'PASSTHROUGH' });
    assert.ok(!('warmup' in lb({ consistentHash: { httpHeaderName: 'x' }, warmup: { duration: '60s' } })));
    assert.deepEqual(lb({ simple: 'ROUND_ROBIN', warmup: { duration: '0s' } }), RR);
  });

  it('hash keys: header names lowercased, query parameter names kept, source IP', () => {
    const key = (ch: LoadBalancerSettings['consistentHash']) => {
      const c = lb({ consistentHash: ch });
      return 'consistentHash' in c ? c.consistentHash.key : undefined;
    };
    assert.deepEqual(key({ httpHeaderName: 'X-Session-ID' }), { header: 'x-session-id' });
    assert.deepEqual(key({ httpQueryParameterName: 'User' }), { queryParameter: 'User' });
    assert.deepEqual(key({ useSourceIp: true }), { sourceIp: true });
  });

  it('cookies: path, ttl in whole seconds as Envoy keeps it (0 = session cookie), attributes in order', () => {
    const cookie = (httpCookie: object) => {
      const c = lb({ consistentHash: { httpCookie } as LoadBalancerSettings['consistentHash'] });
      return 'consistentHash' in c ? c.consistentHash.key : undefined;
    };
    assert.deepEqual(cookie({ name: 'sid' }), { cookie: { name: 'sid' } }); // no ttl: never generated
    assert.deepEqual(cookie({ name: 'sid', path: '/chat', ttl: '0s' }), { cookie: { name: 'sid', path: '/chat', ttlSeconds: 0 } });
    assert.deepEqual(cookie({ name: 'sid', ttl: '1h' }), { cookie: { name: 'sid', ttlSeconds: 3600 } });
    assert.deepEqual(cookie({ name: 'sid', ttl: '1.9s' }), { cookie: { name: 'sid', ttlSeconds: 1 } });
    assert.deepEqual(cookie({ name: 'sid', ttl: '500ms' }), { cookie: { name: 'sid', ttlSeconds: 0 } });
    assert.deepEqual(
      cookie({ name: 'sid', ttl: '60s', attributes: [{ name: 'SameSite', value: 'Strict' }, { name: 'Secure' }, { name: 'Partitioned', value: '' }] }),
      { cookie: { name: 'sid', ttlSeconds: 60, attributes: [{ name: 'SameSite', value: 'Strict' }, { name: 'Secure' }, { name: 'Partitioned' }] } },
    );
  });

  it('hash algorithms: ringHash 1024 by default, the deprecated minimumRingSize, 0 meaning the default; maglev', () => {
    const algorithm = (ch: LoadBalancerSettings['consistentHash']) => {
      const c = lb({ consistentHash: ch });
      return 'consistentHash' in c ? c.consistentHash.algorithm : undefined;
    };
    assert.deepEqual(algorithm({ useSourceIp: true }), { ringHash: { minimumRingSize: 1024 } });
    assert.deepEqual(algorithm({ useSourceIp: true, ringHash: {} }), { ringHash: { minimumRingSize: 1024 } });
    assert.deepEqual(algorithm({ useSourceIp: true, ringHash: { minimumRingSize: 0 } }), { ringHash: { minimumRingSize: 1024 } });
    assert.deepEqual(algorithm({ useSourceIp: true, ringHash: { minimumRingSize: 4096 } }), { ringHash: { minimumRingSize: 4096 } });
    assert.deepEqual(algorithm({ useSourceIp: true, minimumRingSize: 2048 }), { ringHash: { minimumRingSize: 2048 } });
    assert.deepEqual(algorithm({ useSourceIp: true, minimumRingSize: 0 }), { ringHash: { minimumRingSize: 1024 } });
    assert.deepEqual(algorithm({ useSourceIp: true, maglev: { tableSize: 251 } }), { maglev: { tableSize: 251 } });
  });
});
