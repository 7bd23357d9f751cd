// The proxy's admin listener: /metrics (Prometheus), /config_dump, /ready, /stats (with circuit breakers, ejected endpoints, fallback caches, open handles).

import { createServer, type Server } from 'node:http';
import type { MeshMetrics } from './observe/metrics.ts';
import type { RuntimeConfig } from './compile.ts';

export interface AdminState {
  current(): RuntimeConfig | undefined;
  metrics: MeshMetrics;
  /** Last snapshot this proxy refused, and why. */
  lastRejected(): { version: number; error: string } | undefined;
  stats(): Record<string, unknown>;
}

export function adminServer(state: AdminState): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const rt = state.current();
    if (path === '/metrics') {
      const body = state.metrics.render();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(body);
    } else if (path === '/config_dump') {
      json(res, 200, { version: rt?.version ?? null, snapshot: rt?.snapshot ?? null, rejected: state.lastRejected() ?? null });
    } else if (path === '/ready') {
      res.writeHead(rt ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(rt ? 'LIVE\n' : 'no configuration yet\n');
    } else if (path === '/stats') {
      json(res, 200, { version: rt?.version ?? null, ...state.stats(), ...(rt ? rt.resilience.stats() : {}), handles: handles() });
    } else {
      json(res, 404, { error: `unknown admin path ${path}; try /metrics, /config_dump, /ready or /stats` });
    }
  });
}

/** Open handles by kind (`TCPSocketWrap`, `Timeout`, …): a leak shows here first. */
function handles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) out[kind] = (out[kind] ?? 0) + 1;
  return out;
}

function json(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
