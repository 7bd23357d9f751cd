// Sentiment HTTP service: POST /predict with the lexicon or naive Bayes classifier (env PORT, MODEL, VERSION).

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { classifyLexicon, loadLexicon } from "./lexicon.ts";
import { loadExamples, predictNaiveBayes, trainNaiveBayes } from "./naive-bayes.ts";
import {
  HttpError,
  baseUrl,
  gracefulClose,
  isRecord,
  listen,
  pathOf,
  portFromEnv,
  readJson,
  runServerMain,
  sendJson,
  type Started,
  Chaos,
} from "../shared/http.ts";

export type ModelKind = "lexicon" | "naive-bayes";
export const MODEL_KINDS: readonly ModelKind[] = ["lexicon", "naive-bayes"];

export interface Prediction {
  label: "positive" | "negative" | "neutral";
  confidence: number;
  model: ModelKind;
  version: string;
}

export interface SentimentOptions {
  port?: number;
  host?: string;
  model?: ModelKind;
  version?: string;
  /** Grace period for in-flight requests on close(). */
  graceMs?: number;
}

export const MAX_TEXT_CHARS = 10_000;
export const MAX_INSTANCES = 100;

export function parseModelKind(raw: string | undefined): ModelKind {
  const v = raw === undefined || raw.trim() === "" ? "lexicon" : raw.trim();
  if (v !== "lexicon" && v !== "naive-bayes") throw new Error(`MODEL must be one of ${MODEL_KINDS.join(", ")}, got ${JSON.stringify(raw)}`);
  return v;
}

/** Builds the classifier once; naive Bayes trains on the shipped data set here. */
export function buildPredictor(kind: ModelKind): (text: string) => { label: Prediction["label"]; confidence: number } {
  if (kind === "lexicon") {
    const lexicon = loadLexicon();
    return (text) => {
      const r = classifyLexicon(lexicon, text);
      return { label: r.label, confidence: r.confidence };
    };
  }
  const model = trainNaiveBayes(loadExamples());
  return (text) => {
    const r = predictNaiveBayes(model, text);
    return { label: r.label, confidence: r.confidence };
  };
}

function checkText(v: unknown, where: string): string {
  if (typeof v !== "string") throw new HttpError(400, `${where} must be a string`);
  if (v.trim() === "") throw new HttpError(400, `${where} must not be empty`);
  if (v.length > MAX_TEXT_CHARS) throw new HttpError(400, `${where} is longer than ${MAX_TEXT_CHARS} characters`);
  return v;
}

/** Validates a /predict body: {"text": "..."} or {"instances": ["...", ...]} (instances may also be {"text": "..."}). */
export function parsePredictBody(body: unknown): { kind: "single"; text: string } | { kind: "batch"; texts: string[] } {
  if (!isRecord(body)) throw new HttpError(400, 'expected a JSON object: {"text": "..."} or {"instances": ["...", ...]}');
  const hasText = body.text !== undefined;
  const hasInstances = body.instances !== undefined;
  if (hasText && hasInstances) throw new HttpError(400, 'give either "text" or "instances", not both');
  if (hasText) return { kind: "single", text: checkText(body.text, '"text"') };
  if (hasInstances) {
    const list = body.instances;
    if (!Array.isArray(list)) throw new HttpError(400, '"instances" must be an array of strings');
    if (list.length === 0) throw new HttpError(400, '"instances" must not be empty');
    if (list.length > MAX_INSTANCES) throw new HttpError(400, `"instances" has ${list.length} items; the limit is ${MAX_INSTANCES}`);
    const texts = list.map((item, i) => checkText(isRecord(item) ? item.text : item, `"instances[${i}]"`));
    return { kind: "batch", texts };
  }
  throw new HttpError(400, 'missing "text": expected {"text": "..."} or {"instances": ["...", ...]}');
}

export async function start(opts: SentimentOptions = {}): Promise<Started & { model: ModelKind; version: string }> {
  const model = opts.model ?? "lexicon";
  const version = opts.version ?? "v1";
  const predict = buildPredictor(model);
  const headers = { "x-model-version": version };
  const describe = {
    service: "sentiment",
    description: "Classifies short texts as positive, negative or neutral.",
    model,
    version,
    labels: ["positive", "negative", "neutral"],
    endpoints: {
      "POST /predict": '{"text": "..."} -> {"label", "confidence", "model", "version"}; {"instances": ["..."]} -> {"predictions": [...]}',
      "GET /healthz": "liveness",
      "GET /": "this description",
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = pathOf(req);
    const method = req.method ?? "GET";
    const route = (allowed: string) => {
      if (method !== allowed) {
        res.setHeader("allow", allowed);
        throw new HttpError(405, `method ${method} not allowed on ${path}; use ${allowed}`);
      }
    };
    if (path === "/predict") {
      route("POST");
      const parsed = parsePredictBody(await readJson(req));
      const one = (text: string): Prediction => ({ ...predict(text), model, version });
      if (parsed.kind === "single") sendJson(res, 200, one(parsed.text), headers);
      else sendJson(res, 200, { predictions: parsed.texts.map(one), model, version }, headers);
    } else if (path === "/healthz") {
      route("GET");
      sendJson(res, 200, { status: "ok", model, version }, headers);
    } else if (path === "/") {
      route("GET");
      sendJson(res, 200, describe, headers);
    } else {
      throw new HttpError(404, `no route for ${method} ${path}; try POST /predict`);
    }
  };

  const chaos = new Chaos();
  const server = createServer((req, res) => {
    if (chaos.intercept(req, res)) return;
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : "internal error";
      if (!(err instanceof HttpError)) console.error(`sentiment: ${(err as Error)?.stack ?? err}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // After an oversized body the rest of the upload is not read; do not reuse the connection.
      if (status === 413) res.setHeader("connection", "close");
      sendJson(res, status, { error: message }, headers);
    });
  });
  const address = await listen(server, opts.port ?? 0, opts.host ?? "127.0.0.1");
  return {
    server,
    address,
    url: baseUrl(address),
    model,
    version,
    info: `model=${model} version=${version}`,
    close: () => gracefulClose(server, opts.graceMs),
  };
}

if (import.meta.main) {
  await runServerMain("sentiment", () => {
    const { port, host } = portFromEnv(process.env);
    return start({ port, host, model: parseModelKind(process.env.MODEL), version: process.env.VERSION || "v1" });
  });
}
