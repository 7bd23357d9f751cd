// Multinomial naive Bayes sentiment classifier (Laplace smoothing, log probabilities) trained on data/sentiment-train.jsonl.

import { readFileSync } from "node:fs";
import { isClauseBreak, isNegator, tokenize } from "./tokenize.ts";

export type Label = "positive" | "negative" | "neutral";
export const LABELS: readonly Label[] = ["negative", "neutral", "positive"];

export interface Example {
  text: string;
  label: Label;
}

export interface NaiveBayesModel {
  /** Labels seen in training, sorted, so ties and iteration order never depend on the data's order. */
  readonly labels: readonly Label[];
  readonly alpha: number;
  readonly totalDocs: number;
  readonly docCounts: ReadonlyMap<Label, number>;
  /** label -> feature -> count */
  readonly featureCounts: ReadonlyMap<Label, ReadonlyMap<string, number>>;
  /** label -> sum of feature counts */
  readonly featureTotals: ReadonlyMap<Label, number>;
  readonly vocabulary: ReadonlySet<string>;
}

export interface NaiveBayesResult {
  label: Label;
  /** Posterior probability of the chosen label, rounded to 3 decimals. */
  confidence: number;
  /** Unnormalised log posterior per label: log P(label) + sum log P(feature | label). */
  logScores: Record<string, number>;
  /** Normalised posteriors (softmax of logScores). */
  probabilities: Record<string, number>;
}

export const DEFAULT_TRAINING_PATH = new URL("../data/sentiment-train.jsonl", import.meta.url);

/** Light suffix stripping so "crash", "crashes", "crashed" and "crashing" share evidence. */
export function stem(word: string): string {
  return word.length <= 4 ? word : word.replace(/(?:ing|ed|ly|es|s)$/, "");
}

/**
 * Features are stemmed lower-case word tokens; words after a negator (up to the next punctuation) are
 * prefixed with "not_", so "not good" yields ["not", "not_good"] and is not counted as evidence for "good".
 */
export function features(text: string): string[] {
  const out: string[] = [];
  let negating = false;
  for (const token of tokenize(text)) {
    if (isClauseBreak(token)) {
      negating = false;
      continue;
    }
    const f = stem(token);
    out.push(negating ? `not_${f}` : f);
    if (isNegator(token)) negating = true;
  }
  return out;
}

function isLabel(v: unknown): v is Label {
  return v === "positive" || v === "negative" || v === "neutral";
}

/** Parses JSON Lines of {"text": "...", "label": "positive|negative|neutral"}; blank lines are skipped. */
export function parseExamples(jsonl: string): Example[] {
  const out: Example[] = [];
  jsonl.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw new Error(`line ${i + 1}: invalid JSON: ${(err as Error).message}`);
    }
    const r = row as { text?: unknown; label?: unknown } | null;
    if (typeof r !== "object" || r === null || typeof r.text !== "string" || r.text.trim() === "") {
      throw new Error(`line ${i + 1}: expected {"text": non-empty string, "label": ...}`);
    }
    if (!isLabel(r.label)) throw new Error(`line ${i + 1}: label must be positive, negative or neutral, got ${JSON.stringify(r.label)}`);
    out.push({ text: r.text, label: r.label });
  });
  return out;
}

export function loadExamples(path: string | URL = DEFAULT_TRAINING_PATH): Example[] {
  return parseExamples(readFileSync(path, "utf8"));
}

/** Deterministic hold-out split: every `every`-th example (index % every === every - 1) goes to test. */
export function holdOut<T>(examples: readonly T[], every = 5): { train: T[]; test: T[] } {
  const train: T[] = [];
  const test: T[] = [];
  examples.forEach((e, i) => (i % every === every - 1 ? test : train).push(e));
  return { train, test };
}

export function trainNaiveBayes(examples: readonly Example[], opts: { alpha?: number } = {}): NaiveBayesModel {
  const alpha = opts.alpha ?? 1;
  if (!(alpha > 0)) throw new Error("alpha must be > 0");
  if (examples.length === 0) throw new Error("cannot train on zero examples");
  const docCounts = new Map<Label, number>();
  const featureCounts = new Map<Label, Map<string, number>>();
  const featureTotals = new Map<Label, number>();
  const vocabulary = new Set<string>();
  for (const { text, label } of examples) {
    docCounts.set(label, (docCounts.get(label) ?? 0) + 1);
    let counts = featureCounts.get(label);
    if (!counts) featureCounts.set(label, (counts = new Map()));
    for (const f of features(text)) {
      counts.set(f, (counts.get(f) ?? 0) + 1);
      featureTotals.set(label, (featureTotals.get(label) ?? 0) + 1);
      vocabulary.add(f);
    }
  }
  const labels = [...docCounts.keys()].sort();
  return { labels, alpha, totalDocs: examples.length, docCounts, featureCounts, featureTotals, vocabulary };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Classifies one text. Features never seen in training carry no evidence and are skipped. Pure and deterministic. */
export function predictNaiveBayes(model: NaiveBayesModel, text: string): NaiveBayesResult {
  const feats = features(text).filter((f) => model.vocabulary.has(f));
  const v = model.vocabulary.size;
  const logScores: Record<string, number> = {};
  let best: Label = model.labels[0]!;
  let bestScore = -Infinity;
  for (const label of model.labels) {
    const counts = model.featureCounts.get(label);
    const denom = (model.featureTotals.get(label) ?? 0) + model.alpha * v;
    let s = Math.log(model.docCounts.get(label)! / model.totalDocs);
    for (const f of feats) s += Math.log(((counts?.get(f) ?? 0) + model.alpha) / denom);
    logScores[label] = s;
    if (s > bestScore) {
      bestScore = s;
      best = label;
    }
  }
  // Softmax relative to the best score keeps exp() from underflowing.
  let z = 0;
  for (const label of model.labels) z += Math.exp(logScores[label]! - bestScore);
  const probabilities: Record<string, number> = {};
  for (const label of model.labels) probabilities[label] = Math.exp(logScores[label]! - bestScore) / z;
  return { label: best, confidence: round3(probabilities[best]!), logScores, probabilities };
}

/** Fraction of examples the model labels correctly. */
export function accuracy(model: NaiveBayesModel, examples: readonly Example[]): number {
  if (examples.length === 0) return 0;
  let ok = 0;
  for (const e of examples) if (predictNaiveBayes(model, e.text).label === e.label) ok++;
  return ok / examples.length;
}
