// OpenAI-compatible chat completions service over the Markov generator: SSE streaming, x-replica and a per-session KV-cache signal.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { once } from "node:events";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { generateTokens, joinToken, loadCorpus, tokenizeText, trainMarkov, type FinishReason, type MarkovModel } from "./generator.ts";
import { Chaos, HttpError, baseUrl, gracefulClose, isRecord, listen, pathOf, portFromEnv, readJson, runServerMain, sendJson, type Started } from "../shared/http.ts";

export const DEFAULT_MODEL_NAME = "weft-markov-2";
export const DEFAULT_MAX_TOKENS = 128;
export const MAX_TOKENS_LIMIT = 1024;
/** Sessions remembered per replica; the least recently used is forgotten first. */
export const KV_CACHE_SESSIONS = 1024;

export interface LlmOptions {
  port?: number;
  host?: string;
  /** Value of the x-replica header; default "<hostname>:<port>". */
  replica?: string;
  /** Name listed by GET /v1/models. */
  modelName?: string;
  /** Delay before each generated token (default 20 ms). */
  tokenDelayMs?: number;
  /** Extra delay before the first token when the session's KV cache is cold (default 0). */
  prefillDelayMs?: number;
  corpus?: string;
  graceMs?: number;
}

export interface LlmStats {
  /** Completions being generated right now (streaming or not). */
  active: number;
  completed: number;
  /** Completions stopped early because the client went away. */
  aborted: number;
  tokensGenerated: number;
  kvHits: number;
  kvMisses: number;
}

export interface ChatRequest {
  model: string;
  prompt: string;
  promptTokens: number;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number;
  seed?: number;
}

/** An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. */
export class ApiError extends HttpError {
  readonly param: string | null;
  readonly code: string | null;
  constructor(status: number, message: string, param: string | null = null, code: string | null = null) {
    super(status, message);
    this.param = param;
    this.code = code;
  }
}

export function errorBody(message: string, param: string | null = null, code: string | null = null, type = "invalid_request_error") {
  return { error: { message, type, param, code } };
}

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function contentText(content: unknown, i: number): string {
  if (typeof content === "string") return content;
  // Content parts: [{"type": "text", "text": "..."}]
  if (Array.isArray(content)) {
    return content
      .map((part, j) => {
        if (!isRecord(part) || part.type !== "text" || typeof part.text !== "string") {
          throw new ApiError(400, `messages[${i}].content[${j}] must be {"type": "text", "text": string}`, `messages[${i}].content`);
        }
        return part.text;
      })
      .join("\n");
  }
  if (content === null || content === undefined) return "";
  throw new ApiError(400, `messages[${i}].content must be a string or an array of text parts`, `messages[${i}].content`);
}

function intParam(body: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ApiError(400, `${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`, name);
  }
  return v;
}

/** Validates a chat completions body. The prompt is the last user message. */
export function parseChatRequest(body: unknown): ChatRequest {
  if (!isRecord(body)) throw new ApiError(400, "request body must be a JSON object");
  if (typeof body.model !== "string" || body.model.trim() === "") {
    throw new ApiError(400, "you must provide a model parameter (a non-empty string)", "model");
  }
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ApiError(400, "messages must be a non-empty array of {role, content}", "messages");
  }
  let prompt: string | undefined;
  let promptTokens = 0;
  messages.forEach((m, i) => {
    if (!isRecord(m)) throw new ApiError(400, `messages[${i}] must be an object`, `messages[${i}]`);
    if (typeof m.role !== "string" || !ROLES.has(m.role)) {
      throw new ApiError(400, `messages[${i}].role must be one of ${[...ROLES].join(", ")}`, `messages[${i}].role`);
    }
    const text = contentText(m.content, i);
    promptTokens += tokenizeText(text).length;
    if (m.role === "user") prompt = text;
  });
  if (prompt === undefined) throw new ApiError(400, "messages must include at least one user message", "messages");
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") {
    throw new ApiError(400, "stream must be a boolean", "stream");
  }
  const so = body.stream_options;
  if (so !== undefined && so !== null && !isRecord(so)) throw new ApiError(400, "stream_options must be an object", "stream_options");
  const maxTokens =
    intParam(body, "max_completion_tokens", 1, MAX_TOKENS_LIMIT) ?? intParam(body, "max_tokens", 1, MAX_TOKENS_LIMIT) ?? DEFAULT_MAX_TOKENS;
  intParam(body, "n", 1, 1); // only one choice is supported
  const seed = intParam(body, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return {
    model: body.model,
    prompt,
    promptTokens,
    stream: body.stream === true,
    includeUsage: isRecord(so) && so.include_usage === true,
    maxTokens,
    ...(seed === undefined ? {} : { seed: seed >>> 0 }),
  };
}

/** Per-replica memory of sessions it has served: stands in for a warm KV cache. Bounded LRU. */
export class SessionCache {
  private readonly seen = new Map<string, number>();
  private readonly limit: number;
  constructor(limit = KV_CACHE_SESSIONS) {
    this.limit = limit;
  }
  /** Records a request for the session; true if this replica had seen it before (a hit). */
  touch(session: string): boolean {
    const count = this.seen.get(session);
    this.seen.delete(session);
    this.seen.set(session, (count ?? 0) + 1);
    if (this.seen.size > this.limit) this.seen.delete(this.seen.keys().next().value!);
    return count !== undefined;
  }
  get size(): number {
    return this.seen.size;
  }
}

export async function start(opts: LlmOptions = {}): Promise<Started & { replica: string; stats: LlmStats; sessions: SessionCache }> {
  const model: MarkovModel = trainMarkov(opts.corpus ?? loadCorpus());
  const modelName = opts.modelName ?? DEFAULT_MODEL_NAME;
  const tokenDelayMs = opts.tokenDelayMs ?? 20;
  const prefillDelayMs = opts.prefillDelayMs ?? 0;
  const stats: LlmStats = { active: 0, completed: 0, aborted: 0, tokensGenerated: 0, kvHits: 0, kvMisses: 0 };
  const sessions = new SessionCache();
  const createdAt = Math.floor(Date.now() / 1000);
  let replica = opts.replica ?? "";

  /** Generates up to maxTokens, pacing each token; stops as soon as `signal` aborts. */
  async function produce(
    chat: ChatRequest,
    cold: boolean,
    signal: AbortSignal,
    onToken: (delta: string) => Promise<void> | void,
  ): Promise<{ finishReason: FinishReason; completionTokens: number } | "aborted"> {
    stats.active++;
    const it = generateTokens(model, chat.prompt, { maxTokens: chat.maxTokens, ...(chat.seed === undefined ? {} : { seed: chat.seed }) });
    let previous: string | undefined;
    let count = 0;
    try {
      if (cold && prefillDelayMs > 0) await sleep(prefillDelayMs, undefined, { signal });
      for (;;) {
        if (signal.aborted) return "aborted";
        if (tokenDelayMs > 0) await sleep(tokenDelayMs, undefined, { signal });
        const r = it.next();
        if (r.done) return { finishReason: r.value, completionTokens: count };
        count++;
        stats.tokensGenerated++;
        await onToken(joinToken(previous, r.value));
        previous = r.value;
      }
    } catch (err) {
      if (signal.aborted) return "aborted";
      throw err;
    } finally {
      it.return("stop");
      stats.active--;
    }
  }

  async function chatCompletions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chat = parseChatRequest(await readJson(req));
    const sessionHeader = req.headers["x-session-id"];
    const session = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
    const hit = session !== undefined && session !== "" ? sessions.touch(session) : false;
    if (hit) stats.kvHits++;
    else stats.kvMisses++;
    res.setHeader("x-kv-cache", hit ? "hit" : "miss");

    // Stop generating the moment the client goes away.
    const ac = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) ac.abort();
    });
    const id = `chatcmpl-${randomBytes(12).toString("hex")}`;
    const created = Math.floor(Date.now() / 1000);

    if (!chat.stream) {
      let content = "";
      const result = await produce(chat, !hit, ac.signal, (d) => {
        content += d;
      });
      if (result === "aborted") {
        stats.aborted++;
        return;
      }
      stats.completed++;
      sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model: chat.model,
        choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: result.finishReason }],
        usage: usage(chat.promptTokens, result.completionTokens),
      });
      return;
    }

    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    const chunk = (delta: Record<string, string>, finishReason: FinishReason | null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model: chat.model,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    });
    const send = async (data: unknown) => {
      // Each event goes out in its own write; wait for the socket if it is backed up.
      if (!res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`)) {
        await once(res, "drain", { signal: ac.signal });
      }
    };
    try {
      await send(chunk({ role: "assistant", content: "" }, null));
      const result = await produce(chat, !hit, ac.signal, (d) => send(chunk({ content: d }, null)));
      if (result === "aborted") {
        stats.aborted++;
        return;
      }
      await send(chunk({}, result.finishReason));
      if (chat.includeUsage) {
        await send({ id, object: "chat.completion.chunk", created, model: chat.model, choices: [], usage: usage(chat.promptTokens, result.completionTokens) });
      }
      await send("[DONE]");
      stats.completed++;
      res.end();
    } catch (err) {
      if (ac.signal.aborted) {
        stats.aborted++;
        return;
      }
      throw err;
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    res.setHeader("x-replica", replica);
    const path = pathOf(req);
    const method = req.method ?? "GET";
    const route = (allowed: string) => {
      if (method !== allowed) {
        res.setHeader("allow", allowed);
        throw new ApiError(405, `method ${method} not allowed on ${path}; use ${allowed}`, null, "method_not_allowed");
      }
    };
    if (path === "/v1/chat/completions") {
      route("POST");
      await chatCompletions(req, res);
    } else if (path === "/v1/models") {
      route("GET");
      sendJson(res, 200, { object: "list", data: [{ id: modelName, object: "model", created: createdAt, owned_by: "weft-demo" }] });
    } else if (path === "/healthz") {
      route("GET");
      sendJson(res, 200, { status: "ok", replica, active: stats.active });
    } else if (path === "/") {
      route("GET");
      sendJson(res, 200, {
        service: "llm-chat",
        description: "OpenAI-compatible chat completions from an order-2 Markov chain; streams tokens as server-sent events.",
        model: modelName,
        replica,
        endpoints: ["POST /v1/chat/completions", "GET /v1/models", "GET /healthz"],
        stats,
        sessions: sessions.size,
      });
    } else {
      throw new ApiError(404, `unknown request URL: ${method} ${path}`, null, "unknown_url");
    }
  };

  const chaos = new Chaos();
  const server = createServer((req, res) => {
    if (chaos.intercept(req, res)) return;
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        // Mid-stream failure: nothing sensible to send; cut the connection so the client sees it.
        if (!(err instanceof HttpError)) console.error(`llm: ${(err as Error)?.stack ?? err}`);
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        if (err.status === 413) res.setHeader("connection", "close");
        const param = err instanceof ApiError ? err.param : null;
        const code = err instanceof ApiError ? err.code : null;
        sendJson(res, err.status, errorBody(err.message, param, code));
      } else {
        console.error(`llm: ${(err as Error)?.stack ?? err}`);
        sendJson(res, 500, errorBody("internal error", null, null, "server_error"));
      }
    });
  });
  const address = await listen(server, opts.port ?? 0, opts.host ?? "127.0.0.1");
  if (replica === "") replica = `${hostname()}:${address.port}`;
  return {
    server,
    address,
    url: baseUrl(address),
    replica,
    stats,
    sessions,
    info: `replica=${replica} model=${modelName} token_delay_ms=${tokenDelayMs}`,
    close: () => gracefulClose(server, opts.graceMs),
  };
}

function usage(promptTokens: number, completionTokens: number) {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return v;
}

if (import.meta.main) {
  await runServerMain("llm", () => {
    const { port, host } = portFromEnv(process.env);
    return start({
      port,
      host,
      ...(process.env.REPLICA || process.env.WEFT_INSTANCE ? { replica: process.env.REPLICA || process.env.WEFT_INSTANCE } : {}),
      ...(process.env.MODEL_NAME ? { modelName: process.env.MODEL_NAME } : {}),
      tokenDelayMs: envInt("TOKEN_DELAY_MS", 20),
      prefillDelayMs: envInt("PREFILL_DELAY_MS", 0),
    });
  });
}
