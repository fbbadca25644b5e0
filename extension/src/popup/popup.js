/** Popup: which engine checks images (and the relay's status), page scan on/off for the current site, and how many images on the page are flagged. */
import { relayOriginPattern, loadSettings } from "../lib/settings.js";
import { isScanAllowed, loadScanSites, sitePattern } from "../lib/sites.js";
import { CAVEAT } from "../lib/wording.js";

const api = globalThis.browser ?? globalThis.chrome;
const $ = (id) => document.getElementById(id);

async function showRelayStatus() {
  const status = await api.runtime.sendMessage({ type: "relay-status" });
  $("relay").dataset.state = status.reachable ? "ok" : "down";
  $("relay-status").textContent = status.reachable
    ? `Relay reachable at ${status.relayUrl}`
    : `Relay unreachable at ${status.relayUrl} (${status.error.message})`;
  $("relay-model").textContent = status.reachable ? `Model ${status.modelVersion ?? "unknown"}` : "Start it with `make run`, or set its URL in the options.";
  if (status.error?.kind === "no-permission") {
    // Firefox before 127 does not grant the manifest's host permissions at install.
    const button = Object.assign(document.createElement("button"), { textContent: "Allow access to the relay" });
    button.addEventListener("click", async () => {
      if (await api.permissions.request({ origins: [status.permission] })) location.reload();
    });
    $("relay-model").replaceChildren(button);
  }
}

// Which engine checks images: the in-browser one (default), or the relay, whose status then shows above.
async function showEngine() {
  const status = await api.runtime.sendMessage({ type: "engine-status" });
  const engine = $("engine");
  if (status.engine === "relay") {
    engine.dataset.state = "relay";
    engine.textContent = "Images are checked by your relay.";
    await showRelayStatus();
    return;
  }
  engine.dataset.state = status.ready ? "ok" : "down";
  engine.textContent = status.ready
    ? `Images are checked in this browser (model ${status.modelVersion ?? "unknown"}, ${status.accelerator === "wasm" ? "WebAssembly on the CPU" : status.accelerator}).`
    : `The in-browser engine does not run: ${status.error.message}`;
  $("relay").dataset.state = "off";
  $("relay-status").textContent = "Relay not used: images are checked in this browser (change it in the options).";
}

async function showSite(tab) {
  const pattern = tab ? sitePattern(tab.url ?? "") : null;
  const toggle = $("scan-toggle");
  if (pattern === null) {
    $("site-note").textContent = "Page scan works on http and https pages.";
    return;
  }
  $("site-name").textContent = new URL(tab.url).hostname;
  const sites = await loadScanSites(api.storage.local);
  toggle.checked = isScanAllowed(sites, tab.url) && (await api.permissions.contains({ origins: [pattern] }));
  toggle.disabled = false;
  toggle.addEventListener("change", async () => {
    const enabled = toggle.checked;
    // Asked first, while the click still counts as the user's gesture.
    if (enabled && !(await api.permissions.request({ origins: [pattern] }))) {
      toggle.checked = false;
      $("site-note").textContent = "Page scan needs access to this site's images.";
      return;
    }
    const answer = await api.runtime.sendMessage({ type: "set-site-scan", pageUrl: tab.url, enabled, tabId: tab.id });
    $("site-note").textContent = answer.error ?? (enabled ? "Scanning images as they come into view." : "Page scan is off here.");
    const { relayUrl } = await loadSettings(api.storage.local);
    if (!enabled && pattern !== relayOriginPattern(relayUrl)) {
      await api.permissions.remove({ origins: [pattern] }).catch(() => {}); // a permission the manifest requires stays
    }
    showCount(tab);
  });
}

async function showCount(tab) {
  const stats = tab ? await api.tabs.sendMessage(tab.id, { type: "get-stats" }, { frameId: 0 }).catch(() => null) : null;
  const flagged = stats?.flagged ?? 0;
  $("flagged-count").textContent = String(flagged);
  $("flagged-label").textContent = `${flagged === 1 ? "image" : "images"} flagged on this page`;
}

$("caveat").textContent = CAVEAT;
$("open-options").addEventListener("click", (event) => {
  event.preventDefault();
  api.runtime.openOptionsPage();
});

const [tab] = await api.tabs.query({ active: true, currentWindow: true });
await Promise.all([showEngine(), showSite(tab), showCount(tab)]);
