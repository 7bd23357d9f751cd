// App ports: below the ephemeral range, and a listener recognised as the app's own or a stranger's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { appPort, listenerInGroup } from './app-port.ts';

const listen = (s: Server, port = 0) => new Promise<number>((r) => s.listen(port, '127.0.0.1', () => r((s.address() as { port: number }).port)));

test('an app port is free and below the ports the OS hands out for port 0', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  for (let i = 0; i < 5; i++) {
    const port = await appPort();
    assert.ok(port >= 20000 && port < low, `port ${port}`);
    const s = createServer();
    assert.equal(await listen(s, port), port);
    s.close();
  }
});

test('a listener is the app’s only when a process of the app’s group owns it', async () => {
  // The "app": a process in its own group (as the supervisor starts apps) listening on port 0.
  const app = spawn(process.execPath, ['-e', "require('net').createServer().listen(0, '127.0.0.1', function () { console.log(this.address().port) })"], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  const stranger = createServer();
  const strangerPort = await listen(stranger);
  try {
    const appPortNumber = Number(await new Promise<string>((r) => app.stdout!.once('data', (d: Buffer) => r(d.toString()))));
    assert.equal(await listenerInGroup(appPortNumber, app.pid!), true);
    assert.equal(await listenerInGroup(strangerPort, app.pid!), false, 'a socket of this test process is not the app’s');
    stranger.close();
    assert.equal(await listenerInGroup(strangerPort, app.pid!), false, 'nothing listening');
  } finally {
    app.kill();
    stranger.close();
  }
});
