/*
 * Content script (a classic script: injected by the worker on a context-menu check, registered for the sites on
 * the page-scan allow list). It draws verdict badges on images in a Shadow DOM, reads image bytes for the worker
 * when the worker cannot fetch them, and runs page scan. Every decision about labels and states is made in the
 * worker (lib/verdict.js): this script only draws the badges it is given.
 */
(() => {
  if (globalThis.__animeartDetectorLoaded) return; // injected again by a later check
  globalThis.__animeartDetectorLoaded = true;

  const api = globalThis.browser ?? globalThis.chrome;
  const BATCH_SIZE = 4;
  const BADGE_TAG = "animeart-badge";
  const NOTICE_TAG = "animeart-notice";

  const STYLE = `
    :host { all: initial; }
    .badge { all: initial; display: inline-block; cursor: pointer; font: 600 12px/1.5 system-ui, sans-serif;
      color: #fff; background: #546e7a; padding: 1px 7px; border-radius: 10px; box-shadow: 0 1px 3px #0008;
      white-space: nowrap; }
    .badge[data-state="ai"] { background: #c62828; }
    .badge[data-state="human"] { background: #2e7d32; }
    .badge[data-state="unsure"] { background: #b45309; }
    .badge[data-state="pending"] { background: #546e7a; }
    .badge:focus-visible, .panel button:focus-visible { outline: 3px solid #1a73e8; outline-offset: 2px; }
    .panel { margin-top: 4px; width: 260px; background: #fff; color: #212121; border-radius: 6px; padding: 8px 10px;
      font: 12px/1.5 system-ui, sans-serif; box-shadow: 0 2px 8px #0008; }
    .panel[hidden] { display: none; }
    .panel table { border-collapse: collapse; margin: 4px 0; }
    .panel td { padding: 0 8px 0 0; }
    .panel button { font: inherit; margin: 4px 4px 0 0; cursor: pointer; }
    .panel .caveat { color: #555; }
    .panel .evidence { overflow-wrap: anywhere; }
    .panel canvas.heatmap { display: block; max-width: 100%; margin-top: 4px; border-radius: 4px; }
    @media (prefers-color-scheme: dark) {
      .panel { background: #202124; color: #e8eaed; }
      .panel .caveat { color: #bdc1c6; }
      .badge:focus-visible, .panel button:focus-visible { outline-color: #8ab4f8; }
    }
    .notice { all: initial; display: block; font: 13px/1.5 system-ui, sans-serif; color: #fff; background: #37474f;
      padding: 8px 12px; border-radius: 6px; box-shadow: 0 2px 8px #0008; max-width: 360px; }
  `;

  // ---- Badges -----------------------------------------------------------------------------------------------

  const badges = new Map(); // img element -> {host, button, panel, badge, url}

  function imagesWithUrl(url) {
    return Array.from(document.images).filter((img) => img.currentSrc === url || img.src === url);
  }

  function makeHost(tag) {
    const host = document.createElement(tag);
    const initial = [["all", "initial"], ["position", "absolute"], ["left", "0px"], ["top", "0px"], ["z-index", "2147483647"], ["display", "block"]];
    for (const [property, value] of initial) {
      host.style.setProperty(property, value, "important");
    }
    const shadow = host.attachShadow({ mode: "closed" }); // closed: the page cannot read verdicts or errors
    const style = document.createElement("style");
    style.textContent = STYLE;
    shadow.append(style);
    document.documentElement.append(host);
    return { host, shadow };
  }

  function showBadge(img, badge) {
    let entry = badges.get(img);
    if (!entry) {
      const { host, shadow } = makeHost(BADGE_TAG);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "badge";
      const panel = document.createElement("div");
      panel.className = "panel";
      panel.id = "details";
      panel.setAttribute("role", "region");
      panel.setAttribute("aria-label", "AI-art check details");
      panel.hidden = true;
      button.setAttribute("aria-controls", panel.id);
      button.setAttribute("aria-expanded", "false");
      const toggle = (open) => {
        panel.hidden = !open;
        button.setAttribute("aria-expanded", String(open));
      };
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        if (event.isTrusted) toggle(panel.hidden); // a real click or key press, not the page's button.click()
      });
      // Esc closes the panel from the badge or from inside it, and leaves the focus on the badge.
      shadow.addEventListener("keydown", (event) => {
        if (!event.isTrusted || event.key !== "Escape" || panel.hidden) return;
        event.stopPropagation();
        toggle(false);
        button.focus();
      });
      shadow.append(button, panel);
      entry = { host, button, panel, badge };
      badges.set(img, entry);
    }
    const url = img.currentSrc || img.src;
    // The same verdict again (page scan answering after a context-menu check) keeps the panel as it is, with a
    // heatmap the user may be waiting for.
    const same = entry.url === url && JSON.stringify(entry.badge) === JSON.stringify(badge);
    entry.badge = badge;
    entry.url = url;
    entry.host.setAttribute("data-url", url.length > 300 ? url.slice(0, 300) : url); // the page's own URL, no verdict
    entry.button.dataset.state = badge.state;
    entry.button.textContent = badge.text;
    entry.button.title = badge.title;
    if (!same) fillPanel(entry.panel, badge, img);
    place(entry, img);
  }

  function fillPanel(panel, badge, img) {
    panel.replaceChildren();
    const line = (text) => {
      const div = document.createElement("div");
      div.textContent = text;
      panel.append(div);
      return div;
    };
    const details = badge.details;
    if (!details) {
      line(badge.title);
      return;
    }
    const { wording } = details;
    line(wording.verdict).style.fontWeight = "600";
    line(wording.rules);
    const views = Object.entries(wording.views);
    if (views.length > 0) {
      const table = document.createElement("table");
      for (const [view, score] of views) {
        const row = table.insertRow();
        row.insertCell().textContent = view;
        row.insertCell().textContent = score;
      }
      line("AI score per test-time view:");
      panel.append(table);
    }
    for (const text of wording.evidence ?? []) line(text).className = "evidence";
    addHeatmapButton(panel, line, img);
    line(wording.caveat).className = "caveat";
    line(`Model ${details.modelVersion}, ${details.engine === "browser" ? "checked in this browser" : "checked by your relay"}`);
    if (details.sha256) line(`Image SHA-256 ${details.sha256.slice(0, 16)}…`);
    const report = line("Wrong verdict? This image is ");
    for (const [userLabel, text] of [["ai", "AI-generated"], ["human", "human-made"]]) {
      const button = document.createElement("button");
      button.textContent = text;
      button.disabled = !details.sha256;
      button.addEventListener("click", async (event) => {
        event.stopPropagation();
        if (!event.isTrusted) return; // only the user files a report, never the page's script
        const report = {
          sha256: details.sha256,
          userLabel,
          modelLabel: details.label,
          probability: details.probability,
          modelVersion: details.modelVersion,
        };
        const answer = await api.runtime.sendMessage({ type: "report-verdict", report }).catch((error) => ({ error: error.message }));
        line(answer?.record ? "Saved on this computer; export it from the options page." : `Not saved: ${answer?.error}`);
      });
      report.append(button);
    }
  }

  // On request: ask the worker for the window map of this image and draw it over a copy of the image.
  function addHeatmapButton(panel, line, img) {
    const holder = line("");
    const show = document.createElement("button");
    show.type = "button";
    show.textContent = "Show where the model sees AI";
    show.addEventListener("click", async (event) => {
      event.stopPropagation();
      if (!event.isTrusted) return; // only the user asks, never the page's script
      show.disabled = true;
      show.textContent = "Mapping…";
      const url = img.currentSrc || img.src;
      const answer = await api.runtime
        .sendMessage({ type: "explain-image", url })
        .catch((error) => ({ ok: false, error: { message: error.message } }));
      show.remove();
      if (!answer?.ok) {
        holder.textContent = `No heatmap: ${answer?.error?.message ?? "no answer"}.`;
        return;
      }
      const { grid_size: size, cost_ms: cost } = answer.explanation;
      holder.append(heatmapCanvas(img, answer.explanation));
      holder.append(`Red: parts the model alone reads as AI (${size}×${size} windows, ${Math.round(cost)} ms).`);
    });
    holder.append(show);
  }

  // The image scaled to the panel, tinted red with opacity 0.6 x P(ai) of each window (smoothly interpolated).
  function heatmapCanvas(img, { grid, grid_size: size }) {
    const scale = Math.min(1, 240 / Math.max(img.naturalWidth, img.naturalHeight, 1));
    const canvas = document.createElement("canvas");
    canvas.className = "heatmap";
    canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "The image, tinted red where the model sees signs of generation");
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0, canvas.width, canvas.height);
    const cells = document.createElement("canvas");
    cells.width = size;
    cells.height = size;
    const cellContext = cells.getContext("2d");
    grid.forEach((row, y) =>
      row.forEach((p, x) => {
        cellContext.fillStyle = `rgba(255, 40, 0, ${0.6 * Math.min(1, Math.max(0, p))})`;
        cellContext.fillRect(x, y, 1, 1);
      }),
    );
    context.imageSmoothingEnabled = true;
    context.drawImage(cells, 0, 0, canvas.width, canvas.height);
    return canvas;
  }

  // Absolute position in the host's containing block, measured from where the host is now.
  function place(entry, img) {
    const target = img.getBoundingClientRect();
    const now = entry.host.getBoundingClientRect();
    const left = parseFloat(entry.host.style.left) || 0;
    const top = parseFloat(entry.host.style.top) || 0;
    entry.host.style.setProperty("left", `${target.left - (now.left - left) + 4}px`, "important");
    entry.host.style.setProperty("top", `${target.top - (now.top - top) + 4}px`, "important");
    const shown = img.isConnected && target.width > 0 && target.height > 0;
    entry.host.style.setProperty("visibility", shown ? "visible" : "hidden", "important");
  }

  function placeAll() {
    for (const [img, entry] of badges) {
      if (!img.isConnected) {
        entry.host.remove();
        badges.delete(img);
      } else {
        place(entry, img);
      }
    }
  }

  let placeScheduled = false;
  function schedulePlaceAll() {
    if (placeScheduled || badges.size === 0) return;
    placeScheduled = true;
    requestAnimationFrame(() => {
      placeScheduled = false;
      placeAll();
    });
  }
  addEventListener("scroll", schedulePlaceAll, { capture: true, passive: true });
  addEventListener("resize", schedulePlaceAll, { passive: true });
  setInterval(schedulePlaceAll, 1000); // layout changes that neither scroll nor resize the page

  function removeBadge(img) {
    badges.get(img)?.host.remove();
    badges.delete(img);
  }

  function removeBadges() {
    for (const entry of badges.values()) entry.host.remove();
    badges.clear();
  }

  function flaggedCount() {
    return Array.from(badges.entries()).filter(([img, entry]) => img.isConnected && entry.badge.flagged).length;
  }

  // ---- Page notice (relay-wide problems during page scan) ---------------------------------------------------

  let notice = null;

  function showNotice(state, text) {
    if (!notice) {
      const { host, shadow } = makeHost(NOTICE_TAG);
      // Anchored bottom-right only: with the host's left/top 0 left in place it would span the whole viewport
      // above the page and take every click, the right click on an image included.
      host.style.setProperty("position", "fixed", "important");
      host.style.setProperty("left", "auto", "important");
      host.style.setProperty("top", "auto", "important");
      host.style.setProperty("right", "16px", "important");
      host.style.setProperty("bottom", "16px", "important");
      const box = document.createElement("div");
      box.className = "notice";
      box.setAttribute("role", "status");
      shadow.append(box);
      notice = { host, box };
    }
    notice.box.dataset.state = state; // inside the closed root, like the text
    notice.box.textContent = `AI-art check: ${text}`;
  }

  function hideNotice() {
    notice?.host.remove();
    notice = null;
  }

  // ---- Reading image bytes for the worker -------------------------------------------------------------------

  function blobToDataUrl(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  // The page's own copy: fetch it from here (data:, blob:, same-origin), else draw the loaded pixels on a canvas.
  async function readImage(url) {
    try {
      const response = await fetch(url);
      if (response.ok) return { dataUrl: await blobToDataUrl(await response.blob()) };
    } catch {
      // Cross-origin without CORS, or revoked: try the pixels.
    }
    const img = imagesWithUrl(url).find((candidate) => candidate.complete && candidate.naturalWidth > 0);
    if (!img) return { error: "the image is not loaded on the page" };
    try {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      canvas.getContext("2d").drawImage(img, 0, 0);
      const blob = await new Promise((resolve, reject) => {
        canvas.toBlob((result) => (result ? resolve(result) : reject(new Error("canvas export failed"))), "image/png");
      });
      return { dataUrl: await blobToDataUrl(blob) };
    } catch (error) {
      return { error: error.message }; // a cross-origin image taints the canvas
    }
  }

  // ---- Page scan ----------------------------------------------------------------------------------------------

  const scan = {
    on: false,
    minSide: 64,
    intersections: null,
    mutations: null,
    queue: [], // URLs waiting for the relay
    inFlight: 0, // URLs in the batch the worker is checking now
    timer: null,
    sent: new Set(), // URLs queued or answered: no image is sent twice
    verdicts: new Map(), // URL -> badge
    considered: new WeakMap(), // img -> URL last considered
    stats: { checked: 0, skipped: 0, errors: 0 },
  };

  function startScan(minSide) {
    scan.minSide = minSide;
    if (scan.on) return;
    scan.on = true;
    scan.intersections = new IntersectionObserver(onIntersections, { rootMargin: "100px" });
    scan.mutations = new MutationObserver(onMutations);
    scan.mutations.observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["src", "srcset"] });
    for (const img of document.images) scan.intersections.observe(img);
    pump(); // URLs left waiting when the scan was halted
  }

  // Stop watching the page but keep what is known; startScan picks up from here.
  function halt(state, text) {
    showNotice(state, `${text} Page scan stopped.`);
    scan.on = false;
    scan.intersections.disconnect();
    scan.mutations.disconnect();
  }

  function stopScan() {
    scan.on = false;
    scan.intersections?.disconnect();
    scan.mutations?.disconnect();
    clearTimeout(scan.timer);
    scan.timer = null;
    scan.queue = [];
    scan.sent.clear();
    scan.verdicts.clear();
    scan.considered = new WeakMap();
    scan.stats = { checked: 0, skipped: 0, errors: 0 };
    removeBadges();
    hideNotice();
  }

  function onIntersections(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      scan.intersections.unobserve(entry.target);
      consider(entry.target);
    }
  }

  function onMutations(records) {
    for (const record of records) {
      if (record.type === "attributes") {
        if (record.target.tagName === "IMG") scan.intersections.observe(record.target);
        continue;
      }
      for (const node of record.addedNodes) {
        if (node.tagName === "IMG") scan.intersections.observe(node);
        else if (node.querySelectorAll) node.querySelectorAll("img").forEach((img) => scan.intersections.observe(img));
      }
    }
  }

  function consider(img) {
    if (!scan.on) return;
    if (!img.complete) {
      img.addEventListener("load", () => consider(img), { once: true });
      img.addEventListener("error", () => consider(img), { once: true });
      return;
    }
    const url = img.currentSrc || img.src;
    if (!url || scan.considered.get(img) === url) return;
    scan.considered.set(img, url);
    if (badges.has(img) && badges.get(img).url !== url) removeBadge(img); // a new picture: the old verdict is void
    const box = img.getBoundingClientRect();
    const loaded = img.naturalWidth > 0;
    // A broken image (loaded is false) is still sent: the relay says why it cannot be read.
    if (Math.min(box.width, box.height) < scan.minSide || (loaded && Math.min(img.naturalWidth, img.naturalHeight) < scan.minSide)) {
      scan.stats.skipped += 1;
      return;
    }
    if (scan.verdicts.has(url)) {
      apply(img, scan.verdicts.get(url));
    } else if (!scan.sent.has(url)) {
      scan.sent.add(url);
      scan.queue.push(url);
      pump();
    }
  }

  function apply(img, badge) {
    if (badge.flagged || badge.scope === "image") showBadge(img, badge);
  }

  async function pump() {
    if (!scan.on || scan.inFlight > 0 || scan.timer !== null || scan.queue.length === 0) return;
    const urls = scan.queue.splice(0, BATCH_SIZE);
    scan.inFlight = urls.length;
    const answer = await api.runtime.sendMessage({ type: "scan-batch", urls }).catch((error) => ({ error: error.message }));
    scan.inFlight = 0;
    if (!scan.on) return;
    if (!answer?.badges) {
      scan.queue.unshift(...urls);
      halt("error", `${answer?.error ?? "no answer from the extension"}.`);
      return;
    }
    let relayProblem = null;
    urls.forEach((url, index) => {
      const badge = answer.badges[index];
      if (badge.scope === "relay") {
        relayProblem = badge;
        scan.queue.unshift(url);
        return;
      }
      scan.verdicts.set(url, badge);
      scan.stats.checked += 1;
      if (badge.scope === "image") scan.stats.errors += 1;
      for (const img of imagesWithUrl(url)) apply(img, badge);
    });
    if (relayProblem) pause(relayProblem);
    else hideNotice();
    api.runtime.sendMessage({ type: "scan-stats", flagged: flaggedCount() }).catch(() => {});
    pump();
  }

  // The relay cannot take images now: say so, and try again after retryIn seconds (never, if null).
  function pause(badge) {
    if (badge.retryIn === null) {
      halt(badge.state, `${badge.text}. ${badge.title}`);
      return;
    }
    showNotice(badge.state, `${badge.text}. ${badge.title} Retrying in ${badge.retryIn} s.`);
    scan.timer = setTimeout(() => {
      scan.timer = null;
      pump();
    }, badge.retryIn * 1000);
  }

  // ---- Messages from the worker ---------------------------------------------------------------------------

  const handlers = {
    "badge-pending": ({ url }) => {
      const images = imagesWithUrl(url);
      if (images.length === 0) return { found: false };
      const pending = { state: "pending", text: "Checking…", title: "Asking the relay…", flagged: false, scope: "verdict", details: null };
      for (const img of images) showBadge(img, pending);
      const img = images[0];
      return { found: true, loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth, height: img.naturalHeight };
    },
    "badge-show": ({ url, badge }) => {
      const images = imagesWithUrl(url);
      for (const img of images) showBadge(img, badge);
      return { ok: images.length > 0 };
    },
    "read-image": ({ url }) => readImage(url),
    "scan-start": ({ minImageSide }) => {
      startScan(minImageSide);
      return { ok: true };
    },
    "scan-stop": () => {
      stopScan();
      return { ok: true };
    },
    "get-stats": () => ({
      scanning: scan.on,
      flagged: flaggedCount(),
      checked: scan.stats.checked,
      skipped: scan.stats.skipped,
      errors: scan.stats.errors,
      waiting: scan.queue.length + scan.inFlight,
      paused: scan.timer !== null,
    }),
  };

  api.runtime.onMessage.addListener((message, sender, sendResponse) => {
    const handler = Object.hasOwn(handlers, message?.type) ? handlers[message.type] : null;
    if (!handler) return false;
    Promise.resolve(handler(message)).then(sendResponse, (error) => sendResponse({ error: error.message }));
    return true;
  });

  api.runtime
    .sendMessage({ type: "scan-config" })
    .then((config) => {
      if (config?.enabled) startScan(config.minImageSide);
    })
    .catch(() => {});
})();
