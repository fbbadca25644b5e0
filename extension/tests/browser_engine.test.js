import assert from "node:assert/strict";
import { test } from "node:test";

import { base64ToBytes } from "../src/lib/base64.js";
import { EngineError, createBrowserEngine } from "../src/lib/browser_engine.js";
import { sha256Hex } from "../src/lib/bytes.js";
import { VerdictCache } from "../src/lib/cache.js";
import { createChecker } from "../src/lib/checker.js";
import { MAX_IMAGE_BYTES } from "../src/lib/image_limits.js";
import { datasetBytes, datasetRows } from "./helpers.js";

const rows = datasetRows(2);
const images = rows.map((row) => ({ bytes: datasetBytes(row), type: `image/${row.format}` }));
const target = { tabId: 1, frameId: 0 };

// An engine that judges by byte length and logs what it was given; bytes listed in `refuse` get an EngineError.
function fakeEngine(refuse = new Map()) {
  const checked = [];
  return {
    checked,
    async check(bytes) {
      checked.push(bytes.length);
      if (refuse.has(bytes.length)) throw refuse.get(bytes.length);
      return { label: "ai", probability: (bytes.length % 100) / 100, model_version: "m", engine: "browser" };
    },
  };
}

function checkerWith(engine, web) {
  const relayCalls = [];
  const checker = createChecker({
    cache: new VerdictCache(),
    getRelay: async () => {
      relayCalls.push("getRelay");
      throw new Error("the relay must not be asked");
    },
    getBrowserEngine: async () => engine,
    fetchImage: async (url) => web[url] ?? null,
    readFromPage: async () => null,
  });
  return { checker, relayCalls };
}

test("with the browser engine chosen, bytes go to the engine once per distinct image and never to the relay", async () => {
  const engine = fakeEngine();
  const web = { "https://a.example/0": images[0], "https://a.example/1": images[1], "https://a.example/dup": images[0] };
  const { checker, relayCalls } = checkerWith(engine, web);
  const outcomes = await checker.checkMany(Object.keys(web), target);
  assert.deepEqual(outcomes.map((o) => [o.ok, o.via]), [[true, "browser"], [true, "browser"], [true, "browser"]]);
  assert.equal(outcomes[0].result.sha256, await sha256Hex(images[0].bytes));
  assert.equal(outcomes[0].result.engine, "browser");
  assert.deepEqual(engine.checked, [images[0].bytes.length, images[1].bytes.length]);
  assert.deepEqual(relayCalls, []);
  const again = await checker.check("https://a.example/1", target);
  assert.equal(again.via, "cache");
  assert.equal(engine.checked.length, 2);
});

test("the browser engine's refusals become the relay's error kinds; unreadable URLs are not sent anywhere", async () => {
  const refused = new EngineError("too-small", "too small to judge: 20x600 pixels", { width: 20, height: 600 });
  const engine = fakeEngine(new Map([[images[1].bytes.length, refused]]));
  const { checker, relayCalls } = checkerWith(engine, { "https://a.example/0": images[0], "https://a.example/1": images[1] });
  const [ok, small, unreadable] = await checker.checkMany(["https://a.example/0", "https://a.example/1", "https://a.example/gone"], target);
  assert.equal(ok.ok, true);
  assert.deepEqual(small, { ok: false, error: { kind: "too-small", message: refused.message, width: 20, height: 600 } });
  assert.equal(unreadable.error.kind, "unreadable");
  assert.deepEqual(relayCalls, []);
});

// chrome.* as far as createBrowserEngine uses it: offscreen documents and runtime messages.
function fakeChrome(answer) {
  const log = { created: 0, messages: [] };
  let open = false;
  return {
    log,
    runtime: {
      getURL: (path) => `chrome-extension://id/${path}`,
      getContexts: async () => (open ? [{ contextType: "OFFSCREEN_DOCUMENT" }] : []),
      sendMessage: async (message) => {
        log.messages.push(message);
        return answer(message);
      },
    },
    offscreen: {
      createDocument: async ({ url }) => {
        assert.equal(url, "engine/offscreen.html");
        await new Promise((resolve) => setTimeout(resolve, 5));
        log.created += 1;
        open = true;
      },
    },
  };
}

test("Chromium: one offscreen document for concurrent checks; bytes travel as base64 and come back as a verdict", async () => {
  const api = fakeChrome((message) => ({ result: { label: "human", probability: 0.1, bytes: base64ToBytes(message.data).length } }));
  const engine = createBrowserEngine({ api });
  const results = await Promise.all(images.map((image) => engine.check(image.bytes)));
  assert.equal(api.log.created, 1);
  assert.deepEqual(results.map((r) => [r.bytes, r.engine]), images.map((image) => [image.bytes.length, "browser"]));
  assert.ok(api.log.messages.every((m) => m.target === "offscreen-engine" && m.type === "check"));
});

test("engine errors keep their kind; no answer or a failed start is an engine error; big files never leave", async () => {
  const unreadable = createBrowserEngine({ api: fakeChrome(() => ({ error: { kind: "unreadable", message: "corrupt" } })) });
  await assert.rejects(unreadable.check(images[0].bytes), { name: "EngineError", kind: "unreadable", message: "corrupt" });
  const silent = createBrowserEngine({ api: fakeChrome(() => undefined) });
  await assert.rejects(silent.check(images[0].bytes), { kind: "engine-error" });
  const broken = fakeChrome(() => ({}));
  broken.offscreen.createDocument = async () => {
    throw new Error("no offscreen API");
  };
  await assert.rejects(createBrowserEngine({ api: broken }).check(images[0].bytes), { kind: "engine-error", message: /no offscreen API/ });
  const api = fakeChrome(() => ({ result: {} }));
  await assert.rejects(createBrowserEngine({ api }).check(new Uint8Array(MAX_IMAGE_BYTES + 1)), { kind: "too-large" });
  assert.deepEqual(api.log.messages, []);
});

test("Firefox: the background page answers in-process with the bytes themselves", async () => {
  const asked = [];
  const engine = createBrowserEngine({
    api: {},
    inProcess: async (request) => {
      asked.push(request);
      return { result: { label: "ai", probability: 0.9 } };
    },
  });
  assert.equal((await engine.check(images[0].bytes)).engine, "browser");
  assert.equal(asked[0].bytes, images[0].bytes);
  assert.equal(asked[0].type, "check");
});

test("the model setting travels with every request, in both browsers; the default model unless one is named", async () => {
  const api = fakeChrome((message) => ({ result: { model: message.model }, info: { model: message.model } }));
  const engine = createBrowserEngine({ api });
  assert.equal((await engine.check(images[0].bytes, "always", "paper")).model, "paper");
  assert.equal((await engine.check(images[0].bytes)).model, "default");
  assert.deepEqual(await engine.info("paper"), { model: "paper" });
  assert.deepEqual(api.log.messages.map((m) => [m.type, m.model, m.tta]), [["check", "paper", "always"], ["check", "default", "adaptive"], ["info", "paper", undefined]]);
  const asked = [];
  const firefox = createBrowserEngine({ api: {}, inProcess: async (request) => (asked.push(request), { explanation: {} }) });
  await firefox.explain(images[0].bytes, "paper");
  assert.equal(asked[0].model, "paper");
});
