// `weft demo chaos`: make one replica of the running demo fail, hang or behave again, to watch outlier ejection and labelled fallbacks happen.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, one, UsageError } from './args.ts';

export const demoHelp = `Usage: weft demo chaos <replica> <fail|hang|ok> [--state-dir DIR]

Tells one replica of the running demo (started by \`weft up\` in this folder, or --state-dir) to
fail every request with a 500, to hang (read requests and never answer), or to behave again.
<replica> is a replica name as \`weft status\` lists it (llm-chat-1, or default/llm-chat-1) or a
workload name (its first replica). The call goes to the app's own port, around the mesh.

What to watch:
  weft demo chaos llm-chat-1 fail      after 3 errors in a row each caller's proxy ejects it for
                                       30 s (weft status lists it; sessions move to llm-chat-0)
  weft demo chaos llm-chat-1 hang      the same, through the 5 s first-token timeout
  weft demo chaos sentiment-v2 fail    callers get the cached answer to the same text, else a
                                       neutral prediction, labelled x-weft-fallback: cache|static
  weft demo chaos sentiment-v2 ok      back to normal

Exit codes: 0 done, 1 no running mesh or no such replica, 2 usage errors.
`;

interface ProxyRow {
  id: string;
  workload: string;
  app?: string | null;
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { flags, rest } = parseArgs(argv, [
    { name: 'state-dir', value: true },
    { name: 'help', short: 'h' },
  ]);
  if (flags.help) {
    process.stdout.write(demoHelp);
    return 0;
  }
  const [sub, replica, mode, ...extra] = rest;
  if (sub !== 'chaos') throw new UsageError(sub ? `unknown demo command "${sub}"` : 'which demo command? (chaos)');
  if (!replica || !mode) throw new UsageError('chaos needs a replica and a mode');
  if (extra.length) throw new UsageError(`unexpected argument ${extra[0]}`);
  if (mode !== 'fail' && mode !== 'hang' && mode !== 'ok') throw new UsageError(`mode must be fail, hang or ok, not "${mode}"`);
  const stateDir = one(flags, 'state-dir') ?? '.weft';
  let api: string;
  try {
    api = JSON.parse(await readFile(join(stateDir, 'control.json'), 'utf8')).api;
  } catch {
    process.stderr.write(`weft demo: no running mesh found in ${stateDir}/ (start the demo with \`weft up\`, or pass --state-dir)\n`);
    return 1;
  }
  let proxies: ProxyRow[];
  try {
    proxies = ((await (await fetch(`${api}/api/status`)).json()) as { proxies: ProxyRow[] }).proxies;
  } catch (err) {
    process.stderr.write(`weft demo: the control plane at ${api} does not answer (${(err as Error).message}); is weft up still running?\n`);
    return 1;
  }
  const byId = (p: ProxyRow) => p.id === replica || p.id.endsWith(`/${replica}`);
  const target = proxies.find(byId) ?? proxies.filter((p) => p.workload === replica).sort((a, b) => a.id.localeCompare(b.id))[0];
  if (!target?.app) {
    const names = proxies.filter((p) => p.app).map((p) => p.id.slice(p.id.indexOf('/') + 1));
    process.stderr.write(`weft demo: no replica "${replica}" with an app in the running mesh; replicas: ${names.join(', ') || 'none'}\n`);
    return 1;
  }
  try {
    const res = await fetch(`http://${target.app}/chaos`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode }),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) {
      process.stderr.write(`weft demo: ${target.id} answered ${res.status}: ${(await res.text()).trim()} (is it a demo service?)\n`);
      return 1;
    }
  } catch (err) {
    process.stderr.write(`weft demo: ${target.id} at ${target.app} does not answer (${(err as Error).message})\n`);
    return 1;
  }
  process.stdout.write(`${target.id}: chaos mode ${mode}${mode === 'ok' ? '' : ` (undo: weft demo chaos ${replica} ok)`}\n`);
  return 0;
}
