// Ceiling probe: the minimal proxy with undici's dispatch() and a handler that writes straight to
// the response (no promise, no Readable body per request). Not a proxy to use: no error mapping
// beyond 502, no hop-by-hop care for requests with bodies.
//
// Usage: node bench/ceiling/dispatch-proxy.ts UPSTREAM_PORT   (prints `listening PORT`)

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { stripHopByHop } from '../lib/hop-by-hop.ts';

const upstream = new Pool(`http://127.0.0.1:${Number(process.argv[2])}`, { keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {}, // undici requires it (it could abort the request here)
    onResponseStart(controller, statusCode, headers) {
      res.writeHead(statusCode, stripHopByHop(headers));
      res.on('drain', () => controller.resume());
    },
    onResponseData(controller, chunk) {
      if (!res.write(chunk)) controller.pause();
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    },
  };
  upstream.dispatch({ path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers: stripHopByHop(req.headers) as Record<string, string>, body: hasBody ? req : undefined }, handler);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
