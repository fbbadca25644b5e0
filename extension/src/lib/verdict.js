/** From a relay result (or a failure) and the user's settings to what the badge on the image shows. */

import { badgeText, CAVEAT, rulesLine, scorePercent, verdictLine } from "./wording.js";

/**
 * The label for a relay result under the user's settings. Without a threshold or band of their own, the relay's
 * label stands; otherwise the probability is re-labelled as the edge runtime does: "unsure" strictly inside the
 * band (lo, hi), else "ai" at or above the threshold and "human" below it. A setting left null takes the model's
 * value from the result. A label decided by the file's own metadata (reason "metadata") stands unless the user
 * turned settings.trustMetadata off; then the probability decides as above.
 */
export function labelFor(result, settings) {
  const byMetadata = result.reason === "metadata";
  if (byMetadata && settings.trustMetadata !== false) return "ai";
  if (settings.threshold === null && settings.unsureBand === null && !byMetadata) return result.label;
  const threshold = settings.threshold ?? result.threshold;
  const [lo, hi] = settings.unsureBand ?? result.unsure_band ?? [threshold, threshold];
  const p = result.probability;
  if (p > lo && p < hi) return "unsure";
  return p >= threshold ? "ai" : "human";
}

// What each kind of provenance evidence is called in the details panel (as on the relay's demo page).
export const EVIDENCE_WORDS = Object.freeze({
  generator: "Names an AI generator",
  "ai-declared": "Declares AI generation",
  c2pa: "Claims content credentials",
  software: "Software",
});

/** The details panel's lines about the file's own metadata: the rule when it decided, then each item. */
export function evidenceLines(result, label) {
  const evidence = result.evidence ?? [];
  const lines = [];
  if (result.reason === "metadata" && label === "ai") {
    lines.push(`Labelled AI because the file's metadata says so; the model alone gives it ${scorePercent(result.probability)}.`);
  }
  for (const { kind, detail } of evidence) lines.push(`${EVIDENCE_WORDS[kind] ?? kind}: ${detail}`);
  if (evidence.length === 0 && result.evidence !== undefined) lines.push("No provenance metadata. That proves nothing: most sites strip it.");
  return lines;
}

/** Whether page scan flags an image with this label. */
export function isFlagged(label, settings) {
  return label === "ai" || (label === "unsure" && settings.flagMode === "ai+unsure");
}

// How long page scan waits before trying again when the relay is unreachable or gives no Retry-After.
export const RETRY_UNREACHABLE_S = 30;
export const RETRY_RATE_LIMITED_S = 10;

/**
 * The badge for the outcome of checking one image: {state, text, title, flagged, scope, retryIn, details}.
 * outcome is {ok: true, result} or {ok: false, error: {kind, message, retryAfter?, width?, height?}}.
 * scope says what the state is about: "verdict" (a label), "image" (this image cannot be checked) or "relay"
 * (no image can be checked now; page scan pauses for retryIn seconds, or stops when retryIn is null).
 */
export function describeOutcome(outcome, settings) {
  if (outcome.ok) return describeResult(outcome.result, settings);
  return describeError(outcome.error);
}

function describeResult(result, settings) {
  const label = labelFor(result, settings);
  const p = result.probability;
  const threshold = settings.threshold ?? result.threshold;
  const unsureBand = settings.unsureBand ?? result.unsure_band;
  return {
    state: label,
    text: badgeText(label, p),
    title: `${verdictLine(label, p)}. Model ${result.model_version}.`,
    flagged: isFlagged(label, settings),
    scope: "verdict",
    retryIn: null,
    details: {
      label,
      relayLabel: result.label,
      probability: p,
      viewProbabilities: result.view_probabilities ?? {},
      threshold,
      unsureBand,
      modelVersion: result.model_version,
      sha256: result.sha256,
      engine: result.engine ?? "relay", // which engine answered: "browser" or "relay"
      reason: result.reason ?? "model",
      evidence: result.evidence ?? [],
      // What the details panel prints, worded here because the content script cannot import modules.
      wording: {
        verdict: verdictLine(label, p),
        rules: rulesLine(threshold, unsureBand),
        caveat: CAVEAT,
        evidence: evidenceLines(result, label),
        views: Object.fromEntries(Object.entries(result.view_probabilities ?? {}).map(([view, q]) => [view, scorePercent(q)])),
      },
    },
  };
}

function describeError({ kind, message = "", retryAfter = null, width, height }) {
  const badge = (state, scope, text, title, retryIn = null) => ({
    state,
    text,
    title,
    flagged: false,
    scope,
    retryIn,
    details: null,
  });
  switch (kind) {
    case "unreachable":
      return badge("unreachable", "relay", "Relay unreachable", `The relay did not answer: ${message}. Is it running?`, RETRY_UNREACHABLE_S);
    case "rate-limited": {
      const retryIn = retryAfter ?? RETRY_RATE_LIMITED_S;
      return badge("rate-limited", "relay", "Rate limited", `The relay is busy; try again in ${retryIn} s.`, retryIn);
    }
    case "unauthorized":
      return badge("unauthorized", "relay", "Token rejected", "The relay refused the token; set it on the options page.");
    case "too-small":
      return badge("too-small", "image", "Too small", `Image too small to judge (${width}×${height} px).`);
    case "engine-error":
      return badge("error", "relay", "Engine failed", `The in-browser engine could not run: ${message}. Reload the extension, or check with your relay (options).`);
    case "too-large":
      return badge("too-large", "image", "Too large", `The image is too large to check: ${message}.`);
    case "unreadable":
    case "refused":
      return badge("unreadable", "image", "Unreadable image", `The image could not be read: ${message}.`);
    default:
      return badge("error", "image", "Check failed", `The relay could not check this image: ${message}.`);
  }
}
