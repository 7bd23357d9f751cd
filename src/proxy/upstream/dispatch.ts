// An undici Pool as an Upstream through `dispatch()` and a handler of our own, instead of its
// `request()` API: no AsyncResource, promise chain and Readable stream per request.
//
// bench/ceiling.ts measured the difference on a bare proxy: node:http + `pool.request()` serves
// about half the requests per CPU-second of node:http + `dispatch()`. The answer's body here is
// a small event emitter with the part of Readable's behaviour the proxy relies on (see
// UpstreamBody): 'data', 'end' and 'error' in order, pause and resume with backpressure to the
// upstream socket, destroy, dump.

import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Upstream, UpstreamBody, UpstreamRequest, UpstreamResponse } from './upstream.ts';

const require = createRequire(import.meta.url);
// undici's own helper for requests with a signal: it also takes a request still waiting for a
// connection out of the pool's queue when the signal fires (the handler's `reason`/`abort` fields).
const { dispatchWithSignal } = require('undici/lib/api/abort-signal.js') as {
  dispatchWithSignal(dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, handler: ResponseHandler): void;
};

/** Held while nobody reads before the upstream socket is paused (Readable's default high-water mark). */
const HIGH_WATER_MARK = 64 * 1024;
/** How much of an unwanted answer `dump()` reads to keep its connection before closing it instead (as undici's dump). */
const DUMP_LIMIT = 128 * 1024;

export class DispatchUpstream implements Upstream {
  private readonly pool: Dispatcher;

  constructor(pool: Dispatcher) {
    this.pool = pool;
  }

  request(r: UpstreamRequest): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      if (r.signal?.aborted) {
        destroyRequestBody(r.body, r.signal.reason);
        return reject(r.signal.reason ?? abortError());
      }
      const handler = new ResponseHandler(r, resolve, reject);
      const opts: Dispatcher.DispatchOptions = { path: r.path, method: r.method as Dispatcher.HttpMethod, headers: r.headers, body: r.body ?? null };
      if (r.signal) dispatchWithSignal(this.pool, opts, handler);
      else this.pool.dispatch(opts, handler);
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** One request's undici handler: resolves at the answer's headers, then feeds its body. */
class ResponseHandler implements Dispatcher.DispatchHandler {
  /** Why the request was aborted (set by the signal); read by dispatchWithSignal too. */
  reason: Error | null = null;
  /** Aborts the request once started, or takes it out of the queue (set by dispatchWithSignal's hook). */
  abort: ((reason: Error) => void) | null = null;
  private resolve: ((r: UpstreamResponse) => void) | null;
  private readonly reject: (err: Error) => void;
  private body: DispatchBody | null = null;
  private requestBody: Readable | undefined;
  private readonly trailers: Record<string, string | string[] | undefined> = {};
  private signal: AbortSignal | undefined;

  constructor(r: UpstreamRequest, resolve: (r: UpstreamResponse) => void, reject: (err: Error) => void) {
    this.resolve = resolve;
    this.reject = reject;
    this.requestBody = r.body;
    if (r.signal) {
      this.signal = r.signal;
      r.signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  private readonly onAbort = () => {
    this.reason = (this.signal?.reason as Error | undefined) ?? abortError();
    // After the headers the body fails with the reason; before, the promise does (onResponseError).
    this.body?.fail(this.reason);
    this.abort?.(this.reason);
  };

  private done(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.reason) return controller.abort(this.reason);
    this.abort = (reason) => controller.abort(reason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 100 Continue and other informational answers: the final one follows
    const resolve = this.resolve;
    if (!resolve) return;
    this.resolve = null;
    this.body = new DispatchBody(controller);
    resolve({ statusCode, headers, body: this.body, trailers: this.trailers });
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.body?.push(chunk);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    // Filled in before the body ends, as the proxy reads them then (gRPC's status).
    if (trailers) for (const k of Object.keys(trailers)) if (k !== '__proto__') this.trailers[k] = trailers[k];
    this.done();
    this.body?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.done();
    if (this.resolve) {
      this.resolve = null;
      this.reject(err);
    } else this.body?.fail(err);
    // As undici's request(): a request body that could not be sent whole is destroyed with the error.
    destroyRequestBody(this.requestBody, err);
    this.requestBody = undefined;
  }
}

type Item = Buffer | 'end' | Error;

/**
 * An answer's body. Like a Readable: a 'data' listener starts the flow unless pause() was called
 * (what was held comes on the next tick, so the other listeners are in place first); chunks that
 * come while nobody reads are held, and past the high-water mark the upstream socket is paused;
 * 'end' comes after every chunk; an error comes at once once someone reads (what is held is
 * dropped), and after what is held before anyone does. Unlike a Readable, an error with no
 * 'error' listener is dropped, not thrown, and destroy() emits nothing.
 */
class DispatchBody extends EventEmitter implements UpstreamBody {
  readableFlowing: boolean | null = null;
  private readonly controller: Dispatcher.DispatchController;
  private held: Item[] = [];
  private heldBytes = 0;
  private scheduled = false;
  private finished = false;
  private destroyed = false;

  constructor(controller: Dispatcher.DispatchController) {
    super();
    this.controller = controller;
  }

  override on(...args: Parameters<EventEmitter['on']>): this {
    super.on(...args);
    if (args[0] === 'data' && this.readableFlowing === null) this.resume();
    return this;
  }

  override addListener(...args: Parameters<EventEmitter['on']>): this {
    return this.on(...args);
  }

  push(chunk: Buffer): void {
    if (this.destroyed || this.finished) return;
    if (this.readableFlowing && this.held.length === 0 && !this.scheduled) {
      this.emit('data', chunk);
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= HIGH_WATER_MARK && !this.controller.paused) this.controller.pause();
  }

  end(): void {
    this.deliverLast('end');
  }

  fail(err: Error): void {
    if (this.destroyed || this.finished) return;
    if (this.readableFlowing === null) return this.deliverLast(err);
    // Someone reads: they hear of it now, as from a destroyed Readable, even while paused.
    this.finished = true;
    this.held = [];
    this.heldBytes = 0;
    this.deliver(err);
  }

  pause(): this {
    this.readableFlowing = false;
    return this;
  }

  resume(): this {
    if (this.destroyed) return this;
    this.readableFlowing = true;
    if (this.held.length > 0) this.schedule();
    else if (this.controller.paused && !this.finished) this.controller.resume();
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.held = [];
    if (!this.finished) {
      this.finished = true;
      this.controller.abort(abortError('the answer’s body was destroyed'));
    }
    return this;
  }

  /** Read and drop the rest (the connection is kept), or close it past DUMP_LIMIT; never rejects. */
  dump(): Promise<void> {
    return new Promise((resolve) => {
      if (this.destroyed || (this.finished && this.held.length === 0)) return resolve();
      let read = 0;
      this.on('data', (c: Buffer) => {
        read += c.length;
        if (read > DUMP_LIMIT) {
          this.destroy();
          resolve();
        }
      });
      this.once('end', resolve);
      this.once('error', () => resolve());
      this.resume();
    });
  }

  /** Chunk by chunk until the end; throws the body's error. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const ready: Buffer[] = [];
    let over: { error?: Error } | undefined;
    let wake: (() => void) | undefined;
    const onData = (c: Buffer) => {
      ready.push(c);
      wake?.();
    };
    const onEnd = () => {
      over = {};
      wake?.();
    };
    const onError = (error: Error) => {
      over = { error };
      wake?.();
    };
    this.on('data', onData);
    this.on('end', onEnd);
    this.on('error', onError);
    try {
      for (;;) {
        if (ready.length > 0) yield ready.shift()!;
        else if (over?.error) throw over.error;
        else if (over) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.off('data', onData);
      this.off('end', onEnd);
      this.off('error', onError);
      // Left early (break, return, throw), as a Readable's iterator: the rest is not wanted.
      if (!over) this.destroy();
    }
  }

  /** The answer's end or failure: now if nothing is held and someone reads, else after what is held. */
  private deliverLast(last: 'end' | Error): void {
    if (this.destroyed || this.finished) return;
    this.finished = true;
    if (this.readableFlowing && this.held.length === 0 && !this.scheduled) this.deliver(last);
    else {
      this.held.push(last);
      if (this.readableFlowing) this.schedule();
    }
  }

  private deliver(item: Item): void {
    if (item === 'end') this.emit('end');
    else if (item instanceof Error) {
      if (this.listenerCount('error') > 0) this.emit('error', item);
    } else this.emit('data', item);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => this.flush());
  }

  /** Deliver what is held while the body flows; resume the upstream once less than the high-water mark is held. */
  private flush(): void {
    this.scheduled = false;
    while (this.readableFlowing && !this.destroyed && this.held.length > 0) {
      const item = this.held.shift()!;
      if (Buffer.isBuffer(item)) this.heldBytes -= item.length;
      this.deliver(item);
    }
    // As a Readable keeps reading until its buffer is full, flowing or not.
    if (this.heldBytes < HIGH_WATER_MARK && this.controller.paused && !this.finished) this.controller.resume();
  }
}

function destroyRequestBody(body: Readable | undefined, err: unknown): void {
  if (!body || body.destroyed) return;
  body.on('error', () => {});
  body.destroy(err instanceof Error ? err : undefined);
}

function abortError(message = 'Request aborted'): Error {
  return Object.assign(new Error(message), { name: 'AbortError', code: 'UND_ERR_ABORTED' });
}
