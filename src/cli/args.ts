// A small argument parser: repeated -f, --flag value / --flag=value, --help; unknown flags are usage errors.

export class UsageError extends Error {}

export interface FlagSpec {
  /** Long name without dashes. */
  name: string;
  short?: string;
  /** Takes a value (otherwise a boolean switch). */
  value?: boolean;
  repeat?: boolean;
}

export function parseArgs(argv: string[], specs: FlagSpec[]): { flags: Record<string, string[] | boolean>; rest: string[] } {
  const flags: Record<string, string[] | boolean> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      rest.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = eq === -1 ? a : a.slice(0, eq);
    const spec = specs.find((s) => `--${s.name}` === key || (s.short && `-${s.short}` === key));
    if (!spec) throw new UsageError(`unknown option ${key}`);
    if (!spec.value) {
      flags[spec.name] = true;
      continue;
    }
    const v = eq === -1 ? argv[++i] : a.slice(eq + 1);
    if (v === undefined || v === '') throw new UsageError(`${key} needs a value`);
    const list = (flags[spec.name] as string[] | undefined) ?? [];
    if (list.length > 0 && !spec.repeat) throw new UsageError(`${key} given twice`);
    list.push(v);
    flags[spec.name] = list;
  }
  return { flags, rest };
}

export function one(flags: Record<string, string[] | boolean>, name: string): string | undefined {
  const v = flags[name];
  return Array.isArray(v) ? v[0] : undefined;
}

/** `HOST:PORT` with a port in 0..65535. */
export function checkBind(flag: string, v: string): string {
  const i = v.lastIndexOf(':');
  const port = Number(v.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${flag} must be HOST:PORT, e.g. 127.0.0.1:15080 (got "${v}")`);
  return v;
}
