import assert from "node:assert/strict";
import { test } from "node:test";

import { sha256Hex } from "../src/lib/bytes.js";
import { VerdictCache } from "../src/lib/cache.js";
import { createChecker } from "../src/lib/checker.js";
import { isPrivateHost, scanFetchPolicy } from "../src/lib/scan_policy.js";
import { createService } from "../src/lib/service.js";
import { MemoryStorage, datasetBytes, datasetRows } from "./helpers.js";

const PAGE = "https://art.example/gallery";
const RELAY = "http://127.0.0.1:8765";
const image = (() => {
  const [row] = datasetRows(1);
  return { bytes: datasetBytes(row), type: `image/${row.format}` };
})();

test("loopback, private and link-local hosts are private in every spelling the URL parser accepts", () => {
  const hostOf = (url) => new URL(url).hostname;
  for (const url of ["http://localhost:3000/", "http://api.localhost/", "http://127.0.0.1/", "http://2130706433/",
    "http://0x7f.1/", "http://0177.0.0.1/", "http://10.1.2.3/", "http://172.20.0.1/", "http://192.168.0.10/",
    "http://169.254.169.254/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[::1]/", "http://[::]/",
    "http://[::ffff:127.0.0.1]/", "http://[fd00::1]/", "http://[fe80::1]/", "http://[fec0::1]/", "http://printer.local/",
    "http://nas.home.arpa/", "http://db.internal/"]) {
    assert.equal(isPrivateHost(hostOf(url)), true, url);
  }
  for (const url of ["https://art.example/", "https://8.8.8.8/", "https://172.32.0.1/", "https://[2606:4700::1111]/",
    "https://localhost.example/"]) {
    assert.equal(isPrivateHost(hostOf(url)), false, url);
  }
});

test("page scan fetches only the page's own public origin; the relay is asked only for public hosts", () => {
  const policy = scanFetchPolicy(PAGE, RELAY);
  const cases = [
    // url, extension may fetch, relay may be asked
    ["https://art.example/a.png", true, true],
    ["https://art.example:8443/a.png", false, true],
    ["http://art.example/a.png", false, true],
    ["https://cdn.example/a.png", false, true],
    ["http://localhost:5432/", false, false],
    ["http://127.0.0.1:8765/api/v1/model", false, false],
    ["http://192.168.1.1/login.png", false, false],
    ["data:image/png;base64,AAAA", false, false],
    ["not a url", false, false],
  ];
  for (const [url, extension, relay] of cases) {
    assert.deepEqual([policy.extension(url), policy.relay(url)], [extension, relay], url);
  }
  const remoteRelay = scanFetchPolicy("https://relay.example/", "https://relay.example");
  assert.equal(remoteRelay.extension("https://relay.example/metrics"), false); // never the relay itself
  assert.equal(scanFetchPolicy("https://art.example.evil/", RELAY).extension(PAGE), false);
});

function recordingChecker() {
  const fetched = [];
  const read = [];
  const askedRelay = [];
  const judge = async (bytes) => ({ label: "ai", probability: 0.9, sha256: await sha256Hex(bytes), model_version: "m" });
  const relay = {
    checkBytes: async (bytes) => judge(bytes),
    checkBatchFiles: async (files) => Promise.all(files.map(async ({ bytes }) => ({ ok: true, result: await judge(bytes) }))),
    checkUrl: async (url) => {
      askedRelay.push(url);
      return { label: "human", probability: 0.1, sha256: "e".repeat(64), model_version: "m" };
    },
    checkBatchUrls: async (urls) => {
      askedRelay.push(...urls);
      return urls.map(() => ({ ok: true, result: { label: "human", probability: 0.1, sha256: "e".repeat(64), model_version: "m" } }));
    },
  };
  const checker = createChecker({
    cache: new VerdictCache(),
    getRelay: async () => relay,
    fetchImage: async (url) => {
      fetched.push(url);
      return image;
    },
    readFromPage: async (url) => {
      read.push(url);
      return null; // a cross-origin image the page's rules do not let anyone read
    },
  });
  return { checker, fetched, read, askedRelay };
}

test("with the scan policy the worker never fetches a loopback URL, and no verdict depends on it", async () => {
  const { checker, fetched, read, askedRelay } = recordingChecker();
  const urls = ["https://art.example/own.png", "http://localhost:9200/", "http://127.0.0.1:8765/healthz",
    "https://cdn.example/other.png"];
  const outcomes = await checker.checkMany(urls, { tabId: 1, frameId: 0 }, scanFetchPolicy(PAGE, RELAY));
  assert.deepEqual(fetched, ["https://art.example/own.png"]);
  assert.deepEqual(read, urls.slice(1)); // the page's own copy, under the browser's rules
  assert.deepEqual(askedRelay, ["https://cdn.example/other.png"]);
  assert.equal(outcomes[0].ok, true);
  assert.deepEqual(outcomes[1], outcomes[2]); // open port or closed, the same answer
  assert.equal(outcomes[1].error.kind, "unreadable");
});

test("a check the user asks for (no policy) may still fetch any URL", async () => {
  const { checker, fetched } = recordingChecker();
  await checker.check("http://localhost:9200/picture.png", { tabId: 1, frameId: 0 });
  assert.deepEqual(fetched, ["http://localhost:9200/picture.png"]);
});

test("the service runs page-scan batches under the policy of the sender's page", async () => {
  const policies = [];
  const service = createService({
    storage: new MemoryStorage({ scanSites: ["https://art.example/*"] }),
    extensionOrigin: "chrome-extension://abcdefgh",
    checker: {
      checkMany: async (urls, target, policy) => {
        policies.push(policy);
        return urls.map(() => ({ ok: false, error: { kind: "unreadable", message: "" } }));
      },
    },
    getRelay: async () => null,
    clearCache: async () => {},
    frames: { inject: async () => {}, send: async () => ({ ok: true }) },
    hasPermission: async () => true,
    syncScanScripts: async () => {},
    toolbar: { showCount: async () => {}, showBadge: async () => {} },
  });
  const sender = { url: PAGE, tab: { id: 7 }, frameId: 0 };
  await service.handleMessage({ type: "scan-batch", urls: ["http://localhost:9200/"] }, sender);
  assert.equal(policies.length, 1);
  assert.equal(policies[0].extension("http://localhost:9200/"), false);
  assert.equal(policies[0].extension("https://art.example/x.png"), true);
});
