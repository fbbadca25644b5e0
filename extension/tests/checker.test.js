import assert from "node:assert/strict";
import { test } from "node:test";

import { sha256Hex } from "../src/lib/bytes.js";
import { VerdictCache } from "../src/lib/cache.js";
import { createChecker } from "../src/lib/checker.js";
import { RelayError } from "../src/lib/relay.js";
import { scanFetchPolicy } from "../src/lib/scan_policy.js";
import { datasetBytes, datasetRows } from "./helpers.js";

const rows = datasetRows(3);
const images = rows.map((row) => ({ bytes: datasetBytes(row), type: `image/${row.format}` }));
const target = { tabId: 1, frameId: 0 };

// A relay that judges by hashing what it receives, and logs every call.
function fakeRelay({ fail = null } = {}) {
  const calls = [];
  const judge = async (bytes) => ({ label: "ai", probability: bytes.length % 100 / 100, sha256: await sha256Hex(bytes), model_version: "m" });
  const guard = () => {
    if (fail) throw fail;
  };
  return {
    calls,
    async checkBytes(bytes) {
      calls.push(["checkBytes", 1]);
      guard();
      return judge(bytes);
    },
    async checkBatchFiles(files) {
      calls.push(["checkBatchFiles", files.length]);
      guard();
      return Promise.all(files.map(async ({ bytes }) => ({ ok: true, result: await judge(bytes) })));
    },
    async checkUrl(url) {
      calls.push(["checkUrl", url]);
      guard();
      if (url.includes("private")) throw new RelayError("refused", "URL refused", { status: 403 });
      return { label: "human", probability: 0.1, sha256: "e".repeat(64), model_version: "m" };
    },
    async checkBatchUrls(urls) {
      calls.push(["checkBatchUrls", urls.length]);
      guard();
      return urls.map((url) =>
        url.includes("private")
          ? { ok: false, error: new RelayError("refused", "URL refused", { status: 403 }) }
          : { ok: true, result: { label: "human", probability: 0.1, sha256: "e".repeat(64), model_version: "m" } },
      );
    },
  };
}

function setUp({ web = {}, page = {}, relay = fakeRelay() } = {}) {
  const fetched = [];
  const read = [];
  let saves = 0;
  const cache = new VerdictCache();
  const checker = createChecker({
    cache,
    saveCache: async () => {
      saves += 1;
    },
    getRelay: async () => relay,
    fetchImage: async (url) => {
      fetched.push(url);
      return web[url] ?? null;
    },
    readFromPage: async (url, where) => {
      read.push([url, where]);
      return page[url] ?? null;
    },
  });
  return { checker, cache, relay, fetched, read, saves: () => saves };
}

test("an image the worker can fetch is sent as bytes once; the second check comes from the URL cache", async () => {
  const { checker, relay, fetched, saves } = setUp({ web: { "https://a.example/1.webp": images[0] } });
  const first = await checker.check("https://a.example/1.webp", target);
  assert.equal(first.ok, true);
  assert.equal(first.via, "bytes");
  assert.equal(first.result.sha256, rows[0].sha256);
  const second = await checker.check("https://a.example/1.webp", target);
  assert.equal(second.via, "cache");
  assert.deepEqual(second.result, first.result);
  assert.deepEqual(relay.calls, [["checkBytes", 1]]);
  assert.deepEqual(fetched, ["https://a.example/1.webp"]);
  assert.ok(saves() >= 1);
});

test("the same bytes under another URL are not sent again (cache by hash)", async () => {
  const { checker, relay } = setUp({ web: { "https://a.example/x": images[1], "https://mirror.example/y": images[1] } });
  await checker.check("https://a.example/x", target);
  const copy = await checker.check("https://mirror.example/y", target);
  assert.equal(copy.via, "cache");
  assert.equal(relay.calls.length, 1);
});

test("a batch sends its distinct new images in one check-batch, duplicates once", async () => {
  const web = Object.fromEntries(images.map((image, index) => [`https://a.example/${index}`, image]));
  web["https://a.example/dup"] = images[0];
  const { checker, relay } = setUp({ web });
  const urls = [...Object.keys(web)];
  const outcomes = await checker.checkMany(urls, target);
  assert.deepEqual(relay.calls, [["checkBatchFiles", images.length]]);
  assert.equal(outcomes.length, urls.length);
  outcomes.forEach((outcome) => assert.equal(outcome.ok, true));
  assert.deepEqual(outcomes.at(-1).result, outcomes[0].result);
  assert.equal(outcomes[2].result.sha256, rows[2].sha256);
});

test("more than 16 new images go in several batches", async () => {
  const web = {};
  for (let i = 0; i < 20; i++) web[`https://a.example/${i}`] = { bytes: Uint8Array.of(i, 1, 2, 3), type: "image/png" };
  const { checker, relay } = setUp({ web });
  const outcomes = await checker.checkMany(Object.keys(web), target);
  assert.deepEqual(relay.calls, [["checkBatchFiles", 16], ["checkBatchFiles", 4]]);
  assert.ok(outcomes.every((outcome) => outcome.ok));
});

test("data: URLs are decoded in the worker; blob: URLs and refused fetches are read by the page", async () => {
  const dataUrl = `data:image/webp;base64,${Buffer.from(images[0].bytes).toString("base64")}`;
  const blobUrl = "blob:https://a.example/5d1c";
  const { checker, fetched, read } = setUp({ page: { [blobUrl]: images[1], "https://cdn.example/no-cors.jpg": images[2] } });
  const [fromData, fromBlob, fromPage] = await checker.checkMany([dataUrl, blobUrl, "https://cdn.example/no-cors.jpg"], target);
  assert.equal(fromData.result.sha256, rows[0].sha256);
  assert.equal(fromBlob.result.sha256, rows[1].sha256);
  assert.equal(fromPage.result.sha256, rows[2].sha256);
  assert.deepEqual(fetched, ["https://cdn.example/no-cors.jpg"]);
  assert.deepEqual(read, [[blobUrl, target], ["https://cdn.example/no-cors.jpg", target]]);
});

test("check-url is the fallback only for http(s) images whose bytes nobody could read", async () => {
  const { checker, relay } = setUp();
  const [viaUrl, blob, refused] = await checker.checkMany(["https://a.example/tainted.png", "blob:null/1", "http://private.example/a.png"], target);
  assert.equal(viaUrl.via, "url");
  assert.equal(viaUrl.result.label, "human");
  assert.equal(blob.ok, false);
  assert.equal(blob.error.kind, "unreadable");
  assert.equal(refused.ok, false);
  assert.equal(refused.error.kind, "unreadable");
  assert.match(refused.error.message, /URL refused/);
  assert.deepEqual(relay.calls.map(([name]) => name), ["checkBatchUrls"]);
  assert.equal((await checker.check("https://a.example/tainted.png", target)).via, "cache");
});

test("when the relay is down every image says so and nothing is cached", async () => {
  const relay = fakeRelay({ fail: new RelayError("unreachable", "connection refused") });
  const { checker, cache } = setUp({ web: { "https://a.example/1": images[0], "https://a.example/2": images[1] }, relay });
  const outcomes = await checker.checkMany(["https://a.example/1", "https://a.example/2", "https://a.example/gone"], target);
  assert.deepEqual(outcomes.map((outcome) => outcome.error.kind), ["unreachable", "unreachable", "unreachable"]);
  assert.equal(cache.size, 0);
});

test("a rate-limited relay passes its Retry-After on", async () => {
  const relay = fakeRelay({ fail: new RelayError("rate-limited", "slow down", { status: 429, retryAfter: 9 }) });
  const { checker } = setUp({ web: { "https://a.example/1": images[0] }, relay });
  const outcome = await checker.check("https://a.example/1", target);
  assert.equal(outcome.error.kind, "rate-limited");
  assert.equal(outcome.error.retryAfter, 9);
});

test("explain fetches only what page scan would fetch; other URLs the page chose are read from the page", async () => {
  // Issue 21: the heatmap request fetched img.currentSrc with fetch-anything rules (printer, Elasticsearch, router).
  const hostile = ["http://127.0.0.1:631/", "http://localhost:9200/_cat/indices", "http://192.168.1.1/status.png", "https://elsewhere.example/a.png"];
  const web = Object.fromEntries([...hostile, "https://art.example/own.png"].map((url) => [url, images[0]]));
  const page = Object.fromEntries(hostile.map((url) => [url, images[1]]));
  const relay = { explain: async (bytes) => ({ grid: [[bytes.length]], grid_size: 1 }) };
  const { checker, fetched, read } = setUp({ web, page, relay });
  const policy = scanFetchPolicy("https://art.example/gallery", "http://127.0.0.1:8765");
  for (const url of hostile) assert.equal((await checker.explain(url, target, policy)).explanation.grid[0][0], images[1].bytes.length, url);
  assert.equal((await checker.explain("https://art.example/own.png", target, policy)).explanation.grid[0][0], images[0].bytes.length);
  assert.deepEqual(fetched, ["https://art.example/own.png"]);
  assert.deepEqual(read.map(([url]) => url), hostile);
});

test("a verdict on bytes read through the page is cached by hash, never under the URL for other sites", async () => {
  // Issue 21: a page could hand over its own bytes for another site's image URL and poison that URL's verdict.
  const url = "https://victim.example/art.png";
  const forged = setUp({ page: { [url]: images[0] } });
  assert.equal((await forged.checker.check(url, target)).result.sha256, rows[0].sha256);
  assert.equal(forged.cache.getByUrl(url), undefined);
  assert.ok(forged.cache.getByHash(rows[0].sha256), "the bytes themselves are still known");
  const fetchedOnce = setUp({ web: { [url]: images[1] } });
  await fetchedOnce.checker.check(url, target);
  assert.equal(fetchedOnce.cache.getByUrl(url).sha256, rows[1].sha256, "bytes fetched from the URL are cached under it");
});
