import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { VerdictCache } from "../src/lib/cache.js";
import { createChecker } from "../src/lib/checker.js";
import { RelayError } from "../src/lib/relay.js";
import { scanFetchPolicy } from "../src/lib/scan_policy.js";
import { validateSettings } from "../src/lib/settings.js";
import { describeOutcome, evidenceLines, labelFor } from "../src/lib/verdict.js";
import { windowBoxes } from "../src/lib/windows.js";
import { DATA_DIR, datasetBytes, datasetRows } from "./helpers.js";

const NOVELAI = `${DATA_DIR}ai/tsunamori-novelai/`;
const novelai = new Uint8Array(readFileSync(NOVELAI + readdirSync(NOVELAI).sort()[0]));
const [plain] = datasetRows(1);
const target = { tabId: 1, frameId: 0 };
const defaults = validateSettings({}).settings;
const samePage = scanFetchPolicy("https://example.com/gallery", defaults.relayUrl);

// An engine that judges everything human at 30%, and maps every window at 10%.
const fakeEngine = {
  check: async () => ({ label: "human", probability: 0.3, threshold: 0.5, unsure_band: [0.4, 0.6], model_version: "m", engine: "browser" }),
  explain: async () => ({ probability: 0.3, grid: [[0.1, 0.1], [0.1, 0.1]], grid_size: 2, cost_ms: 5, invokes: 5 }),
};

function checkerWith({ engine = fakeEngine, relay = {}, bytes = novelai } = {}) {
  return createChecker({
    cache: new VerdictCache(),
    getRelay: async () => relay,
    getBrowserEngine: async () => engine,
    fetchImage: async () => ({ bytes, type: "image/png" }),
    readFromPage: async () => null,
  });
}

test("the browser engine's verdict carries the file's evidence, and metadata naming a generator decides", async () => {
  const outcome = await checkerWith().check("https://example.com/a.png", target);
  assert.equal(outcome.result.label, "ai");
  assert.equal(outcome.result.reason, "metadata");
  assert.equal(outcome.result.probability, 0.3, "the model's score is still reported");
  assert.deepEqual(outcome.result.evidence[0], { kind: "generator", detail: "PNG text 'Software': NovelAI" });
  const badge = describeOutcome(outcome, defaults);
  assert.equal(badge.state, "ai");
  assert.match(badge.details.wording.evidence[0], /^Labelled AI because the file's metadata says so; the model alone gives it 30%\.$/);
  assert.ok(badge.details.wording.evidence.includes("Names an AI generator: PNG text 'Software': NovelAI"));
  const ignoring = describeOutcome(outcome, { ...defaults, trustMetadata: false });
  assert.equal(ignoring.state, "human", "with the rule off the model's score decides");
  assert.ok(!ignoring.details.wording.evidence[0].startsWith("Labelled AI"));
});

test("a file without metadata is judged by the model alone, and the panel says that proves nothing", async () => {
  const outcome = await checkerWith({ bytes: datasetBytes(plain) }).check("https://example.com/b.webp", target);
  assert.deepEqual([outcome.result.label, outcome.result.reason, outcome.result.evidence], ["human", "model", []]);
  assert.deepEqual(describeOutcome(outcome, defaults).details.wording.evidence, [
    "No provenance metadata. That proves nothing: most sites strip it.",
  ]);
});

test("relay verdicts decided by metadata follow the user's trustMetadata setting", () => {
  const result = { label: "ai", reason: "metadata", probability: 0.2, threshold: 0.5, unsure_band: [0.4, 0.6], evidence: [] };
  assert.equal(labelFor(result, defaults), "ai");
  assert.equal(labelFor(result, { ...defaults, trustMetadata: false }), "human");
  assert.equal(labelFor({ ...result, reason: "model", label: "human" }, defaults), "human");
});

test("explain asks the browser engine, or the relay when the relay checks", async () => {
  const fromEngine = await checkerWith().explain("https://example.com/a.png", target, samePage);
  assert.deepEqual(fromEngine, { ok: true, explanation: await fakeEngine.explain() });
  const relay = { explain: async (bytes, type) => ({ grid: [[bytes.length > 0 ? 1 : 0]], grid_size: 1, type }) };
  const fromRelay = await checkerWith({ engine: null, relay }).explain("https://example.com/a.png", target, samePage);
  assert.deepEqual(fromRelay.explanation, { grid: [[1]], grid_size: 1, type: "image/png" });
  const busy = { explain: async () => Promise.reject(new RelayError("rate-limited", "slow down", { status: 429 })) };
  const failed = await checkerWith({ engine: null, relay: busy }).explain("https://example.com/a.png", target, samePage);
  assert.deepEqual([failed.ok, failed.error.kind], [false, "rate-limited"]);
});

test("window boxes are the Python map's: 2/grid of each side, centred, clamped, row-major", () => {
  const boxes = windowBoxes(300, 200, 7);
  assert.equal(boxes.length, 49);
  assert.deepEqual(boxes[0], [0, 0, 86, 57]);
  assert.deepEqual(boxes[48], [214, 143, 300, 200]);
  assert.ok(boxes.every(([left, top, right, bottom]) => left >= 0 && top >= 0 && right <= 300 && bottom <= 200 && left < right && top < bottom));
});

test("a C2PA manifest is worded as a claim, never as verified content credentials", async () => {
  // Issue 21: "Content credentials" was shown for any chunk holding the bytes "c2pa", with no signature check.
  const claim = { kind: "c2pa", detail: "C2PA manifest, not verified (PNG caBX chunk), claim generator: Leica M11-P" };
  const [line] = evidenceLines({ reason: "model", evidence: [claim] }, "human");
  assert.equal(line, "Claims content credentials: C2PA manifest, not verified (PNG caBX chunk), claim generator: Leica M11-P");
  const bytes = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
  const jumbf = bytes("\x89PNG\r\n\x1a\n\0\0\0\x08caBXjumbc2pa\0\0\0\0");
  const { inspect } = await import("../src/lib/provenance.js");
  assert.deepEqual(await inspect(jumbf), [{ kind: "c2pa", detail: "C2PA manifest, not verified (PNG caBX chunk)" }]);
});
