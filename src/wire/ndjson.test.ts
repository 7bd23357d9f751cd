// NDJSON framing: messages whole whatever the chunking, bad lines reported, not fatal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ndjson, readNdjson } from './ndjson.ts';

test('messages come out whole however the bytes are cut, several per chunk or one over many', async () => {
  const messages = [{ a: 1 }, { big: 'x'.repeat(100_000), n: [1, 2, 3] }, { c: 'é✓' }, {}, { last: true }];
  const text = messages.map(ndjson).join('') + '\n';
  for (const size of [1, 7, 4096, text.length]) {
    const stream = new PassThrough();
    const got: unknown[] = [];
    const bad: string[] = [];
    readNdjson(stream, (m) => got.push(m), (l) => bad.push(l));
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length; i += size) stream.write(bytes.subarray(i, i + size));
    stream.end();
    await new Promise((r) => stream.on('end', r));
    assert.deepEqual(got, messages, `chunks of ${size} bytes`);
    assert.deepEqual(bad, []);
  }
});

test('a line that is not JSON is reported and the next one still read; an unfinished line waits', async () => {
  const stream = new PassThrough();
  const got: unknown[] = [];
  const bad: string[] = [];
  readNdjson(stream, (m) => got.push(m), (l) => bad.push(l));
  stream.write('{"ok":1}\n{not json\n{"ok":2}\n{"ok":');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [{ ok: 1 }, { ok: 2 }]);
  assert.deepEqual(bad, ['{not json']);
  stream.write('3}\n');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [{ ok: 1 }, { ok: 2 }, { ok: 3 }]);
});
