// Unit tests for the multinomial naive Bayes sentiment classifier, including held-out accuracy on the shipped data.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  accuracy,
  features,
  holdOut,
  loadExamples,
  parseExamples,
  predictNaiveBayes,
  trainNaiveBayes,
  type Example,
} from "./naive-bayes.ts";

test("features: stemmed words, negation marks words up to the next punctuation", () => {
  assert.deepEqual(features("Not good, crashes today!"), ["not", "not_good", "crash", "today"]);
  assert.deepEqual(features("It isn't working"), ["it", "isnt", "not_work"]);
});

test("log probabilities match a hand computation (Laplace smoothing)", () => {
  const data: Example[] = [
    { text: "good good", label: "positive" },
    { text: "bad", label: "negative" },
  ];
  const model = trainNaiveBayes(data, { alpha: 1 });
  // Vocabulary {good, bad}: V = 2. positive: 2 tokens, negative: 1 token. Priors 1/2 each.
  const r = predictNaiveBayes(model, "good");
  assert.ok(Math.abs(r.logScores.positive! - (Math.log(0.5) + Math.log((2 + 1) / (2 + 2)))) < 1e-12);
  assert.ok(Math.abs(r.logScores.negative! - (Math.log(0.5) + Math.log((0 + 1) / (1 + 2)))) < 1e-12);
  assert.equal(r.label, "positive");
  // Posterior = 0.75 / (0.75 + 1/3)
  assert.equal(r.confidence, Math.round((0.75 / (0.75 + 1 / 3)) * 1000) / 1000);
  const total = Object.values(r.probabilities).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(total - 1) < 1e-12);
});

test("unknown words carry no evidence: the prior decides", () => {
  const model = trainNaiveBayes([
    { text: "great", label: "positive" },
    { text: "fine", label: "positive" },
    { text: "awful", label: "negative" },
  ]);
  const r = predictNaiveBayes(model, "zebra quantum");
  assert.equal(r.label, "positive");
  assert.equal(r.confidence, Math.round((2 / 3) * 1000) / 1000);
});

test("long inputs do not underflow", () => {
  const model = trainNaiveBayes(loadExamples());
  const r = predictNaiveBayes(model, "terrible ".repeat(5000));
  assert.equal(r.label, "negative");
  assert.ok(Number.isFinite(r.confidence) && r.confidence > 0.99);
});

test("parseExamples validates with line numbers and skips blank lines", () => {
  assert.deepEqual(parseExamples('{"text":"ok","label":"neutral"}\n\n'), [{ text: "ok", label: "neutral" }]);
  assert.throws(() => parseExamples('{"text":"ok","label":"neutral"}\n{oops'), /line 2: invalid JSON/);
  assert.throws(() => parseExamples('{"text":"ok","label":"meh"}'), /line 1: label must be/);
  assert.throws(() => parseExamples('{"label":"positive"}'), /line 1: expected/);
  assert.throws(() => trainNaiveBayes([]), /zero examples/);
});

test("shipped training data: 300-600 examples, all three labels, no duplicates", () => {
  const examples = loadExamples();
  assert.ok(examples.length >= 300 && examples.length <= 600, `${examples.length}`);
  for (const l of ["positive", "negative", "neutral"]) {
    assert.ok(examples.filter((e) => e.label === l).length >= 100, l);
  }
  assert.equal(new Set(examples.map((e) => e.text)).size, examples.length);
});

test("held-out accuracy on the shipped data clears the bar", (t) => {
  const { train, test: heldOut } = holdOut(loadExamples(), 5);
  assert.ok(heldOut.length >= 80);
  const model = trainNaiveBayes(train);
  const acc = accuracy(model, heldOut);
  const majority = Math.max(...["positive", "negative", "neutral"].map((l) => heldOut.filter((e) => e.label === l).length)) / heldOut.length;
  t.diagnostic(`held-out accuracy ${acc.toFixed(3)} on ${heldOut.length} examples (majority baseline ${majority.toFixed(3)})`);
  assert.ok(acc >= 0.75, `accuracy ${acc}`);
  assert.ok(acc >= majority + 0.3);
  // Training accuracy is a sanity check that the model fits what it saw.
  assert.ok(accuracy(model, train) >= 0.95);
});

test("deterministic: training twice gives identical predictions", () => {
  const examples = loadExamples();
  const a = trainNaiveBayes(examples);
  const b = trainNaiveBayes([...examples].reverse());
  for (const text of ["The chatbot is great", "Awful latency", "The model has 7 billion parameters", "not bad at all"]) {
    assert.deepEqual(predictNaiveBayes(a, text), predictNaiveBayes(b, text));
  }
});

test("trained model gets everyday sentences right", () => {
  const model = trainNaiveBayes(loadExamples());
  assert.equal(predictNaiveBayes(model, "The support was fantastic and really fast").label, "positive");
  assert.equal(predictNaiveBayes(model, "The app is slow and keeps crashing").label, "negative");
  assert.equal(predictNaiveBayes(model, "The service runs in two regions").label, "neutral");
});
