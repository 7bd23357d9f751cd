// Tests for the OpenAI-compatible LLM service: shapes, SSE streaming, KV-cache signal, disconnects, errors, SIGTERM.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { start, SessionCache } from "./server.ts";
import { generateText, loadCorpus, trainMarkov } from "./generator.ts";
import { SseParser } from "../shared/sse.ts";
import { cleanEnv, runModule, within } from "../shared/child.ts";

const SERVER = new URL("./server.ts", import.meta.url);
type Server = Awaited<ReturnType<typeof start>>;

function chat(base: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

const ask = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "weft-markov-2",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content },
  ],
  ...extra,
});

/** Reads an SSE response to the end, recording each event with the time it arrived. */
async function readEvents(res: Response, limit = 10_000): Promise<Array<{ data: string; at: number }>> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const events: Array<{ data: string; at: number }> = [];
  const reader = res.body!.getReader();
  for (let i = 0; i < limit; i++) {
    const { done, value } = await reader.read();
    if (done) break;
    const at = performance.now();
    for (const data of parser.feed(decoder.decode(value, { stream: true }))) events.push({ data, at });
  }
  assert.equal(parser.pending, "", "stream ended mid-event");
  return events;
}

describe("llm server (in-process)", () => {
  let s: Server;
  before(async () => {
    s = await start({ port: 0, replica: "replica-a", tokenDelayMs: 0 });
  });
  after(() => s.close());

  test("GET /v1/models, /healthz and / carry x-replica", async () => {
    const models = await fetch(`${s.url}/v1/models`);
    assert.equal(models.status, 200);
    assert.equal(models.headers.get("x-replica"), "replica-a");
    const list = (await models.json()) as { object: string; data: Array<{ id: string; object: string }> };
    assert.equal(list.object, "list");
    assert.deepEqual(list.data.map((m) => [m.id, m.object]), [["weft-markov-2", "model"]]);
    for (const path of ["/healthz", "/"]) {
      const res = await fetch(`${s.url}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-replica"), "replica-a");
      await res.body?.cancel();
    }
  });

  test("non-streaming chat.completion: shape, usage, deterministic content", async () => {
    const res = await chat(s.url, ask("What is a KV cache?", { max_tokens: 40 }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-replica"), "replica-a");
    const body = (await res.json()) as {
      id: string;
      object: string;
      created: number;
      model: string;
      choices: Array<{ index: number; message: { role: string; content: string }; finish_reason: string }>;
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(body.object, "chat.completion");
    assert.ok(Number.isInteger(body.created));
    assert.equal(body.model, "weft-markov-2");
    assert.equal(body.choices.length, 1);
    const [choice] = body.choices;
    assert.equal(choice!.index, 0);
    assert.equal(choice!.message.role, "assistant");
    const expected = generateText(trainMarkov(loadCorpus()), "What is a KV cache?", { maxTokens: 40 });
    assert.equal(choice!.message.content, expected.text);
    assert.equal(choice!.finish_reason, expected.finishReason);
    assert.equal(body.usage.completion_tokens, expected.tokens.length);
    assert.equal(body.usage.prompt_tokens, 4 + 6); // "You are terse ." + "What is a KV cache ?"
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
  });

  test("streaming: chat.completion.chunk events, role first, finish_reason last, then [DONE]", async () => {
    const res = await chat(s.url, ask("Explain canary releases", { stream: true, max_tokens: 30 }));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(res.headers.get("x-replica"), "replica-a");
    const events = await readEvents(res);
    assert.equal(events.at(-1)!.data, "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as {
      id: string;
      object: string;
      created: number;
      model: string;
      choices: Array<{ index: number; delta: { role?: string; content?: string }; finish_reason: string | null }>;
    });
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0]!.id && c.model === "weft-markov-2"));
    assert.ok(chunks.every((c) => c.choices.length === 1 && c.choices[0]!.index === 0));
    assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: "assistant", content: "" });
    const last = chunks.at(-1)!.choices[0]!;
    assert.deepEqual(last.delta, {});
    assert.ok(last.finish_reason === "stop" || last.finish_reason === "length");
    const middle = chunks.slice(1, -1);
    assert.ok(middle.every((c) => c.choices[0]!.finish_reason === null && typeof c.choices[0]!.delta.content === "string"));
    const streamed = middle.map((c) => c.choices[0]!.delta.content).join("");
    // Same prompt without streaming gives the same text, token for token.
    const whole = (await (await chat(s.url, ask("Explain canary releases", { max_tokens: 30 }))).json()) as {
      choices: Array<{ message: { content: string }; finish_reason: string }>;
    };
    assert.equal(streamed, whole.choices[0]!.message.content);
    assert.equal(last.finish_reason, whole.choices[0]!.finish_reason);
    assert.ok(middle.length >= 1 && middle.length <= 30);
  });

  test("streaming with stream_options.include_usage sends a usage chunk before [DONE]", async () => {
    const res = await chat(s.url, ask("retries", { stream: true, max_tokens: 8, stream_options: { include_usage: true } }));
    const events = await readEvents(res);
    const usage = JSON.parse(events.at(-2)!.data) as { choices: unknown[]; usage: { completion_tokens: number } };
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.completion_tokens, 8);
  });

  test("content parts are accepted as text", async () => {
    const res = await chat(s.url, { model: "m", messages: [{ role: "user", content: [{ type: "text", text: "service mesh" }] }], max_tokens: 5 });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { model: string; choices: Array<{ message: { content: string } }> };
    assert.equal(body.model, "m");
    assert.ok(body.choices[0]!.message.content.length > 0);
  });

  test("x-kv-cache: miss on a session's first request to a replica, hit afterwards", async () => {
    const other = await start({ port: 0, replica: "replica-b", tokenDelayMs: 0 });
    try {
      const kv = async (base: string, headers: Record<string, string>) => {
        const res = await chat(base, ask("hi", { max_tokens: 3 }), headers);
        await res.body?.cancel();
        return [res.headers.get("x-replica"), res.headers.get("x-kv-cache")];
      };
      assert.deepEqual(await kv(s.url, { "x-session-id": "s-1" }), ["replica-a", "miss"]);
      assert.deepEqual(await kv(s.url, { "x-session-id": "s-1" }), ["replica-a", "hit"]);
      assert.deepEqual(await kv(s.url, { "x-session-id": "s-2" }), ["replica-a", "miss"]);
      assert.deepEqual(await kv(s.url, {}), ["replica-a", "miss"]);
      assert.deepEqual(await kv(s.url, {}), ["replica-a", "miss"]);
      // Another replica has its own cache: the session is cold there.
      assert.deepEqual(await kv(other.url, { "x-session-id": "s-1" }), ["replica-b", "miss"]);
      assert.deepEqual(await kv(other.url, { "x-session-id": "s-1" }), ["replica-b", "hit"]);
      // Streaming requests report it too.
      const res = await chat(s.url, ask("hi", { max_tokens: 3, stream: true }), { "x-session-id": "s-1" });
      assert.equal(res.headers.get("x-kv-cache"), "hit");
      await readEvents(res);
    } finally {
      await other.close();
    }
  });

  test("bad input gets 400 in OpenAI's error shape", async () => {
    const cases: Array<[unknown, string | null, RegExp]> = [
      ["{oops", null, /not valid JSON/],
      ["[]", null, /JSON object/],
      [{ messages: [{ role: "user", content: "hi" }] }, "model", /model/],
      [{ model: "m" }, "messages", /non-empty array/],
      [{ model: "m", messages: [] }, "messages", /non-empty array/],
      [{ model: "m", messages: ["hi"] }, "messages[0]", /must be an object/],
      [{ model: "m", messages: [{ role: "wizard", content: "hi" }] }, "messages[0].role", /role must be one of/],
      [{ model: "m", messages: [{ role: "user", content: 7 }] }, "messages[0].content", /string or an array/],
      [{ model: "m", messages: [{ role: "user", content: [{ type: "image_url" }] }] }, "messages[0].content", /type/],
      [{ model: "m", messages: [{ role: "system", content: "x" }] }, "messages", /at least one user message/],
      [ask("hi", { stream: "yes" }), "stream", /boolean/],
      [ask("hi", { max_tokens: 0 }), "max_tokens", /between 1 and 1024/],
      [ask("hi", { max_tokens: 5000 }), "max_tokens", /between 1 and 1024/],
      [ask("hi", { max_tokens: 1.5 }), "max_tokens", /integer/],
      [ask("hi", { n: 2 }), "n", /between 1 and 1/],
    ];
    for (const [body, param, re] of cases) {
      const res = await chat(s.url, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.headers.get("x-replica"), "replica-a");
      const json = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
      assert.deepEqual(Object.keys(json.error).sort(), ["code", "message", "param", "type"]);
      assert.equal(json.error.type, "invalid_request_error");
      assert.equal(json.error.param, param, JSON.stringify(body));
      assert.match(json.error.message, re);
    }
  });

  test("unknown URL is 404 and a wrong method is 405, both in OpenAI's error shape", async () => {
    const nf = await fetch(`${s.url}/v1/completions`, { method: "POST", body: "{}" });
    assert.equal(nf.status, 404);
    assert.equal(((await nf.json()) as { error: { code: string } }).error.code, "unknown_url");
    const wm = await fetch(`${s.url}/v1/chat/completions`);
    assert.equal(wm.status, 405);
    assert.equal(wm.headers.get("allow"), "POST");
    assert.equal(((await wm.json()) as { error: { code: string } }).error.code, "method_not_allowed");
  });
});

describe("llm server: pacing and disconnects", () => {
  test("tokens arrive one by one, spaced by TOKEN_DELAY_MS", async () => {
    const s = await start({ port: 0, tokenDelayMs: 25 });
    try {
      const t0 = performance.now();
      const res = await chat(s.url, ask("load balancing", { stream: true, max_tokens: 16 }));
      const events = await readEvents(res);
      const content = events.filter((e) => e.data !== "[DONE]" && (JSON.parse(e.data) as { choices: Array<{ delta: { content?: string } }> }).choices[0]!.delta.content);
      assert.equal(content.length, 16);
      const firstAt = content[0]!.at - t0;
      const lastAt = content.at(-1)!.at - t0;
      // 16 tokens at 25 ms each take >= 375 ms end to end; the first one shows up long before the last.
      assert.ok(lastAt >= 350, `last token at ${lastAt}ms`);
      assert.ok(lastAt - firstAt >= 300, `first ${firstAt}ms, last ${lastAt}ms: not streamed`);
    } finally {
      await s.close();
    }
  });

  test("x-replica defaults to hostname:port", async () => {
    const s = await start({ port: 0, tokenDelayMs: 0 });
    try {
      const res = await fetch(`${s.url}/healthz`);
      assert.equal(res.headers.get("x-replica"), `${hostname()}:${s.address.port}`);
      await res.body?.cancel();
    } finally {
      await s.close();
    }
  });

  test("client disconnect mid-stream stops generation", async () => {
    const s = await start({ port: 0, tokenDelayMs: 20 });
    try {
      const ac = new AbortController();
      const res = await chat(s.url, ask("service mesh", { stream: true, max_tokens: 1000 }), {}, ac.signal);
      const reader = res.body!.getReader();
      const parser = new SseParser();
      const decoder = new TextDecoder();
      let seen = 0;
      for (let i = 0; i < 100 && seen < 3; i++) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += parser.feed(decoder.decode(value, { stream: true })).length;
      }
      assert.ok(seen >= 3);
      assert.equal(s.stats.active, 1);
      ac.abort();
      await reader.cancel().catch(() => {});
      for (let i = 0; i < 100 && s.stats.active > 0; i++) await sleep(10);
      assert.equal(s.stats.active, 0);
      assert.equal(s.stats.aborted, 1);
      assert.equal(s.stats.completed, 0);
      const generated = s.stats.tokensGenerated;
      assert.ok(generated < 20, `generated ${generated} tokens`);
      await sleep(100);
      assert.equal(s.stats.tokensGenerated, generated, "kept generating after the client left");
    } finally {
      await s.close();
    }
  });

  test("client disconnect during a non-streaming completion stops it too", async () => {
    const s = await start({ port: 0, tokenDelayMs: 20 });
    try {
      const ac = new AbortController();
      const pending = chat(s.url, ask("service mesh", { max_tokens: 1000 }), {}, ac.signal);
      for (let i = 0; i < 100 && s.stats.tokensGenerated < 2; i++) await sleep(10);
      ac.abort();
      await assert.rejects(pending);
      for (let i = 0; i < 100 && s.stats.active > 0; i++) await sleep(10);
      assert.equal(s.stats.active, 0);
      assert.equal(s.stats.aborted, 1);
    } finally {
      await s.close();
    }
  });
});

test("SessionCache is a bounded LRU", () => {
  const c = new SessionCache(2);
  assert.equal(c.touch("a"), false);
  assert.equal(c.touch("b"), false);
  assert.equal(c.touch("a"), true); // a is now most recent
  assert.equal(c.touch("c"), false); // evicts b
  assert.equal(c.size, 2);
  assert.equal(c.touch("a"), true);
  assert.equal(c.touch("b"), false);
});

describe("llm server as a process", () => {
  test("logs one line, finishes an in-flight stream on SIGTERM, exits 0", async () => {
    const child = runModule(SERVER, cleanEnv({ PORT: "0", REPLICA: "r-proc", TOKEN_DELAY_MS: "30" }));
    try {
      const [line, port] = await child.waitFor(/llm listening on http:\/\/127\.0\.0\.1:(\d+).*\n/);
      assert.match(line, /replica=r-proc/);
      const base = `http://127.0.0.1:${port}`;
      const res = await chat(base, ask("What is a KV cache?", { stream: true, max_tokens: 15 }), { "x-session-id": "abc" });
      assert.equal(res.headers.get("x-replica"), "r-proc");
      assert.equal(res.headers.get("x-kv-cache"), "miss");
      const reader = res.body!.getReader();
      const first = await reader.read(); // the role chunk is out: the request is in flight
      assert.equal(first.done, false);
      child.proc.kill("SIGTERM");
      await child.waitFor(/SIGTERM received/);
      // New connections are refused while the stream keeps going.
      await assert.rejects(fetch(`${base}/healthz`));
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const events = parser.feed(decoder.decode(first.value));
      for (let i = 0; i < 1000; i++) {
        const { done, value } = await reader.read();
        if (done) break;
        events.push(...parser.feed(decoder.decode(value, { stream: true })));
      }
      assert.equal(events.at(-1), "[DONE]");
      assert.equal(events.length, 1 + 15 + 1 + 1); // role, tokens, finish, [DONE]
      assert.equal(await within(child.exited, 5000, "exit after SIGTERM"), 0);
    } finally {
      child.kill();
    }
  });

  test("rejects a bad TOKEN_DELAY_MS", async () => {
    const child = runModule(SERVER, cleanEnv({ PORT: "0", TOKEN_DELAY_MS: "fast" }));
    try {
      assert.equal(await within(child.exited, 5000, "exit"), 1);
      assert.match(child.stderr(), /TOKEN_DELAY_MS must be a non-negative integer/);
    } finally {
      child.kill();
    }
  });
});
