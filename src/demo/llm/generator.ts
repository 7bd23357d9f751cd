// Word-level order-2 Markov chain text generator trained on data/llm-corpus.txt; seeded from the prompt, one token at a time.

import { readFileSync } from "node:fs";

export type FinishReason = "stop" | "length";

interface Successors {
  /** Next tokens in first-seen order, with parallel counts, so sampling is deterministic for a given seed. */
  tokens: string[];
  counts: number[];
  total: number;
}

interface Sentence {
  /** The first two tokens: where generation starts. */
  start: [string, string];
  /** Lower-case words of the sentence, for matching a prompt to a topic. */
  words: Set<string>;
}

export interface MarkovModel {
  readonly order: 2;
  /** "w1 w2" (joined by \u0000) -> successors */
  readonly transitions: ReadonlyMap<string, Successors>;
  readonly sentences: readonly Sentence[];
  /** lower-case word -> number of sentences containing it (for picking the most specific prompt word). */
  readonly sentenceFrequency: ReadonlyMap<string, number>;
  readonly tokenCount: number;
}

export const DEFAULT_CORPUS_PATH = new URL("../data/llm-corpus.txt", import.meta.url);

const TOKEN = /[\p{L}\p{N}]+(?:['’.-][\p{L}\p{N}]+)*|[.,;:!?]/gu;
const SENTENCE_END = new Set([".", "!", "?"]);
const PUNCTUATION = new Set([".", ",", ";", ":", "!", "?"]);

/** Words (keeping inner apostrophes, hyphens and dots: "don't", "low-latency", "2.3") and punctuation marks. */
export function tokenizeText(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

export function isSentenceEnd(token: string): boolean {
  return SENTENCE_END.has(token);
}

/** The text to append for `token` after `previous`: a leading space except before punctuation or at the start. */
export function joinToken(previous: string | undefined, token: string): string {
  return previous === undefined || PUNCTUATION.has(token) ? token : ` ${token}`;
}

export function detokenize(tokens: readonly string[]): string {
  let out = "";
  tokens.forEach((t, i) => (out += joinToken(i === 0 ? undefined : tokens[i - 1], t)));
  return out;
}

const key = (a: string, b: string) => `${a}\u0000${b}`;

export function trainMarkov(corpus: string): MarkovModel {
  const tokens = tokenizeText(corpus);
  if (tokens.length < 3) throw new Error("corpus is too small: need at least three tokens");
  // The corpus is treated as a loop (its end runs on into its beginning), so the chain never dead-ends.
  const transitions = new Map<string, Successors>();
  const n = tokens.length;
  for (let i = 0; i < n; i++) {
    const k = key(tokens[i]!, tokens[(i + 1) % n]!);
    let s = transitions.get(k);
    if (!s) transitions.set(k, (s = { tokens: [], counts: [], total: 0 }));
    const next = tokens[(i + 2) % n]!;
    const at = s.tokens.indexOf(next);
    if (at === -1) {
      s.tokens.push(next);
      s.counts.push(1);
    } else {
      s.counts[at]!++;
    }
    s.total++;
  }
  const sentences: Sentence[] = [];
  let begin = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (!isSentenceEnd(tokens[i]!) && i !== tokens.length - 1) continue;
    const sentence = tokens.slice(begin, i + 1);
    if (sentence.length >= 3 && !PUNCTUATION.has(sentence[0]!) && !PUNCTUATION.has(sentence[1]!)) {
      sentences.push({
        start: [sentence[0]!, sentence[1]!],
        words: new Set(sentence.filter((t) => !PUNCTUATION.has(t)).map((t) => t.toLowerCase())),
      });
    }
    begin = i + 1;
  }
  if (sentences.length === 0) throw new Error("corpus has no sentences");
  const sentenceFrequency = new Map<string, number>();
  for (const s of sentences) for (const w of s.words) sentenceFrequency.set(w, (sentenceFrequency.get(w) ?? 0) + 1);
  return { order: 2, transitions, sentences, sentenceFrequency, tokenCount: tokens.length };
}

export function loadCorpus(path: string | URL = DEFAULT_CORPUS_PATH): string {
  return readFileSync(path, "utf8");
}

/** FNV-1a 32-bit hash: a stable seed from a prompt. */
export function seedFromText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: small deterministic PRNG, floats in [0, 1). */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Question words and fillers that say nothing about the topic of a prompt. */
const STOPWORDS = new Set(
  ("a an the is are was were be been am do does did can could would should will shall may might must " +
    "what how why who whom when where which whose i me my we us our you your it its this that these those " +
    "of to in on at for from with by about and or but not so as if then than tell explain describe please " +
    "give show say know want like some any there here").split(" "),
);

/**
 * Picks where to start: the corpus sentence that best matches the prompt, scoring each sentence by the
 * inverse sentence frequency of the prompt's content words it contains (rarer words count more); ties
 * are broken by the seeded rng. With no match, any sentence.
 */
export function chooseStart(model: MarkovModel, prompt: string, rng: () => number): { start: [string, string]; topic: string[] } {
  const n = model.sentences.length;
  const words = [...new Set(tokenizeText(prompt).map((t) => t.toLowerCase()))].filter(
    (w) => !STOPWORDS.has(w) && model.sentenceFrequency.has(w),
  );
  let best = 0;
  let pool: Sentence[] = [];
  for (const s of model.sentences) {
    let score = 0;
    for (const w of words) if (s.words.has(w)) score += Math.log(1 + n / model.sentenceFrequency.get(w)!);
    if (score > best + 1e-9) {
      best = score;
      pool = [s];
    } else if (score > 0 && Math.abs(score - best) <= 1e-9) {
      pool.push(s);
    }
  }
  if (pool.length === 0) pool = model.sentences as Sentence[];
  const pick = pool[Math.floor(rng() * pool.length)]!;
  return { start: pick.start, topic: words };
}

function sample(s: Successors, rng: () => number): string {
  let r = rng() * s.total;
  for (let i = 0; i < s.tokens.length; i++) {
    r -= s.counts[i]!;
    if (r < 0) return s.tokens[i]!;
  }
  return s.tokens[s.tokens.length - 1]!;
}

export interface GenerateOptions {
  /** Hard cap on generated tokens (finish reason "length"). */
  maxTokens: number;
  /** Stop after this many complete sentences (finish reason "stop"). Default 3. */
  maxSentences?: number;
  /** Defaults to seedFromText(prompt). */
  seed?: number;
}

/**
 * Generates tokens lazily, one per next() call, so a caller can pace, stream or stop at any point.
 * The generator's return value is the finish reason.
 */
export function* generateTokens(model: MarkovModel, prompt: string, opts: GenerateOptions): Generator<string, FinishReason, void> {
  const maxTokens = Math.max(0, Math.floor(opts.maxTokens));
  const maxSentences = opts.maxSentences ?? 3;
  const rng = createRng(opts.seed ?? seedFromText(prompt));
  let [a, b] = chooseStart(model, prompt, rng).start;
  let produced = 0;
  let sentences = 0;
  for (const t of [a, b]) {
    if (produced >= maxTokens) return "length";
    yield t;
    produced++;
  }
  for (;;) {
    if (produced >= maxTokens) return "length";
    const succ = model.transitions.get(key(a, b));
    // The chain is cyclic (see trainMarkov), so every pair reached from a corpus sentence has successors.
    if (!succ) throw new Error(`no successors for ${JSON.stringify([a, b])}`);
    const next = sample(succ, rng);
    yield next;
    produced++;
    a = b;
    b = next;
    if (isSentenceEnd(next) && ++sentences >= maxSentences) return "stop";
  }
}

/** Runs the generator to completion. */
export function generateText(model: MarkovModel, prompt: string, opts: GenerateOptions): { tokens: string[]; text: string; finishReason: FinishReason } {
  const tokens: string[] = [];
  const it = generateTokens(model, prompt, opts);
  for (let r = it.next(); ; r = it.next()) {
    if (r.done) return { tokens, text: detokenize(tokens), finishReason: r.value };
    tokens.push(r.value);
  }
}
