/**
 * Where the in-browser engine lives (the offscreen document in Chromium, the background page in Firefox): one
 * engine per bundled model, each loaded on first use, answering check and info requests with plain JSON-ready objects.
 */
import { createEngine } from "./runtime.js";

const engines = new Map(); // model name -> Promise of its engine

/** The engine of a bundled model ("default" or "paper"), loading it once; a failed load is retried on the next request. */
export function getEngine(model = "default") {
  if (!engines.has(model)) {
    engines.set(model, createEngine({ model }).catch((error) => {
      engines.delete(model);
      throw error;
    }));
  }
  return engines.get(model);
}

/** {result} for a check of bytes, {explanation} for its window map, {info} for the engine's details, or
 * {error: {kind, message}}; `model` names the bundled model (default: "default"). */
export async function answerEngineRequest({ type, bytes, tta, model = "default" }) {
  try {
    const loaded = await getEngine(model);
    if (type === "info") return { info: loaded.info };
    if (type === "check") return { result: await loaded.check(bytes, tta) };
    if (type === "explain") return { explanation: await loaded.explain(bytes) };
    return { error: { kind: "engine-error", message: `unexpected engine request: ${String(type)}` } };
  } catch (error) {
    const { kind = "engine-error", message = String(error), width, height } = error;
    return { error: { kind, message, width, height } };
  }
}
