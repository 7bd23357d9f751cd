// Processes the benchmark starts: spawned in their own process group, pinned to a CPU, stopped by id.
//
// Every process is recorded in one registry as it starts, so a failure or Ctrl-C anywhere stops
// all of them (each group by its id, SIGTERM then SIGKILL) and nothing is left running.

import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Started {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Leads its own process group (signals go to the group). */
  ownGroup: boolean;
  /** Output so far (stdout and stderr together), capped. */
  output(): string;
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

const started: Started[] = [];
/** Process groups started by something we started (weft's workloads): stopped with the rest. */
const extraGroups = new Set<number>();

/** How many CPUs this process may run on; pinning needs two. */
export function cpuCount(): number {
  try {
    return Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || 1;
  } catch {
    return 1;
  }
}

/** Pins this process (every thread) to `cpu`; children inherit it. */
export function pinSelf(cpu: number): void {
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/**
 * Starts `command` in its own process group (unless `ownGroup: false`: then it stays in ours and
 * goes when our group is stopped); with `cpu`, under `taskset -c cpu` (taskset execs the
 * command, so the pid is the command's own).
 */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  o: { cpu?: number; env?: NodeJS.ProcessEnv; cwd?: string; ownGroup?: boolean } = {},
): Started {
  const argv = o.cpu === undefined ? [command, ...args] : ['taskset', '-c', String(o.cpu), command, ...args];
  const ownGroup = o.ownGroup ?? true;
  const options: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'], detached: ownGroup, env: o.env ?? process.env, cwd: o.cwd };
  const child = spawn(argv[0], argv.slice(1), options);
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null)));
    child.once('error', () => resolve(-1));
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${argv[0]}`);
  const s: Started = {
    name,
    child,
    pid: child.pid,
    ownGroup,
    output: () => out,
    exited,
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            done();
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${re}; output:\n${out.slice(-3000)}`));
        }, timeoutMs);
        const onExit = () => {
          done();
          reject(new Error(`${name} exited before printing ${re}; output:\n${out.slice(-3000)}`));
        };
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
  };
  started.push(s);
  return s;
}

/** Remember a process group someone else started for us (a weft workload), to stop it at the end. */
export function adoptGroup(pgid: number): void {
  extraGroups.add(pgid);
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // the group is gone
  }
}

function signal(s: Started, sig: NodeJS.Signals): void {
  if (s.ownGroup) signalGroup(s.pid, sig);
  else
    try {
      process.kill(s.pid, sig);
    } catch {
      // gone
    }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM the group, then SIGKILL it after `graceMs` if the leader has not exited. */
export async function stopProcess(s: Started, graceMs = 5000): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    signal(s, 'SIGTERM');
    const timer = setTimeout(() => signal(s, 'SIGKILL'), graceMs);
    await s.exited;
    clearTimeout(timer);
  }
  // The leader is gone; anything it left in its group goes too.
  if (s.ownGroup) signalGroup(s.pid, 'SIGKILL');
  const i = started.indexOf(s);
  if (i >= 0) started.splice(i, 1);
}

/** Stops everything started so far, newest first. Safe to call more than once. */
export async function stopAll(graceMs = 5000): Promise<void> {
  const all = [...started].reverse();
  await Promise.all(all.map((s) => stopProcess(s, graceMs)));
  for (const g of extraGroups) signalGroup(g, 'SIGKILL');
  extraGroups.clear();
}

/** Synchronous last resort (process exit handlers cannot wait): SIGKILL every group we started. */
export function killAllNow(): void {
  for (const s of started) signal(s, 'SIGKILL');
  for (const g of extraGroups) signalGroup(g, 'SIGKILL');
}

/** Processes whose command line mentions `marker` (our temp dir): should be none after stopAll. */
export function processesMentioning(marker: string): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes(marker)) out.push({ pid: Number(d), cmdline: cmd });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Resident memory (VmRSS) and its high-water mark (VmHWM) of one process, in KiB. */
export function memoryKiB(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
    return Number.isFinite(rss) ? { rss, hwm } : undefined;
  } catch {
    return undefined;
  }
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU time (user + system, every thread) a process has used, in seconds. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Direct children of a process (e.g. nginx's worker under its master). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const c = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (c) out.push(...c.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** A port the OS considers free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port, or throws after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, what: string, proc?: Started): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) break;
    await sleep(50);
  }
  const said = proc ? `; its output:\n${proc.output().slice(-2000)}` : '';
  throw new Error(`${what} did not accept connections on 127.0.0.1:${port} within ${timeoutMs} ms${said}`);
}
