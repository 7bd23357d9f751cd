// Lexicon sentiment classifier: sums word strengths from data/lexicon.json, with negation, intensifiers and "but" clauses.

import { readFileSync } from "node:fs";
import { isClauseBreak, isNegator, tokenize } from "./tokenize.ts";

export type Label = "positive" | "negative" | "neutral";

export interface Lexicon {
  /** word -> signed strength: positive words > 0, negative words < 0. */
  readonly words: ReadonlyMap<string, number>;
  /** word -> multiplier for the next sentiment word ("very" 1.5, "slightly" 0.5). */
  readonly intensifiers: ReadonlyMap<string, number>;
  /** Words that shift weight to the clause after them ("good but slow" is mostly "slow"). */
  readonly contrast: ReadonlySet<string>;
}

export interface Hit {
  word: string;
  /** Signed lexicon strength of the word. */
  strength: number;
  /** What it added to the score after negation, intensifiers and clause weighting. */
  contribution: number;
  negated: boolean;
}

export interface LexiconResult {
  label: Label;
  /** 0.5..0.99, rounded to 3 decimals. */
  confidence: number;
  /** Raw summed score. */
  score: number;
  /** score squashed into (-1, 1). */
  compound: number;
  hits: Hit[];
}

/** How far back (in tokens) a negator or intensifier reaches. */
const SCOPE = 3;
/** A negated word keeps most of its strength with the opposite sign: "not good" is less negative than "bad". */
const NEGATION_FACTOR = -0.75;
/** Weight of the clause before / after the last contrast word. */
const BEFORE_CONTRAST = 0.5;
const AFTER_CONTRAST = 1.5;
/** |compound| below this is neutral: a single mild word ("okay", "fine") stays neutral. */
export const NEUTRAL_THRESHOLD = 0.3;
/** VADER-style normalisation constant: compound = s / sqrt(s^2 + ALPHA). */
const ALPHA = 15;

export const DEFAULT_LEXICON_PATH = new URL("../data/lexicon.json", import.meta.url);

/** Validates lexicon JSON: {positive: {word: 1..3}, negative: {word: 1..3}, intensifiers: {word: n}, contrast: [word]}. */
export function parseLexicon(json: unknown): Lexicon {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("lexicon: expected a JSON object");
  const o = json as Record<string, unknown>;
  const words = new Map<string, number>();
  const table = (key: string): Record<string, unknown> => {
    const t = o[key];
    if (typeof t !== "object" || t === null || Array.isArray(t)) throw new Error(`lexicon: "${key}" must be an object of word -> number`);
    return t as Record<string, unknown>;
  };
  for (const [key, sign] of [["positive", 1], ["negative", -1]] as const) {
    for (const [word, strength] of Object.entries(table(key))) {
      if (typeof strength !== "number" || !(strength > 0)) throw new Error(`lexicon: ${key}.${word} must be a positive number`);
      if (words.has(word)) throw new Error(`lexicon: "${word}" is listed as both positive and negative`);
      words.set(word, sign * strength);
    }
  }
  const intensifiers = new Map<string, number>();
  for (const [word, factor] of Object.entries(table("intensifiers"))) {
    if (typeof factor !== "number" || !(factor > 0)) throw new Error(`lexicon: intensifiers.${word} must be a positive number`);
    intensifiers.set(word, factor);
  }
  const contrastRaw = o.contrast ?? [];
  if (!Array.isArray(contrastRaw) || !contrastRaw.every((w) => typeof w === "string")) {
    throw new Error('lexicon: "contrast" must be an array of words');
  }
  return { words, intensifiers, contrast: new Set(contrastRaw as string[]) };
}

export function loadLexicon(path: string | URL = DEFAULT_LEXICON_PATH): Lexicon {
  return parseLexicon(JSON.parse(readFileSync(path, "utf8")));
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Classifies one text. Pure and deterministic. */
export function classifyLexicon(lexicon: Lexicon, text: string): LexiconResult {
  const tokens = tokenize(text);
  let lastContrast = -1;
  tokens.forEach((t, i) => {
    if (lexicon.contrast.has(t) && i > 0) lastContrast = i;
  });

  const hits: Hit[] = [];
  let score = 0;
  for (let i = 0; i < tokens.length; i++) {
    const word = tokens[i]!;
    const strength = lexicon.words.get(word);
    if (strength === undefined) continue;
    let multiplier = 1;
    let negated = false;
    for (let j = i - 1; j >= 0 && j >= i - SCOPE; j--) {
      const prev = tokens[j]!;
      if (isClauseBreak(prev) || lexicon.contrast.has(prev)) break;
      if (isNegator(prev)) negated = !negated;
      const factor = lexicon.intensifiers.get(prev);
      if (factor !== undefined) multiplier *= factor;
    }
    const clause = lastContrast < 0 ? 1 : i < lastContrast ? BEFORE_CONTRAST : AFTER_CONTRAST;
    const contribution = strength * multiplier * (negated ? NEGATION_FACTOR : 1) * clause;
    score += contribution;
    hits.push({ word, strength, contribution: round3(contribution), negated });
  }
  // Exclamation marks amplify whatever was said (up to three of them).
  const bangs = tokens.filter((t) => t === "!").length;
  score *= 1 + 0.15 * Math.min(bangs, 3);

  const compound = score / Math.sqrt(score * score + ALPHA);
  const magnitude = Math.abs(compound);
  let label: Label;
  let confidence: number;
  if (magnitude < NEUTRAL_THRESHOLD) {
    label = "neutral";
    // No sentiment words at all: fairly (not fully) sure it is neutral.
    confidence = 0.6 + 0.35 * (1 - magnitude / NEUTRAL_THRESHOLD);
  } else {
    label = compound > 0 ? "positive" : "negative";
    confidence = Math.min(0.99, 0.5 + 0.5 * magnitude);
  }
  return { label, confidence: round3(confidence), score: round3(score), compound: round3(compound), hits };
}
