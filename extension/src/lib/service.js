/**
 * What the service worker does, with the browser APIs passed in (so it runs under Node's test runner):
 * the context-menu check and the answers to messages from content scripts and extension pages.
 */
import { MAX_BATCH, RelayError } from "./relay.js";
import { addReport, clearReports } from "./reports.js";
import { loadSettings, relayOriginPattern } from "./settings.js";
import { isScanAllowed, loadScanSites, setScanSite, sitePattern } from "./sites.js";
import { scanFetchPolicy } from "./scan_policy.js";
import { describeOutcome } from "./verdict.js";

export const MENU_ID = "check-image";

/**
 * deps:
 *   storage: chrome.storage.local-like area; checker: createChecker(...); getRelay(): relay client;
 *   browserEngine: createBrowserEngine(...) (its info() for the popup);
 *   clearCache(): forget cached verdicts; extensionOrigin: "chrome-extension://<id>" (who may change settings);
 *   frames: {inject(target), send(target, message)} for the content script in target = {tabId, frameId};
 *   hasPermission(pattern): whether a host permission is granted; syncScanScripts(sites): register page scan;
 *   toolbar: {showCount(tabId, count), showBadge(tabId, badge)}.
 */
export function createService(deps) {
  const { storage, checker, frames, toolbar } = deps;

  /** Check the image the user right-clicked and badge it on the page; resolves to the badge shown. */
  async function handleContextMenuClick(info, tab) {
    if (info.menuItemId !== MENU_ID || !info.srcUrl || tab?.id === undefined || tab.id < 0) return null;
    const target = { tabId: tab.id, frameId: info.frameId ?? 0 };
    const settings = await loadSettings(storage);
    const image = await frames
      .inject(target)
      .then(() => frames.send(target, { type: "badge-pending", url: info.srcUrl }))
      .catch(() => null);

    let outcome;
    const side = image?.loaded ? Math.min(image.width, image.height) : Infinity;
    if (side < settings.minImageSide) {
      outcome = { ok: false, error: { kind: "too-small", message: "", width: image.width, height: image.height } };
    } else {
      outcome = await checker.check(info.srcUrl, target);
    }
    const badge = describeOutcome(outcome, settings);
    // Where the page cannot carry a badge (no access, image gone), the toolbar button says it instead.
    const shown = image?.found && (await frames.send(target, { type: "badge-show", url: info.srcUrl, badge }).catch(() => null))?.ok;
    if (!shown) await toolbar.showBadge(tab.id, badge);
    return badge;
  }

  /** Whether the relay answers, and with which model; or why not. */
  async function relayStatus() {
    const relay = await deps.getRelay();
    const pattern = relayOriginPattern(relay.baseUrl);
    if (!(await deps.hasPermission(pattern))) {
      const error = { kind: "no-permission", message: `the extension may not connect to ${pattern}` };
      return { reachable: false, relayUrl: relay.baseUrl, error, permission: pattern };
    }
    try {
      const health = await relay.health();
      const model = await relay.model().catch(() => ({}));
      return { reachable: true, relayUrl: relay.baseUrl, modelVersion: model.model_version ?? health.model_version ?? null };
    } catch (error) {
      const reason = error instanceof RelayError ? error.toJSON() : { kind: "relay-error", message: String(error) };
      return { reachable: false, relayUrl: relay.baseUrl, error: reason };
    }
  }

  /** Which engine checks images, and for the browser engine its model, or why it does not run. */
  async function engineStatus() {
    const { engine, model } = await loadSettings(storage);
    if (engine !== "browser") return { engine };
    try {
      const info = await deps.browserEngine.info(model);
      return { engine, ready: true, modelVersion: info.model_version ?? null, accelerator: info.accelerator };
    } catch (error) {
      return { engine, ready: false, error: { kind: error.kind ?? "engine-error", message: error.message } };
    }
  }

  async function scanAllowed(pageUrl) {
    const sites = await loadScanSites(storage);
    return isScanAllowed(sites, pageUrl) && (await deps.hasPermission(sitePattern(pageUrl)));
  }

  /** Turn page scan on or off for the site of pageUrl, and start or stop it in that tab. */
  async function setSiteScan({ pageUrl, enabled, tabId }) {
    const pattern = sitePattern(pageUrl);
    if (pattern === null) return { error: "page scan works on http and https pages only" };
    if (enabled && !(await deps.hasPermission(pattern))) return { error: `no permission for ${pattern}` };
    const sites = await setScanSite(storage, pattern, enabled);
    await deps.syncScanScripts(sites);
    if (tabId !== undefined) {
      const target = { tabId, frameId: 0 };
      if (enabled) {
        const settings = await loadSettings(storage);
        await frames.inject(target);
        await frames.send(target, { type: "scan-start", minImageSide: settings.minImageSide });
      } else {
        await frames.send(target, { type: "scan-stop" }).catch(() => null);
        await toolbar.showCount(tabId, 0);
      }
    }
    return { sites };
  }

  async function scanBatch(urls, sender) {
    if (!Array.isArray(urls) || urls.length === 0 || urls.length > MAX_BATCH || !urls.every((url) => typeof url === "string")) {
      return { error: `urls must be 1 to ${MAX_BATCH} strings` };
    }
    if (!(await scanAllowed(sender.url))) return { error: "page scan is not enabled for this site" };
    const settings = await loadSettings(storage);
    // The page chose these URLs: fetch only what the page's own origin serves (lib/scan_policy.js).
    const policy = scanFetchPolicy(sender.url, settings.relayUrl);
    const outcomes = await checker.checkMany(urls, { tabId: sender.tab.id, frameId: sender.frameId ?? 0 }, policy);
    return { badges: outcomes.map((outcome) => describeOutcome(outcome, settings)) };
  }

  const fromContentScript = {
    "scan-config": async (message, sender) => ({
      enabled: await scanAllowed(sender.url),
      minImageSide: (await loadSettings(storage)).minImageSide,
    }),
    "scan-batch": (message, sender) => scanBatch(message.urls, sender),
    "scan-stats": async (message, sender) => {
      if (sender.frameId === 0) await toolbar.showCount(sender.tab.id, Number(message.flagged) || 0);
      return { ok: true };
    },
    "explain-image": async (message, sender) => {
      if (typeof message.url !== "string") return { ok: false, error: { kind: "unreadable", message: "no image URL" } };
      // The page sets img.currentSrc: fetch it only as page scan would (its own public origin), else read it there.
      const policy = scanFetchPolicy(sender.url, (await loadSettings(storage)).relayUrl);
      return checker.explain(message.url, { tabId: sender.tab.id, frameId: sender.frameId ?? 0 }, policy);
    },
    "report-verdict": async (message) => {
      try {
        return { record: await addReport(storage, message.report ?? {}) };
      } catch (error) {
        return { error: error.message };
      }
    },
  };

  const fromExtensionPages = {
    "relay-status": () => relayStatus(),
    "engine-status": () => engineStatus(),
    "set-site-scan": (message) => setSiteScan(message),
    "clear-data": async () => {
      await deps.clearCache();
      await clearReports(storage);
      return { ok: true };
    },
  };

  /** Answer a runtime message; settings-changing messages are accepted from the extension's own pages only. */
  async function handleMessage(message, sender) {
    const type = message?.type;
    const isExtensionPage = typeof sender.url === "string" && sender.url.startsWith(`${deps.extensionOrigin}/`);
    if (isExtensionPage && Object.hasOwn(fromExtensionPages, type)) return fromExtensionPages[type](message, sender);
    if (sender.tab && Object.hasOwn(fromContentScript, type)) return fromContentScript[type](message, sender);
    return { error: `unexpected message: ${String(type)}` };
  }

  return { handleContextMenuClick, handleMessage, relayStatus, setSiteScan };
}
