// Ports for the apps Weft starts: chosen outside the OS's ephemeral range, and a listener checked to be the app's own.
//
// Why: a port found free by binding port 0 goes back to the OS's ephemeral pool, so any process
// binding port 0 next (another proxy's admin listener, a test's server) can take it before the
// app does. The app then fails to bind, yet "something accepts connections on its port" and the
// mesh would send its traffic to a stranger. Ports below the ephemeral range are never handed out
// for port 0, and on Linux the readiness probe also checks that the listening socket belongs to
// the app's process group.

import { createServer } from 'node:net';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';

/** The lowest port the OS hands out for port 0 (Linux's ip_local_port_range; IANA's 49152 elsewhere). */
function ephemeralStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && low > 1024) return low;
  } catch {
    // not Linux: IANA's dynamic range
  }
  return 49152;
}

const LOWEST = 20000;

/** A free port on 127.0.0.1 below the ephemeral range (random, so two meshes rarely try the same one). */
export async function appPort(random: () => number = Math.random): Promise<number> {
  const high = ephemeralStart();
  if (high - LOWEST >= 1000) {
    for (let i = 0; i < 50; i++) {
      const port = LOWEST + Math.floor(random() * (high - LOWEST));
      if (await portFree(port)) return port;
    }
  }
  return freePort();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * Whether the socket listening on `port` belongs to a process in process group `pgid` (the app
 * and whatever it started). `true` or `false` on Linux; `undefined` where /proc cannot tell.
 */
export async function listenerInGroup(port: number, pgid: number): Promise<boolean | undefined> {
  let inodes: Set<string>;
  try {
    inodes = new Set([...(await listeningInodes('/proc/net/tcp', port)), ...(await listeningInodes('/proc/net/tcp6', port).catch(() => []))]);
  } catch {
    return undefined;
  }
  if (inodes.size === 0) return false;
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces): state ppid pgrp …
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) return true;
    }
  }
  return false;
}

/** Inodes of the sockets in LISTEN state (0A) on `port` in a /proc/net/tcp-style table. */
async function listeningInodes(table: string, port: number): Promise<string[]> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const line of (await readFile(table, 'utf8')).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    if (f.length < 10 || f[3] !== '0A') continue;
    if (f[1]!.split(':')[1] === hexPort) out.push(f[9]!);
  }
  return out;
}
