// Streaming through a proxy: events pass one by one, a cut stream stays an error, a client that
// leaves cancels the upstream, request bodies stream intact.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { request } from 'undici';
import { Readable } from 'node:stream';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, snapshotFor, type Harness } from './helpers/proxy-harness.ts';

let upstream: Server;
let h: Harness;
const sentAt: number[] = [];
let upstreamClosed: () => void = () => {};

before(async () => {
  upstream = createServer((req, res) => {
    if (req.url === '/events') return events(res);
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part;');
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    if (req.url === '/forever') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const timer = setInterval(() => res.write('data: tick\n\n'), 20);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosed();
      });
      return;
    }
    if (req.url === '/expect') {
      const hash = createHash('sha256');
      req.on('data', (c) => hash.update(c));
      req.on('end', () => res.end(`expect=${req.headers.expect ?? '-'} ${hash.digest('hex')}`));
      return;
    }
    if (req.url === '/hash') {
      const hash = createHash('sha256');
      req.on('data', (c) => hash.update(c));
      req.on('end', () => res.end(hash.digest('hex')));
      return;
    }
    res.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  h = await startHarness();
  const ack = await h.send(snapshotFor(1, [{ port: (upstream.address() as AddressInfo).port }]));
  assert.equal(ack.type, 'ack');
});

after(async () => {
  await h.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

function events(res: ServerResponse) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let i = 0;
  const next = () => {
    if (i === 8) return res.end('data: [DONE]\n\n');
    sentAt[i] = performance.now();
    res.write(`data: ${i++}\n\n`);
    setTimeout(next, 100);
  };
  next();
}

test('server-sent events pass one by one: each arrives before the next is even sent', async () => {
  const r = await request(`http://${h.outbound}/events`, { headers: { host: 'svc' } });
  assert.equal(r.statusCode, 200);
  const arrivedAt: number[] = [];
  let text = '';
  for await (const chunk of r.body) {
    text += chunk.toString();
    for (const m of chunk.toString().matchAll(/data: (\d+)/g)) arrivedAt[Number(m[1])] = performance.now();
  }
  assert.match(text, /data: \[DONE\]/);
  assert.equal(arrivedAt.length, 8);
  for (let i = 0; i < 7; i++) assert.ok(arrivedAt[i] < sentAt[i + 1], `event ${i} was held back until event ${i + 1} was sent`);
});

test('an upstream that dies mid-stream reaches the client as an error, never a clean end', async () => {
  // curl exits 18 (partial file) or 56 (receive failure) on a broken chunked body; 0 would be a lie.
  const r = await promisify(execFile)('curl', ['-sS', '-H', 'Host: svc', `http://${h.outbound}/cut`]).then(
    () => ({ code: 0 }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  );
  assert.notEqual(r.code, 0);
  assert.ok([18, 56].includes(r.code), `curl exit ${r.code}`);
  await assert.rejects(async () => {
    const res = await request(`http://${h.outbound}/cut`, { headers: { host: 'svc' } });
    await res.body.text();
  });
});

test('a client that disconnects cancels the upstream request within a second', async () => {
  const closed = new Promise<number>((r) => (upstreamClosed = () => r(performance.now())));
  const ac = new AbortController();
  const res = await request(`http://${h.outbound}/forever`, { headers: { host: 'svc' }, signal: ac.signal });
  let got = 0;
  const reading = (async () => {
    for await (const c of res.body) {
      got += c.length;
      if (got > 50) break;
    }
  })().catch(() => {});
  await reading;
  const abortedAt = performance.now();
  ac.abort();
  const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 3000))]);
  assert.ok(at - abortedAt < 1000, `upstream still open ${at - abortedAt} ms after the client left`);
});

test('a large chunked request body streams through intact', async () => {
  const body = randomBytes(4 * 1024 * 1024);
  const chunks = Array.from({ length: 64 }, (_, i) => body.subarray(i * 65536, (i + 1) * 65536));
  const r = await request(`http://${h.outbound}/hash`, {
    method: 'POST',
    headers: { host: 'svc' },
    body: Readable.from(chunks),
  });
  assert.equal(r.statusCode, 200);
  assert.equal(await r.body.text(), createHash('sha256').update(body).digest('hex'));
});

test('Expect: 100-continue is answered by the proxy, and the body reaches the upstream without it', async () => {
  const body = randomBytes(256 * 1024);
  const file = join(await mkdtemp(join(tmpdir(), 'weft-expect-')), 'body');
  await writeFile(file, body);
  const { stdout } = await promisify(execFile)('curl', ['-s', '-H', 'Host: svc', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `http://${h.outbound}/expect`]);
  assert.equal(stdout, `expect=- ${createHash('sha256').update(body).digest('hex')}`);
});
