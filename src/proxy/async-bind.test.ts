// The lean AsyncResource.bind: same behaviour as node's (async scope, this, length), no per-call accessor.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { installLeanAsyncBind } from './async-bind.ts';

test('a bound function runs in the async scope of its resource, with thisArg or the caller’s this, and keeps fn.length', () => {
  const original = AsyncResource.prototype.bind;
  installLeanAsyncBind();
  try {
    const als = new AsyncLocalStorage<string>();
    const bound = als.run('at bind time', () => new AsyncResource('test').bind(function (this: unknown, a: number, b: number) {
      return { store: als.getStore(), self: this, sum: a + b };
    }));
    // Called elsewhere, it still sees the store of the place it was bound in (what http2 relies on).
    const r = als.run('at call time', () => bound.call('caller', 1, 2));
    assert.deepEqual(r, { store: 'at bind time', self: 'caller', sum: 3 });
    assert.equal(bound.length, 2);

    // (node's typings leave out bind's second parameter, thisArg)
    const bindWithThis = new AsyncResource('test').bind as unknown as (fn: (this: unknown) => unknown, thisArg: unknown) => (this: unknown) => unknown;
    const withThis = bindWithThis.call(new AsyncResource('test'), function (this: unknown) {
      return this;
    }, 'given');
    assert.equal(withThis.call('ignored'), 'given');
    // The static form goes through the prototype.
    assert.equal(AsyncResource.bind((x: number) => x * 2)(21), 42);

    // The point of it: no accessor on the bound function (node defines `asyncResource` per call).
    assert.equal(Object.getOwnPropertyDescriptor(bound, 'asyncResource'), undefined);
    assert.throws(() => new AsyncResource('test').bind(42 as unknown as () => void), TypeError);
  } finally {
    AsyncResource.prototype.bind = original;
  }
});
