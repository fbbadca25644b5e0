import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_SETTINGS, loadSettings, relayOriginPattern, saveSettings, validateSettings } from "../src/lib/settings.js";
import { MemoryStorage } from "./helpers.js";

test("defaults: local relay, model's own threshold, AI-only flagging", () => {
  const { settings, errors } = validateSettings({});
  assert.deepEqual(errors, {});
  assert.equal(settings.relayUrl, "http://127.0.0.1:8765");
  assert.equal(settings.threshold, null);
  assert.equal(settings.unsureBand, null);
  assert.equal(settings.flagMode, "ai");
});

test("form input is normalised: trailing slash, numbers from strings, blanks to null", () => {
  const { settings, errors } = validateSettings({
    engine: "relay",
    relayUrl: " https://relay.example:9000/detector/ ",
    token: "  secret ",
    threshold: "0.6",
    unsureBand: ["0.45", "0.7"],
    flagMode: "ai+unsure",
    minImageSide: "128",
    tta: "always",
  });
  assert.deepEqual(errors, {});
  assert.deepEqual(settings, {
    engine: "relay",
    relayUrl: "https://relay.example:9000/detector",
    token: "secret",
    threshold: 0.6,
    unsureBand: [0.45, 0.7],
    flagMode: "ai+unsure",
    minImageSide: 128,
    tta: "always",
    trustMetadata: true,
    model: "default",
  });
  assert.equal(validateSettings({ model: "paper" }).settings.model, "paper");
  assert.match(validateSettings({ model: "../model" }).errors.model, /default, paper/);
  assert.equal(validateSettings({ trustMetadata: false }).settings.trustMetadata, false);
  assert.match(validateSettings({ trustMetadata: "no" }).errors.trustMetadata, /true or false/);
  assert.equal(validateSettings({}).settings.engine, "browser", "the in-browser engine is the default");
  assert.equal(validateSettings({}).settings.tta, "adaptive", "adaptive TTA is the default");
  assert.match(validateSettings({ tta: "sometimes" }).errors.tta, /adaptive, always, never/);
  assert.match(validateSettings({ engine: "gpu" }).errors.engine, /browser, relay/);
  const blank = validateSettings({ threshold: "", unsureBand: ["", " "] });
  assert.equal(blank.settings.threshold, null);
  assert.equal(blank.settings.unsureBand, null);
});

test("each invalid field is reported and the others still parse", () => {
  const { settings, errors } = validateSettings({
    relayUrl: "ftp://127.0.0.1",
    threshold: "1.5",
    unsureBand: [0.8, 0.2],
    flagMode: "everything",
    minImageSide: "0",
    token: "t",
  });
  assert.deepEqual(Object.keys(errors).sort(), ["flagMode", "minImageSide", "relayUrl", "threshold", "unsureBand"]);
  assert.equal(settings.token, "t");
  assert.match(validateSettings({ relayUrl: "not a url" }).errors.relayUrl, /not a URL/);
  assert.match(validateSettings({ relayUrl: "http://u:p@host/" }).errors.relayUrl, /credentials/);
  assert.match(validateSettings({ unsureBand: [0.1] }).errors.unsureBand, /two numbers/);
  assert.match(validateSettings({ threshold: 0.9, unsureBand: [0.2, 0.5] }).errors.unsureBand, /contain the threshold/);
});

test("stored settings load over the defaults; a corrupted field falls back to its default", async () => {
  const storage = new MemoryStorage({ settings: { relayUrl: "http://localhost:9999", threshold: "oops", flagMode: "ai+unsure" } });
  const settings = await loadSettings(storage);
  assert.equal(settings.relayUrl, "http://localhost:9999");
  assert.equal(settings.threshold, DEFAULT_SETTINGS.threshold);
  assert.equal(settings.flagMode, "ai+unsure");
  assert.deepEqual(await loadSettings(new MemoryStorage()), { ...DEFAULT_SETTINGS });
});

test("saving stores valid settings and nothing when a field is invalid", async () => {
  const storage = new MemoryStorage();
  const bad = await saveSettings(storage, { relayUrl: "http://127.0.0.1:1", threshold: 7 });
  assert.ok(bad.errors.threshold);
  assert.deepEqual(storage.data, {});
  await saveSettings(storage, { relayUrl: "http://127.0.0.1:1/", minImageSide: 32 });
  const loaded = await loadSettings(storage);
  assert.equal(loaded.relayUrl, "http://127.0.0.1:1");
  assert.equal(loaded.minImageSide, 32);
});

test("the relay's host permission pattern ignores the port and path", () => {
  assert.equal(relayOriginPattern("http://127.0.0.1:8765"), "http://127.0.0.1/*");
  assert.equal(relayOriginPattern("https://relay.example:9000/detector"), "https://relay.example/*");
});
