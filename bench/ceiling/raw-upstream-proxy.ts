// Ceiling probe: node:http server downstream; upstream over plain keep-alive sockets, the request
// head written as one string and the answer parsed by node's own llhttp binding (HTTPParser from
// `_http_common`, as node's http client does). Requests without bodies only; no errors handled.
//
// Usage: node bench/ceiling/raw-upstream-proxy.ts UPSTREAM_PORT [--no-delay off] [--port N --reuse-port]
//   (prints `listening PORT`). The options are the socket-level ones bench/socket-options.ts
//   measures: Nagle's algorithm left on both sides, and several processes sharing one port.

import { createServer, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { isHopByHop } from '../lib/hop-by-hop.ts';

interface Parser {
  initialize(type: number, resource: object): void;
  execute(data: Buffer): unknown;
  [callback: number]: unknown;
}
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: { new (): Parser; RESPONSE: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number };
};

/** One upstream connection; the request it serves sets the three callbacks. */
interface Connection {
  socket: net.Socket;
  onHead: (status: number, rawHeaders: string[]) => void;
  onBody: (chunk: Buffer) => void;
  onEnd: () => void;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'no-delay': { type: 'string', default: 'on' }, port: { type: 'string', default: '0' }, 'reuse-port': { type: 'boolean', default: false } },
});
const port = Number(positionals[0]);
const noDelay = values['no-delay'] !== 'off';
const idle: Connection[] = [];

function connection(): Connection {
  const reused = idle.pop();
  if (reused) return reused;
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(noDelay);
  const c: Connection = { socket, onHead: () => {}, onBody: () => {}, onEnd: () => {} };
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE, {});
  parser[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, raw: string[], _method: unknown, _url: unknown, status: number) => c.onHead(status, raw);
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => c.onBody(chunk);
  parser[HTTPParser.kOnMessageComplete] = () => c.onEnd();
  socket.on('data', (d: Buffer) => parser.execute(d));
  return c;
}

function requestHead(req: IncomingMessage): string {
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (!isHopByHop(raw[i]!.toLowerCase())) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${head}\r\n`;
}

const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, noDelay }, (req, res) => {
  const c = connection();
  c.onHead = (status, raw) => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) if (!isHopByHop(raw[i]!.toLowerCase())) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
    res.writeHead(status, headers);
  };
  // The parser's chunk is a view of the socket's buffer: copied before it is reused.
  c.onBody = (chunk) => void res.write(Buffer.from(chunk));
  c.onEnd = () => {
    res.end();
    idle.push(c);
  };
  c.socket.write(requestHead(req));
  req.resume();
});
server.listen({ port: Number(values.port), host: '127.0.0.1', reusePort: values['reuse-port'] }, () =>
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`),
);
process.on('SIGTERM', () => process.exit(0));
