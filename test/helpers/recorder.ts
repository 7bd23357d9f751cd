// An upstream for routing tests that records what reached it and misbehaves on request.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bodySha256: string;
  bodyLength: number;
}

export interface Recorder {
  name: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/**
 * Paths: `/fail/<n>/<id>` answers 503 to the first n tries of request `<id>`, then 200;
 * `/status/<code>` answers that code; `/hang` never answers; `/slow/<ms>` answers after ms;
 * anything else answers 200 with what it saw as JSON. Every request is recorded.
 */
export async function recorder(name: string, opts: { hangAll?: boolean } = {}): Promise<Recorder> {
  const seen: Seen[] = [];
  const tries = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      length += c.length;
    });
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodySha256: hash.digest('hex'), bodyLength: length };
      seen.push(s);
      if (opts.hangAll) return;
      const parts = (req.url ?? '/').split('?')[0].split('/');
      if (parts[1] === 'fail') {
        const id = parts[3];
        const n = (tries.get(id) ?? 0) + 1;
        tries.set(id, n);
        res.writeHead(n <= Number(parts[2]) ? 503 : 200, { 'x-served-by': name, 'x-try': String(n) });
        res.end(`${name} try ${n}`);
        return;
      }
      if (parts[1] === 'status') {
        res.writeHead(Number(parts[2]), { 'x-served-by': name });
        res.end(name);
        return;
      }
      if (parts[1] === 'hang') return;
      const reply = () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name, 'x-remove-me': 'yes' });
        res.end(JSON.stringify({ name, ...s }));
      };
      if (parts[1] === 'slow') setTimeout(reply, Number(parts[2]));
      else reply();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A Service + WorkloadEntry pair in YAML for an upstream already running on loopback. */
export function serviceFor(service: string, entries: Array<{ name: string; port: number; labels?: Record<string, string>; weight?: number }>): string {
  const docs = [
    `apiVersion: v1\nkind: Service\nmetadata: {name: ${service}}\nspec:\n  selector: {app: ${service}}\n  ports: [{name: http, port: 80}]\n`,
    ...entries.map(
      (e) =>
        `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${e.name}}\nspec:\n  address: 127.0.0.1\n  ports: {http: ${e.port}}\n  labels: ${JSON.stringify({ app: service, ...e.labels })}\n${e.weight ? `  weight: ${e.weight}\n` : ''}`,
    ),
  ];
  return docs.join('---\n');
}
