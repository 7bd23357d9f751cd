// A proxy process against a test control plane: it ACKs good snapshots, NACKs a bad one and keeps
// serving traffic on its last good configuration.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startPushServer } from '../src/control/push-server.ts';
import { fileURLToPath } from 'node:url';
import { start, nameServer } from './helpers/process.ts';
import { startHarness, snapshotFor } from './helpers/proxy-harness.ts';

test('a NACKed snapshot leaves the proxy serving on its last good one', async (t) => {
  const upstream = await nameServer('upstream-a');
  const h = await startHarness();
  t.after(async () => {
    await h.close();
    await upstream.close();
  });
  assert.deepEqual(await h.send(snapshotFor(1, [{ port: upstream.port }])), { type: 'ack', version: 1 });

  const get = async () => {
    const r = await request(`http://${h.outbound}/hello`, { headers: { host: 'svc' } });
    return { status: r.statusCode, body: await r.body.text() };
  };
  assert.deepEqual(await get(), { status: 200, body: 'upstream-a' });

  // Version 2 routes to a cluster it does not define: the proxy must refuse it.
  const bad = snapshotFor(2, [{ port: upstream.port }], {
    routes: [{ name: 'r', match: [], action: { kind: 'route', destinations: [{ cluster: 'outbound|80||missing', weight: 1 }] } }],
  });
  const nack = await h.send(bad);
  assert.equal(nack.type, 'nack');
  assert.equal(nack.version, 2);
  assert.match(nack.error!, /does not define/);
  for (let i = 0; i < 20; i++) assert.deepEqual(await get(), { status: 200, body: 'upstream-a' });

  const dump = (await (await fetch(`http://${h.admin}/config_dump`)).json()) as { version: number; rejected: { version: number } };
  assert.equal(dump.version, 1);
  assert.equal(dump.rejected.version, 2);

  // A good version 3 is taken again.
  assert.deepEqual(await h.send(snapshotFor(3, [{ port: upstream.port }])), { type: 'ack', version: 3 });
  assert.deepEqual(await get(), { status: 200, body: 'upstream-a' });

  // Unknown host: 404 with flag NR; metrics say so under Istio's names.
  const nr = await request(`http://${h.outbound}/`, { headers: { host: 'nowhere' } });
  assert.equal(nr.statusCode, 404);
  await nr.body.text();
  const metrics = await (await fetch(`http://${h.admin}/metrics`)).text();
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
  const proxy = start(process.execPath, [fileURLToPath(new URL('../src/proxy/main.ts', import.meta.url))], {
    env: { ...process.env, WEFT_PROXY_ID: 'p1', WEFT_PROXY_TOKEN: 'guess', WEFT_CONTROL: push.address },
  });
  t.after(() => proxy.stop());
  const deadline = Date.now() + 10_000;
  while (refused.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(refused[0] ?? '', /refused proxy p1: wrong bootstrap token/);
});
