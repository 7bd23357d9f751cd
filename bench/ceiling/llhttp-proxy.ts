// Ceiling probe: HTTP/1.1 parsed on both sides by node's llhttp binding (HTTPParser from
// `_http_common`), on plain sockets — no node:http server, no undici. Each request's headers
// become a lowercase object (as a proxy that routes on them needs), the request head is written
// upstream as one string and the answer's head and body downstream in one send. What a Node.js
// proxy with an HTTP/1.1 layer of its own could reach. Requests without bodies, keep-alive only,
// no pipelining, no errors handled.
//
// Usage: node bench/ceiling/llhttp-proxy.ts UPSTREAM_PORT   (prints `listening PORT`)

import net from 'node:net';
import { STATUS_CODES } from 'node:http';
import { isHopByHop } from '../lib/hop-by-hop.ts';

interface Parser {
  initialize(type: number, resource: object): void;
  execute(data: Buffer): unknown;
  [callback: number]: unknown;
}
const { HTTPParser } = process.getBuiltinModule('_http_common') as {
  HTTPParser: { new (): Parser; REQUEST: number; RESPONSE: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number };
};
const METHODS = (process.getBuiltinModule('_http_common') as { methods: string[] }).methods;

/** One upstream connection; the request it serves sets the callbacks. */
interface Upstream {
  socket: net.Socket;
  onHead: (status: number, raw: string[]) => void;
  onBody: (chunk: Buffer) => void;
  onEnd: () => void;
}

const port = Number(process.argv[2]);
const idle: Upstream[] = [];

function upstream(): Upstream {
  const reused = idle.pop();
  if (reused) return reused;
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const u: Upstream = { socket, onHead: () => {}, onBody: () => {}, onEnd: () => {} };
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE, {});
  parser[HTTPParser.kOnHeadersComplete] = (_a: number, _b: number, raw: string[], _m: unknown, _u: unknown, status: number) => u.onHead(status, raw);
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => u.onBody(chunk);
  parser[HTTPParser.kOnMessageComplete] = () => u.onEnd();
  socket.on('data', (d: Buffer) => parser.execute(d));
  return u;
}

function serve(client: net.Socket, method: string, url: string, raw: string[]): void {
  const headers: Record<string, string> = Object.create(null);
  for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
  let head = `${method} ${url} HTTP/1.1\r\n`;
  for (const name in headers) if (!isHopByHop(name)) head += `${name}: ${headers[name]}\r\n`;
  const u = upstream();
  let out = '';
  let body: Buffer[] = [];
  u.onHead = (status, rawUp) => {
    out = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
    for (let i = 0; i < rawUp.length; i += 2) if (!isHopByHop(rawUp[i]!.toLowerCase())) out += `${rawUp[i]}: ${rawUp[i + 1]}\r\n`;
    out += '\r\n';
  };
  u.onBody = (chunk) => void body.push(Buffer.from(chunk));
  u.onEnd = () => {
    client.cork();
    client.write(out, 'latin1');
    for (const b of body) client.write(b);
    client.uncork();
    body = [];
    idle.push(u);
  };
  u.socket.write(head + '\r\n', 'latin1');
}

const server = net.createServer({ noDelay: true }, (client) => {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {});
  parser[HTTPParser.kOnHeadersComplete] = (_a: number, _b: number, raw: string[], method: number, url: string) => serve(client, METHODS[method]!, url, raw);
  client.on('data', (d: Buffer) => parser.execute(d));
  client.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
