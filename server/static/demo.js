// Demo page for the relay: send a picked/dropped image or a URL to the API and draw the verdict.
// wording.js is the extension's wording module, copied byte for byte (extension/tests/wording.test.js checks).
import { CAVEAT, rulesLine, scorePercent, verdictLine } from "./wording.js";

const $ = (id) => document.getElementById(id);
let previewUrl = null;

// A bar length, not a figure people read: that is scorePercent's job.
function width(p) {
  return `${100 * p}%`;
}

function headers(extra) {
  const token = $("token-input").value.trim();
  return token ? { ...extra, Authorization: "Bearer " + token } : extra;
}

function query() {
  return $("tta-input").checked ? "" : "?tta=0";
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

  const t = result.timings_ms;
  $("details").textContent = `model ${result.model_version} (${result.variant}) · ` +
    `${result.cached ? "cached answer" : `decode ${t.decode} ms, inference ${t.infer} ms`}` +
    `${t.fetch !== undefined ? `, fetch ${t.fetch} ms` : ""} · sha256 ${result.sha256.slice(0, 16)}…`;
  $("result").hidden = false;
}

function checkFile(file) {
  if (!file) return;
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
  send("/api/v1/check-url", JSON.stringify({ url: $("url-input").value.trim() }), "application/json");
}

document.addEventListener("DOMContentLoaded", () => {
  const zone = $("drop-zone");
  $("file-input").addEventListener("change", (e) => checkFile(e.target.files[0]));
  $("url-form").addEventListener("submit", checkUrl);
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
