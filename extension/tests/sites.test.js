import assert from "node:assert/strict";
import { test } from "node:test";

import { isScanAllowed, loadScanSites, setScanSite, sitePattern } from "../src/lib/sites.js";
import { MemoryStorage } from "./helpers.js";

test("a page's site is its scheme and host, any port, any path", () => {
  assert.equal(sitePattern("https://www.example.com/gallery?page=2#top"), "https://www.example.com/*");
  assert.equal(sitePattern("http://127.0.0.1:8000/index.html"), "http://127.0.0.1/*");
  assert.equal(sitePattern("chrome://extensions/"), null);
  assert.equal(sitePattern("file:///home/a.html"), null);
  assert.equal(sitePattern("not a url"), null);
});

test("the allow list grows and shrinks by site, without duplicates", async () => {
  const storage = new MemoryStorage();
  assert.deepEqual(await loadScanSites(storage), []);
  await setScanSite(storage, "https://b.example/*", true);
  await setScanSite(storage, "https://a.example/*", true);
  await setScanSite(storage, "https://a.example/*", true);
  assert.deepEqual(await loadScanSites(storage), ["https://a.example/*", "https://b.example/*"]);
  const sites = await setScanSite(storage, "https://b.example/*", false);
  assert.deepEqual(sites, ["https://a.example/*"]);
  assert.equal(isScanAllowed(sites, "https://a.example/art/1"), true);
  assert.equal(isScanAllowed(sites, "http://a.example/art/1"), false);
  assert.equal(isScanAllowed(sites, "https://b.example/"), false);
  assert.equal(isScanAllowed(sites, "about:blank"), false);
});
