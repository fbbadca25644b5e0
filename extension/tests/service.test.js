import assert from "node:assert/strict";
import { test } from "node:test";

import { RelayError } from "../src/lib/relay.js";
import { loadReports } from "../src/lib/reports.js";
import { MENU_ID, createService } from "../src/lib/service.js";
import { loadScanSites } from "../src/lib/sites.js";
import { MemoryStorage } from "./helpers.js";

const EXTENSION = "chrome-extension://abcdefgh";
const popup = { url: `${EXTENSION}/popup/popup.html` };
const page = (url = "https://art.example/gallery", tabId = 7, frameId = 0) => ({ url, tab: { id: tabId }, frameId });
const aiResult = { label: "ai", probability: 0.97, threshold: 0.5, unsure_band: [0.4, 0.6], model_version: "m1", sha256: "c".repeat(64) };

// The service with recording stand-ins for the browser: `imageOnPage` is what the content script reports.
const upRelay = {
  baseUrl: "http://127.0.0.1:8765",
  health: async () => ({ status: "ok" }),
  model: async () => ({ model_version: "m1" }),
};

function setUp({
  granted = ["https://art.example/*", "http://127.0.0.1/*"],
  imageOnPage = { found: true, loaded: true, width: 512, height: 512 },
  outcome = { ok: true, result: aiResult, via: "bytes" },
  storage = new MemoryStorage(),
  relay = upRelay,
} = {}) {
  const log = { injected: [], sent: [], checked: [], toolbar: [], synced: [], explained: [] };
  const service = createService({
    storage,
    extensionOrigin: EXTENSION,
    checker: {
      check: async (url, target) => {
        log.checked.push([url, target]);
        return outcome;
      },
      checkMany: async (urls, target) => {
        log.checked.push([urls, target]);
        return urls.map(() => outcome);
      },
      explain: async (url, target, policy) => {
        log.explained.push([url, target, policy]);
        return { ok: true, explanation: { grid: [[0.5]], grid_size: 1 } };
      },
    },
    getRelay: async () => relay,
    clearCache: async () => log.toolbar.push("cache cleared"),
    frames: {
      inject: async (target) => log.injected.push(target),
      send: async (target, message) => {
        log.sent.push([target, message]);
        if (message.type === "badge-pending") return imageOnPage;
        if (message.type === "badge-show") return { ok: imageOnPage.found };
        return { ok: true };
      },
    },
    hasPermission: async (pattern) => granted.includes(pattern),
    syncScanScripts: async (sites) => log.synced.push(sites),
    toolbar: {
      showCount: async (tabId, count) => log.toolbar.push(["count", tabId, count]),
      showBadge: async (tabId, badge) => log.toolbar.push(["badge", tabId, badge.state]),
    },
  });
  return { service, log, storage };
}

test("a context-menu check badges the image on the page with the relay's verdict", async () => {
  const { service, log } = setUp();
  const info = { menuItemId: MENU_ID, srcUrl: "https://art.example/a.png", frameId: 3 };
  const badge = await service.handleContextMenuClick(info, { id: 7 });
  assert.equal(badge.state, "ai");
  assert.deepEqual(log.injected, [{ tabId: 7, frameId: 3 }]);
  assert.deepEqual(log.checked, [["https://art.example/a.png", { tabId: 7, frameId: 3 }]]);
  assert.deepEqual(log.sent.map(([, message]) => message.type), ["badge-pending", "badge-show"]);
  assert.equal(log.sent[1][1].badge.text, "AI 97%");
  assert.deepEqual(log.toolbar, []);
});

test("an image below the minimum size is not sent: its badge says too small", async () => {
  const { service, log } = setUp({ imageOnPage: { found: true, loaded: true, width: 16, height: 16 } });
  const badge = await service.handleContextMenuClick({ menuItemId: MENU_ID, srcUrl: "https://art.example/icon.png" }, { id: 7 });
  assert.equal(badge.state, "too-small");
  assert.deepEqual(log.checked, []);
  assert.equal(log.sent.at(-1)[1].badge.state, "too-small");
});

test("a broken image on the page is still sent, so the relay can say why it is unreadable", async () => {
  const unreadable = { ok: false, error: { kind: "unreadable", message: "cannot identify image file" } };
  const { service, log } = setUp({ imageOnPage: { found: true, loaded: false, width: 0, height: 0 }, outcome: unreadable });
  const badge = await service.handleContextMenuClick({ menuItemId: MENU_ID, srcUrl: "https://art.example/broken.jpg" }, { id: 7 });
  assert.equal(badge.state, "unreadable");
  assert.equal(log.checked.length, 1);
});

test("where the page cannot show a badge, the toolbar button shows the verdict", async () => {
  const { service, log } = setUp({ imageOnPage: { found: false } });
  const badge = await service.handleContextMenuClick({ menuItemId: MENU_ID, srcUrl: "https://art.example/a.png" }, { id: 7 });
  assert.equal(badge.state, "ai");
  assert.deepEqual(log.toolbar, [["badge", 7, "ai"]]);
});

test("other menu items and clicks without an image or tab are ignored", async () => {
  const { service, log } = setUp();
  assert.equal(await service.handleContextMenuClick({ menuItemId: "other", srcUrl: "https://a/b" }, { id: 1 }), null);
  assert.equal(await service.handleContextMenuClick({ menuItemId: MENU_ID }, { id: 1 }), null);
  assert.equal(await service.handleContextMenuClick({ menuItemId: MENU_ID, srcUrl: "https://a/b" }, undefined), null);
  assert.deepEqual(log.checked, []);
});

test("page scan answers batches only on allowed sites with a granted permission", async () => {
  const { service, storage, log } = setUp();
  const refused = await service.handleMessage({ type: "scan-batch", urls: ["https://art.example/1.png"] }, page());
  assert.match(refused.error, /not enabled/);
  assert.deepEqual(await service.handleMessage({ type: "scan-config" }, page()), { enabled: false, minImageSide: 64 });

  const enabled = await service.handleMessage({ type: "set-site-scan", pageUrl: "https://art.example/gallery", enabled: true, tabId: 7 }, popup);
  assert.deepEqual(enabled.sites, ["https://art.example/*"]);
  assert.deepEqual(await loadScanSites(storage), ["https://art.example/*"]);
  assert.deepEqual(log.synced, [["https://art.example/*"]]);
  assert.deepEqual(log.sent.at(-1), [{ tabId: 7, frameId: 0 }, { type: "scan-start", minImageSide: 64 }]);

  assert.equal((await service.handleMessage({ type: "scan-config" }, page())).enabled, true);
  const answer = await service.handleMessage({ type: "scan-batch", urls: ["https://art.example/1.png", "https://art.example/2.png"] }, page("https://art.example/x", 7, 2));
  assert.deepEqual(answer.badges.map((badge) => badge.state), ["ai", "ai"]);
  assert.deepEqual(log.checked.at(-1)[1], { tabId: 7, frameId: 2 });
});

test("scan batches must be 1 to 16 URL strings", async () => {
  const { service } = setUp({ storage: new MemoryStorage({ scanSites: ["https://art.example/*"] }) });
  for (const urls of [[], Array(17).fill("https://a/1"), [42], "https://a/1"]) {
    assert.match((await service.handleMessage({ type: "scan-batch", urls }, page())).error, /1 to 16/);
  }
});

test("page scan cannot be turned on for a site without its permission, nor for non-web pages", async () => {
  const { service, storage } = setUp({ granted: [] });
  const answer = await service.handleMessage({ type: "set-site-scan", pageUrl: "https://other.example/", enabled: true }, popup);
  assert.match(answer.error, /no permission/);
  assert.deepEqual(await loadScanSites(storage), []);
  const chromePage = await service.handleMessage({ type: "set-site-scan", pageUrl: "chrome://settings", enabled: true }, popup);
  assert.match(chromePage.error, /http and https/);
});

test("turning page scan off stops it in the tab and clears the toolbar count", async () => {
  const { service, storage, log } = setUp({ storage: new MemoryStorage({ scanSites: ["https://art.example/*"] }) });
  const answer = await service.handleMessage({ type: "set-site-scan", pageUrl: "https://art.example/", enabled: false, tabId: 7 }, popup);
  assert.deepEqual(answer.sites, []);
  assert.deepEqual(await loadScanSites(storage), []);
  assert.deepEqual(log.sent.at(-1)[1], { type: "scan-stop" });
  assert.deepEqual(log.toolbar.at(-1), ["count", 7, 0]);
});

test("settings-changing messages from a content script are refused", async () => {
  const { service, storage } = setUp();
  for (const type of ["set-site-scan", "clear-data"]) {
    const answer = await service.handleMessage({ type, pageUrl: "https://art.example/", enabled: true }, page());
    assert.match(answer.error, /unexpected message/);
  }
  assert.deepEqual(await loadScanSites(storage), []);
  assert.match((await service.handleMessage({ type: "scan-batch", urls: ["x"] }, popup)).error, /unexpected message/);
  assert.match((await service.handleMessage(undefined, popup)).error, /unexpected message/);
  assert.match((await service.handleMessage({ type: "toString" }, page())).error, /unexpected message/);
});

test("a wrong-verdict report from the badge is stored; clear-data removes reports and cached verdicts", async () => {
  const { service, storage, log } = setUp();
  const report = { sha256: aiResult.sha256, userLabel: "human", modelLabel: "ai", probability: 0.97, modelVersion: "m1" };
  const saved = await service.handleMessage({ type: "report-verdict", report }, page());
  assert.equal(saved.record.userLabel, "human");
  assert.match((await service.handleMessage({ type: "report-verdict", report: { ...report, sha256: "?" } }, page())).error, /sha256/);
  assert.equal((await loadReports(storage)).length, 1);
  assert.deepEqual(await service.handleMessage({ type: "clear-data" }, popup), { ok: true });
  assert.deepEqual(await loadReports(storage), []);
  assert.ok(log.toolbar.includes("cache cleared"));
});

test("relay status: reachable with the model version, or why not", async () => {
  const { service } = setUp();
  assert.deepEqual(await service.handleMessage({ type: "relay-status" }, popup), {
    reachable: true,
    relayUrl: "http://127.0.0.1:8765",
    modelVersion: "m1",
  });
  const noAccess = await setUp({ granted: [] }).service.relayStatus();
  assert.equal(noAccess.reachable, false);
  assert.equal(noAccess.error.kind, "no-permission");
  assert.equal(noAccess.permission, "http://127.0.0.1/*");
  const downRelay = { ...upRelay, health: async () => Promise.reject(new RelayError("unreachable", "connection refused")) };
  const down = await setUp({ relay: downRelay }).service.relayStatus();
  assert.deepEqual(down, { reachable: false, relayUrl: "http://127.0.0.1:8765", error: { kind: "unreachable", message: "connection refused", status: null, retryAfter: null } });
});

test("scan stats from the top frame set the toolbar count", async () => {
  const { service, log } = setUp();
  await service.handleMessage({ type: "scan-stats", flagged: 3 }, page());
  await service.handleMessage({ type: "scan-stats", flagged: 9 }, page("https://art.example/", 7, 4));
  assert.deepEqual(log.toolbar, [["count", 7, 3]]);
});

test("a heatmap request from a badge fetches under page scan's rules: the page's own public origin only", async () => {
  const { service, log } = setUp();
  const answer = await service.handleMessage({ type: "explain-image", url: "http://127.0.0.1:631/" }, page());
  assert.equal(answer.ok, true);
  const [[url, target, policy]] = log.explained;
  assert.deepEqual([url, target], ["http://127.0.0.1:631/", { tabId: 7, frameId: 0 }]);
  for (const refused of ["http://127.0.0.1:631/", "http://localhost:9200/x", "http://192.168.1.1/a.png", "https://other.example/a.png"]) {
    assert.equal(policy.extension(refused), false, refused);
  }
  assert.equal(policy.extension("https://art.example/a.png"), true);
});
