// Tests for the sentiment HTTP service: in-process over real sockets, plus as a child process (env, SIGTERM).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { start } from "./server.ts";
import { cleanEnv, runModule, within } from "../shared/child.ts";

const SERVER = new URL("./server.ts", import.meta.url);

function post(url: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) {
  return fetch(url, { method: "POST", headers, body });
}

for (const model of ["lexicon", "naive-bayes"] as const) {
  describe(`sentiment server (${model})`, () => {
    let s: Awaited<ReturnType<typeof start>>;
    before(async () => {
      s = await start({ port: 0, host: "127.0.0.1", model, version: "v7" });
    });
    after(() => s.close());

    test("POST /predict classifies one text", async () => {
      const res = await post(`${s.url}/predict`, JSON.stringify({ text: "The support team was fantastic and really helpful" }));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-model-version"), "v7");
      assert.match(res.headers.get("content-type") ?? "", /application\/json/);
      const body = (await res.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ["confidence", "label", "model", "version"]);
      assert.equal(body.label, "positive");
      assert.equal(body.model, model);
      assert.equal(body.version, "v7");
      assert.ok(typeof body.confidence === "number" && body.confidence >= 0 && body.confidence <= 1);
    });

    test("POST /predict with instances returns predictions in order", async () => {
      const res = await post(
        `${s.url}/predict`,
        JSON.stringify({ instances: ["I love this product", "The app is slow and keeps crashing", { text: "Terrible, everything was broken" }] }),
      );
      assert.equal(res.status, 200);
      const body = (await res.json()) as { predictions: Array<{ label: string; model: string; version: string }> };
      assert.deepEqual(body.predictions.map((p) => p.label), ["positive", "negative", "negative"]);
      assert.ok(body.predictions.every((p) => p.model === model && p.version === "v7"));
    });

    test("bad requests get 400 with a JSON error", async () => {
      const cases: Array<[string, RegExp]> = [
        ["{not json", /not valid JSON/],
        ["", /empty/],
        ["[1,2]", /JSON object/],
        ["{}", /missing "text"/],
        ['{"text": 42}', /"text" must be a string/],
        ['{"text": "   "}', /must not be empty/],
        ['{"instances": []}', /must not be empty/],
        ['{"instances": "hello"}', /must be an array/],
        ['{"instances": ["ok", 3]}', /instances\[1\]/],
        ['{"text": "a", "instances": ["b"]}', /not both/],
        [JSON.stringify({ text: "x".repeat(10_001) }), /longer than/],
        [JSON.stringify({ instances: Array.from({ length: 101 }, () => "hi") }), /limit is 100/],
      ];
      for (const [body, re] of cases) {
        const res = await post(`${s.url}/predict`, body);
        assert.equal(res.status, 400, body.slice(0, 40));
        assert.equal(res.headers.get("x-model-version"), "v7");
        const json = (await res.json()) as { error: string };
        assert.match(json.error, re);
      }
    });

    test("GET /healthz and GET / describe the service", async () => {
      const health = await fetch(`${s.url}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(health.headers.get("x-model-version"), "v7");
      await health.body?.cancel();
      const root = await fetch(`${s.url}/`);
      const info = (await root.json()) as Record<string, unknown>;
      assert.equal(info.service, "sentiment");
      assert.equal(info.model, model);
      assert.equal(info.version, "v7");
    });
  });
}

describe("sentiment server: routing and limits", () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start({ port: 0 });
  });
  after(() => s.close());

  test("defaults: lexicon model, version v1", async () => {
    const res = await post(`${s.url}/predict`, '{"text":"great"}');
    assert.equal(res.headers.get("x-model-version"), "v1");
    assert.deepEqual(((await res.json()) as { model: string }).model, "lexicon");
  });

  test("unknown path is 404, wrong method is 405 with Allow", async () => {
    const nf = await fetch(`${s.url}/nope`);
    assert.equal(nf.status, 404);
    assert.match(((await nf.json()) as { error: string }).error, /no route/);
    const wm = await fetch(`${s.url}/predict`);
    assert.equal(wm.status, 405);
    assert.equal(wm.headers.get("allow"), "POST");
    await wm.body?.cancel();
  });

  test("oversized body is 413", async () => {
    const big = JSON.stringify({ text: "a".repeat(2 << 20) });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${s.url}/predict`, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      // The server may close the socket before the whole upload is written.
      req.on("error", (err) => (err.message.includes("EPIPE") || err.message.includes("ECONNRESET") ? undefined : reject(err)));
      req.end(big);
    });
    assert.equal(status, 413);
  });

  test("query strings are ignored for routing", async () => {
    const res = await post(`${s.url}/predict?debug=1`, '{"text":"awful"}');
    assert.equal(((await res.json()) as { label: string }).label, "negative");
  });
});

describe("sentiment server as a process", () => {
  test("reads PORT/MODEL/VERSION, logs one line, and exits 0 on SIGTERM", async () => {
    const child = runModule(SERVER, cleanEnv({ PORT: "0", MODEL: "naive-bayes", VERSION: "v2" }));
    try {
      const [line, port] = await child.waitFor(/sentiment listening on http:\/\/127\.0\.0\.1:(\d+).*\n/);
      assert.match(line, /model=naive-bayes version=v2/);
      assert.equal(child.stdout().trim().split("\n").length, 1);
      const res = await post(`http://127.0.0.1:${port}/predict`, '{"text":"The service is slow and unreliable"}');
      assert.equal(res.headers.get("x-model-version"), "v2");
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.label, "negative");
      assert.equal(body.model, "naive-bayes");
      assert.equal(body.version, "v2");
      child.proc.kill("SIGTERM");
      assert.equal(await within(child.exited, 5000, "exit after SIGTERM"), 0);
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
    } finally {
      child.kill();
    }
  });

  test("missing PORT or a bad MODEL fails fast with a clear message", async () => {
    const noPort = runModule(SERVER, cleanEnv({}));
    try {
      assert.equal(await within(noPort.exited, 5000, "exit without PORT"), 1);
      assert.match(noPort.stderr(), /PORT is required/);
    } finally {
      noPort.kill();
    }
    const badModel = runModule(SERVER, cleanEnv({ PORT: "0", MODEL: "gpt-9" }));
    try {
      assert.equal(await within(badModel.exited, 5000, "exit with bad MODEL"), 1);
      assert.match(badModel.stderr(), /MODEL must be one of lexicon, naive-bayes/);
    } finally {
      badModel.kill();
    }
  });
});
