/**
 * Service worker (Chromium) / background script (Firefox): wires the browser APIs into lib/service.js.
 * No remote code: everything it runs ships with the extension.
 */
import { answerEngineRequest } from "./engine/host.js";
import { createBrowserEngine } from "./lib/browser_engine.js";
import { decodeDataUrl } from "./lib/bytes.js";
import { VerdictCache } from "./lib/cache.js";
import { createChecker } from "./lib/checker.js";
import { createRelayClient } from "./lib/relay.js";
import { MENU_ID, createService } from "./lib/service.js";
import { loadSettings } from "./lib/settings.js";
import { loadScanSites } from "./lib/sites.js";

const api = globalThis.browser ?? globalThis.chrome;
// Settings (relay URL, token) are for the extension's own pages and worker, not content scripts, where the
// browser can say so (Chromium; Firefox exposes storage.local to content scripts, which never write to it).
api.storage.local.setAccessLevel?.({ accessLevel: "TRUSTED_CONTEXTS" }).catch(() => {});
const CONTENT_SCRIPT = "content/content.js";
const SCAN_SCRIPT_ID = "page-scan";
const CACHE_KEY = "verdictCache";
const TOOLBAR_TEXT = { ai: "AI", human: "OK", unsure: "?" };

// Verdicts survive the worker being stopped (storage.session) but not a browser restart.
let cache = null;
async function getCache() {
  if (cache === null) {
    const stored = await api.storage.session.get(CACHE_KEY);
    cache ??= VerdictCache.fromJSON(stored[CACHE_KEY]);
  }
  return cache;
}

// The in-browser engine: in the offscreen document (Chromium), or right here where there is a DOM (Firefox).
const browserEngine = createBrowserEngine({ api, inProcess: typeof document === "undefined" ? null : answerEngineRequest });
async function getBrowserEngine() {
  const { engine, tta, model } = await loadSettings(api.storage.local);
  if (engine !== "browser") return null;
  return {
    check: (bytes) => browserEngine.check(bytes, tta, model),
    explain: (bytes) => browserEngine.explain(bytes, model),
    info: () => browserEngine.info(model),
  };
}

async function getRelay() {
  const { relayUrl, token, tta, model } = await loadSettings(api.storage.local);
  return createRelayClient({ baseUrl: relayUrl, token, tta, model });
}

// The worker's own fetch: with a host permission for the image's site it is not subject to CORS.
async function fetchImage(url) {
  try {
    // Never with the user's cookies: a verdict or error must not tell anyone whether the user is logged in.
    const response = await fetch(url, { credentials: "omit", cache: "force-cache" });
    if (!response.ok) return null;
    return { bytes: new Uint8Array(await response.arrayBuffer()), type: response.headers.get("Content-Type") };
  } catch {
    return null;
  }
}

const frames = {
  inject: (target) =>
    api.scripting.executeScript({ target: { tabId: target.tabId, frameIds: [target.frameId] }, files: [CONTENT_SCRIPT] }),
  send: (target, message) => api.tabs.sendMessage(target.tabId, message, { frameId: target.frameId }),
};

async function readFromPage(url, target) {
  const answer = await frames.send(target, { type: "read-image", url }).catch(() => null);
  return answer?.dataUrl ? decodeDataUrl(answer.dataUrl) : null;
}

async function getChecker() {
  const verdicts = await getCache();
  return createChecker({
    cache: verdicts,
    saveCache: () => api.storage.session.set({ [CACHE_KEY]: verdicts.toJSON() }),
    getRelay,
    getBrowserEngine,
    fetchImage,
    readFromPage,
  });
}

const hasPermission = (pattern) => api.permissions.contains({ origins: [pattern] });

// Page scan runs by itself on the allow-listed sites whose permission is still granted.
async function syncScanScripts(sites) {
  const granted = [];
  for (const site of sites) if (await hasPermission(site)) granted.push(site);
  const registered = await api.scripting.getRegisteredContentScripts({ ids: [SCAN_SCRIPT_ID] });
  if (registered.length > 0) await api.scripting.unregisterContentScripts({ ids: [SCAN_SCRIPT_ID] });
  if (granted.length > 0) {
    await api.scripting.registerContentScripts([{ id: SCAN_SCRIPT_ID, matches: granted, js: [CONTENT_SCRIPT], runAt: "document_idle" }]);
  }
}

const toolbar = {
  showCount: (tabId, count) => api.action.setBadgeText({ tabId, text: count > 0 ? String(count) : "" }).catch(() => {}),
  async showBadge(tabId, badge) {
    await api.action.setBadgeText({ tabId, text: TOOLBAR_TEXT[badge.state] ?? "!" }).catch(() => {});
    await api.action.setTitle({ tabId, title: `AI-art check: ${badge.text}. ${badge.title}` }).catch(() => {});
  },
};

const service = createService({
  storage: api.storage.local,
  checker: {
    check: async (url, target) => (await getChecker()).check(url, target),
    explain: async (url, target, policy) => (await getChecker()).explain(url, target, policy),
    checkMany: async (urls, target, policy) => (await getChecker()).checkMany(urls, target, policy),
  },
  getRelay,
  browserEngine,
  clearCache: async () => {
    (await getCache()).clear();
    await api.storage.session.remove(CACHE_KEY);
  },
  extensionOrigin: api.runtime.getURL("").replace(/\/$/, ""),
  frames,
  hasPermission,
  syncScanScripts,
  toolbar,
});

async function setUp() {
  await api.contextMenus.removeAll();
  api.contextMenus.create({ id: MENU_ID, title: "Check if AI-generated", contexts: ["image"] });
  await syncScanScripts(await loadScanSites(api.storage.local));
}

api.runtime.onInstalled.addListener(() => setUp().catch(console.error));
const resyncScanScripts = () => loadScanSites(api.storage.local).then(syncScanScripts).catch(console.error);
api.runtime.onStartup.addListener(resyncScanScripts);
api.permissions.onRemoved.addListener(resyncScanScripts);

// Verdicts from another relay, engine or model setting may come from another model: forget them when one changes.
api.storage.onChanged.addListener((changes, area) => {
  const change = changes.settings;
  const changed = (field) => change.oldValue?.[field] !== change.newValue?.[field];
  if (area === "local" && change && (changed("relayUrl") || changed("engine") || changed("model"))) {
    getCache().then((verdicts) => verdicts.clear()).then(() => api.storage.session.remove(CACHE_KEY)).catch(console.error);
  }
});

api.contextMenus.onClicked.addListener((info, tab) => {
  service.handleContextMenuClick(info, tab).catch(console.error);
});

api.runtime.onMessage.addListener((message, sender, sendResponse) => {
  service.handleMessage(message, sender).then(sendResponse, (error) => sendResponse({ error: error.message }));
  return true; // answer asynchronously
});

// The entry point end-to-end tests call through the worker, as a click on the menu item would.
globalThis.handleContextMenuClick = (info, tab) => service.handleContextMenuClick({ menuItemId: MENU_ID, ...info }, tab);
