import assert from "node:assert/strict";
import { test } from "node:test";

import { validateSettings } from "../src/lib/settings.js";
import { describeOutcome, isFlagged, labelFor, RETRY_UNREACHABLE_S } from "../src/lib/verdict.js";
import { CAVEAT } from "../src/lib/wording.js";

const defaults = validateSettings({}).settings;
const relayResult = (label, probability) => ({
  label,
  probability,
  threshold: 0.5,
  unsure_band: [0.4, 0.6],
  view_probabilities: { original: probability, flip: probability },
  model_version: "test-model",
  sha256: "f".repeat(64),
});

test("without settings of their own the relay's label stands, even where the numbers would say otherwise", () => {
  assert.equal(labelFor(relayResult("unsure", 0.8), defaults), "unsure");
  assert.equal(labelFor(relayResult("human", 0.55), defaults), "human");
});

test("a user threshold or band re-labels from the probability; the other value comes from the model", () => {
  const strict = validateSettings({ threshold: 0.9 }).settings;
  assert.equal(labelFor(relayResult("ai", 0.85), strict), "human"); // model band [0.4, 0.6] does not cover 0.85
  assert.equal(labelFor(relayResult("ai", 0.95), strict), "ai");
  assert.equal(labelFor(relayResult("human", 0.5), strict), "unsure");
  const wide = validateSettings({ unsureBand: [0.2, 0.8] }).settings;
  assert.equal(labelFor(relayResult("ai", 0.75), wide), "unsure");
  assert.equal(labelFor(relayResult("ai", 0.81), wide), "ai");
  assert.equal(labelFor(relayResult("human", 0.19), wide), "human");
  assert.equal(labelFor(relayResult("unsure", 0.2), wide), "human"); // the band's edges are outside it, as in edge_runtime
  assert.equal(labelFor(relayResult("unsure", 0.8), wide), "ai");
  const noBand = validateSettings({ threshold: 0.3, unsureBand: [0.3, 0.3] }).settings;
  assert.equal(labelFor(relayResult("human", 0.3), noBand), "ai");
});

test("page scan flags AI, and unsure only when asked to", () => {
  const both = validateSettings({ flagMode: "ai+unsure" }).settings;
  assert.deepEqual(["ai", "unsure", "human"].map((label) => isFlagged(label, defaults)), [true, false, false]);
  assert.deepEqual(["ai", "unsure", "human"].map((label) => isFlagged(label, both)), [true, true, false]);
});

test("verdict badges show the label with its probability and carry the details panel's data", () => {
  const ai = describeOutcome({ ok: true, result: relayResult("ai", 0.934) }, defaults);
  assert.equal(ai.state, "ai");
  assert.equal(ai.text, "AI 93%");
  assert.equal(ai.flagged, true);
  assert.equal(ai.scope, "verdict");
  assert.deepEqual(ai.details.viewProbabilities, { original: 0.934, flip: 0.934 });
  assert.equal(ai.details.modelVersion, "test-model");
  const human = describeOutcome({ ok: true, result: relayResult("human", 0.08) }, defaults);
  assert.equal(human.text, "Human · AI score 8%");
  assert.equal(human.flagged, false);
  assert.equal(human.title, "No clear sign of AI (AI score 8%). Model test-model.");
  assert.deepEqual(ai.details.wording, {
    verdict: "Likely AI-generated (AI score 93%)",
    rules: "Threshold 50%; unsure between 40% and 60%",
    caveat: CAVEAT,
    evidence: [],
    views: { original: "93%", flip: "93%" },
  });
  const certain = describeOutcome({ ok: true, result: relayResult("ai", 0.9996) }, defaults);
  assert.equal(certain.text, "AI >99%");
});

test("relay-wide failures pause page scan; image failures badge the image", () => {
  const fail = (error) => describeOutcome({ ok: false, error }, defaults);
  const unreachable = fail({ kind: "unreachable", message: "connection refused" });
  assert.deepEqual([unreachable.state, unreachable.scope, unreachable.retryIn], ["unreachable", "relay", RETRY_UNREACHABLE_S]);
  assert.equal(unreachable.text, "Relay unreachable");
  const limited = fail({ kind: "rate-limited", message: "", retryAfter: 12 });
  assert.deepEqual([limited.state, limited.scope, limited.retryIn], ["rate-limited", "relay", 12]);
  assert.equal(fail({ kind: "rate-limited" }).retryIn, 10);
  const token = fail({ kind: "unauthorized" });
  assert.deepEqual([token.scope, token.retryIn], ["relay", null]);
  const small = fail({ kind: "too-small", width: 16, height: 16 });
  assert.deepEqual([small.state, small.scope], ["too-small", "image"]);
  assert.match(small.title, /16×16/);
  assert.equal(fail({ kind: "unreadable", message: "truncated" }).state, "unreadable");
  assert.equal(fail({ kind: "refused", message: "private address" }).state, "unreadable");
  assert.equal(fail({ kind: "too-large" }).state, "too-large");
  assert.equal(fail({ kind: "relay-error", message: "HTTP 500" }).state, "error");
  for (const kind of ["unreachable", "rate-limited", "unreadable", "too-small", "relay-error"]) {
    assert.equal(fail({ kind }).flagged, false);
  }
});
