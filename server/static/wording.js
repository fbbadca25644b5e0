/**
 * What people read about a verdict: its words and numbers, in one place for the badge, the details panel, the
 * popup, the options page and the relay's demo page (server/static/wording.js is a byte-for-byte copy; the
 * Python side, edge_runtime/wording.py, gives the same strings, and tests hold all three to that).
 *
 * The one number shown is the AI score: the model's probability that an image is AI-generated, as a whole percent
 * that never reads "100%" or "0%", because no detector is certain.
 */

/** The verdict in words, by label. */
export const VERDICT_WORDS = {
  ai: "likely AI-generated",
  human: "no clear sign of AI",
  unsure: "unsure: the model cannot tell",
};

/** The short label a badge starts with, by label. */
export const SHORT_LABELS = { ai: "AI", human: "Human", unsure: "Unsure" };

/** What the score is and is not, in one line. */
export const CAVEAT =
  "The AI score is a model's estimate from the pixels, not proof: it can be wrong, " +
  "most of all on styles and generators it was not trained on.";

/** A probability as a whole percent: "93%", never "100%" or "0%" (">99%", "<1%"). */
export function scorePercent(p) {
  const whole = Math.floor(p * 100 + 0.5);
  if (whole >= 100) return ">99%";
  if (whole <= 0) return "<1%";
  return `${whole}%`;
}

/** A threshold or band edge as a percent with at most one decimal and no trailing zero: 0.5216 -> "52.2%". */
export function cutoffPercent(value) {
  const tenths = Math.floor(value * 1000 + 0.5);
  return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)}%`;
}

/** The verdict as a sentence start: "Likely AI-generated". */
export function verdictSentence(label) {
  const words = VERDICT_WORDS[label];
  return words[0].toUpperCase() + words.slice(1);
}

/** The badge's text: the short label, then the AI score ("AI 93%", "Human · AI score 8%"). */
export function badgeText(label, p) {
  if (label === "ai") return `AI ${scorePercent(p)}`;
  return `${SHORT_LABELS[label]} · AI score ${scorePercent(p)}`;
}

/** The verdict with its number: "Likely AI-generated (AI score 93%)". */
export function verdictLine(label, p) {
  return `${verdictSentence(label)} (AI score ${scorePercent(p)})`;
}

/** How the label follows from the score: "Threshold 52.2%; unsure between 37.2% and 67.2%". */
export function rulesLine(threshold, unsureBand) {
  const rule = `Threshold ${cutoffPercent(threshold)}`;
  if (!unsureBand || unsureBand[0] >= unsureBand[1]) return rule;
  return `${rule}; unsure between ${cutoffPercent(unsureBand[0])} and ${cutoffPercent(unsureBand[1])}`;
}
