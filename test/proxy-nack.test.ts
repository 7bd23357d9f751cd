// A proxy process against a test control plane: it ACKs good snapshots, NACKs a bad one and keeps
// serving traffic on its last good configuration.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startPushServer, type ProxyConnection } from '../src/control/push-server.ts';
import { WIRE_FORMAT, type ProxySnapshot } from '../src/wire/snapshot.ts';
import { start, nameServer } from './helpers/process.ts';

const PROXY_MAIN = fileURLToPath(new URL('../src/proxy/main.ts', import.meta.url));

function snapshot(version: number, upstreamPort: number, cluster = 'outbound|80||svc.default.svc.cluster.local'): ProxySnapshot {
  return {
    wire: WIRE_FORMAT,
    version,
    proxy: { id: 'p1', kind: 'sidecar', workload: 'client', namespace: 'default', app: 'client', version: 'v1', serviceAccount: 'default', identity: 'spiffe://cluster.local/ns/default/sa/default', labels: {} },
    outbound: {
      virtualHosts: [{ name: 'svc.default.svc.cluster.local:80', domains: ['svc', 'svc:80'], routes: [{ name: 'r', match: [], action: { kind: 'route', destinations: [{ cluster, weight: 1 }] } }] }],
    },
    clusters: [
      {
        name: 'outbound|80||svc.default.svc.cluster.local',
        service: { host: 'svc.default.svc.cluster.local', name: 'svc', namespace: 'default', port: 80 },
        lb: { simple: 'ROUND_ROBIN' },
        endpoints: [{ host: '127.0.0.1', port: upstreamPort, weight: 1, workload: 'up', namespace: 'default', app: 'up', version: 'v1', identity: 'x', sidecar: false }],
      },
    ],
  };
}

test('a NACKed snapshot leaves the proxy serving on its last good one', async (t) => {
  const upstream = await nameServer('upstream-a');
  t.after(() => upstream.close());
  const events: Array<{ type: string; version: number; error?: string }> = [];
  let conn: ProxyConnection | undefined;
  let wake = () => {};
  const next = () => new Promise<void>((r) => (wake = r));
  const push = await startPushServer(
    { host: '127.0.0.1', port: 0 },
    {
      authenticate: (h) => (h.token === 'secret' ? undefined : 'bad token'),
      connected: (c) => {
        conn = c;
        wake();
      },
      ack: (_id, version) => {
        events.push({ type: 'ack', version });
        wake();
      },
      nack: (_id, version, error) => {
        events.push({ type: 'nack', version, error });
        wake();
      },
      disconnected: () => {},
      log: () => {},
    },
  );
  t.after(() => push.close());

  let connected = next();
  const proxy = start(process.execPath, [PROXY_MAIN], {
    env: { ...process.env, WEFT_PROXY_ID: 'p1', WEFT_PROXY_TOKEN: 'secret', WEFT_CONTROL: push.address, WEFT_INBOUND: '' },
  });
  t.after(() => proxy.stop());
  await connected;
  const outbound = conn!.hello.listeners.outbound!;

  connected = next();
  conn!.send(snapshot(1, upstream.port));
  await connected;
  assert.deepEqual(events.at(-1), { type: 'ack', version: 1 });

  const get = async () => {
    const r = await request(`http://${outbound}/hello`, { headers: { host: 'svc' } });
    return { status: r.statusCode, body: await r.body.text() };
  };
  assert.deepEqual(await get(), { status: 200, body: 'upstream-a' });

  // Version 2 routes to a cluster it does not define: the proxy must refuse it.
  connected = next();
  conn!.send(snapshot(2, upstream.port, 'outbound|80||missing'));
  await connected;
  const nack = events.at(-1)!;
  assert.equal(nack.type, 'nack');
  assert.equal(nack.version, 2);
  assert.match(nack.error!, /does not define/);
  for (let i = 0; i < 20; i++) assert.deepEqual(await get(), { status: 200, body: 'upstream-a' });

  const dump = await (await fetch(`http://${conn!.hello.listeners.admin}/config_dump`)).json() as { version: number; rejected: { version: number } };
  assert.equal(dump.version, 1);
  assert.equal(dump.rejected.version, 2);

  // A good version 3 is taken again.
  connected = next();
  conn!.send(snapshot(3, upstream.port));
  await connected;
  assert.deepEqual(events.at(-1), { type: 'ack', version: 3 });
  assert.deepEqual(await get(), { status: 200, body: 'upstream-a' });

  // Unknown host: 404 with flag NR; metrics say so under Istio's names.
  const nr = await request(`http://${outbound}/`, { headers: { host: 'nowhere' } });
  assert.equal(nr.statusCode, 404);
  await nr.body.text();
  const metrics = await (await fetch(`http://${conn!.hello.listeners.admin}/metrics`)).text();
  assert.match(metrics, /istio_requests_total\{reporter="source",source_workload="client".*destination_service="svc.default.svc.cluster.local".*response_code="200".*\} 22/);
  assert.match(metrics, /istio_requests_total\{[^}]*response_code="404"[^}]*response_flags="NR"\} 1/);
  assert.match(metrics, /istio_request_duration_milliseconds_bucket\{/);
});

test('a proxy with a wrong bootstrap token is refused', async (t) => {
  const refused: string[] = [];
  const push = await startPushServer(
    { host: '127.0.0.1', port: 0 },
    {
      authenticate: (h) => (h.token === 'secret' ? undefined : 'wrong bootstrap token'),
      connected: () => assert.fail('must not connect'),
      ack: () => {},
      nack: () => {},
      disconnected: () => {},
      log: (l) => refused.push(l),
    },
  );
  t.after(() => push.close());
  const proxy = start(process.execPath, [PROXY_MAIN], {
    env: { ...process.env, WEFT_PROXY_ID: 'p1', WEFT_PROXY_TOKEN: 'guess', WEFT_CONTROL: push.address },
  });
  t.after(() => proxy.stop());
  const deadline = Date.now() + 10_000;
  while (refused.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(refused[0] ?? '', /refused proxy p1: wrong bootstrap token/);
});
