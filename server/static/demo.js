// Demo page for the relay: send a picked/dropped image or a URL to the API and draw the verdict.
// wording.js is the extension's wording module, copied byte for byte (extension/tests/wording.test.js checks).
import { CAVEAT, rulesLine, scorePercent, verdictLine } from "./wording.js";

const $ = (id) => document.getElementById(id);
let previewUrl = null;
let checkedFile = null; // the file last checked, for the heatmap (URL checks have no bytes here)
const EVIDENCE_WORDS = {
  generator: "Names an AI generator",
  "ai-declared": "Declares AI generation",
  c2pa: "Claims content credentials",
  software: "Software",
};

// A bar length, not a figure people read: that is scorePercent's job.
function width(p) {
  return `${100 * p}%`;
}

function headers(extra) {
  const token = $("token-input").value.trim();
  return token ? { ...extra, Authorization: "Bearer " + token } : extra;
}

function query() {
  const params = new URLSearchParams();
  if (!$("tta-input").checked) params.set("tta", "0");
  if (!$("metadata-input").checked) params.set("metadata", "0");
  return params.size ? `?${params}` : "";
}

async function send(path, body, contentType) {
  $("error").hidden = true;
  $("status").textContent = "Checking…";
  try {
    const response = await fetch(path + query(), {
      method: "POST",
      body: body,
      headers: headers({ "Content-Type": contentType }),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      const reason = answer && answer.error ? answer.error.reason : response.statusText;
      throw new Error(`${response.status}: ${reason}`);
    }
    showResult(answer);
    $("status").textContent = "";
  } catch (err) {
    $("status").textContent = "";
    $("result").hidden = true;
    $("error").textContent = "Could not check the image — " + err.message;
    $("error").hidden = false;
  }
}

function showResult(result) {
  const verdict = $("verdict");
  verdict.dataset.label = result.label;
  verdict.textContent = verdictLine(result.label, result.probability);
  $("probability-bar").style.width = width(result.probability);
  $("probability-bar").dataset.label = result.label;
  $("threshold-marker").style.left = width(result.threshold);
  $("probability-text").textContent = rulesLine(result.threshold, result.unsure_band);
  $("caveat").textContent = CAVEAT;

  const rows = $("views").tBodies[0];
  rows.replaceChildren();
  for (const [name, p] of Object.entries(result.view_probabilities)) {
    const row = rows.insertRow();
    row.insertCell().textContent = name;
    const barCell = row.insertCell();
    const bar = document.createElement("div");
    bar.className = "mini-bar";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = width(p);
    bar.append(fill);
    barCell.append(bar);
    row.insertCell().textContent = scorePercent(p);
  }

  showEvidence(result);
  const t = result.timings_ms;
  $("details").textContent = `model ${result.model_version} (${result.variant}) · ` +
    `${result.cached ? "cached answer" : `decode ${t.decode} ms, inference ${t.infer} ms`}` +
    `${t.fetch !== undefined ? `, fetch ${t.fetch} ms` : ""} · sha256 ${result.sha256.slice(0, 16)}…`;
  $("result").hidden = false;
}

function showEvidence(result) {
  const list = $("evidence-list");
  list.replaceChildren();
  if (result.reason === "metadata") {
    const item = document.createElement("li");
    item.className = "rule";
    item.textContent = `Labelled AI because the file's metadata says so; the model alone gives it ` +
      `${scorePercent(result.probability)}.`;
    list.append(item);
  }
  for (const entry of result.evidence || []) {
    const item = document.createElement("li");
    item.dataset.kind = entry.kind;
    const kind = document.createElement("strong");
    kind.textContent = `${EVIDENCE_WORDS[entry.kind] || entry.kind}: `;
    item.append(kind, entry.detail);
    list.append(item);
  }
  if (!(result.evidence || []).length) {
    const item = document.createElement("li");
    item.textContent = "No provenance metadata. That proves nothing: most sites strip it.";
    list.append(item);
  }
}

async function toggleHeatmap() {
  const button = $("explain-button");
  if (button.dataset.shown === "1") {
    $("preview").src = previewUrl;
    button.dataset.shown = "0";
    button.textContent = "Show where the model sees AI";
    $("explain-text").textContent = "";
    return;
  }
  button.disabled = true;
  $("explain-text").textContent = "Mapping…";
  try {
    const type = checkedFile.type.startsWith("image/") ? checkedFile.type : "application/octet-stream";
    const response = await fetch("/api/v1/explain", {
      method: "POST", body: checkedFile, headers: headers({ "Content-Type": type }),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) throw new Error(answer && answer.error ? answer.error.reason : response.statusText);
    $("preview").src = answer.overlay;
    button.dataset.shown = "1";
    button.textContent = "Hide the heatmap";
    $("explain-text").textContent = `Red: parts the model alone reads as AI (${answer.grid_size}×` +
      `${answer.grid_size} windows, ${answer.cached ? "cached" : `${Math.round(answer.cost_ms)} ms`}).`;
  } catch (err) {
    $("explain-text").textContent = "Could not map the image — " + err.message;
  } finally {
    button.disabled = false;
  }
}

function checkFile(file) {
  if (!file) return;
  checkedFile = file;
  $("explain-button").hidden = false;
  $("explain-button").dataset.shown = "0";
  $("explain-button").textContent = "Show where the model sees AI";
  $("explain-text").textContent = "";
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  $("preview").src = previewUrl;
  $("preview").hidden = false;
  const type = file.type.startsWith("image/") ? file.type : "application/octet-stream";
  send("/api/v1/check", file, type);
}

function checkUrl(event) {
  event.preventDefault();
  $("preview").hidden = true;
  $("explain-button").hidden = true;
  $("explain-text").textContent = "";
  send("/api/v1/check-url", JSON.stringify({ url: $("url-input").value.trim() }), "application/json");
}

document.addEventListener("DOMContentLoaded", () => {
  const zone = $("drop-zone");
  $("file-input").addEventListener("change", (e) => checkFile(e.target.files[0]));
  $("url-form").addEventListener("submit", checkUrl);
  $("explain-button").addEventListener("click", toggleHeatmap);
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    checkFile(e.dataTransfer.files[0]);
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      $("file-input").click();
    }
  });
});
