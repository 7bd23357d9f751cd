// A server-sent-events upstream for the streaming benchmark: N events, a fixed gap, a timestamp in each.
//
// GET /sse?n=50&gap=10 answers `text/event-stream` and writes event i at start + i·gap ms, each
// carrying `process.hrtime.bigint()` (CLOCK_MONOTONIC, shared by every process on the machine) at
// the moment it is written. After the last event it waits one more gap before ending, so a proxy
// that held the last event back until the stream closes is caught too. Anything else: 404.
//
// Usage: node bench/sse-server.ts [PORT]   (or PORT in the environment; 0 = OS-chosen).
// Prints `sse-server listening 127.0.0.1:PORT` once it listens.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const MAX_EVENTS = 10_000;
const MAX_GAP_MS = 10_000;

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname !== '/sse') {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('try /sse?n=50&gap=10\n');
    return;
  }
  const n = Math.min(MAX_EVENTS, Math.max(1, Number(url.searchParams.get('n') ?? 50) || 50));
  const gap = Math.min(MAX_GAP_MS, Math.max(1, Number(url.searchParams.get('gap') ?? 10) || 10));
  req.socket.setNoDelay(true);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  const start = performance.now();
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (i < n) {
      res.write(`id: ${i}\ndata: ${process.hrtime.bigint()}\n\n`);
      i++;
    } else {
      res.end();
      return;
    }
    // Schedule against the start time so timer drift does not accumulate.
    timer = setTimeout(tick, Math.max(0, start + i * gap - performance.now()));
  };
  res.on('close', () => clearTimeout(timer));
  tick();
});
server.keepAliveTimeout = 65_000;

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  const a = server.address() as AddressInfo;
  process.stdout.write(`sse-server listening 127.0.0.1:${a.port}\n`);
});
const stop = () => server.close(() => process.exit(0)).closeAllConnections();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
