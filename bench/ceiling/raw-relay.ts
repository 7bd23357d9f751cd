// Ceiling probe: HTTP/1.1 relayed over plain sockets both ways — find the end of each head, read
// Content-Length, pass the bytes through unchanged over a keep-alive upstream connection. What a
// Node.js process can do per core when neither node:http nor undici is in the path. Requests and
// answers with Content-Length (or no body) only; no pipelining; nothing else a proxy must do.
//
// Usage: node bench/ceiling/raw-relay.ts UPSTREAM_PORT   (prints `listening PORT`)

import net from 'node:net';

const port = Number(process.argv[2]);
const END_OF_HEAD = Buffer.from('\r\n\r\n');
const idle: net.Socket[] = [];

function contentLength(head: Buffer): number {
  const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head.toString('latin1'));
  return m ? Number(m[1]) : 0;
}

/** The length of the first whole message in `buf` (head and Content-Length body), or -1 if not all there. */
function messageLength(buf: Buffer): number {
  const end = buf.indexOf(END_OF_HEAD);
  if (end < 0) return -1;
  const total = end + 4 + contentLength(buf.subarray(0, end));
  return buf.length >= total ? total : -1;
}

function exchange(request: Buffer, client: net.Socket): void {
  let up = idle.pop();
  if (!up) {
    up = net.connect(port, '127.0.0.1');
    up.setNoDelay(true);
  }
  const upstream = up;
  let answer: Buffer | undefined;
  const onData = (chunk: Buffer) => {
    answer = answer ? Buffer.concat([answer, chunk]) : chunk;
    const n = messageLength(answer);
    if (n < 0) return;
    upstream.off('data', onData);
    client.write(answer.subarray(0, n));
    idle.push(upstream);
  };
  upstream.on('data', onData);
  upstream.write(request);
}

const server = net.createServer((client) => {
  client.setNoDelay(true);
  let pending: Buffer | undefined;
  client.on('data', (chunk: Buffer) => {
    pending = pending ? Buffer.concat([pending, chunk]) : chunk;
    const n = messageLength(pending);
    if (n < 0) return;
    exchange(pending.subarray(0, n), client);
    pending = n === pending.length ? undefined : pending.subarray(n);
  });
  client.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
