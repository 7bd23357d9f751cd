// Newline-delimited JSON framing for the proxy ↔ control plane stream.

import type { Readable } from 'node:stream';

/**
 * Calls `onMessage` for each complete line; a line that is not JSON is reported, not fatal.
 * Only each new chunk is searched for the newline (a snapshot of a large mesh is megabytes long
 * and arrives in many chunks: searching all that was buffered each time was quadratic).
 */
export function readNdjson(stream: Readable, onMessage: (msg: unknown) => void, onBadLine: (line: string, err: Error) => void): void {
  let parts: string[] = [];
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf('\n', start)) !== -1) {
      parts.push(chunk.slice(start, nl));
      const line = parts.length === 1 ? parts[0]! : parts.join('');
      parts = [];
      start = nl + 1;
      if (line.trim() === '') continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch (err) {
        onBadLine(line, err as Error);
        continue;
      }
      onMessage(msg);
    }
    if (start < chunk.length) parts.push(chunk.slice(start));
  });
}

export function ndjson(msg: unknown): string {
  return JSON.stringify(msg) + '\n';
}
