// Tokenizer shared by the sentiment classifiers: lower-cased words (contractions folded) plus clause punctuation.

/** Words that flip the polarity of what follows ("not good", "isn't great", "no problems"). */
export const NEGATORS: ReadonlySet<string> = new Set([
  "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "cannot", "without",
  "hardly", "barely", "scarcely", "rarely", "seldom", "least",
  "isnt", "dont", "doesnt", "didnt", "wasnt", "werent", "wont", "wouldnt", "couldnt", "shouldnt",
  "cant", "aint", "arent", "havent", "hasnt", "hadnt", "neednt", "mustnt",
]);

/** Punctuation that ends a clause, and so ends the reach of a negator or intensifier. */
export const CLAUSE_BREAKS: ReadonlySet<string> = new Set([".", ",", ";", ":", "!", "?"]);

const TOKEN = /[\p{L}\p{N}]+|[.,;:!?]/gu;

/**
 * Splits text into lower-case tokens. Apostrophes inside words are dropped, so "isn't" becomes "isnt"
 * and "don’t" becomes "dont"; clause punctuation is kept as its own token.
 */
export function tokenize(text: string): string[] {
  const folded = text.toLowerCase().replace(/(\p{L})['’](\p{L})/gu, "$1$2");
  return folded.match(TOKEN) ?? [];
}

export function isNegator(token: string): boolean {
  return NEGATORS.has(token);
}

export function isClauseBreak(token: string): boolean {
  return CLAUSE_BREAKS.has(token);
}
