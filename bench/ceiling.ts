// How fast can a Node.js proxy go here? Requests per proxy CPU-second of HAProxy, the minimal
// Node proxy (node:http + undici request + pipe), and five probes that take parts of that path
// away (bench/ceiling/): pipe() (the answer written chunk by chunk, as Weft's relay does), then
// undici's request() API (dispatch() with a handler), then undici (raw upstream sockets behind
// node:http), then node:http too (llhttp on both sides), then the HTTP parser (a raw-socket
// relay). Interleaved rounds, proxy on CPU 0, wrk and nginx on CPU 1.
// It shows where the per-request cost of a Node proxy is, for docs/performance.md.
//
// Usage: node bench/ceiling.ts [--rounds 3] [--seconds 4]

import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { haproxyConf } from './lib/configs.ts';
import { throughput } from './lib/measure.ts';
import { freePort, pinSelf, startProcess, stopAll, waitForPort, type Started } from './lib/procs.ts';
import { startUpstreamNginx } from './lib/upstream.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' } } });
const PROXY_CPU = 0;
pinSelf(1);
const tmp = await mkdtemp(join(tmpdir(), 'weft-ceiling-'));
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

try {
  const { port: up } = await startUpstreamNginx(tmp, 1);
  const paths: Array<{ name: string; proc: Started; port: number }> = [];

  const haPort = await freePort();
  await mkdir(join(tmp, 'haproxy'));
  await writeFile(join(tmp, 'haproxy', 'haproxy.cfg'), haproxyConf(haPort, up, up));
  const haproxy = startProcess('haproxy', 'haproxy', ['-db', '-f', join(tmp, 'haproxy', 'haproxy.cfg')], { cpu: PROXY_CPU });
  await waitForPort(haPort, 10_000, 'HAProxy', haproxy);
  paths.push({ name: 'HAProxy', proc: haproxy, port: haPort });

  const node = async (name: string, script: string, args: string[]) => {
    const proc = startProcess(name, process.execPath, [new URL(script, import.meta.url).pathname, ...args], { cpu: PROXY_CPU });
    const m = await proc.waitFor(/listening (?:127\.0\.0\.1:)?(\d+)/, 10_000);
    paths.push({ name, proc, port: Number(m[1]) });
  };
  await node('minimal Node proxy (node:http + undici request)', './minimal-proxy.ts', ['0', String(up), String(up)]);
  await node('node:http + undici request(), relayed with write() (no pipe)', './ceiling/request-proxy.ts', [String(up)]);
  await node('node:http + undici dispatch()', './ceiling/dispatch-proxy.ts', [String(up)]);
  await node('node:http + raw upstream sockets', './ceiling/raw-upstream-proxy.ts', [String(up)]);
  await node('llhttp both sides (no node:http, no undici)', './ceiling/llhttp-proxy.ts', [String(up)]);
  await node('raw-socket relay (no node:http, no undici)', './ceiling/raw-relay.ts', [String(up)]);

  const perCpuSecond = new Map<string, number[]>(paths.map((p) => [p.name, []]));
  const rounds = Number(values.rounds);
  for (let r = 0; r < rounds; r++) {
    // Rotated each round, as bench/run.ts does, so drifts of the machine fall on every path alike.
    for (let i = 0; i < paths.length; i++) {
      const p = paths[(i + r) % paths.length]!;
      process.stderr.write(`ceiling: round ${r + 1}/${rounds}: ${p.name}\n`);
      const t = await throughput({ port: p.port, host: 'bench-upstream' }, { durationS: Number(values.seconds), connections: 64 }, [p.proc.pid]);
      if (t.non2xx > 0 || t.socketErrors > 0) throw new Error(`${p.name}: ${t.non2xx} non-2xx answers, ${t.socketErrors} socket errors`);
      perCpuSecond.get(p.name)!.push(t.rpsPerProxyCore);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ha = median(perCpuSecond.get('HAProxy')!);
  const minimal = median(perCpuSecond.get(paths[1]!.name)!);
  console.log(`| path | req per proxy CPU-second (median, min–max of ${rounds}) | vs HAProxy | vs minimal Node proxy |`);
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, xs] of perCpuSecond) {
    const k = (x: number) => `${(x / 1000).toFixed(1)}k`;
    console.log(`| ${name} | ${k(median(xs))} (${k(Math.min(...xs))}–${k(Math.max(...xs))}) | ${(median(xs) / ha).toFixed(2)}× | ${(median(xs) / minimal).toFixed(2)}× |`);
  }
} finally {
  await stopAll();
}
process.exit(process.exitCode ?? 0);
