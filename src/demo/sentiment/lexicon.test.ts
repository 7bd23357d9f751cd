// Unit tests for the lexicon sentiment classifier and the shared tokenizer.

import { test } from "node:test";
import assert from "node:assert/strict";
import { classifyLexicon, loadLexicon, parseLexicon, NEUTRAL_THRESHOLD } from "./lexicon.ts";
import { tokenize } from "./tokenize.ts";

const lexicon = loadLexicon();
const label = (text: string) => classifyLexicon(lexicon, text).label;
const score = (text: string) => classifyLexicon(lexicon, text).score;

test("tokenize: lower-cases, folds contractions, keeps clause punctuation", () => {
  assert.deepEqual(tokenize("It ISN'T great, don’t buy!"), ["it", "isnt", "great", ",", "dont", "buy", "!"]);
  assert.deepEqual(tokenize("   "), []);
  assert.deepEqual(tokenize("low-latency v2"), ["low", "latency", "v2"]);
});

test("shipped lexicon has a few hundred words of each polarity", () => {
  const values = [...lexicon.words.values()];
  assert.ok(values.filter((v) => v > 0).length >= 150);
  assert.ok(values.filter((v) => v < 0).length >= 150);
  assert.ok(lexicon.intensifiers.has("very"));
  assert.ok(lexicon.contrast.has("but"));
});

test("plain positive, negative and neutral sentences", () => {
  assert.equal(label("The new model is excellent and fast"), "positive");
  assert.equal(label("Support was rude and the app keeps crashing"), "negative");
  assert.equal(label("The model was released on Tuesday"), "neutral");
  assert.equal(label(""), "neutral");
});

test("negation flips polarity, within a short scope and a clause", () => {
  assert.equal(label("not good"), "negative");
  assert.equal(label("not bad"), "positive");
  assert.equal(label("It isn't great"), "negative");
  assert.equal(label("No problems at all"), "positive");
  // A negated word is weaker than its plain opposite.
  assert.ok(Math.abs(score("not good")) < Math.abs(score("bad")));
  // Punctuation ends the negation's reach.
  assert.equal(label("I was not sure. Great product"), "positive");
  // Too far away to apply (scope is 3 tokens).
  assert.equal(label("not that I expected it to be this great"), "positive");
  // Double negation cancels.
  assert.ok(score("not never good") > 0);
});

test("intensifiers scale the next sentiment word", () => {
  assert.ok(score("very good") > score("good"));
  assert.ok(score("extremely good") > score("very good"));
  assert.ok(score("slightly bad") > score("bad")); // less negative
  assert.ok(score("not very good") < 0);
  assert.equal(label("slightly disappointing"), "neutral");
});

test("a contrast word moves weight to the clause after it", () => {
  assert.equal(label("The screen is good but the battery is terrible"), "negative");
  assert.equal(label("The screen is bad but the support was excellent"), "positive");
});

test("exclamation marks amplify, up to three", () => {
  assert.ok(score("great!") > score("great"));
  assert.equal(score("great!!!!!!"), score("great!!!"));
});

test("hits explain the score", () => {
  const r = classifyLexicon(lexicon, "not good, very fast");
  assert.deepEqual(
    r.hits.map((h) => [h.word, h.negated]),
    [["good", true], ["fast", false]],
  );
  const sum = r.hits.reduce((s, h) => s + h.contribution, 0);
  assert.ok(Math.abs(sum - r.score) < 0.01);
});

test("confidence is in range and grows with strength", () => {
  for (const t of ["good", "amazing!!!", "terrible", "okay", "", "the box"]) {
    const c = classifyLexicon(lexicon, t).confidence;
    assert.ok(c >= 0.5 && c <= 0.99, `${t}: ${c}`);
  }
  assert.ok(classifyLexicon(lexicon, "absolutely amazing").confidence > classifyLexicon(lexicon, "good").confidence);
  const mild = classifyLexicon(lexicon, "okay");
  assert.equal(mild.label, "neutral");
  assert.ok(Math.abs(mild.compound) < NEUTRAL_THRESHOLD);
});

test("deterministic", () => {
  const t = "The latency is great but the answers are sometimes wrong!";
  assert.deepEqual(classifyLexicon(lexicon, t), classifyLexicon(lexicon, t));
});

test("parseLexicon validates its input", () => {
  assert.throws(() => parseLexicon([]), /JSON object/);
  assert.throws(() => parseLexicon({ positive: { good: 2 }, negative: { good: 1 }, intensifiers: {} }), /both positive and negative/);
  assert.throws(() => parseLexicon({ positive: { good: -1 }, negative: {}, intensifiers: {} }), /positive number/);
  assert.throws(() => parseLexicon({ positive: {}, negative: {}, intensifiers: {}, contrast: "but" }), /contrast/);
  const tiny = parseLexicon({ positive: { nice: 2 }, negative: { meh: 1 }, intensifiers: { so: 2 } });
  assert.equal(classifyLexicon(tiny, "so nice").score, 4);
});
