import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ReplayableBody } from './replay.ts';

async function text(r: Readable | undefined): Promise<string> {
  assert.ok(r, 'a reader');
  let s = '';
  for await (const c of r) s += c.toString();
  return s;
}

test('a body within the limit can be read again from the start, any number of times', async () => {
  const body = new ReplayableBody(Readable.from(['ab', 'cd', 'ef'].map((x) => Buffer.from(x))), 100);
  assert.equal(await text(body.reader(true)), 'abcdef');
  assert.equal(await text(body.reader(true)), 'abcdef');
  assert.equal(await text(body.reader(false)), 'abcdef');
});

test('a retry after a partial read replays what was read, then continues from the client', async () => {
  const body = new ReplayableBody(Readable.from(['ab', 'cd', 'ef'].map((x) => Buffer.from(x))), 100);
  const first = body.reader(true)!;
  for await (const c of first) {
    assert.equal(c.toString(), 'ab');
    break; // the first try died after one chunk
  }
  assert.equal(await text(body.reader(true)), 'abcdef');
});

test('past the limit, the primary reader still gets everything, but nothing can start over', async () => {
  const chunks = Array.from({ length: 10 }, (_, i) => Buffer.from(String(i).repeat(10)));
  const body = new ReplayableBody(Readable.from(chunks), 25);
  assert.equal(await text(body.reader(true)), chunks.map(String).join(''));
  assert.equal(body.replayable, false);
  assert.equal(body.reader(true), undefined);
});

test('nothing is pulled from the client before a reader asks (no buffering ahead)', async () => {
  let pulled = 0;
  async function* source() {
    for (let i = 0; i < 5; i++) {
      pulled++;
      yield Buffer.from('x');
    }
  }
  const body = new ReplayableBody(source(), 100);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(pulled, 0);
  const r = body.reader(true)!;
  for await (const _ of r) break;
  assert.ok(pulled <= 2, `pulled ${pulled}`);
});

test('a client error reaches the reader', async () => {
  async function* source() {
    yield Buffer.from('x');
    throw new Error('client went away');
  }
  const body = new ReplayableBody(source(), 100);
  await assert.rejects(text(body.reader(true)), /client went away/);
});

test('whole(): the entire body for a key, read to its end if need be; undefined past the limit', async () => {
  const small = new ReplayableBody(Readable.from(['ab', 'cd'].map((x) => Buffer.from(x))), 100);
  assert.equal((await small.whole())?.toString(), 'abcd');
  assert.equal(await text(small.reader(true)), 'abcd', 'still replayable after');
  const big = new ReplayableBody(Readable.from(Array.from({ length: 10 }, () => Buffer.alloc(10))), 25);
  assert.equal(await big.whole(), undefined);
});
