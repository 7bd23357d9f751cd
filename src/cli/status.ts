// `weft status`: every proxy, the configuration version it runs, whether it is in sync, where it listens, and the endpoints it has ejected.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, one, UsageError } from './args.ts';

export const statusHelp = `Usage: weft status [-o json] [--state-dir DIR]

List every proxy of the mesh that \`weft up\` runs from this folder (or --state-dir): its workload,
the configuration version it runs, whether it is in sync with the control plane or rejected the
latest version (and why), its identity (SPIFFE ID) and when its workload certificate expires
(proxies renew at half-life), and its listener addresses. Then every endpoint a proxy has
ejected (outlier detection): the cluster, why, and until when — ejections are per proxy, as in
Istio, so each proxy reports its own (from its admin /stats).

Exit codes: 0 fine, 1 no running mesh found, 2 usage errors.
`;

export async function statusCommand(argv: string[]): Promise<number> {
  const { flags, rest } = parseArgs(argv, [
    { name: 'output', short: 'o', value: true },
    { name: 'state-dir', value: true },
    { name: 'help', short: 'h' },
  ]);
  if (flags.help) {
    process.stdout.write(statusHelp);
    return 0;
  }
  if (rest.length) throw new UsageError(`unexpected argument ${rest[0]}`);
  const output = one(flags, 'output');
  if (output && output !== 'json' && output !== 'wide') throw new UsageError('-o takes "json" or "wide"');
  const stateDir = one(flags, 'state-dir') ?? '.weft';
  let api: string;
  try {
    api = JSON.parse(await readFile(join(stateDir, 'control.json'), 'utf8')).api;
  } catch {
    process.stderr.write(`weft status: no running mesh found in ${stateDir}/ (start one with \`weft up\`, or pass --state-dir)\n`);
    return 1;
  }
  let body: { version: number; proxies: ProxyRow[]; diagnostics: string[] };
  try {
    const res = await fetch(`${api}/api/status`);
    body = (await res.json()) as typeof body;
  } catch (err) {
    process.stderr.write(`weft status: the control plane at ${api} does not answer (${(err as Error).message}); is weft up still running?\n`);
    return 1;
  }
  // Each proxy keeps its own ejections: ask them all, in parallel, briefly.
  const ejections = await Promise.all(body.proxies.map((p) => proxyEjections(p.listeners.admin)));
  body.proxies.forEach((p, i) => (p.ejections = ejections[i]));
  if (output === 'json') {
    process.stdout.write(JSON.stringify(body, null, 2) + '\n');
    return 0;
  }
  const rows = [['PROXY', 'WORKLOAD', 'NAMESPACE', 'VERSION', 'SYNCED', 'READY', 'IDENTITY', 'CERT EXPIRES', 'OUTBOUND', 'INBOUND', 'ADMIN']];
  const now = Date.now();
  for (const p of body.proxies)
    rows.push([
      p.id,
      p.workload,
      p.namespace,
      p.version === null ? '-' : String(p.version),
      p.synced ? 'yes' : p.error ? 'NACK' : 'no',
      p.ready === null ? '-' : p.ready ? 'yes' : 'no',
      p.certificate?.spiffeId ?? p.identity ?? '-',
      p.certificate ? expiry(p.certificate.notAfter, now) : '-',
      p.listeners.outbound ?? '-',
      p.listeners.inbound ?? '-',
      p.listeners.admin ?? '-',
    ]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
  process.stdout.write(`control plane version ${body.version}\n`);
  for (const p of body.proxies) if (p.error) process.stdout.write(`${p.id}: ${p.error}\n`);
  for (const d of body.diagnostics) process.stdout.write(`pending configuration error: ${d}\n`);
  const ejected = body.proxies.flatMap((p) => (p.ejections ?? []).map((e) => ({ proxy: p.id, ...e })));
  if (ejected.length > 0) {
    const table = [['PROXY', 'CLUSTER', 'ENDPOINT', 'REASON', 'UNTIL', 'TIMES']];
    for (const e of ejected) table.push([e.proxy, e.cluster, e.endpoint, e.reason, expiry(e.until, now), String(e.times)]);
    process.stdout.write('ejected endpoints (outlier detection, per proxy):\n');
    const w = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
    for (const r of table) process.stdout.write('  ' + r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd() + '\n');
  }
  return 0;
}

interface EjectionRow {
  cluster: string;
  endpoint: string;
  reason: string;
  since: string;
  until: string;
  times: number;
}

/** The endpoints a proxy has ejected, from its admin /stats; none when it does not answer. */
async function proxyEjections(admin: string | null): Promise<EjectionRow[]> {
  if (!admin) return [];
  try {
    const res = await fetch(`http://${admin}/stats`, { signal: AbortSignal.timeout(2000) });
    const stats = (await res.json()) as { ejections?: EjectionRow[] };
    return stats.ejections ?? [];
  } catch {
    return [];
  }
}

/** `2026-11-28T00:00:56Z (in 23h59m)`: when, and how long from now. */
export function expiry(notAfter: string, now: number): string {
  const at = new Date(notAfter);
  if (!Number.isFinite(at.getTime())) return notAfter;
  const left = at.getTime() - now;
  const abs = Math.abs(left);
  const h = Math.floor(abs / 3_600_000);
  const m = Math.floor((abs % 3_600_000) / 60_000);
  const s = Math.floor((abs % 60_000) / 1000);
  const span = h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
  return `${at.toISOString().replace(/\.\d{3}Z$/, 'Z')} (${left >= 0 ? `in ${span}` : `EXPIRED ${span} ago`})`;
}

interface ProxyRow {
  id: string;
  workload: string;
  namespace: string;
  version: number | null;
  synced: boolean;
  ready: boolean | null;
  error: string | null;
  identity?: string;
  certificate?: { spiffeId: string; serial: string; notAfter: string } | null;
  listeners: { inbound: string | null; outbound: string | null; admin: string | null };
  /** Endpoints this proxy has ejected (from its admin /stats). */
  ejections?: EjectionRow[];
}
