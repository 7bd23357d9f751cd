// The control plane's HTTP API for `weft status` (and, later, the dashboard).

import { createServer, type Server } from 'node:http';
import type { ProxyStatus } from './control-plane.ts';

export interface ApiState {
  status(): { version: number; proxies: Array<ProxyStatus & Record<string, unknown>>; diagnostics: string[] };
}

export function apiServer(state: ApiState): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/api/status') {
      const body = JSON.stringify(state.status(), null, 2) + '\n';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `unknown path ${path}; try GET /api/status` }) + '\n');
  });
}
