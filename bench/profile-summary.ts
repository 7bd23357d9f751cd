// Summarises V8 CPU profiles (`node --cpu-prof`): the functions with the most self time.
//
// Usage: node bench/profile-summary.ts FILE.cpuprofile... [--top N]
// Prints, per profile, total sampled time, then the top functions by self time with their share
// and where they are defined (file:line), and the top files by self time.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTimeRow {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  file: string;
  sampledMs: number;
  /** Share of sampled time the process was idle (waiting in epoll). */
  idleShare: number;
  top: SelfTimeRow[];
  topFiles: SelfTimeRow[];
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const s = url.replace(/^file:\/\//, '');
  const i = s.indexOf('/src/');
  if (i >= 0) return s.slice(i + 1);
  const nm = s.lastIndexOf('node_modules/');
  if (nm >= 0) return s.slice(nm);
  return s.startsWith('node:') ? s : basename(s);
}

export function summarise(file: string, topN = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time *before* sample i; attribute it to that sample's node.
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  let total = 0;
  let idle = 0;
  const byFn = new Map<string, { name: string; where: string; us: number }>();
  const byFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    const name = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '(native)';
    const key = `${name}@${where}`;
    const row = byFn.get(key) ?? { name, where, us: 0 };
    row.us += us;
    byFn.set(key, row);
    const f = url ? shortUrl(url) : name.startsWith('(') ? name : '(native)';
    byFile.set(f, (byFile.get(f) ?? 0) + us);
  }
  const busy = total - idle;
  const rows = (entries: Array<{ name: string; where: string; us: number }>) =>
    entries
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((r) => ({ name: r.name, where: r.where, selfMs: Math.round(r.us / 100) / 10, share: busy > 0 ? r.us / busy : 0 }));
  return {
    file,
    sampledMs: Math.round(total / 1000),
    idleShare: total > 0 ? idle / total : 0,
    top: rows([...byFn.values()]),
    topFiles: rows([...byFile].map(([f, us]) => ({ name: f, where: '', us }))),
  };
}

export function formatSummary(s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
  const lines = [
    `${basename(s.file)}: ${s.sampledMs} ms sampled, ${pct(s.idleShare).trim()} idle; shares below are of busy time`,
    '  self ms   share  function (where)',
    ...s.top.map((r) => `  ${String(r.selfMs).padStart(7)}  ${pct(r.share)}  ${r.name} (${r.where})`),
    '  by file:',
    ...s.topFiles.slice(0, 12).map((r) => `  ${String(r.selfMs).padStart(7)}  ${pct(r.share)}  ${r.name}`),
  ];
  return lines.join('\n');
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const t = args.indexOf('--top');
  const top = t >= 0 ? Number(args.splice(t, 2)[1]) : 25;
  if (args.length === 0) {
    process.stderr.write('usage: node bench/profile-summary.ts FILE.cpuprofile... [--top N]\n');
    process.exit(2);
  }
  for (const f of args) process.stdout.write(formatSummary(summarise(f, top)) + '\n\n');
}
