// Streaming probe: opens S server-sent-event streams through a path and measures each event's delay.
//
// The delay of an event is its arrival time minus the timestamp the SSE server wrote into it
// (both CLOCK_MONOTONIC via process.hrtime). The first event of a stream also carries the request
// and connection set-up, so it is reported apart (`firstEventUs`); `delayUs` covers the others.
// An event is *held back* when it is more than half a gap late AND arrives together (within 1 ms)
// with the next event or with the end of the stream: what a proxy that buffers looks like.
//
// Usage: node bench/sse-client.ts PORT HOST STREAMS EVENTS GAP_MS
// Prints one JSON object: events, streams completed, errors, delay percentiles (µs), held count.

import { request, Agent } from 'node:http';
import { percentile } from './lib/stats.ts';

const [port, host, streams, events, gap] = [
  Number(process.argv[2]),
  process.argv[3] ?? 'bench-sse',
  Number(process.argv[4] ?? 8),
  Number(process.argv[5] ?? 50),
  Number(process.argv[6] ?? 10),
];
if (!(port > 0)) {
  process.stderr.write('usage: node bench/sse-client.ts PORT HOST STREAMS EVENTS GAP_MS\n');
  process.exit(2);
}

const TOGETHER_NS = 1_000_000n;
const agent = new Agent({ keepAlive: false, maxSockets: streams });
const delaysUs: number[] = [];
const firstUs: number[] = [];
let late = 0;
let held = 0;
let errors = 0;
let completed = 0;
let missing = 0;

interface Arrival {
  delayUs: number;
  at: bigint;
}

function judge(arrivals: Arrival[], end: bigint): void {
  arrivals.forEach((a, i) => {
    if (i === 0) firstUs.push(a.delayUs);
    else delaysUs.push(a.delayUs);
    if (a.delayUs <= (gap * 1000) / 2) return;
    late++;
    const next = i + 1 < arrivals.length ? arrivals[i + 1].at : end;
    if (next - a.at < TOGETHER_NS) held++;
  });
}

function one(): Promise<void> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: `/sse?n=${events}&gap=${gap}`, headers: { host, accept: 'text/event-stream' }, agent },
      (res) => {
        if (res.statusCode !== 200) {
          errors++;
          res.resume();
          res.on('end', resolve);
          return;
        }
        res.socket.setNoDelay(true);
        let buf = '';
        const arrivals: Arrival[] = [];
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const now = process.hrtime.bigint();
          buf += chunk;
          let cut: number;
          while ((cut = buf.indexOf('\n\n')) !== -1) {
            const ev = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const m = /data: (\d+)/.exec(ev);
            if (m) arrivals.push({ delayUs: Number(now - BigInt(m[1])) / 1000, at: now });
          }
        });
        res.on('end', () => {
          judge(arrivals, process.hrtime.bigint());
          if (arrivals.length === events) completed++;
          else missing += events - arrivals.length;
          resolve();
        });
        res.on('error', () => {
          errors++;
          resolve();
        });
      },
    );
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end();
  });
}

// Bounded: the streams last events × gap; give them that plus 10 s, then report what arrived.
const deadline = setTimeout(() => report(true), events * gap + 10_000);
// Streams start staggered across one gap, so their events do not all fire in the same instant.
await Promise.all(Array.from({ length: streams }, (_, k) => new Promise<void>((r) => setTimeout(() => one().then(r), (k * gap) / streams))));
clearTimeout(deadline);
report(false);

function report(timedOut: boolean): void {
  const s = [...delaysUs].sort((a, b) => a - b);
  const f = [...firstUs].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  process.stdout.write(
    JSON.stringify({
      streams,
      eventsPerStream: events,
      gapMs: gap,
      events: s.length + f.length,
      completedStreams: completed,
      missingEvents: missing,
      errors,
      timedOut,
      late,
      held,
      delayUs: { p50: r(percentile(s, 50)), p90: r(percentile(s, 90)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? NaN) },
      firstEventUs: { p50: r(percentile(f, 50)), max: r(f[f.length - 1] ?? NaN) },
    }) + '\n',
  );
  process.exit(0);
}
