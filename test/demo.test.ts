// The embedded demo (`weft up` with no -f): real model services, canary routing, streaming, a client.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { weftUp, viaEdge, load, agent, WEFT, type RunningWeft } from './helpers/mesh.ts';

describe('weft up: the embedded demo', () => {
  let weft: RunningWeft;
  let accessLog: string;
  /** What the proxies logged for the llm-chat requests, so a failure says which flag and why. */
  const chatLog = async (lines = 6) => (await readFile(accessLog, 'utf8').catch(() => '')).split('\n').filter((l) => l.includes('llm-chat')).slice(-lines).join('\n');
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-demo-'));
    accessLog = join(dir, 'access.log');
    weft = await weftUp(dir, ['--access-log', accessLog]);
  });
  after(async () => {
    if (weft) await weft.stop();
  });

  test('the demo canary is the seed example, unchanged', async () => {
    const ours = await readFile(fileURLToPath(new URL('../src/demo/mesh/sentiment-canary.yaml', import.meta.url)), 'utf8');
    const seed = await readFile(fileURLToPath(new URL('../../shared/corpus/seed/sentiment-canary.yaml', import.meta.url)), 'utf8');
    assert.equal(ours, seed);
  });

  test('sentiment-model answers through the edge, about 90 % from v1', async () => {
    const post = () => viaEdge(weft.edge, 'sentiment-model', '/predict', { 'content-type': 'application/json' }, JSON.stringify({ text: 'the new model is great' }));
    const { counts, failures } = await load(1000, 8, post, (r) => {
      const body = JSON.parse(r.body) as { label: string; version: string; model: string };
      assert.equal(body.label, 'positive');
      return `${body.version}:${body.model}`;
    });
    assert.deepEqual(failures, []);
    const v1 = (counts['v1:lexicon'] ?? 0) / 1000;
    assert.ok(Math.abs(v1 - 0.9) <= 0.04, `v1 share ${v1}: ${JSON.stringify(counts)}`);
    assert.ok((counts['v2:naive-bayes'] ?? 0) > 0);
  });

  test('bad input reaches the caller as the model’s own 400', async () => {
    const r = await viaEdge(weft.edge, 'sentiment-model', '/predict', {}, '{not json');
    assert.equal(r.status, 400);
    assert.match(r.body, /error/);
  });

  test('llm-chat streams server-sent events token by token, a session sticks to one replica', async () => {
    const chat = async (session: string) => {
      const started = performance.now();
      const r = await request(`http://${weft.edge}/v1/chat/completions`, {
        method: 'POST',
        headers: { host: 'llm-chat', 'x-session-id': session, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'weft-markov-2', messages: [{ role: 'user', content: 'tell me about canaries' }], stream: true, max_tokens: 12 }),
        dispatcher: agent,
      });
      if (r.statusCode !== 200) assert.fail(`llm-chat answered ${r.statusCode}: ${await r.body.text()}\n${await chatLog()}\n${weft.proc.output().slice(-2000)}`);
      assert.match(String(r.headers['content-type']), /text\/event-stream/);
      const arrivals: number[] = [];
      let text = '';
      for await (const chunk of r.body) {
        arrivals.push(performance.now() - started);
        text += chunk.toString();
      }
      return { replica: String(r.headers['x-replica']), cache: String(r.headers['x-kv-cache']), text, arrivals };
    };
    const first = await chat('alice');
    assert.match(first.text, /data: \[DONE\]/);
    // Not buffered: the events arrive spread over the generation, not in one piece at the end.
    assert.ok(first.arrivals.length >= 5, `chunks arrived: ${first.arrivals.length}`);
    assert.ok(first.arrivals.at(-1)! - first.arrivals[0] >= 100, `spread ${first.arrivals[0]}…${first.arrivals.at(-1)}`);
    for (let i = 0; i < 4; i++) {
      const again = await chat('alice');
      assert.equal(again.replica, first.replica);
      assert.equal(again.cache, 'hit');
    }
    const replicas = new Set<string>();
    for (let i = 0; i < 12; i++) replicas.add((await chat(`user-${i}`)).replica);
    assert.equal(replicas.size, 2, 'different sessions spread over both replicas');
  });

  test('the demo client’s traffic flows through its sidecar and shows in Istio metrics', async () => {
    const s = await weft.status();
    const client = s.proxies.find((p) => p.workload === 'demo-client')!;
    let metrics = '';
    for (let i = 0; i < 40; i++) {
      metrics = await (await fetch(`http://${client.listeners.admin}/metrics`)).text();
      if (/destination_service="llm-chat\.default\.svc\.cluster\.local"[^}]*response_code="200"/.test(metrics)) break;
      await sleep(250);
    }
    assert.match(metrics, /istio_requests_total\{reporter="source",source_workload="demo-client",[^}]*destination_workload="sentiment-v[12]",[^}]*destination_version="v[12]",[^}]*destination_service="sentiment-model\.default\.svc\.cluster\.local"[^}]*response_code="200"/);
    assert.match(metrics, /destination_service="llm-chat\.default\.svc\.cluster\.local"[^}]*response_code="200"/);
  });

  test('weft demo chaos: a failing sentiment replica’s callers get labelled fallbacks; a failing llm-chat replica is ejected', async () => {
    const chaos = (replica: string, mode: string) => promisify(execFile)(process.execPath, [WEFT, 'demo', 'chaos', replica, mode, '--state-dir', weft.stateDir]);
    const predict = (text: string) => viaEdge(weft.edge, 'sentiment-model', '/predict', { 'content-type': 'application/json' }, JSON.stringify({ text }));
    // Good answers first, so the FallbackPolicy's cache has them.
    for (let i = 0; i < 20; i++) await predict(`text number ${i % 5}`);
    assert.match((await chaos('sentiment-v2', 'fail')).stdout, /default\/sentiment-v2-0: chaos mode fail/);
    const seen: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const r = await predict(`text number ${i % 5}`);
      assert.equal(r.status, 200, r.body);
      const kind = String(r.headers['x-weft-fallback'] ?? 'model');
      seen[kind] = (seen[kind] ?? 0) + 1;
      // A cached answer is a model's own answer to the same text, not the static one.
      if (kind === 'cache') assert.ok(JSON.parse(r.body).model, r.body);
    }
    assert.ok((seen.cache ?? 0) > 0, JSON.stringify(seen));
    assert.equal(seen.static ?? 0, 0, 'every text had a cached answer');
    await chaos('sentiment-v2', 'ok');

    await chaos('llm-chat-1', 'fail');
    const chat = (session: string) =>
      viaEdge(weft.edge, 'llm-chat', '/v1/chat/completions', { 'x-session-id': session, 'content-type': 'application/json' }, JSON.stringify({ model: 'weft-markov-2', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }));
    const statuses: number[] = [];
    const seenBy: string[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await chat(`chaos-${i}`);
      statuses.push(r.status);
      seenBy.push(`${r.status}:${r.headers['x-replica'] ?? '?'}${r.status === 200 ? '' : `(${r.body.slice(0, 60)})`}`);
    }
    // Three 500s from llm-chat-1, then it is ejected and every session lands on llm-chat-0.
    assert.equal(statuses.filter((s) => s === 500).length, 3, `${seenBy.join(' ')}\n${await chatLog(60)}\n${weft.proc.output().slice(-3000)}`);
    assert.ok(statuses.slice(-10).every((s) => s === 200));
    const { stdout } = await promisify(execFile)(process.execPath, [WEFT, 'status', '--state-dir', weft.stateDir]);
    assert.match(stdout, /ejected endpoints[\s\S]*weft-system\/edge\s+outbound\|80\|\|llm-chat\.default\.svc\.cluster\.local\s+\S+\s+consecutive_5xx/);
    await chaos('llm-chat-1', 'ok');
  });
});
