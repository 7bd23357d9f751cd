// Unit tests for the order-2 Markov chain text generator.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chooseStart,
  createRng,
  detokenize,
  generateText,
  generateTokens,
  joinToken,
  loadCorpus,
  seedFromText,
  tokenizeText,
  trainMarkov,
} from "./generator.ts";

const corpus = loadCorpus();
const model = trainMarkov(corpus);

test("tokenizeText keeps words whole and punctuation separate; detokenize reverses it", () => {
  const tokens = tokenizeText("The mesh's low-latency path, v2.3, works. Really?");
  assert.deepEqual(tokens, ["The", "mesh's", "low-latency", "path", ",", "v2.3", ",", "works", ".", "Really", "?"]);
  assert.equal(detokenize(tokens), "The mesh's low-latency path, v2.3, works. Really?");
  assert.equal(joinToken(undefined, "Hi"), "Hi");
  assert.equal(joinToken("Hi", "there"), " there");
  assert.equal(joinToken("there", "."), ".");
});

test("training counts order-2 transitions, treating the corpus as a loop", () => {
  const m = trainMarkov("a b c. a b d. a b c.");
  // Tokens: a b c . a b d . a b c .  (12 tokens, so 12 transitions including the wrap-around)
  assert.equal(m.tokenCount, 12);
  const ab = m.transitions.get("a\u0000b")!;
  assert.deepEqual(ab.tokens, ["c", "d"]);
  assert.deepEqual(ab.counts, [2, 1]);
  assert.equal(ab.total, 3);
  // The last pair wraps to the first token.
  assert.deepEqual(m.transitions.get("c\u0000.")!.tokens, ["a"]);
  assert.equal(m.sentences.length, 3);
  assert.throws(() => trainMarkov("hi"), /too small/);
});

test("shipped corpus is a few KB and trains a usable chain", () => {
  assert.ok(corpus.length >= 3000, `${corpus.length} chars`);
  assert.ok(model.sentences.length >= 30);
  assert.ok(model.transitions.size >= 500);
});

test("seeds and the rng are deterministic", () => {
  assert.equal(seedFromText("hello"), seedFromText("hello"));
  assert.notEqual(seedFromText("hello"), seedFromText("hello!"));
  const a = createRng(42);
  const b = createRng(42);
  const xs = Array.from({ length: 5 }, () => a());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});

test("same prompt, same text; different prompts, different text", () => {
  const p = "What is a KV cache?";
  assert.deepEqual(generateText(model, p, { maxTokens: 60 }), generateText(model, p, { maxTokens: 60 }));
  const outputs = new Set(["Explain canary releases", "What is a KV cache?", "How do retries work?", "hello"].map((q) => generateText(model, q, { maxTokens: 60 }).text));
  assert.equal(outputs.size, 4);
  // An explicit seed overrides the prompt-derived one.
  assert.equal(generateText(model, "a", { maxTokens: 40, seed: 7 }).text, generateText(model, "b", { maxTokens: 40, seed: 7 }).text);
});

test("generation starts from a corpus sentence about the prompt's topic", () => {
  const { start, topic } = chooseStart(model, "Tell me about the KV cache", createRng(1));
  assert.deepEqual(topic.sort(), ["cache", "kv"]);
  const text = generateText(model, "Tell me about the KV cache", { maxTokens: 200, maxSentences: 1 }).text;
  assert.ok(text.startsWith(`${start[0]} ${start[1]}`), text);
  // The sentence it starts from mentions the topic.
  assert.ok(model.sentences.some((s) => s.start[0] === start[0] && s.start[1] === start[1] && s.words.has("kv")));
  // No topic words at all: still starts at some sentence start.
  const any = chooseStart(model, "zzz qqq", createRng(1));
  assert.deepEqual(any.topic, []);
  assert.ok(model.sentences.some((s) => s.start[0] === any.start[0] && s.start[1] === any.start[1]));
});

test("every generated token follows the chain: each triple occurs in the corpus", () => {
  for (const prompt of ["service mesh", "canary", "retries and timeouts", "nothing matches"]) {
    const { tokens } = generateText(model, prompt, { maxTokens: 120 });
    for (let i = 2; i < tokens.length; i++) {
      const succ = model.transitions.get(`${tokens[i - 2]}\u0000${tokens[i - 1]}`);
      assert.ok(succ?.tokens.includes(tokens[i]!), `${tokens.slice(i - 2, i + 1).join(" ")} not in corpus`);
    }
  }
});

test("max tokens ends with 'length'; enough sentences end with 'stop'", () => {
  const short = generateText(model, "service mesh", { maxTokens: 5, maxSentences: 100 });
  assert.equal(short.tokens.length, 5);
  assert.equal(short.finishReason, "length");
  assert.equal(generateText(model, "x", { maxTokens: 0 }).tokens.length, 0);
  assert.equal(generateText(model, "x", { maxTokens: 1 }).tokens.length, 1);
  const two = generateText(model, "service mesh", { maxTokens: 10_000, maxSentences: 2 });
  assert.equal(two.finishReason, "stop");
  assert.equal(two.tokens.filter((t) => t === "." || t === "!" || t === "?").length, 2);
  assert.match(two.text, /[.!?]$/);
});

test("tokens are produced lazily, one per next()", () => {
  const it = generateTokens(model, "load balancing", { maxTokens: 1_000_000, maxSentences: 1_000_000 });
  const first = it.next();
  assert.equal(first.done, false);
  assert.equal(typeof first.value, "string");
  // Pulling a bounded number from an effectively unbounded generator returns promptly.
  for (let i = 0; i < 1000; i++) assert.equal(it.next().done, false);
  it.return("stop");
});
