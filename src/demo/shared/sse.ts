// Incremental parser for server-sent events (text/event-stream): feed it chunks, get each event's data back.

export class SseParser {
  private buffer = "";

  /** Adds a chunk and returns the data of every event completed by it, in order. */
  feed(chunk: string): string[] {
    this.buffer += chunk;
    const events: string[] = [];
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!m) break;
      const block = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const data: string[] = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        // Other fields (event:, id:, retry:) and comments (":") are not needed here.
      }
      if (data.length > 0) events.push(data.join("\n"));
    }
    return events;
  }

  /** Bytes received after the last complete event (non-empty means the stream was cut mid-event). */
  get pending(): string {
    return this.buffer;
  }
}
