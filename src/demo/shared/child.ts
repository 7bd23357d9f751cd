// Test helper: runs a demo module as a child process, waits for its output, and stops it.

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface Child {
  proc: ChildProcess;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first regex match in stdout; rejects on timeout or early exit. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends SIGKILL if the process is still running (for cleanup). */
  kill(): void;
}

/** Environment without proxy variables from the outer shell, so tests control them exactly. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(https?_proxy|all_proxy|no_proxy|node_use_env_proxy|node_options)$/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export function runModule(module: URL | string, env: NodeJS.ProcessEnv, args: string[] = []): Child {
  const path = module instanceof URL ? fileURLToPath(module) : module;
  const proc = spawn(process.execPath, [path, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const w of [...waiters]) w();
  };
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    poke();
  });
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
    poke();
  });
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    proc.on("exit", (code, signal) => {
      done = true;
      poke();
      resolve(code ?? signal ?? "unknown");
    });
  });
  const waitFor = (re: RegExp, timeoutMs = 10_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = out.match(re);
        if (m) {
          finish();
          resolve(m);
        } else if (done) {
          finish();
          reject(new Error(`process exited before printing ${re}\nstdout: ${out}\nstderr: ${err}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs}ms waiting for ${re}\nstdout: ${out}\nstderr: ${err}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    waitFor,
    exited,
    kill: () => {
      if (!done) proc.kill("SIGKILL");
    },
  };
}

/** Waits for a promise, failing after timeoutMs. */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs}ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
