import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { badgeText, CAVEAT, cutoffPercent, rulesLine, scorePercent, verdictLine, VERDICT_WORDS } from "../src/lib/wording.js";

test("the AI score is a whole percent that never claims certainty", () => {
  assert.equal(scorePercent(0.934), "93%");
  assert.equal(scorePercent(0.5), "50%");
  assert.equal(scorePercent(0.015), "2%");
  assert.equal(scorePercent(0.994), "99%");
  assert.equal(scorePercent(0.996), ">99%");
  assert.equal(scorePercent(1), ">99%");
  assert.equal(scorePercent(0.0049), "<1%");
  assert.equal(scorePercent(0), "<1%");
  for (let i = 0; i <= 1000; i += 1) {
    const text = scorePercent(i / 1000);
    assert.match(text, /^(<1|>99|[1-9]\d?)%$/, `${i / 1000} -> ${text}`);
  }
});

test("thresholds and band edges keep one decimal at most, and no trailing zero", () => {
  assert.equal(cutoffPercent(0.521615743637085), "52.2%");
  assert.equal(cutoffPercent(0.37161574363708494), "37.2%");
  assert.equal(cutoffPercent(0.5), "50%");
  assert.equal(cutoffPercent(0.55), "55%");
  assert.equal(cutoffPercent(0.6), "60%");
  assert.equal(cutoffPercent(0.0004), "0%");
  assert.equal(cutoffPercent(1), "100%");
});

test("a badge starts with its label and carries the AI score", () => {
  assert.equal(badgeText("ai", 0.996), "AI >99%");
  assert.equal(badgeText("human", 0.08), "Human · AI score 8%");
  assert.equal(badgeText("unsure", 0.55), "Unsure · AI score 55%");
});

test("verdicts put words beside the number", () => {
  assert.equal(verdictLine("ai", 0.93), "Likely AI-generated (AI score 93%)");
  assert.equal(verdictLine("human", 0.001), "No clear sign of AI (AI score <1%)");
  assert.equal(verdictLine("unsure", 0.5), "Unsure: the model cannot tell (AI score 50%)");
  assert.deepEqual(Object.keys(VERDICT_WORDS).sort(), ["ai", "human", "unsure"]);
  assert.match(CAVEAT, /estimate.*not proof/);
});

test("the rules line names the threshold and the unsure band, and drops an empty band", () => {
  assert.equal(rulesLine(0.521615743637085, [0.37161574363708494, 0.671615743637085]),
    "Threshold 52.2%; unsure between 37.2% and 67.2%");
  assert.equal(rulesLine(0.5, [0.5, 0.5]), "Threshold 50%");
  assert.equal(rulesLine(0.5, null), "Threshold 50%");
});

test("the relay's demo page serves the same wording module, byte for byte", () => {
  const extension = readFileSync(new URL("../src/lib/wording.js", import.meta.url), "utf8");
  const demo = readFileSync(new URL("../../server/static/wording.js", import.meta.url), "utf8");
  assert.equal(demo, extension, "copy extension/src/lib/wording.js to server/static/wording.js");
});
