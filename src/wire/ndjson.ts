// Newline-delimited JSON framing for the proxy ↔ control plane stream.

import type { Readable } from 'node:stream';

/** Calls `onMessage` for each complete line; a line that is not JSON is reported, not fatal. */
export function readNdjson(stream: Readable, onMessage: (msg: unknown) => void, onBadLine: (line: string, err: Error) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
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
  });
}

export function ndjson(msg: unknown): string {
  return JSON.stringify(msg) + '\n';
}
