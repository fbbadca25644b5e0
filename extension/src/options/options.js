/** Options page: where images are checked, relay URL and token, threshold and unsure band, what page scan flags, local data. */
import { exportReports, loadReports } from "../lib/reports.js";
import { loadSettings, relayOriginPattern, saveSettings, validateSettings } from "../lib/settings.js";
import { loadScanSites } from "../lib/sites.js";
import { CAVEAT } from "../lib/wording.js";

const api = globalThis.browser ?? globalThis.chrome;
const form = document.getElementById("settings");
const $ = (id) => document.getElementById(id);

function fillForm(settings) {
  form.engine.value = settings.engine;
  form.model.value = settings.model;
  form.relayUrl.value = settings.relayUrl;
  form.token.value = settings.token;
  form.threshold.value = settings.threshold ?? "";
  form.unsureLow.value = settings.unsureBand?.[0] ?? "";
  form.unsureHigh.value = settings.unsureBand?.[1] ?? "";
  form.flagMode.value = settings.flagMode;
  form.minImageSide.value = settings.minImageSide;
  form.trustMetadata.checked = settings.trustMetadata;
  form.tta.value = settings.tta;
}

function readForm() {
  return {
    engine: form.engine.value,
    model: form.model.value,
    relayUrl: form.relayUrl.value,
    token: form.token.value,
    threshold: form.threshold.value,
    unsureBand: [form.unsureLow.value, form.unsureHigh.value],
    flagMode: form.flagMode.value,
    minImageSide: form.minImageSide.value,
    trustMetadata: form.trustMetadata.checked,
    tta: form.tta.value,
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = readForm();
  const { settings, errors } = validateSettings(input);
  for (const span of form.querySelectorAll(".error")) span.textContent = errors[span.dataset.for] ?? "";
  if (Object.keys(errors).length > 0) {
    $("save-status").textContent = "Not saved: fix the fields marked in red.";
    return;
  }
  // Asked first, while the click still counts as the user's gesture; granted already for the default relay.
  if (!(await api.permissions.request({ origins: [relayOriginPattern(settings.relayUrl)] }))) {
    $("save-status").textContent = "Not saved: the extension needs access to the relay's address.";
    return;
  }
  await saveSettings(api.storage.local, input);
  $("save-status").textContent = "Saved.";
});

async function showSites() {
  const list = $("sites");
  list.replaceChildren();
  const sites = await loadScanSites(api.storage.local);
  if (sites.length === 0) list.append(Object.assign(document.createElement("li"), { textContent: "None: turn page scan on from the toolbar button on a site." }));
  for (const site of sites) {
    const item = document.createElement("li");
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove" });
    remove.addEventListener("click", async () => {
      await api.runtime.sendMessage({ type: "set-site-scan", pageUrl: site.replace(/\*$/, ""), enabled: false });
      if (site !== relayOriginPattern((await loadSettings(api.storage.local)).relayUrl)) {
        await api.permissions.remove({ origins: [site] }).catch(() => {}); // a permission the manifest requires stays
      }
      showSites();
    });
    item.append(`${site} `, remove);
    list.append(item);
  }
}

async function showReportCount() {
  $("report-count").textContent = String((await loadReports(api.storage.local)).length);
}

$("export-reports").addEventListener("click", async () => {
  const json = exportReports(await loadReports(api.storage.local));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  link.download = "animeart-wrong-verdicts.json";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
});

$("clear-data").addEventListener("click", async () => {
  await api.runtime.sendMessage({ type: "clear-data" });
  $("clear-status").textContent = "Cleared.";
  showReportCount();
});

$("caveat").textContent = CAVEAT;
fillForm(await loadSettings(api.storage.local));
await Promise.all([showSites(), showReportCount()]);
