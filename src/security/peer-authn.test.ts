import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseText } from '../api/parse.ts';
import { mtlsModeForPort, resolvePeerAuthentication, type PeerAuthenticationSpec, type PeerAuthnPolicy } from './peer-authn.ts';

const WL = { namespace: 'prod', labels: { app: 'llm', version: 'v1' } };
const pa = (name: string, namespace: string, spec: PeerAuthenticationSpec): PeerAuthnPolicy => ({ name, namespace, spec });
const mesh = (mode: string) => pa('default', 'istio-system', { mtls: { mode: mode as 'STRICT' } });
const ns = (mode: string | undefined, name = 'default') => pa(name, 'prod', mode === undefined ? {} : { mtls: { mode: mode as 'STRICT' } });
const wl = (mode: string | undefined, ports?: Record<string, string | undefined>, labels: Record<string, string> = { app: 'llm' }, name = 'llm') =>
  pa(name, 'prod', {
    selector: { matchLabels: labels },
    ...(mode !== undefined && { mtls: { mode: mode as 'STRICT' } }),
    ...(ports && { portLevelMtls: Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, v === undefined ? {} : { mode: v as 'STRICT' }])) }),
  });

const resolve = (policies: PeerAuthnPolicy[], options?: { rootNamespace?: string }) => resolvePeerAuthentication(policies, WL, options);

test('nothing set: PERMISSIVE', () => {
  const r = resolve([]);
  assert.equal(r.mode, 'PERMISSIVE');
  assert.equal(mtlsModeForPort(r, 8080), 'PERMISSIVE');
  assert.equal(r.mesh, undefined);
});

test('precedence: workload > namespace > mesh', () => {
  assert.equal(resolve([mesh('STRICT')]).mode, 'STRICT');
  assert.equal(resolve([mesh('STRICT'), ns('PERMISSIVE')]).mode, 'PERMISSIVE');
  assert.equal(resolve([mesh('STRICT'), ns('PERMISSIVE'), wl('DISABLE')]).mode, 'DISABLE');
  assert.equal(resolve([wl('STRICT'), ns('DISABLE'), mesh('PERMISSIVE')]).mode, 'STRICT', 'order of the list does not matter across levels');
  const r = resolve([mesh('STRICT'), ns('PERMISSIVE'), wl('DISABLE')]);
  assert.deepEqual([r.mesh, r.namespace, r.workload], ['istio-system/default', 'prod/default', 'prod/llm']);
});

test('UNSET inherits from the level above', () => {
  assert.equal(resolve([mesh('STRICT'), ns('UNSET')]).mode, 'STRICT');
  assert.equal(resolve([mesh('STRICT'), ns(undefined)]).mode, 'STRICT', 'no mtls block is UNSET');
  assert.equal(resolve([mesh('STRICT'), ns('DISABLE'), wl('UNSET')]).mode, 'DISABLE');
  assert.equal(resolve([mesh('UNSET')]).mode, 'PERMISSIVE', 'an UNSET mesh policy is PERMISSIVE');
  assert.equal(resolve([ns('UNSET'), wl(undefined)]).mode, 'PERMISSIVE');
});

test('portLevelMtls overrides by workload port; an UNSET port inherits the workload mode', () => {
  const r = resolve([mesh('STRICT'), wl(undefined, { '8080': 'PERMISSIVE', '9090': 'DISABLE', '7070': 'UNSET', '6060': undefined })]);
  assert.equal(r.mode, 'STRICT');
  assert.equal(mtlsModeForPort(r, 8080), 'PERMISSIVE');
  assert.equal(mtlsModeForPort(r, 9090), 'DISABLE');
  assert.equal(mtlsModeForPort(r, 7070), 'STRICT');
  assert.equal(mtlsModeForPort(r, 6060), 'STRICT');
  assert.equal(mtlsModeForPort(r, 1234), 'STRICT');
  // A workload-level DISABLE with a STRICT port: only that port needs mTLS.
  const r2 = resolve([wl('DISABLE', { '8443': 'STRICT' })]);
  assert.equal(mtlsModeForPort(r2, 8443), 'STRICT');
  assert.equal(mtlsModeForPort(r2, 80), 'DISABLE');
});

test('selectors: all labels must match; empty matchLabels is namespace-wide', () => {
  assert.equal(resolve([ns('PERMISSIVE'), wl('STRICT', undefined, { app: 'llm', version: 'v2' })]).mode, 'PERMISSIVE');
  assert.equal(resolve([ns('PERMISSIVE'), wl('STRICT', undefined, { app: 'llm', version: 'v1' })]).mode, 'STRICT');
  const emptySelector = pa('empty', 'prod', { selector: {}, mtls: { mode: 'STRICT' } });
  const r = resolve([emptySelector]);
  assert.equal(r.mode, 'STRICT');
  assert.equal(r.namespace, 'prod/empty');
});

test('other namespaces do not apply; the root namespace is a parameter', () => {
  assert.equal(resolve([pa('default', 'staging', { mtls: { mode: 'STRICT' } })]).mode, 'PERMISSIVE');
  const meshRoot = pa('default', 'mesh-root', { mtls: { mode: 'STRICT' } });
  assert.equal(resolve([meshRoot]).mode, 'PERMISSIVE');
  assert.equal(resolve([meshRoot], { rootNamespace: 'mesh-root' }).mode, 'STRICT');
  assert.equal(resolve([mesh('STRICT')], { rootNamespace: 'mesh-root' }).mode, 'PERMISSIVE');
});

test('a selector policy in the root namespace is ignored, as Istio does', () => {
  const rootSelector = pa('root-llm', 'istio-system', { selector: { matchLabels: { app: 'llm' } }, mtls: { mode: 'DISABLE' } });
  const r = resolve([mesh('STRICT'), rootSelector]);
  assert.equal(r.mode, 'STRICT');
  assert.deepEqual(r.ignored.map((i) => i.policy), ['istio-system/root-llm']);
});

test('two policies at one level: the first given wins, the other is reported', () => {
  const r = resolve([ns('STRICT', 'a'), ns('DISABLE', 'b'), wl('PERMISSIVE', undefined, { app: 'llm' }, 'w1'), wl('DISABLE', undefined, { version: 'v1' }, 'w2')]);
  assert.equal(r.namespace, 'prod/a');
  assert.equal(r.workload, 'prod/w1');
  assert.equal(r.mode, 'PERMISSIVE');
  assert.deepEqual(r.ignored.map((i) => i.policy), ['prod/b', 'prod/w2']);
});

test('corpus: peerauth-valid.yaml and the testdata policies resolve', () => {
  const load = (rel: string) => {
    const file = fileURLToPath(new URL(`../../../shared/corpus/istio/${rel}`, import.meta.url));
    return parseText(readFileSync(file, 'utf8'), file)
      .resources.filter((r) => r.kind === 'PeerAuthentication')
      .map((r) => ({ name: r.metadata.name, namespace: r.metadata.namespace, spec: r.spec as PeerAuthenticationSpec }));
  };
  const valid = load('validation/peerauth-valid.yaml');
  // "full": selector foo=bar, PERMISSIVE with port 80 STRICT; "partial-selector": `selector: {}` (namespace-wide, UNSET).
  const wlFoo = { namespace: 'default', labels: { foo: 'bar' } };
  const r = resolvePeerAuthentication(valid, wlFoo);
  assert.equal(r.workload, 'default/full');
  assert.equal(r.namespace, 'default/partial-selector');
  assert.equal(r.mode, 'PERMISSIVE');
  assert.equal(mtlsModeForPort(r, 80), 'STRICT');
  assert.equal(resolvePeerAuthentication(valid, { namespace: 'default', labels: {} }).mode, 'PERMISSIVE');

  const strict = load('testdata-config/peer-authn-strict.yaml');
  assert.equal(resolvePeerAuthentication(strict, { namespace: 'testns', labels: {} }).mode, 'STRICT');
  assert.equal(resolvePeerAuthentication(strict, { namespace: 'default', labels: {} }).mode, 'PERMISSIVE');
});

test('bad port keys are refused', () => {
  assert.throws(() => resolve([wl('STRICT', { http: 'STRICT' })]), /not a port/);
  assert.throws(() => resolve([wl('STRICT', { '0': 'STRICT' })]), /not a port/);
});
