// Configuration deltas: a control plane and a proxy's update functions, without sockets — every
// change reaches the proxy as the smallest message that gives exactly a full translation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { parseText } from '../api/index.ts';
import type { Resource } from '../api/types.ts';
import { buildRegistry } from '../registry/registry.ts';
import { translate } from '../translate/translate.ts';
import type { ClusterConfig, ConfigDelta, ControlMessage, EndpointsUpdate, ProxyNode, ProxySnapshot } from '../wire/snapshot.ts';
import { withEndpoints } from '../proxy/endpoints-update.ts';
import { withDelta } from '../proxy/config-delta.ts';
import { ControlPlane } from './control-plane.ts';
import { configDelta, endpointsChanged, sentConfig } from './config-delta.ts';

const edge: ProxyNode = {
  id: 'weft-system/edge', kind: 'edge', workload: 'edge', namespace: 'weft-system', app: 'edge', version: 'v1', serviceAccount: 'edge',
  identity: 'spiffe://cluster.local/ns/weft-system/sa/edge', labels: {},
};

const service = (name: string) => `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec: {selector: {app: ${name}}, ports: [{name: http, port: 80, targetPort: 8080}]}
`;

const entry = (name: string, app: string, version: string, address: string, weight = 1) => `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec: {address: ${address}, labels: {app: ${app}, version: ${version}}, weight: ${weight}}
`;

const rule = (subsets: string[]) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: model, namespace: default}
spec:
  host: model
  subsets: [${subsets.map((s) => `{name: ${s}, labels: {version: ${s}}}`).join(', ')}]
`;

const routes = (split: Record<string, number>, timeout?: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: model, namespace: default}
spec:
  hosts: [model]
  http:
  - ${timeout ? `timeout: ${timeout}` : ''}
    route: [${Object.entries(split).map(([s, w]) => `{destination: {host: model, subset: ${s}}, weight: ${w}}`).join(', ')}]
`;

const load = (...docs: string[]): Resource[] => {
  const r = parseText(docs.join('---'), 'mesh.yaml');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return r.resources;
};

/** A proxy's view, compared by content: clusters by name (a delta appends new ones), virtual hosts in order. */
const content = (s: ProxySnapshot) =>
  JSON.parse(JSON.stringify({ ...s, version: 0, clusters: [...s.clusters].sort((a, b) => a.name.localeCompare(b.name)) })) as unknown;

/** What a fresh control plane would translate for the edge from `resources`. */
const fresh = (resources: Resource[], trustBundle?: string[]) => {
  const s = translate({ resources, registry: buildRegistry(resources, []), proxy: edge, version: 0 });
  return trustBundle ? { ...s, trustBundle } : s;
};

/** A control plane with the edge connected through a fake stream that applies what it gets as the proxy does. */
async function harness() {
  const cp = new ControlPlane(() => {});
  const h = cp.handlers();
  cp.registerProxy({ node: edge, token: 't' });
  const received: ControlMessage[] = [];
  let held: ProxySnapshot | undefined;
  let refuseNext = false;
  h.connected({
    hello: { type: 'hello', id: edge.id, token: 't', listeners: { admin: '127.0.0.1:1' }, pid: 1 },
    send: (m) => {
      // As the proxy gets it: through JSON.
      const msg = JSON.parse(JSON.stringify(m)) as ControlMessage;
      received.push(msg);
      const answer = () => {
        if (refuseNext) {
          refuseNext = false;
          return h.nack(edge.id, msg.version, 'refused by the test');
        }
        try {
          if ('type' in msg && msg.type === 'delta') held = withDelta(held, msg);
          else if ('type' in msg && msg.type === 'endpoints') held = withEndpoints(held, msg);
          else held = msg as ProxySnapshot;
          h.ack(edge.id, msg.version);
        } catch (err) {
          h.nack(edge.id, msg.version, (err as Error).message);
        }
      };
      queueMicrotask(answer);
    },
    close: () => {},
  });
  /** Do `f` to the control plane; the messages that took the edge to the result. */
  const after = async (f: () => void) => {
    const from = received.length;
    f();
    await tick();
    await cp.whenSettled();
    return received.slice(from);
  };
  const change = (resources: Resource[]) => after(() => cp.setResources(resources));
  return { cp, after, change, held: () => held!, refuseNext: () => void (refuseNext = true) };
}

const names = (list: Array<{ name: string }>) => list.map((x) => x.name);
const kind = (m: ControlMessage) => ('type' in m ? m.type : 'snapshot');

test('each change reaches the proxy as the smallest message, and what it holds is what a full translation gives', async () => {
  const p = await harness();
  const a = entry('a', 'model', 'v1', '10.0.0.1');
  const b = (weight = 1) => entry('b', 'model', 'v2', '10.0.0.2', weight);
  let state = load(service('model'), rule(['v1', 'v2']), routes({ v1: 90, v2: 10 }), a, b());
  let sent = await p.change(state);
  assert.deepEqual(sent.map(kind), ['snapshot']);
  assert.deepEqual(content(p.held()), content(fresh(state)));

  // A route weight: one virtual host, no cluster.
  state = load(service('model'), rule(['v1', 'v2']), routes({ v1: 50, v2: 50 }), a, b());
  sent = await p.change(state);
  assert.deepEqual(sent.map(kind), ['delta']);
  const weights = sent[0] as ConfigDelta;
  assert.deepEqual(names(weights.virtualHosts), ['model.default.svc.cluster.local:80']);
  assert.deepEqual([weights.clusters, weights.removedClusters, weights.removedVirtualHosts, weights.virtualHostOrder], [[], [], [], undefined]);
  assert.deepEqual(content(p.held()), content(fresh(state)));

  // An endpoint's weight: an endpoint update of the one cluster it is in.
  state = load(service('model'), rule(['v1', 'v2']), routes({ v1: 50, v2: 50 }), a, b(3));
  sent = await p.change(state);
  assert.deepEqual(sent.map(kind), ['endpoints']);
  assert.deepEqual(names((sent[0] as EndpointsUpdate).clusters), ['outbound|80|v2|model.default.svc.cluster.local']);
  assert.deepEqual(content(p.held()), content(fresh(state)));

  // A route timeout after it: the virtual host only — the endpoint update is known to be applied.
  state = load(service('model'), rule(['v1', 'v2']), routes({ v1: 50, v2: 50 }, '5s'), a, b(3));
  sent = await p.change(state);
  assert.deepEqual(sent.map(kind), ['delta']);
  assert.deepEqual([names((sent[0] as ConfigDelta).virtualHosts).length, (sent[0] as ConfigDelta).clusters], [1, []]);
  assert.deepEqual(content(p.held()), content(fresh(state)));

  // A new subset routed to: its cluster and the virtual host; the others compared and kept.
  const c = entry('c', 'model', 'v3', '10.0.0.3');
  state = load(service('model'), rule(['v1', 'v2', 'v3']), routes({ v1: 40, v2: 40, v3: 20 }, '5s'), a, b(3), c);
  sent = await p.change(state);
  assert.deepEqual(sent.map(kind), ['delta']);
  assert.deepEqual(names((sent[0] as ConfigDelta).clusters), ['outbound|80|v3|model.default.svc.cluster.local']);
  assert.deepEqual(content(p.held()), content(fresh(state)));

  // A new service, first in the files: its virtual host and cluster, and the new order.
  const withOther = () => load(service('other'), entry('o', 'other', 'v1', '10.0.1.1'), service('model'), rule(['v1', 'v2', 'v3']), routes({ v1: 40, v2: 40, v3: 20 }, '5s'), a, b(3), c);
  state = withOther();
  sent = await p.change(state);
  assert.deepEqual(sent.map(kind), ['delta']);
  const added = sent[0] as ConfigDelta;
  assert.deepEqual(names(added.virtualHosts), ['other.default.svc.cluster.local:80']);
  assert.deepEqual(names(added.clusters), ['outbound|80||other.default.svc.cluster.local']);
  assert.deepEqual(added.virtualHostOrder, ['other.default.svc.cluster.local:80', 'model.default.svc.cluster.local:80']);
  assert.deepEqual(content(p.held()), content(fresh(state)));

  // The same files read again: nothing is sent.
  assert.deepEqual(await p.change(withOther()), []);

  // The subset v3 and service other gone: removals only, and the route's virtual host.
  state = load(service('model'), rule(['v1', 'v2']), routes({ v1: 50, v2: 50 }, '5s'), a, b(3));
  sent = await p.change(state);
  const removed = sent[0] as ConfigDelta;
  assert.deepEqual([kind(removed), removed.removedVirtualHosts, removed.removedClusters.sort()], [
    'delta',
    ['other.default.svc.cluster.local:80'],
    ['outbound|80||other.default.svc.cluster.local', 'outbound|80|v3|model.default.svc.cluster.local'].sort(),
  ]);
  assert.deepEqual(content(p.held()), content(fresh(state)));

  // Something besides virtual hosts and clusters (the trust bundle): the whole snapshot.
  const bundle = ['-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n'];
  sent = await p.after(() => p.cp.setTrustBundle(bundle));
  assert.deepEqual(sent.map(kind), ['snapshot']);
  assert.deepEqual(content(p.held()), content(fresh(state, bundle)));
});

test('a refused delta is followed by the whole snapshot; a refused snapshot is not sent again, and the next change goes whole', async () => {
  const p = await harness();
  const a = entry('a', 'model', 'v1', '10.0.0.1');
  await p.change(load(service('model'), rule(['v1']), routes({ v1: 100 }), a));
  p.refuseNext();
  const state = load(service('model'), rule(['v1']), routes({ v1: 100 }, '3s'), a);
  let sent = await p.change(state);
  assert.deepEqual(sent.map(kind), ['delta', 'snapshot'], 'the whole snapshot follows the refused delta');
  assert.equal(p.cp.status()[0]!.synced, true);
  assert.deepEqual(content(p.held()), content(fresh(state)));

  p.refuseNext();
  const refusedWhole = load(service('model'), service('other'), rule(['v1']), routes({ v1: 100 }, '3s'), a);
  sent = await p.after(() => {
    p.cp.setTrustBundle(['x']); // a whole snapshot
    p.cp.setResources(refusedWhole);
  });
  assert.deepEqual(sent.map(kind), ['snapshot']);
  assert.equal(p.cp.status()[0]!.synced, false);
  assert.deepEqual(await p.change(refusedWhole), [], 'the refused snapshot is not sent again as it is');
  // The proxy still runs the version before: a later change cannot be a delta against the refused one.
  const later = load(service('model'), service('other'), rule(['v1']), routes({ v1: 100 }, '4s'), a);
  sent = await p.change(later);
  assert.deepEqual(sent.map(kind), ['snapshot']);
  assert.deepEqual(content(p.held()), content(fresh(later, ['x'])));
});

test('configDelta: the same, a delta, or whole when anything but virtual hosts and clusters differs', () => {
  const state = load(service('model'), rule(['v1']), routes({ v1: 100 }), entry('a', 'model', 'v1', '10.0.0.1'));
  const s1 = fresh(state);
  const held = sentConfig(s1)!;
  assert.deepEqual(configDelta(held, fresh(state)), { kind: 'same' }, 'the same content in new objects');
  assert.deepEqual(configDelta(held, { ...fresh(state), proxy: { ...edge, labels: { a: 'b' } } }), { kind: 'whole' });
  const twice: ClusterConfig[] = [s1.clusters[0]!, s1.clusters[0]!];
  assert.equal(sentConfig({ ...s1, clusters: twice }), undefined, 'two clusters of one name cannot be told apart in a delta');
  assert.deepEqual(configDelta(held, { ...s1, clusters: twice }), { kind: 'whole' });
});

test('proxies sent the same translation share what they hold: a change is worked out once, an endpoint update leaves the others as they were', () => {
  const before = load(service('model'), rule(['v1']), routes({ v1: 100 }), entry('a', 'model', 'v1', '10.0.0.1'));
  const s1 = fresh(before);
  // Two proxies of one view get the very same lists (control-plane.ts translates once per view).
  const a = sentConfig(s1)!;
  const b = sentConfig({ ...s1, proxy: { ...edge, id: 'weft-system/edge-2' } })!;
  assert.equal(a.outbound, b.outbound, 'one HeldOutbound for both');
  assert.notEqual(a.rest, b.rest, 'each keeps its own identity');

  const after = fresh(load(service('model'), rule(['v1']), routes({ v1: 100 }, '3s'), entry('a', 'model', 'v1', '10.0.0.1')));
  const da = configDelta(a, after);
  const db = configDelta(b, { ...after, proxy: { ...edge, id: 'weft-system/edge-2' } });
  assert.ok(da.kind === 'delta' && db.kind === 'delta');
  assert.equal(da.delta, db.delta, 'the delta is worked out once');
  assert.equal(da.holds.outbound, db.holds.outbound, 'and what both then hold is shared again');
  assert.deepEqual(names(da.delta.virtualHosts), ['model.default.svc.cluster.local:80']);

  // An endpoint update to one of them: a new HeldOutbound; the shared one is untouched.
  const cluster = s1.clusters[0]!;
  const moved = [{ name: cluster.name, endpoints: [{ ...cluster.endpoints[0]!, host: '10.0.0.9' }] }];
  const a2 = endpointsChanged(da.holds, moved);
  assert.notEqual(a2.outbound, da.holds.outbound);
  assert.equal(db.holds.outbound.clusters.get(cluster.name)!.config!.endpoints[0]!.host, '10.0.0.1', 'the other proxy still holds the old endpoints');
  assert.equal(a2.outbound.clusters.get(cluster.name)!.config!.endpoints[0]!.host, '10.0.0.9');
  // The same update to the other: the same result, made once.
  assert.equal(endpointsChanged(db.holds, moved).outbound, a2.outbound);
});
