/**
 * Where the in-browser engine lives (the offscreen document in Chromium, the background page in Firefox): one
 * engine, loaded on first use, answering check and info requests with plain JSON-ready objects.
 */
import { createEngine } from "./runtime.js";

let engine = null;

/** The engine, loading it once; a failed load is retried on the next request. */
export function getEngine() {
  engine ??= createEngine().catch((error) => {
    engine = null;
    throw error;
  });
  return engine;
}

/** {result} for a check of bytes, {explanation} for its window map, {info} for the engine's details, or
 * {error: {kind, message}}. */
export async function answerEngineRequest({ type, bytes, tta }) {
  try {
    const loaded = await getEngine();
    if (type === "info") return { info: loaded.info };
    if (type === "check") return { result: await loaded.check(bytes, tta) };
    if (type === "explain") return { explanation: await loaded.explain(bytes) };
    return { error: { kind: "engine-error", message: `unexpected engine request: ${String(type)}` } };
  } catch (error) {
    const { kind = "engine-error", message = String(error), width, height } = error;
    return { error: { kind, message, width, height } };
  }
}
