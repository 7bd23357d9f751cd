// Child processes: spawn with prefixed output, stop by process id (group) with a grace period.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Spawned {
  child: ChildProcess;
  /** The last lines the process wrote, to explain an exit. */
  tail(): string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
}

export function spawnPrefixed(
  command: string,
  args: string[],
  options: SpawnOptions,
  prefix: string,
  out: (line: string) => void,
): Spawned {
  const child = spawn(command, args, { ...options, stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (l: string) => {
    lines.push(l);
    if (lines.length > 5) lines.shift();
  };
  for (const s of [child.stdout, child.stderr]) {
    if (!s) continue;
    createInterface({ input: s }).on('line', (l) => {
      keep(l);
      out(`${prefix} ${l}`);
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, tail: () => [...lines], exited };
}

/** SIGTERM (to the whole group when the child leads one), then SIGKILL after `graceMs`. */
export async function stopProcess(p: Spawned, graceMs: number, group: boolean): Promise<void> {
  const pid = p.child.pid;
  if (pid === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(group ? -pid : pid, sig);
    } catch {
      // already gone
    }
  };
  kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
  // The leader is gone; make sure nothing it started in its group lingers.
  if (group) kill('SIGKILL');
}
