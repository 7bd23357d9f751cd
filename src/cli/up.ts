// `weft up`: run a mesh on this machine — the embedded demo, or the user's own files with -f.

import { fileURLToPath } from 'node:url';
import { formatDiagnostic } from '../api/index.ts';
import { startLocalMesh, ConfigError, StartError } from '../control/local-mesh.ts';
import { parseArgs, one, checkBind, UsageError } from './args.ts';
import { parseDuration } from '../core/duration.ts';
import { MIN_WORKLOAD_TTL_MS } from '../security/ca.ts';

export const DEMO_MESH = fileURLToPath(new URL('../demo/mesh/', import.meta.url));

export const upHelp = `Usage: weft up [-f PATH]... [--edge HOST:PORT] [--state-dir DIR] [--access-log stdout|FILE]
               [--ca-cert FILE --ca-key FILE [--ca-chain FILE]] [--cert-ttl DURATION]

Run a service mesh on this machine: the control plane, one sidecar proxy per Workload, and an
edge listener for callers outside the mesh. Without -f it runs the embedded demo (sentiment-model
v1/v2 under a 90/10 canary, a streaming llm-chat with two replicas, and a client).

  -f, --file PATH     mesh file or folder (repeatable; folders are read recursively)
  --edge HOST:PORT    where callers outside the mesh get in (default 127.0.0.1:15080)
  --state-dir DIR     where weft keeps its state (default .weft)
  --access-log DEST   one JSON line per request from every proxy, to stdout or a file
  --ca-cert FILE      the mesh CA's certificate (PEM); default: a root created on first start
                      in the state dir (key mode 0600) and kept there
  --ca-key FILE       its private key (PEM); replacing both files while the mesh runs rotates
                      the CA with no failed request
  --ca-chain FILE     when --ca-cert is an intermediate: the chain up to the root
  --cert-ttl DURATION workload certificate lifetime (default 24h; at least 10s); each proxy
                      renews at half-life

Every proxy gets a workload certificate (SPIFFE ID spiffe://cluster.local/ns/<ns>/sa/<sa>) and
sidecars speak mTLS to each other; PeerAuthentication and AuthorizationPolicy apply as in Istio.

Edits to the mesh files apply live; a file with errors is reported and the mesh keeps running on
its last good configuration. Ctrl-C or SIGTERM stops everything weft started.

Exit codes: 0 stopped cleanly, 1 configuration or start-up errors, 2 usage errors.
`;

export async function upCommand(argv: string[]): Promise<number> {
  const { flags, rest } = parseArgs(argv, [
    { name: 'file', short: 'f', value: true, repeat: true },
    { name: 'edge', value: true },
    { name: 'state-dir', value: true },
    { name: 'access-log', value: true },
    { name: 'ca-cert', value: true },
    { name: 'ca-key', value: true },
    { name: 'ca-chain', value: true },
    { name: 'cert-ttl', value: true },
    { name: 'help', short: 'h' },
  ]);
  if (flags.help) {
    process.stdout.write(upHelp);
    return 0;
  }
  if (rest.length) throw new UsageError(`unexpected argument ${rest[0]} (mesh files go after -f)`);
  const files = (flags.file as string[] | undefined) ?? [];
  const demo = files.length === 0;
  const edge = checkBind('--edge', one(flags, 'edge') ?? '127.0.0.1:15080');
  const log = (l: string) => process.stdout.write(`weft: ${l}\n`);
  const caCert = one(flags, 'ca-cert');
  const caKey = one(flags, 'ca-key');
  const caChain = one(flags, 'ca-chain');
  if (Boolean(caCert) !== Boolean(caKey)) throw new UsageError('--ca-cert and --ca-key go together');
  if (caChain && !caCert) throw new UsageError('--ca-chain goes with --ca-cert and --ca-key');
  const ttlText = one(flags, 'cert-ttl');
  const certTtlMs = ttlText === undefined ? undefined : parseDuration(ttlText);
  if (certTtlMs !== undefined && !(certTtlMs >= MIN_WORKLOAD_TTL_MS)) throw new UsageError(`--cert-ttl must be a duration of at least 10s, e.g. 24h (got "${ttlText}")`);
  if (ttlText !== undefined && certTtlMs === undefined) throw new UsageError(`--cert-ttl must be a duration, e.g. 24h or 90m (got "${ttlText}")`);

  let mesh;
  try {
    mesh = await startLocalMesh({
      paths: demo ? [DEMO_MESH] : files,
      edge,
      stateDir: one(flags, 'state-dir') ?? '.weft',
      log,
      output: (l) => process.stdout.write(l + '\n'),
      watch: true,
      accessLog: one(flags, 'access-log'),
      caCert,
      caKey,
      caChain,
      certTtlMs,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const d of err.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
      process.stderr.write(`weft up: ${err.message}; nothing was started\n`);
      return 1;
    }
    if (err instanceof StartError) {
      process.stderr.write(`weft up: ${err.message}\n`);
      return 1;
    }
    throw err;
  }

  const host = demo ? 'sentiment-model' : 'SERVICE';
  process.stdout.write(
    [
      `weft: ready — configuration version ${mesh.version()}`,
      `  edge:     http://${mesh.edge}`,
      `  metrics:  http://${mesh.edgeAdmin}/metrics (every proxy's admin address: weft status)`,
      `  status:   npx weft status`,
      demo
        ? `  try:      curl -s -H 'Host: ${host}' http://${mesh.edge}/predict -d '{"text":"this model is great"}'`
        : `  try:      curl -s -H 'Host: ${host}' http://${mesh.edge}/`,
      demo
        ? `            curl -sN -x http://${mesh.edge} http://llm-chat/v1/chat/completions -H 'x-session-id: alice' -d '{"model":"weft-markov-2","messages":[{"role":"user","content":"hello"}],"stream":true}'`
        : '',
      '',
    ]
      .filter((l, i, a) => l !== '' || i === a.length - 1)
      .join('\n'),
  );

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log(`${sig}: stopping…`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await mesh.stop();
  log('stopped');
  return 0;
}
