/**
 * The background's handle on the in-browser engine. Chromium: the engine runs in an offscreen document (a service
 * worker cannot host the LiteRT.js loader) and bytes travel there as base64 in runtime messages. Firefox: the
 * background page has a DOM and answers in-process (`inProcess`, engine/host.js' answerEngineRequest).
 */
import { bytesToBase64 } from "./base64.js";
import { MAX_IMAGE_BYTES } from "./image_limits.js";

const OFFSCREEN_URL = "engine/offscreen.html";

/**
 * Why the engine gave no verdict: kind "unreadable", "too-large", "too-small" (with the image's width and height)
 * or "engine-error", as the relay's error kinds.
 */
export class EngineError extends Error {
  constructor(kind, message, { width, height } = {}) {
    super(message);
    this.name = "EngineError";
    this.kind = kind;
    this.width = width;
    this.height = height;
  }

  toJSON() {
    return { kind: this.kind, message: this.message, width: this.width, height: this.height };
  }
}

/**
 * deps: api (chrome/browser namespace) and inProcess (answerEngineRequest where the background has a DOM, else
 * null). Returns {check(bytes) -> result with engine "browser", info()}; both reject with EngineError.
 */
export function createBrowserEngine({ api, inProcess = null }) {
  let creating = null;

  async function ensureOffscreenDocument() {
    const url = api.runtime.getURL(OFFSCREEN_URL);
    const existing = await api.runtime.getContexts({ contextTypes: ["OFFSCREEN_DOCUMENT"], documentUrls: [url] });
    if (existing.length > 0) return;
    creating ??= api.offscreen
      .createDocument({ url: OFFSCREEN_URL, reasons: ["BLOBS"], justification: "Decode images and run the AI-art model (WebAssembly) in this browser" })
      .finally(() => {
        creating = null;
      });
    await creating;
  }

  async function ask(type, { bytes = null, tta = undefined, model = "default" } = {}) {
    let answer;
    try {
      if (inProcess) {
        answer = await inProcess({ type, bytes, tta, model });
      } else {
        await ensureOffscreenDocument();
        answer = await api.runtime.sendMessage({ target: "offscreen-engine", type, data: bytes ? bytesToBase64(bytes) : null, tta, model });
      }
    } catch (error) {
      throw new EngineError("engine-error", `the in-browser engine did not start: ${error.message}`);
    }
    if (!answer) throw new EngineError("engine-error", "the in-browser engine gave no answer");
    if (answer.error) throw new EngineError(answer.error.kind, answer.error.message, answer.error);
    return answer;
  }

  return {
    /**
     * The verdict on image bytes (Uint8Array), shaped like the relay's, with engine: "browser"; tta as the relay's;
     * model: a bundled model name (settings.MODELS).
     */
    async check(bytes, tta = "adaptive", model = "default") {
      if (bytes.byteLength > MAX_IMAGE_BYTES) throw new EngineError("too-large", `file over ${MAX_IMAGE_BYTES / 1048576} MB`);
      return { ...(await ask("check", { bytes, tta, model })).result, engine: "browser" };
    },
    /** The window map of image bytes (edge_runtime.explain), shaped like the relay's /api/v1/explain. */
    async explain(bytes, model = "default") {
      if (bytes.byteLength > MAX_IMAGE_BYTES) throw new EngineError("too-large", `file over ${MAX_IMAGE_BYTES / 1048576} MB`);
      return (await ask("explain", { bytes, model })).explanation;
    },
    /** The model's and runtime's details. */
    info: async (model = "default") => (await ask("info", { model })).info,
  };
}
