// Ceiling probe: the minimal proxy's undici `pool.request()`, but the answer relayed chunk by
// chunk with `write()` as Weft's relay does, instead of `pipe()`. Against the minimal proxy it
// shows what pipe() costs; against dispatch-proxy.ts, what request() costs.
//
// Usage: node bench/ceiling/request-proxy.ts UPSTREAM_PORT   (prints `listening PORT`)

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { stripHopByHop } from '../lib/hop-by-hop.ts';

const upstream = new Pool(`http://127.0.0.1:${Number(process.argv[2])}`, { keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, async (req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  try {
    const up = await upstream.request({ path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers: stripHopByHop(req.headers) as Record<string, string>, body: hasBody ? req : undefined });
    res.writeHead(up.statusCode, stripHopByHop(up.headers));
    up.body.on('data', (c: Buffer) => {
      if (!res.write(c)) {
        up.body.pause();
        res.once('drain', () => up.body.resume());
      }
    });
    up.body.on('end', () => res.end());
    up.body.on('error', () => res.destroy());
  } catch {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
