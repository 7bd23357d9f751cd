// An upstream that fails on demand, in each way a model server fails: 5xx, reset, hang, slow, a stream cut or stalled mid-way.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Mode = 'ok' | '500' | '503' | 'reset' | 'hang' | 'slow';

export interface Faulty {
  name: string;
  port: number;
  /** Requests that reached it (all of them, whatever the mode). */
  hits: number;
  /** Bodies of the requests that reached it, in order. */
  bodies: string[];
  mode: Mode;
  /** Connections open now. */
  connections(): Promise<number>;
  /** Connections accepted so far. */
  accepted: number;
  /** Resolves when a streaming answer's connection closes (the proxy cancelled it). */
  streamClosed(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Answers by its mode: `ok` 200 with `{"name","echo"}` (the request body), `500`/`503` that
 * status, `reset` destroys the connection before answering, `hang` never answers, `slow` answers
 * after 400 ms. Whatever the mode, the streaming paths are: `/sse/healthy` 15 events 100 ms
 * apart then [DONE]; `/sse/stall` two events then silence; `/sse/late` headers at once, the first
 * event after 1 s; `/forever` an event every 20 ms until the caller leaves.
 */
export async function faulty(name: string, mode: Mode = 'ok'): Promise<Faulty> {
  const sockets = new Set<Socket>();
  let onStreamClosed: (t: number) => void = () => {};
  const f: Faulty = {
    name,
    port: 0,
    hits: 0,
    bodies: [],
    mode,
    accepted: 0,
    connections: () => new Promise((resolve) => server.getConnections((_e, n) => resolve(n))),
    streamClosed: () => new Promise((resolve) => (onStreamClosed = resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      f.hits++;
      const body = Buffer.concat(chunks).toString();
      f.bodies.push(body);
      const path = (req.url ?? '/').split('?')[0];
      if (path.startsWith('/sse/') || path === '/forever') return stream(path, res, () => onStreamClosed(performance.now()));
      answer(f.mode, req, res, body);
    });
  });
  server.on('connection', (s: Socket) => {
    f.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  f.port = (server.address() as AddressInfo).port;
  return f;

  function answer(m: Mode, req: IncomingMessage, res: ServerResponse, body: string) {
    const ok = () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name });
      res.end(JSON.stringify({ name, echo: body }));
    };
    switch (m) {
      case 'ok':
        return ok();
      case '500':
      case '503':
        res.writeHead(Number(m), { 'x-served-by': name });
        return res.end(`${name} fails`);
      case 'reset':
        return req.socket.destroy();
      case 'hang':
        return;
      case 'slow':
        setTimeout(ok, 400);
    }
  }
}

function stream(path: string, res: ServerResponse, closed: () => void) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  res.on('close', () => {
    for (const t of timers) clearTimeout(t);
    closed();
  });
  const at = (ms: number, f: () => void) => timers.push(setTimeout(f, ms));
  if (path === '/sse/healthy') {
    for (let i = 0; i < 15; i++) at(i * 100, () => res.write(`data: ${i}\n\n`));
    at(1500, () => res.end('data: [DONE]\n\n'));
  } else if (path === '/sse/stall') {
    res.write('data: 0\n\n');
    at(50, () => res.write('data: 1\n\n'));
  } else if (path === '/sse/late') {
    res.flushHeaders();
    at(1000, () => res.end('data: late\n\ndata: [DONE]\n\n'));
  } else {
    const tick = setInterval(() => res.write('data: tick\n\n'), 20);
    res.on('close', () => clearInterval(tick));
  }
}
