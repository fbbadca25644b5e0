/** Client for the relay's HTTP API (POST /api/v1/check, check-url, check-batch, explain; GET /healthz, /api/v1/model). */

export const MAX_BATCH = 16;

/**
 * Why a relay call failed, as one of a few kinds the user interface knows how to show:
 * unreachable, rate-limited, unauthorized, too-large, unreadable, refused, relay-error.
 */
export class RelayError extends Error {
  constructor(kind, message, { status = null, retryAfter = null } = {}) {
    super(message);
    this.name = "RelayError";
    this.kind = kind;
    this.status = status;
    this.retryAfter = retryAfter;
  }

  toJSON() {
    const size = this.kind === "too-small" ? { width: this.width, height: this.height } : {};
    return { kind: this.kind, message: this.message, status: this.status, retryAfter: this.retryAfter, ...size };
  }
}

/** The error kind for an HTTP status from the relay. */
export function errorKindForStatus(status) {
  if (status === 429) return "rate-limited";
  if (status === 401) return "unauthorized";
  if (status === 413) return "too-large";
  if (status === 415 || status === 422) return "unreadable";
  if (status === 403) return "refused";
  return "relay-error";
}

/**
 * A RelayError from a relay error body {"error": {"code", "reason"}} (or anything else) and its status. A 422 whose
 * reason starts "too small to judge: WxH" is kind "too-small" with the image's width and height.
 */
export function relayErrorFrom(status, body, retryAfterHeader = null) {
  const reason = body?.error?.reason ?? `HTTP ${status}`;
  const retryAfter = parseRetryAfter(retryAfterHeader);
  const tooSmall = status === 422 ? /^too small to judge: (\d+)x(\d+)/.exec(reason) : null;
  const error = new RelayError(tooSmall ? "too-small" : errorKindForStatus(status), reason, { status, retryAfter });
  if (tooSmall) [error.width, error.height] = [Number(tooSmall[1]), Number(tooSmall[2])];
  return error;
}

/**
 * Make a client for the relay at baseUrl. `fetch` is injectable for tests; every request times out after timeoutMs.
 * Checks ask for the TTA mode `tta` (adaptive, always or never); checks, explanations and the model's details ask
 * for `model` (the relay's `?model=`: "default", its own model, is left out of the URL). Methods resolve to the
 * relay's JSON and reject with RelayError.
 */
export function createRelayClient({ baseUrl, token = "", tta = "adaptive", model = "default", fetch = globalThis.fetch, timeoutMs = 60000 }) {
  const base = baseUrl.replace(/\/+$/, "");
  const modelQuery = model === "default" ? "" : `model=${encodeURIComponent(model)}`;
  const query = `?tta=${encodeURIComponent(tta)}${modelQuery ? `&${modelQuery}` : ""}`;
  const modelOnly = modelQuery ? `?${modelQuery}` : "";

  async function request(path, { method = "GET", body, headers = {} } = {}) {
    if (token) headers = { ...headers, Authorization: `Bearer ${token}` };
    let response;
    try {
      response = await fetch(`${base}${path}`, { method, body, headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw new RelayError("unreachable", `relay unreachable at ${base} (${error.message})`);
    }
    let json = null;
    try {
      json = await response.json();
    } catch {
      // A non-JSON body: a proxy error page or something else that is not the relay.
    }
    if (!response.ok) throw relayErrorFrom(response.status, json, response.headers.get("Retry-After"));
    if (json === null) throw new RelayError("relay-error", `relay sent a non-JSON answer (HTTP ${response.status})`);
    return json;
  }

  const jsonBody = (value) => ({
    method: "POST",
    body: JSON.stringify(value),
    headers: { "Content-Type": "application/json" },
  });

  return {
    baseUrl: base,
    health: () => request("/healthz"),
    model: () => request(`/api/v1/model${modelOnly}`),

    /** Check image bytes (Uint8Array). */
    checkBytes: (bytes, type) =>
      request(`/api/v1/check${query}`, { method: "POST", body: bytes, headers: { "Content-Type": imageType(type) } }),

    /** Where the model sees signs of generation in image bytes: POST /api/v1/explain. */
    explain: (bytes, type) =>
      request(`/api/v1/explain${modelOnly}`, { method: "POST", body: bytes, headers: { "Content-Type": imageType(type) } }),

    /** Ask the relay to fetch and check an image URL itself. */
    checkUrl: (url) => request(`/api/v1/check-url${query}`, jsonBody({ url })),

    /**
     * Check several images in one request: [{bytes, type}] as multipart `file` fields.
     * Resolves to one entry per image, in order: {ok: true, result} or {ok: false, error: RelayError}.
     */
    async checkBatchFiles(images) {
      const form = new FormData();
      images.forEach(({ bytes, type }, index) => {
        form.append("file", new Blob([bytes], { type: imageType(type) }), `image-${index}`);
      });
      return batchEntries(await request(`/api/v1/check-batch${query}`, { method: "POST", body: form }), images.length);
    },

    /** Like checkBatchFiles, for URLs the relay fetches itself. */
    async checkBatchUrls(urls) {
      return batchEntries(await request(`/api/v1/check-batch${query}`, jsonBody({ urls })), urls.length);
    },
  };
}

function batchEntries(json, count) {
  const entries = Array.from({ length: count }, () => ({
    ok: false,
    error: new RelayError("relay-error", "relay gave no result for this image"),
  }));
  for (const item of json?.results ?? []) {
    if (!Number.isInteger(item.index) || item.index < 0 || item.index >= count) continue;
    if (item.ok) {
      const { index, ok, ...result } = item;
      entries[index] = { ok: true, result };
    } else {
      entries[item.index] = { ok: false, error: relayErrorFrom(item.error?.code ?? 500, item) };
    }
  }
  return entries;
}

function imageType(type) {
  return type && /^image\//i.test(type) ? type : "application/octet-stream";
}

function parseRetryAfter(header) {
  if (header === null || header === undefined) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}
