import assert from "node:assert/strict";
import { test } from "node:test";

import { VerdictCache, isCacheableUrl } from "../src/lib/cache.js";

const result = (probability) => ({ label: probability >= 0.5 ? "ai" : "human", probability });

test("a verdict is found by URL and by hash; two URLs of the same bytes share it", () => {
  const cache = new VerdictCache();
  cache.put({ url: "https://a.example/1.png", sha256: "h1", result: result(0.9) });
  assert.equal(cache.getByUrl("https://a.example/1.png").probability, 0.9);
  assert.equal(cache.getByHash("h1").probability, 0.9);
  assert.equal(cache.getByUrl("https://a.example/2.png"), undefined);
  cache.put({ url: "https://b.example/copy.png", sha256: "h1", result: cache.getByHash("h1") });
  assert.equal(cache.getByUrl("https://b.example/copy.png").probability, 0.9);
  assert.equal(cache.size, 1);
});

test("data: and blob: URLs are cached by hash only", () => {
  const cache = new VerdictCache();
  cache.put({ url: "data:image/png;base64,AAAA", sha256: "h", result: result(0.1) });
  cache.put({ url: "blob:https://a.example/123", sha256: "h", result: result(0.1) });
  assert.equal(cache.getByUrl("data:image/png;base64,AAAA"), undefined);
  assert.equal(cache.getByUrl("blob:https://a.example/123"), undefined);
  assert.equal(cache.getByHash("h").probability, 0.1);
  assert.equal(isCacheableUrl("HTTPS://x/y"), true);
  assert.equal(isCacheableUrl("data:,x"), false);
});

test("least recently used entries go first; a URL whose hash was dropped is forgotten", () => {
  const cache = new VerdictCache({ maxEntries: 2 });
  cache.put({ url: "http://x/1", sha256: "h1", result: result(0.1) });
  cache.put({ url: "http://x/2", sha256: "h2", result: result(0.2) });
  cache.getByHash("h1"); // h1 is now the most recent
  cache.put({ url: "http://x/3", sha256: "h3", result: result(0.3) });
  assert.equal(cache.getByHash("h2"), undefined);
  assert.equal(cache.getByUrl("http://x/2"), undefined);
  assert.equal(cache.getByHash("h1").probability, 0.1);
  assert.equal(cache.getByUrl("http://x/3").probability, 0.3);
  assert.equal(cache.size, 2);
});

test("the cache survives a round trip through storage's JSON; garbage gives an empty cache", () => {
  const cache = new VerdictCache();
  cache.put({ url: "http://x/1", sha256: "h1", result: result(0.7) });
  const copy = VerdictCache.fromJSON(JSON.parse(JSON.stringify(cache)));
  assert.equal(copy.getByUrl("http://x/1").probability, 0.7);
  assert.equal(VerdictCache.fromJSON(undefined).size, 0);
  assert.equal(VerdictCache.fromJSON({ byHash: "nope" }).size, 0);
  cache.clear();
  assert.equal(cache.getByUrl("http://x/1"), undefined);
});
