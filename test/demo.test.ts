// The embedded demo (`weft up` with no -f): real model services, canary routing, streaming, a client.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
import { weftUp, viaEdge, load, agent, type RunningWeft } from './helpers/mesh.ts';

describe('weft up: the embedded demo', () => {
  let weft: RunningWeft;
  before(async () => {
    weft = await weftUp(await mkdtemp(join(tmpdir(), 'weft-demo-')), []);
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
      assert.equal(r.statusCode, 200);
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
});
