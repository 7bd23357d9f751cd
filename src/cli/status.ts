// `weft status`: every proxy, the configuration version it runs, whether it is in sync, where it listens.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, one, UsageError } from './args.ts';

export const statusHelp = `Usage: weft status [-o json] [--state-dir DIR]

List every proxy of the mesh that \`weft up\` runs from this folder (or --state-dir): its workload,
the configuration version it runs, whether it is in sync with the control plane or rejected the
latest version (and why), and its listener addresses.

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
  if (output === 'json') {
    process.stdout.write(JSON.stringify(body, null, 2) + '\n');
    return 0;
  }
  const rows = [['PROXY', 'WORKLOAD', 'NAMESPACE', 'VERSION', 'SYNCED', 'READY', 'OUTBOUND', 'INBOUND', 'ADMIN']];
  for (const p of body.proxies)
    rows.push([
      p.id,
      p.workload,
      p.namespace,
      p.version === null ? '-' : String(p.version),
      p.synced ? 'yes' : p.error ? 'NACK' : 'no',
      p.ready === null ? '-' : p.ready ? 'yes' : 'no',
      p.listeners.outbound ?? '-',
      p.listeners.inbound ?? '-',
      p.listeners.admin ?? '-',
    ]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
  process.stdout.write(`control plane version ${body.version}\n`);
  for (const p of body.proxies) if (p.error) process.stdout.write(`${p.id}: ${p.error}\n`);
  for (const d of body.diagnostics) process.stdout.write(`pending configuration error: ${d}\n`);
  return 0;
}

interface ProxyRow {
  id: string;
  workload: string;
  namespace: string;
  version: number | null;
  synced: boolean;
  ready: boolean | null;
  error: string | null;
  listeners: { inbound: string | null; outbound: string | null; admin: string | null };
}
