// The proxy's `configured` hook (main.ts runs the start-up collection from it, startup-gc.ts): once,
// when a first configuration is in force — not for a refused one, not again for updates.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPushServer, type ProxyConnection } from '../src/control/push-server.ts';
import { startProxy } from '../src/proxy/proxy.ts';
import { snapshotFor } from './helpers/proxy-harness.ts';

test('configured runs once, after the first snapshot the proxy accepts', async (t) => {
  let onConnect: (c: ProxyConnection) => void = () => {};
  let onAnswer: (a: string) => void = () => {};
  const push = await startPushServer(
    { host: '127.0.0.1', port: 0 },
    {
      authenticate: () => undefined,
      connected: (c) => onConnect(c),
      ack: (_id, v) => onAnswer(`ack ${v}`),
      nack: (_id, v) => onAnswer(`nack ${v}`),
      disconnected: () => {},
      log: () => {},
    },
  );
  const connected = new Promise<ProxyConnection>((r) => (onConnect = r));
  let configured = 0;
  const proxy = await startProxy({
    id: 'p1',
    token: 't',
    control: push.address,
    outbound: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    log: () => {},
    configured: () => configured++,
  });
  t.after(async () => {
    await proxy.close();
    await push.close();
  });
  const conn = await connected;
  const send = (s: ReturnType<typeof snapshotFor>) => {
    const answered = new Promise<string>((r) => (onAnswer = r));
    conn.send(s);
    return answered;
  };
  const bad = (v: number) =>
    snapshotFor(v, [{ port: 9 }], { routes: [{ name: 'r', match: [], action: { kind: 'route', destinations: [{ cluster: 'outbound|80||missing', weight: 1 }] } }] });

  assert.equal(await send(bad(1)), 'nack 1');
  assert.equal(configured, 0, 'a refused first snapshot configures nothing');
  assert.equal(await send(snapshotFor(2, [{ port: 9 }])), 'ack 2');
  assert.equal(configured, 1);
  assert.equal(await send(snapshotFor(3, [{ port: 10 }])), 'ack 3');
  assert.equal(await send(bad(4)), 'nack 4');
  assert.equal(configured, 1, 'updates do not run it again');
});
