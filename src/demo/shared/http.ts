// HTTP plumbing shared by the demo services: JSON bodies and replies, listening, graceful SIGTERM shutdown, main-module start-up.

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** An error that maps onto an HTTP status; the message is safe to show to the client. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export const DEFAULT_BODY_LIMIT = 1 << 20; // 1 MiB

/** Reads the whole request body and parses it as JSON. Throws HttpError(400 | 413) with a clear message. */
export async function readJson(req: IncomingMessage, limitBytes = DEFAULT_BODY_LIMIT): Promise<unknown> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limitBytes) {
    throw new HttpError(413, `request body is ${declared} bytes; the limit is ${limitBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw new HttpError(413, `request body exceeds the limit of ${limitBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new HttpError(400, "request body is empty; expected a JSON object");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Sends a JSON reply with Content-Length; extra headers are merged in. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

/** Path of a request URL without its query string. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/** Binds the server and resolves with its address (port 0 means the OS picks one). */
export function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Stops accepting connections, lets in-flight requests finish, and closes keep-alive connections as soon as
 * they go idle. After graceMs, whatever is still open is cut. Resolves once the server is fully closed.
 */
export function gracefulClose(server: Server, graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      server.closeAllConnections();
      resolve();
      return;
    }
    // Responses written from now on tell the client not to reuse the connection.
    server.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => {
      res.setHeader("connection", "close");
    });
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

export interface Started {
  server: Server;
  address: AddressInfo;
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Extra words for the one-line "listening" log, e.g. "model=lexicon version=v1". */
  info?: string;
  close(): Promise<void>;
}

export function baseUrl(address: AddressInfo): string {
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** Reads PORT (required, 0..65535) and HOST (default 127.0.0.1) from the environment. */
export function portFromEnv(env: NodeJS.ProcessEnv): { port: number; host: string } {
  const raw = env.PORT;
  if (raw === undefined || raw.trim() === "") throw new Error("PORT is required (e.g. PORT=8080)");
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be an integer 0..65535, got ${JSON.stringify(raw)}`);
  return { port, host: env.HOST && env.HOST.trim() !== "" ? env.HOST : "127.0.0.1" };
}

/**
 * Runs a demo server as a process: starts it, and on SIGTERM/SIGINT stops accepting, finishes in-flight
 * requests and exits 0. Start-up failures print one line to stderr and exit 1.
 */
export async function runServerMain(name: string, start: () => Promise<Started>): Promise<void> {
  let started: Started;
  try {
    started = await start();
  } catch (err) {
    console.error(`${name}: failed to start: ${(err as Error).message}`);
    process.exit(1);
  }
  console.log(`${name} listening on ${started.url}${started.info ? ` ${started.info}` : ""}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${name}: ${signal} received, finishing in-flight requests`);
    started.close().then(
      () => {
        console.log(`${name}: stopped`);
        process.exit(0);
      },
      (err: unknown) => {
        console.error(`${name}: error while stopping: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

/** What `POST /chaos` can make a demo replica do: answer normally, fail every request, or hang. */
export type ChaosMode = "ok" | "fail" | "hang";

/**
 * Demo chaos, so a newcomer can watch the mesh react: `POST /chaos {"mode": "fail" | "hang" |
 * "ok"}` on the replica's own port (`weft demo chaos <replica> <mode>` finds it). In `fail` every
 * request but /chaos and /healthz gets a 500; in `hang` it is read and never answered (until the
 * caller gives up). Returns true when it took care of the request.
 */
export class Chaos {
  mode: ChaosMode = "ok";

  intercept(req: IncomingMessage, res: ServerResponse): boolean {
    const path = pathOf(req);
    if (path === "/chaos") {
      this.configure(req, res).catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        sendJson(res, status, { error: (err as Error).message });
      });
      return true;
    }
    if (this.mode === "ok" || path === "/healthz") return false;
    if (this.mode === "fail") {
      req.resume();
      sendJson(res, 500, { error: { message: "chaos: this replica fails on purpose (weft demo chaos <replica> ok ends it)", type: "server_error" } });
      return true;
    }
    // hang: read the request, never answer; the connection closes when the caller gives up.
    req.resume();
    return true;
  }

  private async configure(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      throw new HttpError(405, 'use POST /chaos {"mode": "fail" | "hang" | "ok"}');
    }
    const body = await readJson(req);
    const mode = isRecord(body) ? body.mode : undefined;
    if (mode !== "ok" && mode !== "fail" && mode !== "hang") throw new HttpError(400, 'mode must be "ok", "fail" or "hang"');
    this.mode = mode;
    console.log(`chaos: mode ${mode}`);
    sendJson(res, 200, { mode });
  }
}
