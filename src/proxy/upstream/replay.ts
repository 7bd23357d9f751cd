// A request body that can be read again — for retries and mirrors — within a bounded buffer.
//
// Chunks are pulled from the client only as fast as the current reader takes them, so
// backpressure still reaches the client. Every chunk is kept while the body fits in `limit`
// bytes; past that, chunks the primary reader has passed are dropped, and a new reader from the
// start (a retry, a mirror) is no longer possible. The body is never buffered ahead of demand.

import { Readable } from 'node:stream';

export class ReplayableBody {
  private readonly source: AsyncIterator<Buffer>;
  private readonly limit: number;
  private readonly chunks: Buffer[] = [];
  /** Absolute index of chunks[0]. */
  private base = 0;
  private bytes = 0;
  private total = 0;
  private ended = false;
  private failed?: Error;
  private overflowed = false;
  private pulling?: Promise<void>;

  constructor(source: AsyncIterable<Buffer>, limit: number) {
    this.source = source[Symbol.asyncIterator]();
    this.limit = limit;
  }

  /** Bytes read from the client so far. */
  get bytesRead(): number {
    return this.total;
  }

  /** Can a new reader still start from the first byte? */
  get replayable(): boolean {
    return this.base === 0;
  }

  /**
   * A stream of the whole body from its first byte, or undefined when that is gone. Only the
   * primary reader (the request being proxied) lets chunks go after an overflow; a secondary one
   * (a mirror) that falls behind the kept window fails instead of holding the primary back.
   */
  reader(primary: boolean): Readable | undefined {
    if (!this.replayable) return undefined;
    return Readable.from(this.read(primary), { objectMode: false });
  }

  /**
   * The whole body, read from the client to its end if need be, when all of it fits the buffer;
   * undefined when it does not (or the client failed). For keys that hash the body.
   */
  async whole(): Promise<Buffer | undefined> {
    while (this.replayable && !this.ended && !this.failed && this.bytes <= this.limit) await this.pull();
    if (!this.replayable || !this.ended || this.failed || this.bytes > this.limit) return undefined;
    return Buffer.concat(this.chunks);
  }

  private async *read(primary: boolean): AsyncGenerator<Buffer> {
    let i = 0;
    for (;;) {
      if (i < this.base) throw new Error('request body exceeded the replay buffer');
      const local = i - this.base;
      if (local < this.chunks.length) {
        const chunk = this.chunks[local];
        i++;
        if (primary && this.overflowed) this.release(i);
        yield chunk;
        continue;
      }
      if (this.failed) throw this.failed;
      if (this.ended) return;
      await this.pull();
    }
  }

  private pull(): Promise<void> {
    this.pulling ??= this.source.next().then(
      (r) => {
        this.pulling = undefined;
        if (r.done) {
          this.ended = true;
          return;
        }
        this.chunks.push(r.value);
        this.bytes += r.value.length;
        this.total += r.value.length;
        if (this.bytes > this.limit) this.overflowed = true;
      },
      (err: Error) => {
        this.pulling = undefined;
        this.failed = err;
      },
    );
    return this.pulling;
  }

  /** Drop chunks before absolute index `upTo`. */
  private release(upTo: number): void {
    while (this.base < upTo && this.chunks.length > 0) {
      this.chunks.shift();
      this.base++;
    }
  }
}
