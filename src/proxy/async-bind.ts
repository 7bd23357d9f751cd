// Node's AsyncResource.bind without its deprecated `asyncResource` accessor, installed in proxy processes to keep scavenges short.
//
// Why: node's HTTP/2 client binds an AsyncResource for every request
// (`ClientHttp2Session.request` → `reqAsync.bind(...)`), and `AsyncResource.prototype.bind`
// defines on each bound function a getter and a setter made for that call (the `asyncResource`
// property, deprecated since Node 20 as DEP0172). V8 keeps whatever such per-object accessors
// reach alive through young-generation collections until the next full one. In a sidecar
// calling its peer over HTTP/2 at 1000 req/s that was ~13 % of new space surviving every
// scavenge, each pausing 15–30 ms (docs/performance.md, "Garbage collection").
//
// The replacement does what node's does — the bound function runs `fn` in the resource's async
// scope, with `thisArg` or else the caller's `this`, and keeps `fn.length` — minus that property,
// which nothing in the proxy reads.

import { AsyncResource } from 'node:async_hooks';

type Bind = (this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown) => (...args: unknown[]) => unknown;

const lean: Bind = function bind(fn, thisArg) {
  if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
  const resource = this;
  const bound =
    thisArg === undefined
      ? function (this: unknown, ...args: unknown[]) {
          return resource.runInAsyncScope(fn, this, ...args);
        }
      : (...args: unknown[]) => resource.runInAsyncScope(fn, thisArg, ...args);
  // A data property, the same shape for every bound function (unlike a per-call accessor).
  Object.defineProperty(bound, 'length', { configurable: true, enumerable: false, value: fn.length, writable: false });
  return bound;
};

/** Replace `AsyncResource.prototype.bind` (and so `AsyncResource.bind`) in this process. */
export function installLeanAsyncBind(): void {
  (AsyncResource.prototype as unknown as { bind: Bind }).bind = lean;
}
