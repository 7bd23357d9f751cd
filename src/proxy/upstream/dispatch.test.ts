// DispatchUpstream without sockets: a fake dispatcher drives the handler as undici would.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { DispatchUpstream } from './dispatch.ts';
import { firstChunk } from '../forward.ts';
import type { UpstreamRequest } from './upstream.ts';

class FakeController {
  paused = false;
  aborted: Error | undefined;
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  abort(reason: Error) {
    this.aborted ??= reason;
  }
}

/** A dispatcher that hands each request's handler to the test. */
function fake() {
  const calls: Array<{ opts: Dispatcher.DispatchOptions; handler: Dispatcher.DispatchHandler; controller: FakeController }> = [];
  const pool = {
    dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
      const controller = new FakeController();
      calls.push({ opts, handler, controller });
      handler.onRequestStart?.(controller as unknown as Dispatcher.DispatchController, {});
      return true;
    },
    close: () => Promise.resolve(),
  };
  const upstream = new DispatchUpstream(pool as unknown as Dispatcher);
  const c = (i = calls.length - 1) => calls[i]!.controller as unknown as Dispatcher.DispatchController;
  const h = (i = calls.length - 1) => calls[i]!.handler;
  return { upstream, calls, c, h };
}

const req = (extra: Partial<UpstreamRequest> = {}): UpstreamRequest => ({ path: '/x', method: 'GET', headers: { host: 'm' }, ...extra });
const tick = () => new Promise((r) => setImmediate(r));

/** Everything the body emits, in order. */
function record(body: { on(e: string, l: (x?: unknown) => void): unknown }): string[] {
  const seen: string[] = [];
  body.on('data', (c) => seen.push(`data:${String(c)}`));
  body.on('end', () => seen.push('end'));
  body.on('error', (e) => seen.push(`error:${(e as Error).message}`));
  return seen;
}

test('resolves at the final answer’s headers (1xx skipped); chunks, trailers and end come in order', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  assert.deepEqual(f.calls[0]!.opts, { path: '/x', method: 'GET', headers: { host: 'm' }, body: null });
  f.h().onResponseStart!(f.c(), 100, {}, 'Continue');
  f.h().onResponseStart!(f.c(), 200, { 'content-type': 'text/plain' }, 'OK');
  const res = await p;
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/plain');
  const seen = record(res.body as never);
  await tick();
  f.h().onResponseData!(f.c(), Buffer.from('a'));
  f.h().onResponseData!(f.c(), Buffer.from('b'));
  f.h().onResponseEnd!(f.c(), { 'grpc-status': '0' });
  assert.deepEqual(seen, ['data:a', 'data:b', 'end']);
  assert.deepEqual(res.trailers, { 'grpc-status': '0' });
});

test('what comes before anyone reads is held, and the end still reaches an “end” listener added after the “data” one', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  // Headers, body and end in one go, as one TCP segment parses.
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  f.h().onResponseData!(f.c(), Buffer.from('a'));
  f.h().onResponseEnd!(f.c(), {});
  const res = await p;
  const seen: string[] = [];
  res.body.on('data', (c) => seen.push(`data:${c}`));
  res.body.on('end', () => seen.push('end'));
  assert.deepEqual(seen, [], 'delivered on the next tick, not inside on()');
  await tick();
  assert.deepEqual(seen, ['data:a', 'end']);
});

test('a paused body holds chunks and pauses the upstream past 64 KiB; resume delivers them and resumes it', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const res = await p;
  const seen = record(res.body as never);
  res.body.pause();
  for (let i = 0; i < 5; i++) f.h().onResponseData!(f.c(), Buffer.alloc(16 * 1024, 'x'));
  assert.equal(f.calls[0]!.controller.paused, true);
  f.h().onResponseEnd!(f.c(), {});
  assert.deepEqual(seen, []);
  res.body.resume();
  await tick();
  assert.equal(seen.length, 6);
  assert.equal(seen.at(-1), 'end');
  assert.equal(f.calls[0]!.controller.paused, true, 'the answer is whole: nothing to resume');
});

test('backpressure while flowing: a pause from the reader stops delivery; resume resumes the upstream', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const res = await p;
  const seen: string[] = [];
  res.body.on('data', (c) => {
    seen.push(String(c));
    res.body.pause();
  });
  await tick();
  for (const s of ['1', '2']) f.h().onResponseData!(f.c(), Buffer.from(s));
  f.h().onResponseData!(f.c(), Buffer.alloc(70 * 1024, 'z'));
  assert.deepEqual(seen, ['1']);
  assert.equal(f.calls[0]!.controller.paused, true);
  res.body.resume();
  await tick();
  assert.deepEqual(seen, ['1', '2']);
  res.body.resume();
  await tick();
  assert.equal(seen.length, 3);
  assert.equal(f.calls[0]!.controller.paused, false);
});

test('a failure before the headers rejects and destroys the request body; after them the body errors', async () => {
  const f = fake();
  const body = new Readable({ read() {} });
  const p = f.upstream.request(req({ method: 'POST', body }));
  f.h().onResponseError!(f.c(), Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
  await assert.rejects(p, { code: 'UND_ERR_SOCKET' });
  assert.equal(body.destroyed, true);

  const p2 = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const res = await p2;
  const seen = record(res.body as never);
  await tick();
  f.h().onResponseData!(f.c(), Buffer.from('a'));
  res.body.pause();
  f.h().onResponseData!(f.c(), Buffer.from('held'));
  f.h().onResponseError!(f.c(), new Error('reset'));
  assert.deepEqual(seen, ['data:a', 'error:reset'], 'at once, even while paused; what was held is dropped');
});

test('a failure before anyone reads comes after the chunks held before it', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  f.h().onResponseData!(f.c(), Buffer.from('a'));
  f.h().onResponseError!(f.c(), new Error('cut'));
  const res = await p;
  const seen = record(res.body as never);
  await tick();
  assert.deepEqual(seen, ['data:a', 'error:cut']);
});

test('the signal: aborted before, nothing is dispatched; during the answer, the body fails and undici aborts', async () => {
  const f = fake();
  const ac = new AbortController();
  ac.abort(new Error('client left'));
  await assert.rejects(f.upstream.request(req({ signal: ac.signal })), /client left/);
  assert.equal(f.calls.length, 0);

  const ac2 = new AbortController();
  const p = f.upstream.request(req({ signal: ac2.signal }));
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const res = await p;
  const seen = record(res.body as never);
  await tick();
  ac2.abort(new Error('timeout'));
  assert.deepEqual(seen, ['error:timeout']);
  assert.equal(f.calls[0]!.controller.aborted?.message, 'timeout');
});

test('destroy() aborts an unfinished answer and nothing more is emitted', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const res = await p;
  const seen = record(res.body as never);
  res.body.destroy();
  f.h().onResponseData!(f.c(), Buffer.from('late'));
  f.h().onResponseError!(f.c(), new Error('aborted'));
  await tick();
  assert.deepEqual(seen, []);
  assert.ok(f.calls[0]!.controller.aborted);
});

test('dump() reads the rest to keep the connection, or closes it past 128 KiB; it never rejects', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const dumped = (await p).body.dump();
  f.h().onResponseData!(f.c(), Buffer.alloc(1000));
  f.h().onResponseEnd!(f.c(), {});
  await dumped;
  assert.equal(f.calls[0]!.controller.aborted, undefined);

  const p2 = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const big = (await p2).body.dump();
  await tick();
  for (let i = 0; i < 3; i++) f.h().onResponseData!(f.c(), Buffer.alloc(64 * 1024));
  await big;
  assert.ok(f.calls[1]!.controller.aborted, 'closed rather than read on');

  const p3 = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const failed = (await p3).body.dump();
  f.h().onResponseError!(f.c(), new Error('reset'));
  await failed;
});

test('for await reads chunk by chunk; leaving early destroys the body', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const res = await p;
  const chunks: string[] = [];
  const reading = (async () => {
    for await (const c of res.body) chunks.push(String(c));
  })();
  await tick();
  f.h().onResponseData!(f.c(), Buffer.from('a'));
  f.h().onResponseData!(f.c(), Buffer.from('b'));
  f.h().onResponseEnd!(f.c(), {});
  await reading;
  assert.deepEqual(chunks, ['a', 'b']);

  const p2 = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const res2 = await p2;
  const first = (async () => {
    for await (const c of res2.body) return String(c);
  })();
  await tick();
  f.h().onResponseData!(f.c(), Buffer.from('only'));
  assert.equal(await first, 'only');
  assert.ok(f.calls[1]!.controller.aborted);
});

test('firstChunk then a relay’s listeners: the first chunk is taken, the body left paused, the rest follows on resume', async () => {
  const f = fake();
  const p = f.upstream.request(req());
  f.h().onResponseStart!(f.c(), 200, {}, 'OK');
  const res = await p;
  const first = firstChunk(res.body, 1000);
  f.h().onResponseData!(f.c(), Buffer.from('1'));
  f.h().onResponseData!(f.c(), Buffer.from('2'));
  assert.equal(String(await first), '1');
  assert.equal(res.body.readableFlowing, false);
  f.h().onResponseEnd!(f.c(), {});
  const seen = record(res.body as never);
  res.body.resume();
  await tick();
  assert.deepEqual(seen, ['data:2', 'end']);
});
