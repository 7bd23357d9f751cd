// The listener tells HTTP/2 (prior knowledge) from HTTP/1.1 by the connection preface, however
// the bytes arrive, and serves both with one handler.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { connect as h2connect } from 'node:http2';
import { meshListener, type MeshListener } from './listener.ts';

describe('meshListener', () => {
  let l: MeshListener;
  let address: string;
  let upgrades = 0;

  before(async () => {
    l = meshListener({
      request: (req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`HTTP/${req.httpVersion} ${req.method} ${req.url} host=${req.headers.host}`);
        });
      },
      upgrade: (_req, socket) => {
        upgrades++;
        socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: test\r\nconnection: upgrade\r\n\r\nswitched');
      },
    });
    address = await l.listen('127.0.0.1:0');
  });
  after(() => l.close());

  const raw = (chunks: Array<Buffer | string>, gapMs = 5) =>
    new Promise<string>((resolve, reject) => {
      const [host, port] = address.split(':');
      const s: Socket = tcpConnect({ host, port: Number(port) });
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('error', reject);
      s.on('close', () => resolve(out));
      s.on('connect', async () => {
        for (const c of chunks) {
          s.write(c);
          await new Promise((r) => setTimeout(r, gapMs));
        }
        if (chunks.length === 0) s.end();
      });
    });

  it('serves HTTP/1.1, including methods that start like the preface (POST, PUT, PATCH)', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH']) {
      const out = await raw([`${method} /x HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`]);
      assert.match(out, new RegExp(`^HTTP/1.1 200 OK[\\s\\S]*HTTP/1.1 ${method} /x host=a`), method);
    }
    // Split after the first bytes, as a slow client might send it.
    const out = await raw(['P', 'U', 'T /y HTTP/1.1\r\nhost: b\r\ncontent-length: 0\r\nconnection: close\r\n\r\n']);
    assert.match(out, /HTTP\/1.1 PUT \/y host=b/);
  });

  it('serves HTTP/2 with prior knowledge, the preface arriving in pieces; host from :authority', async () => {
    // A relay that passes the client's first bytes on three at a time.
    const [host, port] = address.split(':');
    const relay = createTcpServer((c) => {
      const up = tcpConnect({ host, port: Number(port) });
      up.pipe(c);
      let queue = Promise.resolve();
      let first = true;
      c.on('data', (d: Buffer) => {
        const pieces: Buffer[] = [];
        if (first) for (let i = 0; i < d.length; i += 3) pieces.push(d.subarray(i, i + 3));
        else pieces.push(d);
        first = false;
        queue = queue.then(async () => {
          for (const p of pieces) {
            up.write(p);
            await new Promise((r) => setTimeout(r, 2));
          }
        });
      });
      c.on('close', () => up.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const session = h2connect(`http://127.0.0.1:${(relay.address() as AddressInfo).port}`);
    const stream = session.request({ ':path': '/z', ':authority': 'svc:80' });
    let body = '';
    stream.on('data', (d) => (body += d));
    await new Promise<void>((r) => stream.on('end', () => r()));
    session.close();
    relay.close();
    assert.equal(body, 'HTTP/2.0 GET /z host=svc:80');
  });

  it('hands HTTP/1.1 upgrades to the upgrade handler', async () => {
    const out = await raw(['GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n']);
    assert.match(out, /^HTTP\/1.1 101[\s\S]*switched$/);
    assert.equal(upgrades, 1);
  });

  it('a connection that closes before saying anything is just closed', async () => {
    assert.equal(await raw([]), '');
  });
});
