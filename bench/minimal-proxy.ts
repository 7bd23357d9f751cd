// The floor a Node.js proxy must beat: a node:http server and one undici Pool per upstream, nothing else.
//
// No routing table, no balancing, no metrics, no logging: `/sse…` goes to the SSE upstream and
// everything else to the main one. Headers are passed through minus the hop-by-hop ones, and the
// body is streamed both ways with backpressure (`readable.pipe`, the idiomatic way; on Node 24
// `stream.pipeline` costs far more per request: it aborts an AbortController, which builds a
// DOMException with a stack, every time a stream finishes). Weft's proxy does all this and more,
// so it should cost no more than this does.
//
// Usage: node bench/minimal-proxy.ts LISTEN_PORT UPSTREAM_PORT SSE_PORT [PIPELINING]
// (PIPELINING: undici's requests in flight per upstream connection, default 1 — bench/socket-options.ts.)
// Prints `minimal-proxy listening 127.0.0.1:PORT` once it listens.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { stripHopByHop as strip } from './lib/hop-by-hop.ts';

const [listenPort, upstreamPort, ssePort, pipelining = 1] = process.argv.slice(2).map(Number);
const poolOptions = { keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0, pipelining };
const upstream = new Pool(`http://127.0.0.1:${upstreamPort}`, poolOptions);
const sse = new Pool(`http://127.0.0.1:${ssePort}`, poolOptions);

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, async (req, res) => {
  const url = req.url ?? '/';
  const pool = url.startsWith('/sse') ? sse : upstream;
  try {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const up = await pool.request({
      path: url,
      method: (req.method ?? 'GET') as 'GET',
      headers: strip(req.headers) as Record<string, string>,
      body: hasBody ? req : undefined,
    });
    res.writeHead(up.statusCode, strip(up.headers));
    // A failure on either side ends the other: the client sees a cut stream, never a clean end.
    up.body.once('error', () => res.destroy());
    res.once('close', () => {
      if (!res.writableFinished) up.body.destroy();
    });
    up.body.pipe(res);
  } catch {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('upstream failed\n');
    } else res.destroy();
  }
});

server.listen(listenPort || 0, '127.0.0.1', () => {
  process.stdout.write(`minimal-proxy listening 127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
