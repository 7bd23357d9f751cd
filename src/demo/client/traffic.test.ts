// Tests for the traffic client, and proof of how Node 24 routes plain-HTTP requests under NODE_USE_ENV_PROXY=1.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { configFromEnv, DEFAULT_CONFIG, runTraffic, PROMPTS, TEXTS, type TrafficConfig } from "./traffic.ts";
import { start as startSentiment } from "../sentiment/server.ts";
import { start as startLlm } from "../llm/server.ts";
import { SseParser } from "../shared/sse.ts";
import { cleanEnv, runModule, within } from "../shared/child.ts";

const TRAFFIC = new URL("./traffic.ts", import.meta.url);

interface Seen {
  /** "absolute" for "GET http://host/path", "origin" for "GET /path" (e.g. inside a CONNECT tunnel), "connect" for CONNECT. */
  form: "absolute" | "origin" | "connect";
  method: string;
  target: string;
  host: string | undefined;
  session: string | undefined;
}

/**
 * A tiny forward proxy standing in for the sidecar: records every request line, forwards absolute-form
 * requests to the upstream registered for the host name (round robin), and, to observe fetch(), accepts
 * CONNECT by serving the tunnelled requests itself.
 */
class StubProxy {
  readonly seen: Seen[] = [];
  private readonly upstreams = new Map<string, string[]>();
  private readonly turns = new Map<string, number>();
  readonly server: Server;
  port = 0;

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.seen.push({ form: "connect", method: "CONNECT", target: req.url ?? "", host: req.headers.host, session: undefined });
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) socket.unshift(head);
      // Serve whatever comes through the tunnel as ordinary HTTP on this same server.
      this.server.emit("connection", socket);
    });
  }

  route(host: string, ...baseUrls: string[]): this {
    this.upstreams.set(host, baseUrls);
    return this;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? "";
    const absolute = /^https?:\/\//.test(target);
    const session = req.headers["x-session-id"];
    this.seen.push({
      form: absolute ? "absolute" : "origin",
      method: req.method ?? "",
      target,
      host: req.headers.host,
      session: Array.isArray(session) ? session[0] : session,
    });
    const host = (req.headers.host ?? "").replace(/:80$/, "");
    const pool = this.upstreams.get(host);
    if (!pool) {
      res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ error: `stub proxy: no upstream for ${host}` }));
      return;
    }
    const turn = this.turns.get(host) ?? 0;
    this.turns.set(host, turn + 1);
    const path = absolute ? new URL(target).pathname + new URL(target).search : target;
    const headers = { ...req.headers };
    delete headers["proxy-connection"];
    const up = request(`${pool[turn % pool.length]}${path}`, { method: req.method, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(up);
  }
}

/** Runs a snippet in a fresh Node with the given proxy environment; returns its stdout. */
async function runSnippet(code: string, env: NodeJS.ProcessEnv): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const { spawn } = await import("node:child_process");
  const proc = spawn(process.execPath, ["--input-type=module", "-e", code], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  proc.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exit = new Promise<number | string>((resolve) => proc.on("exit", (c, s) => resolve(c ?? s ?? "?")));
  try {
    return { code: await within(exit, 10_000, "snippet"), stdout, stderr };
  } finally {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  }
}

const proxyEnv = (proxy: StubProxy, extra: Record<string, string> = {}) =>
  cleanEnv({ HTTP_PROXY: proxy.url, NODE_USE_ENV_PROXY: "1", ...extra });

describe("Node 24 with NODE_USE_ENV_PROXY=1 and HTTP_PROXY (what a sidecar will see)", () => {
  let sentiment: Awaited<ReturnType<typeof startSentiment>>;
  let proxy: StubProxy;
  before(async () => {
    sentiment = await startSentiment({ port: 0, version: "v1" });
    proxy = await new StubProxy().route("sentiment-model", sentiment.url).listen();
  });
  after(async () => {
    await proxy.close();
    await sentiment.close();
  });

  test("node:http sends an absolute-form request to the proxy", async () => {
    proxy.seen.length = 0;
    const out = await runSnippet(
      `import http from "node:http";
       const req = http.request("http://sentiment-model/predict", { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
         let b = ""; res.setEncoding("utf8"); res.on("data", (d) => (b += d)); res.on("end", () => console.log(res.statusCode, b));
       });
       req.on("error", (e) => { console.error(e); process.exit(2); });
       req.end(JSON.stringify({ text: "great service" }));`,
      proxyEnv(proxy),
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^200 .*"label":"positive"/);
    assert.deepEqual(proxy.seen.map((s) => [s.form, s.method, s.target, s.host]), [
      ["absolute", "POST", "http://sentiment-model/predict", "sentiment-model"],
    ]);
  });

  test("fetch() does not: it tunnels plain http:// through CONNECT host:80 (Node 24.21, undici 7)", async (t) => {
    proxy.seen.length = 0;
    const out = await runSnippet(
      `const res = await fetch("http://sentiment-model/predict", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: "awful" }) });
       console.log(res.status, await res.text());`,
      proxyEnv(proxy),
    );
    t.diagnostic(`node ${process.version}, undici ${process.versions.undici}: proxy saw ${JSON.stringify(proxy.seen.map((s) => `${s.method} ${s.target}`))}`);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^200 .*"label":"negative"/);
    // If this starts failing after a Node upgrade, undici probably adopted absolute form for http:// targets
    // (nodejs/undici#5116): then fetch() would also work with a proxy that does not implement CONNECT.
    assert.deepEqual(
      proxy.seen.map((s) => [s.form, s.method, s.target, s.host]),
      [
        ["connect", "CONNECT", "sentiment-model:80", "sentiment-model"],
        ["origin", "POST", "/predict", "sentiment-model"],
      ],
      "fetch() under NODE_USE_ENV_PROXY no longer tunnels plain HTTP through CONNECT",
    );
  });
});

describe("SseParser", () => {
  test("splits events across arbitrary chunk boundaries, CRLF and multi-line data", () => {
    const p = new SseParser();
    assert.deepEqual(p.feed("data: {\"a\":1}\n\nda"), ['{"a":1}']);
    assert.deepEqual(p.feed("ta: x\r\n\r\n: comment\n\nevent: e\ndata: l1\ndata: l2\n"), ["x"]);
    assert.equal(p.pending, "event: e\ndata: l1\ndata: l2\n");
    assert.deepEqual(p.feed("\ndata:[DONE]\n\n"), ["l1\nl2", "[DONE]"]);
    assert.equal(p.pending, "");
  });
});

describe("configFromEnv", () => {
  test("defaults target the plain service names", () => {
    assert.deepEqual(configFromEnv({}), DEFAULT_CONFIG);
    assert.equal(DEFAULT_CONFIG.sentimentUrl, "http://sentiment-model/predict");
    assert.equal(DEFAULT_CONFIG.chatUrl, "http://llm-chat/v1/chat/completions");
    assert.equal(DEFAULT_CONFIG.intervalMs, 500);
  });
  test("reads overrides and rejects nonsense", () => {
    const c = configFromEnv({ INTERVAL_MS: "20", CHAT_EVERY: "0", SESSIONS: "5", MAX_ITERATIONS: "7" });
    assert.equal(c.intervalMs, 20);
    assert.equal(c.chatEvery, 0);
    assert.equal(c.sessions, 5);
    assert.equal(c.maxIterations, 7);
    assert.throws(() => configFromEnv({ INTERVAL_MS: "soon" }), /INTERVAL_MS must be an integer >= 0/);
    assert.throws(() => configFromEnv({ SESSIONS: "0" }), /SESSIONS must be an integer >= 1/);
  });
});

describe("runTraffic (in-process, direct URLs)", () => {
  let sentiment: Awaited<ReturnType<typeof startSentiment>>;
  let llm: Awaited<ReturnType<typeof startLlm>>;
  let cfg: TrafficConfig;
  before(async () => {
    sentiment = await startSentiment({ port: 0, version: "v3" });
    llm = await startLlm({ port: 0, replica: "llm-x", tokenDelayMs: 0 });
    cfg = {
      ...DEFAULT_CONFIG,
      sentimentUrl: `${sentiment.url}/predict`,
      chatUrl: `${llm.url}/v1/chat/completions`,
      intervalMs: 1,
      chatEvery: 2,
      sessions: 2,
      chatMaxTokens: 6,
      maxIterations: 8,
      logEveryMs: 0,
    };
  });
  after(async () => {
    await sentiment.close();
    await llm.close();
  });

  test("sends predictions and streaming chats, rotating sessions; counts what answered", async () => {
    const lines: string[] = [];
    const stats = await runTraffic(cfg, { log: (l) => lines.push(l) });
    assert.equal(stats.predictOk, 8);
    assert.equal(stats.predictFailed, 0);
    assert.deepEqual([...stats.versions], [["v3", 8]]);
    assert.equal(stats.chatOk, 4);
    assert.equal(stats.chatFailed, 0);
    assert.equal(stats.tokens, 4 * 6);
    assert.deepEqual([...stats.replicas], [["llm-x", 4]]);
    // Sessions 1, 2, 1, 2 on one replica: the first visit of each is a miss, the rest hit.
    assert.equal(stats.kvMiss, 2);
    assert.equal(stats.kvHit, 2);
    assert.equal(lines.length, 12);
    assert.match(lines[0]!, /^predict 200 version=v3 label=\w+ \d+ms \|\| predict ok=1 err=0/);
    assert.match(lines[2]!, /^chat 200 replica=llm-x kv=miss session=session-1 tokens=6 finish=length \d+ms/);
    assert.match(lines[5]!, /^chat 200 replica=llm-x kv=miss session=session-2 /);
    assert.match(lines[8]!, /^chat 200 replica=llm-x kv=hit session=session-1 /);
    assert.ok(TEXTS.length >= 8 && PROMPTS.length >= 4);
  });

  test("logs at most once per LOG_EVERY_MS", async () => {
    let clock = 0;
    const lines: string[] = [];
    // Each call advances the fake clock by 400 ms: with a 1000 ms window, every third call is logged.
    await runTraffic({ ...cfg, chatEvery: 0, maxIterations: 9, logEveryMs: 1000 }, { log: (l) => lines.push(l), now: () => (clock += 400) });
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, /predict ok=7 /);
  });

  test("failures are logged and counted, and the loop keeps going", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const lines: string[] = [];
    const stats = await runTraffic(
      { ...cfg, sentimentUrl: `http://127.0.0.1:${deadPort}/predict`, chatUrl: `${sentiment.url}/v1/chat/completions`, maxIterations: 4 },
      { log: (l) => lines.push(l) },
    );
    assert.equal(stats.predictFailed, 4);
    assert.equal(stats.chatFailed, 2);
    assert.match(lines[0]!, /^predict error: .*ECONNREFUSED/);
    assert.match(lines[2]!, /^chat error: HTTP 404 /);
    assert.equal(lines.length, 6);
  });

  test("a stalled upstream times out instead of hanging", async () => {
    const stall = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => stall.listen(0, "127.0.0.1", r));
    try {
      const lines: string[] = [];
      const url = `http://127.0.0.1:${(stall.address() as AddressInfo).port}/predict`;
      const stats = await runTraffic({ ...cfg, sentimentUrl: url, chatEvery: 0, maxIterations: 1, timeoutMs: 100 }, { log: (l) => lines.push(l) });
      assert.equal(stats.predictFailed, 1);
      assert.match(lines[0]!, /predict error: timed out/);
    } finally {
      stall.closeAllConnections();
      await new Promise<void>((r) => stall.close(() => r()));
    }
  });

  test("aborting the signal stops the loop promptly, without counting an error", async () => {
    const ac = new AbortController();
    const lines: string[] = [];
    const running = runTraffic({ ...cfg, maxIterations: 0, intervalMs: 60_000 }, { log: (l) => lines.push(l), signal: ac.signal });
    for (let i = 0; i < 200 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    const stats = await within(running, 2000, "runTraffic to stop");
    assert.equal(stats.predictOk, 1);
    assert.equal(stats.predictFailed + stats.chatFailed, 0);
  });
});

describe("traffic client as a process behind a proxy", () => {
  let v1: Awaited<ReturnType<typeof startSentiment>>;
  let v2: Awaited<ReturnType<typeof startSentiment>>;
  let llmA: Awaited<ReturnType<typeof startLlm>>;
  let llmB: Awaited<ReturnType<typeof startLlm>>;
  let proxy: StubProxy;
  before(async () => {
    v1 = await startSentiment({ port: 0, version: "v1" });
    v2 = await startSentiment({ port: 0, version: "v2", model: "naive-bayes" });
    llmA = await startLlm({ port: 0, replica: "llm-a", tokenDelayMs: 1 });
    llmB = await startLlm({ port: 0, replica: "llm-b", tokenDelayMs: 1 });
    proxy = await new StubProxy().route("sentiment-model", v1.url, v2.url).route("llm-chat", llmA.url, llmB.url).listen();
  });
  after(async () => {
    await proxy.close();
    await Promise.all([v1.close(), v2.close(), llmA.close(), llmB.close()]);
  });

  test("all requests reach the proxy in absolute form by plain name; logs which version/replica answered", async () => {
    proxy.seen.length = 0;
    const child = runModule(TRAFFIC, proxyEnv(proxy, { MAX_ITERATIONS: "8", INTERVAL_MS: "5", CHAT_EVERY: "2", LOG_EVERY_MS: "0", CHAT_MAX_TOKENS: "5" }));
    try {
      assert.equal(await within(child.exited, 15_000, "traffic to finish"), 0, child.stderr());
      const out = child.stdout();
      assert.match(out, /^traffic: starting: POST http:\/\/sentiment-model\/predict every 5ms/);
      assert.match(out, /predict 200 version=v1 /);
      assert.match(out, /predict 200 version=v2 /);
      assert.match(out, /chat 200 replica=llm-a kv=miss session=session-1 tokens=5/);
      assert.match(out, /chat 200 replica=llm-b /);
      assert.match(out, /traffic: stopped: predict ok=8 err=0 versions\[v1:4 v2:4\] .*\| chat ok=4 err=0 tokens=20 .*replicas\[llm-a:2 llm-b:2\]/);
      assert.equal(out.trim().split("\n").length, 1 + 12 + 1);
      assert.ok(proxy.seen.length === 12 && proxy.seen.every((s) => s.form === "absolute" && s.method === "POST"), JSON.stringify(proxy.seen));
      assert.deepEqual(
        proxy.seen.filter((s) => s.host === "llm-chat").map((s) => [s.target, s.session]),
        ["session-1", "session-2", "session-3", "session-1"].map((id) => ["http://llm-chat/v1/chat/completions", id]),
      );
      assert.equal(proxy.seen.filter((s) => s.target === "http://sentiment-model/predict").length, 8);
    } finally {
      child.kill();
    }
  });

  test("keeps going when the proxy is unreachable", async () => {
    const gone = createServer();
    await new Promise<void>((r) => gone.listen(0, "127.0.0.1", r));
    const port = (gone.address() as AddressInfo).port;
    await new Promise<void>((r) => gone.close(() => r()));
    const child = runModule(
      TRAFFIC,
      cleanEnv({ HTTP_PROXY: `http://127.0.0.1:${port}`, NODE_USE_ENV_PROXY: "1", MAX_ITERATIONS: "3", INTERVAL_MS: "1", CHAT_EVERY: "3", LOG_EVERY_MS: "0" }),
    );
    try {
      assert.equal(await within(child.exited, 15_000, "traffic to finish"), 0, child.stderr());
      assert.match(child.stdout(), /predict error: .*ECONNREFUSED/);
      assert.match(child.stdout(), /stopped: predict ok=0 err=3 \| chat ok=0 err=1/);
    } finally {
      child.kill();
    }
  });

  test("SIGTERM stops it with a summary and exit code 0", async () => {
    const child = runModule(TRAFFIC, proxyEnv(proxy, { INTERVAL_MS: "20", LOG_EVERY_MS: "0" }));
    try {
      await child.waitFor(/predict 200/);
      child.proc.kill("SIGTERM");
      assert.equal(await within(child.exited, 5000, "exit after SIGTERM"), 0);
      assert.match(child.stdout(), /traffic: stopped: predict ok=\d+ err=0/);
    } finally {
      child.kill();
    }
  });
});
