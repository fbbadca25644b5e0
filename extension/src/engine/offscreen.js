/**
 * The offscreen document (Chromium): hosts the in-browser engine for the service worker, which cannot run the
 * LiteRT.js loader itself. Answers {target: "offscreen-engine", type: "check", data: base64, tta, model} and
 * {type: "info", model}.
 */
import { base64ToBytes } from "../lib/base64.js";
import { answerEngineRequest } from "./host.js";

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (message?.target !== "offscreen-engine" || sender.id !== chrome.runtime.id) return false;
  const bytes = typeof message.data === "string" ? base64ToBytes(message.data) : null;
  answerEngineRequest({ type: message.type, bytes, tta: message.tta, model: message.model }).then(sendResponse);
  return true; // answer asynchronously
});
