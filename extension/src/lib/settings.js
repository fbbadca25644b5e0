/** User settings: defaults, validation, and loading/saving them in extension storage. */

export const DEFAULT_SETTINGS = Object.freeze({
  // Where images are checked: "browser" (the bundled model, in this browser) or "relay" (the user's relay).
  engine: "browser",
  // Which model checks them, with either engine: "default" (the one that does best on unseen sources) or "paper"
  // (the 2025 paper's attention model; see MODEL_CARD.md). The relay must serve it (its --models; paper by default).
  model: "default",
  relayUrl: "http://127.0.0.1:8765",
  token: "",
  // null: use the model's own threshold and unsure band, as returned by the relay with each verdict.
  threshold: null,
  unsureBand: null,
  // Which verdicts page scan flags: "ai" only, or "ai+unsure".
  flagMode: "ai",
  // Label an image "ai" when its own metadata names an AI generator (edge runtime: --ignore-metadata turns it off).
  trustMetadata: true,
  // Images whose shorter side is below this many pixels are "too small"; page scan skips them.
  minImageSide: 64,
  // Test-time augmentation, as the edge runtime's --tta: "adaptive" (all views only when the first is near the
  // threshold), "always" (every view, slower) or "never" (the first view only).
  tta: "adaptive",
});

export const FLAG_MODES = Object.freeze(["ai", "ai+unsure"]);
export const ENGINES = Object.freeze(["browser", "relay"]);
export const MODELS = Object.freeze(["default", "paper"]);
export const TTA_MODES = Object.freeze(["adaptive", "always", "never"]);

const STORAGE_KEY = "settings";

/**
 * Check user input field by field.
 * Returns {settings, errors}: settings holds the valid fields over the defaults, errors maps a field to a message.
 */
export function validateSettings(input = {}) {
  const settings = { ...DEFAULT_SETTINGS };
  const errors = {};
  const check = (field, parse) => {
    if (input[field] === undefined) return;
    try {
      settings[field] = parse(input[field]);
    } catch (error) {
      errors[field] = error.message;
    }
  };
  check("engine", (value) => {
    if (!ENGINES.includes(value)) throw new Error(`must be one of ${ENGINES.join(", ")}`);
    return value;
  });
  check("model", (value) => {
    if (!MODELS.includes(value)) throw new Error(`must be one of ${MODELS.join(", ")}`);
    return value;
  });
  check("relayUrl", parseRelayUrl);
  check("token", (value) => String(value).trim());
  check("threshold", (value) => (isBlank(value) ? null : parseProbability(value)));
  check("unsureBand", parseBand);
  check("flagMode", (value) => {
    if (!FLAG_MODES.includes(value)) throw new Error(`must be one of ${FLAG_MODES.join(", ")}`);
    return value;
  });
  check("tta", (value) => {
    if (!TTA_MODES.includes(value)) throw new Error(`must be one of ${TTA_MODES.join(", ")}`);
    return value;
  });
  check("trustMetadata", (value) => {
    if (typeof value !== "boolean") throw new Error("must be true or false");
    return value;
  });
  check("minImageSide", (value) => {
    const side = Number(value);
    if (!Number.isInteger(side) || side < 1 || side > 4096) throw new Error("must be a whole number of pixels, 1 to 4096");
    return side;
  });
  if (settings.threshold !== null && settings.unsureBand !== null) {
    const [lo, hi] = settings.unsureBand;
    if (settings.threshold < lo || settings.threshold > hi) errors.unsureBand = "must contain the threshold";
  }
  return { settings, errors };
}

/** Read the settings from a storage area (chrome.storage.local); invalid stored fields fall back to defaults. */
export async function loadSettings(storageArea) {
  const stored = (await storageArea.get(STORAGE_KEY))[STORAGE_KEY] ?? {};
  const { settings, errors } = validateSettings(stored);
  for (const field of Object.keys(errors)) settings[field] = DEFAULT_SETTINGS[field];
  return settings;
}

/** Validate and store settings; nothing is stored when a field is invalid. Returns {settings, errors}. */
export async function saveSettings(storageArea, input) {
  const { settings, errors } = validateSettings(input);
  if (Object.keys(errors).length === 0) await storageArea.set({ [STORAGE_KEY]: settings });
  return { settings, errors };
}

/** The host-permission match pattern the relay URL needs, e.g. "http://127.0.0.1/*" (patterns ignore ports). */
export function relayOriginPattern(relayUrl) {
  const url = new URL(relayUrl);
  return `${url.protocol}//${url.hostname}/*`;
}

function parseRelayUrl(value) {
  let url;
  try {
    url = new URL(String(value).trim());
  } catch {
    throw new Error("not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("must start with http:// or https://");
  if (url.search || url.hash || url.username || url.password) throw new Error("must not contain a query, fragment or credentials");
  // The token and every image travel to the relay: in the clear only within this computer.
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    throw new Error("must be https:// (e.g. a reverse proxy with TLS), or http:// on this computer (127.0.0.1, localhost)");
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

function isLoopbackHost(hostname) {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function parseProbability(value) {
  const number = Number(value);
  if (isBlank(value) || !Number.isFinite(number) || number < 0 || number > 1) throw new Error("must be a number from 0 to 1");
  return number;
}

function parseBand(value) {
  if (value === null || (Array.isArray(value) && value.every(isBlank))) return null;
  if (!Array.isArray(value) || value.length !== 2) throw new Error("must be two numbers [low, high]");
  const [lo, hi] = value.map(parseProbability);
  if (lo > hi) throw new Error("low must not exceed high");
  return [lo, hi];
}

function isBlank(value) {
  return value === null || value === undefined || String(value).trim() === "";
}
