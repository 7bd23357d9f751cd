// Hop-by-hop headers, left out by the minimal Node proxy and the ceiling probes (header names lowercase, as node and undici give them).

import type { OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

export function stripHopByHop(h: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in h) if (!HOP_BY_HOP.has(k) && h[k] !== undefined) out[k] = h[k];
  return out;
}

export const isHopByHop = (name: string): boolean => HOP_BY_HOP.has(name);
