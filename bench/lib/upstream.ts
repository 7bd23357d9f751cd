// The benchmark's fixed upstream: nginx returning a 1 KiB body (configs.ts), started in its own folder on the given CPU.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { upstreamNginxConf } from './configs.ts';
import { freePort, startProcess, waitForPort, type Started } from './procs.ts';

/** Starts the upstream nginx under `tmp/upstream` and resolves once it accepts connections. */
export async function startUpstreamNginx(tmp: string, cpu: number): Promise<{ port: number; proc: Started }> {
  const port = await freePort();
  const dir = join(tmp, 'upstream');
  await mkdir(dir);
  await writeFile(join(dir, 'nginx.conf'), upstreamNginxConf(dir, port));
  const proc = startProcess('upstream nginx', 'nginx', ['-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { cpu });
  await waitForPort(port, 10_000, 'the upstream nginx', proc);
  return { port, proc };
}
