// Demo client workload: calls http://sentiment-model and http://llm-chat by plain name on a timer, with no knowledge of the mesh.
//
// It talks plain HTTP to plain URLs using node:http's default agent. When started with HTTP_PROXY=http://<proxy>
// and NODE_USE_ENV_PROXY=1, Node 24 sends every request to that proxy in absolute form
// ("POST http://sentiment-model/predict HTTP/1.1"), which is how a sidecar picks the traffic up.
// Why not fetch(): on Node 24.21 (bundled undici 7.x) fetch() under NODE_USE_ENV_PROXY tunnels even plain
// http:// targets through "CONNECT sentiment-model:80" instead of sending absolute form (see traffic.test.ts).

import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { SseParser } from "../shared/sse.ts";

export interface TrafficConfig {
  sentimentUrl: string;
  chatUrl: string;
  /** Pause between iterations. */
  intervalMs: number;
  /** A streaming chat every this many iterations (0 = never). */
  chatEvery: number;
  /** Number of distinct x-session-id values the chats rotate through. */
  sessions: number;
  sessionPrefix: string;
  chatModel: string;
  chatMaxTokens: number;
  /** At most one per-call log line per this many ms. */
  logEveryMs: number;
  /** Per-request timeout (a whole stream counts as one request). */
  timeoutMs: number;
  /** Stop after this many iterations; 0 = run until SIGTERM. */
  maxIterations: number;
}

export const DEFAULT_CONFIG: TrafficConfig = {
  sentimentUrl: "http://sentiment-model/predict",
  chatUrl: "http://llm-chat/v1/chat/completions",
  intervalMs: 500,
  chatEvery: 4,
  sessions: 3,
  sessionPrefix: "session",
  chatModel: "weft-markov-2",
  chatMaxTokens: 32,
  logEveryMs: 3000,
  timeoutMs: 10_000,
  maxIterations: 0,
};

export const TEXTS: readonly string[] = [
  "The new model answers questions accurately and quickly.",
  "Customer support never answered my emails.",
  "The package arrived on Tuesday.",
  "Honestly the best purchase I made this year!",
  "The app keeps crashing and the latency is awful.",
  "The service runs in two regions.",
  "Not bad at all, the answers are clear and helpful.",
  "The chatbot was slow, rude and completely useless.",
  "The dashboard shows requests per second.",
  "I love how smooth the streaming responses feel.",
  "The update broke our integration, very disappointing.",
  "The model has seven billion parameters.",
  "Great value, it works exactly as advertised.",
  "The translation was not good and full of mistakes.",
  "Pricing depends on the number of tokens.",
  "Support was friendly but the fix never worked.",
];

export const PROMPTS: readonly string[] = [
  "What is a KV cache?",
  "Explain canary releases for models.",
  "How does consistent hashing help language models?",
  "Why should retries have a budget?",
  "What does a sidecar proxy do?",
  "How do I stream tokens to a client?",
  "What is outlier detection?",
  "Tell me about rate limiting tokens.",
];

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return v;
}

function strFrom(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? fallback : raw.trim();
}

export function configFromEnv(env: NodeJS.ProcessEnv): TrafficConfig {
  const d = DEFAULT_CONFIG;
  return {
    sentimentUrl: strFrom(env, "SENTIMENT_URL", d.sentimentUrl),
    chatUrl: strFrom(env, "CHAT_URL", d.chatUrl),
    intervalMs: intFrom(env, "INTERVAL_MS", d.intervalMs, 0),
    chatEvery: intFrom(env, "CHAT_EVERY", d.chatEvery, 0),
    sessions: intFrom(env, "SESSIONS", d.sessions, 1),
    sessionPrefix: strFrom(env, "SESSION_PREFIX", d.sessionPrefix),
    chatModel: strFrom(env, "CHAT_MODEL", d.chatModel),
    chatMaxTokens: intFrom(env, "CHAT_MAX_TOKENS", d.chatMaxTokens, 1),
    logEveryMs: intFrom(env, "LOG_EVERY_MS", d.logEveryMs, 0),
    timeoutMs: intFrom(env, "TIMEOUT_MS", d.timeoutMs, 1),
    maxIterations: intFrom(env, "MAX_ITERATIONS", d.maxIterations, 0),
  };
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  /** The buffered body (empty when the response was handed to a stream sink). */
  body: string;
}

const MAX_BUFFERED_BODY = 1 << 20;

/**
 * One plain HTTP request through node:http's default agent (so NODE_USE_ENV_PROXY applies).
 * onResponse may return a sink to receive the body as it arrives instead of buffering it.
 */
export function httpCall(
  url: string,
  opts: {
    method: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs: number;
    signal?: AbortSignal;
    onResponse?: (status: number, headers: IncomingHttpHeaders) => ((chunk: string) => void) | undefined;
  },
): Promise<HttpResult> {
  const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method, headers: opts.headers ?? {}, signal }, (res) => {
      const status = res.statusCode ?? 0;
      const sink = opts.onResponse?.(status, res.headers);
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (sink) sink(chunk);
        else if (body.length < MAX_BUFFERED_BODY) body += chunk;
      });
      res.on("end", () => resolve({ status, headers: res.headers, body }));
      res.on("error", reject);
      res.on("close", () => {
        if (!res.complete) reject(signal.aborted ? abortReason(signal) : new Error("response cut short"));
      });
    });
    req.on("error", (err) => reject(signal.aborted ? abortReason(signal) : err));
    req.end(opts.body);
  });
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name === "TimeoutError") return new Error("timed out");
  return r instanceof Error ? r : new Error("aborted");
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function errorText(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { message?: string } };
  const msg = e?.message || e?.code || String(err);
  return e?.cause?.message ? `${msg} (${e.cause.message})` : msg;
}

function snippet(body: string): string {
  const oneLine = body.replace(/\s+/g, " ").trim();
  return oneLine.length > 120 ? `${oneLine.slice(0, 117)}...` : oneLine;
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function counts(m: Map<string, number>): string {
  return [...m.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");
}

export class TrafficStats {
  predictOk = 0;
  predictFailed = 0;
  readonly versions = new Map<string, number>();
  readonly labels = new Map<string, number>();
  chatOk = 0;
  chatFailed = 0;
  readonly replicas = new Map<string, number>();
  kvHit = 0;
  kvMiss = 0;
  tokens = 0;

  summary(): string {
    const parts = [`predict ok=${this.predictOk} err=${this.predictFailed}`];
    if (this.versions.size > 0) parts.push(`versions[${counts(this.versions)}]`);
    if (this.labels.size > 0) parts.push(`labels[${counts(this.labels)}]`);
    parts.push(`| chat ok=${this.chatOk} err=${this.chatFailed} tokens=${this.tokens} kv hit=${this.kvHit} miss=${this.kvMiss}`);
    if (this.replicas.size > 0) parts.push(`replicas[${counts(this.replicas)}]`);
    return parts.join(" ");
  }
}

export interface TrafficDeps {
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Milliseconds, for log throttling. */
  now?: () => number;
}

class Stopped extends Error {}

/** Runs the workload until maxIterations (if set) or until the signal aborts. Never throws for request failures. */
export async function runTraffic(cfg: TrafficConfig, deps: TrafficDeps): Promise<TrafficStats> {
  const stats = new TrafficStats();
  const now = deps.now ?? (() => performance.now());
  const signal = deps.signal;
  let lastLog = -Infinity;
  const report = (line: string) => {
    const t = now();
    if (t - lastLog < cfg.logEveryMs) return;
    lastLog = t;
    deps.log(`${line} || ${stats.summary()}`);
  };
  /** Runs one call; failures are counted and logged, shutdown aborts are not. */
  const attempt = async (what: string, call: () => Promise<string>, onFail: () => void) => {
    const t0 = performance.now();
    try {
      const line = await call();
      report(`${line} ${Math.round(performance.now() - t0)}ms`);
    } catch (err) {
      if (signal?.aborted) throw new Stopped();
      onFail();
      report(`${what} error: ${errorText(err)}`);
    }
  };

  const predict = async (text: string): Promise<string> => {
    const res = await httpCall(cfg.sentimentUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ text }),
      timeoutMs: cfg.timeoutMs,
      ...(signal ? { signal } : {}),
    });
    let parsed: { label?: unknown; version?: unknown; error?: unknown } = {};
    try {
      parsed = JSON.parse(res.body) as typeof parsed;
    } catch {
      // Not JSON (e.g. a proxy's error page): report the raw body below.
    }
    if (res.status !== 200) throw new Error(`HTTP ${res.status} ${typeof parsed.error === "string" ? parsed.error : snippet(res.body)}`);
    // A FallbackPolicy's answer is labelled by the mesh: count it as such, never as a model version.
    const fallback = header(res.headers, "x-weft-fallback");
    const version = fallback ? `fallback:${fallback}` : (header(res.headers, "x-model-version") ?? (typeof parsed.version === "string" ? parsed.version : "?"));
    const label = typeof parsed.label === "string" ? parsed.label : "?";
    stats.predictOk++;
    bump(stats.versions, version);
    bump(stats.labels, label);
    return `predict ${res.status} version=${version} label=${label}`;
  };

  const chat = async (prompt: string, session: string): Promise<string> => {
    const parser = new SseParser();
    let tokens = 0;
    let finish = "?";
    let done = false;
    const res = await httpCall(cfg.chatUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", "x-session-id": session },
      body: JSON.stringify({ model: cfg.chatModel, messages: [{ role: "user", content: prompt }], stream: true, max_tokens: cfg.chatMaxTokens }),
      timeoutMs: cfg.timeoutMs,
      ...(signal ? { signal } : {}),
      onResponse: (status) =>
        status !== 200
          ? undefined
          : (chunk) => {
              for (const data of parser.feed(chunk)) {
                if (data === "[DONE]") {
                  done = true;
                  continue;
                }
                try {
                  const c = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }> };
                  const choice = c.choices?.[0];
                  if (choice?.delta?.content) tokens++;
                  if (choice?.finish_reason) finish = choice.finish_reason;
                } catch {
                  // Ignore a malformed event; the [DONE] check below still catches a broken stream.
                }
              }
            },
    });
    if (res.status !== 200) throw new Error(`HTTP ${res.status} ${snippet(res.body)}`);
    if (!done) throw new Error(`stream ended without [DONE] after ${tokens} tokens`);
    const replica = header(res.headers, "x-replica") ?? "?";
    const kv = header(res.headers, "x-kv-cache") ?? "?";
    stats.chatOk++;
    stats.tokens += tokens;
    bump(stats.replicas, replica);
    if (kv === "hit") stats.kvHit++;
    else if (kv === "miss") stats.kvMiss++;
    return `chat ${res.status} replica=${replica} kv=${kv} session=${session} tokens=${tokens} finish=${finish}`;
  };

  let chats = 0;
  try {
    for (let i = 0; cfg.maxIterations === 0 || i < cfg.maxIterations; i++) {
      if (signal?.aborted) break;
      await attempt("predict", () => predict(TEXTS[i % TEXTS.length]!), () => stats.predictFailed++);
      if (cfg.chatEvery > 0 && (i + 1) % cfg.chatEvery === 0) {
        const session = `${cfg.sessionPrefix}-${(chats % cfg.sessions) + 1}`;
        const prompt = PROMPTS[chats % PROMPTS.length]!;
        chats++;
        await attempt("chat", () => chat(prompt, session), () => stats.chatFailed++);
      }
      if (cfg.maxIterations !== 0 && i + 1 >= cfg.maxIterations) break;
      await sleep(cfg.intervalMs, undefined, signal ? { signal } : {});
    }
  } catch (err) {
    // A shutdown abort ends the loop (from a request or from the sleep); anything else is a bug.
    if (!(err instanceof Stopped) && !signal?.aborted) throw err;
  }
  return stats;
}

if (import.meta.main) {
  let cfg: TrafficConfig;
  try {
    cfg = configFromEnv(process.env);
  } catch (err) {
    console.error(`traffic: ${(err as Error).message}`);
    process.exit(1);
  }
  const ac = new AbortController();
  process.once("SIGTERM", () => ac.abort());
  process.once("SIGINT", () => ac.abort());
  console.log(
    `traffic: starting: POST ${cfg.sentimentUrl} every ${cfg.intervalMs}ms` +
      (cfg.chatEvery > 0 ? `, streaming chat to ${cfg.chatUrl} every ${cfg.chatEvery} iterations over ${cfg.sessions} sessions` : ""),
  );
  const stats = await runTraffic(cfg, { log: (line) => console.log(`traffic: ${line}`), signal: ac.signal });
  console.log(`traffic: stopped: ${stats.summary()}`);
  // Exit now even if a keep-alive socket or timer lingers.
  process.exit(0);
}
