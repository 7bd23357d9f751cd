// Proxy process entry: reads its bootstrap from the environment, runs until SIGTERM.

import { startProxy } from './proxy.ts';
import { jsonAccessLog } from './observe/access-log.ts';
import { createWriteStream } from 'node:fs';
import { installLeanAsyncBind } from './async-bind.ts';
import { collectStartupGarbage } from './startup-gc.ts';

// Before any HTTP/2 session exists: node's own bind makes every upstream HTTP/2 request outlive young-generation collections (async-bind.ts).
installLeanAsyncBind();

function env(name: string, fallback?: string): string {
  const v = process.env[name] ?? fallback;
  if (v === undefined) {
    process.stderr.write(`weft proxy: ${name} is not set; the proxy is started by \`weft up\`, which sets it\n`);
    process.exit(2);
  }
  return v;
}

const id = env('WEFT_PROXY_ID');
const accessLogTarget = process.env.WEFT_ACCESS_LOG;
const accessLog = accessLogTarget
  ? jsonAccessLog(accessLogTarget === 'stdout' ? process.stdout : createWriteStream(accessLogTarget, { flags: 'a' }), id)
  : undefined;

// Not top-level await: weft up runs the proxy as one CommonJS bundle (control/proxy-code.ts).
void main();

async function main(): Promise<void> {
  try {
    const proxy = await startProxy({
      id,
      token: env('WEFT_PROXY_TOKEN'),
      control: env('WEFT_CONTROL'),
      outbound: env('WEFT_OUTBOUND', '127.0.0.1:0'),
      inbound: process.env.WEFT_INBOUND || undefined,
      admin: env('WEFT_ADMIN', '127.0.0.1:0'),
      ca: process.env.WEFT_CA || undefined,
      identity: process.env.WEFT_PROXY_IDENTITY || undefined,
      accessLog,
      // Once the first configuration is in force (startup-gc.ts), not inside the control stream callback.
      configured: () => setImmediate(collectStartupGarbage),
    });
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      // Drain: stop accepting, let in-flight requests finish, then leave; hard stop after 5 s.
      setTimeout(() => process.exit(0), 5000).unref();
      void proxy.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // If weft up dies without telling us, do not linger as an orphan.
    process.on('disconnect', stop);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      process.stderr.write(`weft proxy ${id}: address ${(e as { address?: string }).address}:${(e as { port?: number }).port} is already in use; free it or choose another address\n`);
      process.exit(3);
    }
    process.stderr.write(`weft proxy ${id}: ${e.stack ?? e.message}\n`);
    process.exit(1);
  }
}
