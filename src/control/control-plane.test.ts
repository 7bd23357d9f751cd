import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { parseText } from '../api/index.ts';
import type { ControlMessage, EndpointsUpdate, ProxyNode, ProxySnapshot } from '../wire/snapshot.ts';
import { withDelta } from '../proxy/config-delta.ts';
import { ControlPlane } from './control-plane.ts';
import type { ProxyConnection } from './push-server.ts';

const node = (id: string, app: string): ProxyNode => ({
  id, kind: 'sidecar', workload: app, namespace: 'default', app, version: 'v1', serviceAccount: 'default',
  identity: 'spiffe://cluster.local/ns/default/sa/default', labels: { app },
});

const mesh = `
apiVersion: v1
kind: Service
metadata: {name: model}
spec:
  selector: {app: model}
  ports: [{name: http, port: 80}]
`;

function fakeConnection(id: string, token: string, inbound: string) {
  const sent: ControlMessage[] = [];
  const conn: ProxyConnection = {
    hello: { type: 'hello', id, token, listeners: { inbound, outbound: '127.0.0.1:1', admin: '127.0.0.1:2' }, pid: 42 },
    // As the proxy gets it: through JSON.
    send: (s) => void sent.push(JSON.parse(JSON.stringify(s))),
    close: () => {},
  };
  return { conn, sent };
}

test('versions grow only on real change; ACK marks a proxy synced, NACK shows why and keeps its version', async () => {
  const logs: string[] = [];
  const cp = new ControlPlane((l) => logs.push(l));
  const h = cp.handlers();
  cp.setResources(parseText(mesh, 'mesh.yaml').resources);
  cp.registerProxy({
    node: node('default/model-0', 'model'),
    token: 't0',
    app: { host: '127.0.0.1', port: 9000 },
    instance: { id: 'default/model-0', workload: 'model', namespace: 'default', labels: { app: 'model' }, serviceAccount: 'default', ready: false },
  });
  assert.equal(h.authenticate({ type: 'hello', id: 'default/model-0', token: 'nope', listeners: { admin: '' }, pid: 1 }), 'wrong bootstrap token');
  assert.match(h.authenticate({ type: 'hello', id: 'default/ghost', token: 't0', listeners: { admin: '' }, pid: 1 })!, /no proxy default\/ghost is expected/);

  const { conn, sent } = fakeConnection('default/model-0', 't0', '127.0.0.1:7000');
  h.connected(conn);
  await tick();
  assert.equal(sent.length, 1);
  const first = sent[0] as ProxySnapshot;
  assert.equal(first.version, 1);
  assert.equal(first.inbound?.appPort, 9000);
  assert.deepEqual(first.clusters[0].endpoints, [], 'not ready: no endpoint yet');
  assert.equal(cp.status()[0].synced, false);

  h.ack('default/model-0', 1);
  assert.equal(cp.status()[0].synced, true);
  assert.equal(cp.status()[0].version, 1);

  // The app came up: its sidecar's inbound address becomes an endpoint, in a new version — only
  // endpoints changed, so it goes as an endpoint update of that cluster.
  cp.setReady('default/model-0', true);
  await tick();
  assert.equal(sent.length, 2);
  const update = sent[1] as EndpointsUpdate;
  assert.equal(update.type, 'endpoints');
  assert.equal(update.version, 2);
  assert.deepEqual(update.clusters.map((c) => c.name), [first.clusters[0].name]);
  assert.deepEqual(update.clusters[0].endpoints.map((e) => `${e.host}:${e.port}`), ['127.0.0.1:7000']);

  // Nothing changed: no new version is pushed.
  cp.setResources(parseText(mesh, 'mesh.yaml').resources);
  await tick();
  assert.equal(sent.length, 2);

  h.nack('default/model-0', 2, 'route r sends to cluster x, which the snapshot does not define');
  const s = cp.status()[0];
  assert.equal(s.synced, false);
  assert.equal(s.version, 1, 'it still runs the last version it accepted');
  assert.equal(s.latest, 2);
  assert.match(s.error!, /version 2 rejected: route r sends to cluster x/);
  assert.match(logs.join('\n'), /rejected configuration version 2/);
  // A rejected endpoint update is followed by the whole snapshot.
  await tick();
  assert.equal(sent.length, 3);
  assert.equal((sent[2] as ProxySnapshot).version, 3);
  assert.deepEqual((sent[2] as ProxySnapshot).clusters[0].endpoints.map((e) => `${e.host}:${e.port}`), ['127.0.0.1:7000']);
  h.nack('default/model-0', 3, 'still no');
  await tick();
  assert.equal(sent.length, 3, 'a rejected snapshot is not sent again as it is');
  await cp.whenSettled(); // a NACK is an answer: start-up does not wait forever on it

  // A later good version clears the error.
  cp.setReady('default/model-0', false);
  await tick();
  assert.equal(sent.length, 4);
  h.ack('default/model-0', 4);
  assert.equal(cp.status()[0].error, null);
  assert.equal(cp.status()[0].synced, true);
});

test('removing a proxy by a stale token leaves its successor registered', async () => {
  const cp = new ControlPlane(() => {});
  cp.registerProxy({ node: node('default/a-0', 'a'), token: 'new' });
  cp.removeProxy('default/a-0', 'old');
  assert.equal(cp.status().length, 1);
  cp.removeProxy('default/a-0', 'new');
  assert.equal(cp.status().length, 0);
});

test('proxies that see the same routes share one translation; sourceLabels make a sidecar’s labels count', async () => {
  const routes = (sourceLabels: boolean) => `
apiVersion: v1
kind: Service
metadata: {name: model}
spec: {selector: {app: model}, ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: model}
spec: {host: model, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: model}
spec:
  hosts: [model]
  http:
  - ${sourceLabels ? 'match: [{sourceLabels: {app: beta}}]' : 'match: [{headers: {x-beta: {exact: "1"}}}]'}
    route: [{destination: {host: model, subset: v2}}]
  - route: [{destination: {host: model, subset: v1}}]
`;
  const cp = new ControlPlane(() => {});
  const h = cp.handlers();
  const conns = ['alpha', 'beta'].map((app) => {
    cp.registerProxy({ node: node(`default/${app}-0`, app), token: app });
    const c = fakeConnection(`default/${app}-0`, app, '127.0.0.1:1');
    h.connected(c.conn);
    return c;
  });
  /** What the proxy holds after every message it was sent, applied as the proxy applies them. */
  const held = (c: (typeof conns)[number]) =>
    c.sent.reduce<ProxySnapshot | undefined>((s, m) => ('type' in m && m.type === 'delta' ? withDelta(s, m) : 'type' in m ? s : (m as ProxySnapshot)), undefined)!;
  const firstRoute = (c: (typeof conns)[number]) => held(c).outbound.virtualHosts.find((v) => v.name.startsWith('model.'))!.routes[0]!;
  cp.setResources(parseText(routes(false), 'mesh.yaml').resources);
  await tick();
  // No sourceLabels: both sidecars get the header route first, whatever their labels.
  assert.deepEqual(conns.map((c) => firstRoute(c).match), [[{ headers: [{ name: 'x-beta', match: { exact: '1' } }] }], [{ headers: [{ name: 'x-beta', match: { exact: '1' } }] }]]);
  for (const c of conns) h.ack(c.conn.hello.id, c.sent.length);

  // sourceLabels: only the beta sidecar has the v2 route; alpha's first route is the v1 one.
  cp.setResources(parseText(routes(true), 'mesh.yaml').resources);
  await tick();
  assert.deepEqual(conns.map((c) => (c.sent.at(-1) as { type?: string }).type), ['delta', 'delta']);
  const [alpha, beta] = conns.map(firstRoute);
  assert.equal(alpha!.action.kind === 'route' && alpha!.action.destinations[0]!.cluster, 'outbound|80|v1|model.default.svc.cluster.local');
  assert.equal(beta!.action.kind === 'route' && beta!.action.destinations[0]!.cluster, 'outbound|80|v2|model.default.svc.cluster.local');
});
