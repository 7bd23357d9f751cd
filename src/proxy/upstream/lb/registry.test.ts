// Registry: policy names, PASSTHROUGH as RANDOM, and config rejected at compile time.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LbConfig } from '../../../wire/snapshot.ts';
import { compileLbPolicy, createBalancer, policyOf, registerBalancer, registeredBalancers } from './registry.ts';
import { deps, endpoints, picked } from './testing.ts';

const ringHash = (minimumRingSize: number): LbConfig => ({
  consistentHash: { key: { header: 'x-user' }, algorithm: { ringHash: { minimumRingSize } } },
});
const maglev = (tableSize: number): LbConfig => ({
  consistentHash: { key: { cookie: { name: 'sid' } }, algorithm: { maglev: { tableSize } } },
});

describe('balancer registry', () => {
  it('registers the built-in policies by their Envoy names', () => {
    assert.deepEqual(registeredBalancers(), ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH', 'RING_HASH', 'MAGLEV']);
  });

  it('names the policy an LbConfig selects', () => {
    const cases: Array<[LbConfig, string]> = [
      [{ simple: 'ROUND_ROBIN' }, 'ROUND_ROBIN'],
      [{ simple: 'LEAST_REQUEST' }, 'LEAST_REQUEST'],
      [{ simple: 'RANDOM' }, 'RANDOM'],
      [{ simple: 'PASSTHROUGH' }, 'PASSTHROUGH'],
      [ringHash(1024), 'RING_HASH'],
      [maglev(65537), 'MAGLEV'],
    ];
    for (const [config, name] of cases) assert.equal(compileLbPolicy(config).name, name);
    assert.deepEqual(policyOf(maglev(251)), { name: 'MAGLEV', settings: { tableSize: 251 } });
  });

  it('PASSTHROUGH balances exactly as RANDOM for now', () => {
    const eps = endpoints([3, 1, 2]);
    const passthrough = createBalancer({ simple: 'PASSTHROUGH' }, eps, deps(5));
    const random = createBalancer({ simple: 'RANDOM' }, eps, deps(5));
    for (let i = 0; i < 200; i++) assert.equal(picked(passthrough), picked(random));
  });

  it('rejects invalid config when compiling, before any endpoints exist', () => {
    assert.throws(() => compileLbPolicy(maglev(65536)), { message: 'maglev: tableSize must be prime, got 65536' });
    assert.throws(() => compileLbPolicy(ringHash(0)), /ringHash: minimumRingSize must be an integer from 1 to 8388608, got 0/);
    assert.throws(() => createBalancer(maglev(100), endpoints([1]), deps()), /prime/);
  });

  it('rejects configs that select no registered policy', () => {
    assert.throws(() => compileLbPolicy({ simple: 'LEAST_CONN' } as unknown as LbConfig), /unknown load balancer LEAST_CONN/);
    assert.throws(() => compileLbPolicy({} as unknown as LbConfig), /unknown load balancer config/);
    const noAlgorithm = { consistentHash: { key: { sourceIp: true }, algorithm: {} } } as unknown as LbConfig;
    assert.throws(() => compileLbPolicy(noAlgorithm), /unknown load balancer config/);
  });

  it('compiles once and builds a balancer per endpoint list', () => {
    const policy = compileLbPolicy({ simple: 'ROUND_ROBIN' });
    const a = endpoints([1, 1]);
    const b = endpoints([1], '10.9.9.');
    assert.ok(a.includes(picked(policy.build(a, deps()))));
    assert.equal(picked(policy.build(b, deps())), b[0]);
  });

  it('refuses to register a name twice', () => {
    assert.throws(
      () => registerBalancer('RANDOM', { parseConfig: () => null, create: () => ({ pick: () => ({ kind: 'fail', code: 'NO_HEALTHY_UPSTREAM' }) }) }),
      /load balancer RANDOM is already registered/,
    );
  });
});
