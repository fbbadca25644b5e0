/**
 * Check images by URL: find the bytes (cache by URL, worker fetch, data: URL, else the page's copy), skip bytes
 * already judged (cache by hash), check the rest in the browser engine or send them to the relay, and fall back
 * to the relay's check-url only for images whose bytes the extension cannot read.
 *
 * A verdict is cached under its URL only when the bytes came from the URL itself (the worker's fetch, or the
 * relay's check-url): a page can hand over any bytes for any URL (its own service worker answers its fetches),
 * so a verdict on bytes read through the page is cached by their hash alone and never reused on another site.
 */
import { EngineError } from "./browser_engine.js";
import { decodeDataUrl, sha256Hex } from "./bytes.js";
import { inspect, namesGenerator } from "./provenance.js";
import { MAX_BATCH, RelayError } from "./relay.js";

/**
 * deps:
 *   cache: VerdictCache; saveCache(): persist it after changes;
 *   getRelay(): a relay client for the current settings;
 *   getBrowserEngine(): the in-browser engine when the settings choose it, else null (the relay checks);
 *   fetchImage(url): {bytes, type} or null (the worker's own fetch, with the extension's host permissions);
 *   readFromPage(url, target): {bytes, type} or null (the content script in target = {tabId, frameId}).
 * Outcomes are {ok: true, result, via: "cache"|"bytes"|"url"|"browser"} or {ok: false, error: {kind, message, ...}}.
 */
export function createChecker({ cache, saveCache = async () => {}, getRelay, getBrowserEngine = async () => null, fetchImage, readFromPage }) {
  // {bytes, type, fromUrl}: fromUrl is true when the bytes came from the URL itself, not through the page.
  async function obtainBytes(url, target, policy) {
    if (/^data:/i.test(url)) return decodeDataUrl(url);
    if (/^https?:/i.test(url) && policy.extension(url)) {
      const image = await fetchImage(url);
      if (image) return { ...image, fromUrl: true };
    }
    const image = await readFromPage(url, target);
    return image && { ...image, fromUrl: false };
  }

  // The URL a verdict on `image` may be cached under: its own, unless the page supplied the bytes.
  const urlKey = (url, image) => (image.fromUrl ? url : null);

  /**
   * Check several image URLs from one page frame; resolves to one outcome per URL, in order. `policy` (page scan:
   * lib/scan_policy.js) says which URLs the extension may fetch itself and which the relay may be asked to fetch;
   * the others are only read from the page. Without it (a check the user asked for) every URL may be fetched.
   */
  async function checkMany(urls, target, policy = FETCH_ANY) {
    const outcomes = new Array(urls.length);
    const uncached = [];
    urls.forEach((url, index) => {
      const result = policy.extension(url) ? cache.getByUrl(url) : null;
      if (result) outcomes[index] = { ok: true, result, via: "cache" };
      else uncached.push(index);
    });

    const images = await Promise.all(uncached.map((index) => obtainBytes(urls[index], target, policy).catch(() => null)));
    const toSend = new Map(); // sha256 -> {image, indices}
    const toSendByUrl = [];
    for (const [k, index] of uncached.entries()) {
      const image = images[k];
      if (!image) {
        if (/^https?:/i.test(urls[index]) && policy.relay(urls[index])) toSendByUrl.push(index);
        else outcomes[index] = failure("unreadable", "the page does not let the extension read this image");
        continue;
      }
      const sha256 = await sha256Hex(image.bytes);
      const result = cache.getByHash(sha256);
      if (result) {
        cache.put({ url: urlKey(urls[index], image), sha256, result });
        outcomes[index] = { ok: true, result, via: "cache" };
      } else if (toSend.has(sha256)) {
        toSend.get(sha256).indices.push(index);
      } else {
        toSend.set(sha256, { image, indices: [index] });
      }
    }

    const engine = toSend.size > 0 || toSendByUrl.length > 0 ? await getBrowserEngine() : null;
    if (engine) {
      await checkInBrowser(engine, [...toSend.entries()], urls, outcomes);
      for (const index of toSendByUrl) outcomes[index] = failure("unreadable", "the page does not let the extension read this image");
    } else if (toSend.size > 0 || toSendByUrl.length > 0) {
      const relay = await getRelay();
      await sendBytes(relay, [...toSend.entries()], urls, outcomes);
      await sendUrls(relay, toSendByUrl, urls, outcomes);
    }
    if (uncached.length > 0) await saveCache();
    return outcomes;
  }

  // One image at a time: the engine runs one model at a time, and each answer is cached as soon as it comes.
  async function checkInBrowser(engine, entries, urls, outcomes) {
    for (const [sha256, { image, indices }] of entries) {
      let outcome;
      try {
        const result = { ...(await engine.check(image.bytes)), sha256, ...(await metadataVerdict(image.bytes)) };
        outcome = { ok: true, result, via: "browser" };
      } catch (error) {
        if (!(error instanceof EngineError)) throw error;
        outcome = { ok: false, error: error.toJSON() };
      }
      for (const index of indices) {
        if (outcome.ok) cache.put({ url: urlKey(urls[index], image), sha256, result: outcome.result });
        outcomes[index] = outcome;
      }
    }
  }

  async function sendBytes(relay, entries, urls, outcomes) {
    for (const chunk of chunks(entries, MAX_BATCH)) {
      const answers = await askRelay(chunk.length, () =>
        chunk.length === 1
          ? relay.checkBytes(chunk[0][1].image.bytes, chunk[0][1].image.type)
          : relay.checkBatchFiles(chunk.map(([, { image }]) => image)),
      );
      chunk.forEach(([sha256, { image, indices }], k) => {
        for (const index of indices) {
          if (answers[k].ok) cache.put({ url: urlKey(urls[index], image), sha256, result: answers[k].result });
          outcomes[index] = outcomeOf(answers[k], "bytes");
        }
      });
    }
  }

  async function sendUrls(relay, indices, urls, outcomes) {
    for (const chunk of chunks(indices, MAX_BATCH)) {
      const answers = await askRelay(chunk.length, () =>
        chunk.length === 1 ? relay.checkUrl(urls[chunk[0]]) : relay.checkBatchUrls(chunk.map((index) => urls[index])),
      );
      chunk.forEach((index, k) => {
        const answer = answers[k];
        if (answer.ok && answer.result.sha256) cache.put({ url: urls[index], sha256: answer.result.sha256, result: answer.result });
        outcomes[index] = answer.ok ? outcomeOf(answer, "url") : failure(...urlFailure(answer.error));
      });
    }
  }

  /**
   * Where the model sees signs of generation in one image, on request: {ok: true, explanation} with the relay's
   * /api/v1/explain shape ({probability, grid, grid_size, cost_ms, ...}) or {ok: false, error}. The page chose
   * the URL, so `policy` (lib/scan_policy.js) says whether the extension may fetch it; else the page's copy.
   */
  async function explain(url, target, policy) {
    const image = await obtainBytes(url, target, policy).catch(() => null);
    if (!image) return failure("unreadable", "the page does not let the extension read this image");
    try {
      const engine = await getBrowserEngine();
      const explanation = engine ? await engine.explain(image.bytes) : await (await getRelay()).explain(image.bytes, image.type);
      return { ok: true, explanation };
    } catch (error) {
      if (!(error instanceof EngineError) && !(error instanceof RelayError)) throw error;
      return { ok: false, error: error.toJSON() };
    }
  }

  return {
    checkMany,
    explain,
    /** Check one image URL; resolves to its outcome. */
    check: async (url, target) => (await checkMany([url], target))[0],
  };
}

const FETCH_ANY = Object.freeze({ extension: () => true, relay: () => true });

/**
 * The file's provenance evidence and, as the edge runtime's rule, label "ai" with reason "metadata" when it names
 * an AI generator (the user can turn the rule off: verdict.labelFor); else reason "model" and the model's label.
 */
async function metadataVerdict(bytes) {
  const evidence = await inspect(bytes);
  return namesGenerator(evidence) ? { evidence, label: "ai", reason: "metadata" } : { evidence, reason: "model" };
}

// One answer per image: a single check resolves to a result, a batch to entries; a failed request fails them all.
async function askRelay(count, call) {
  try {
    const answer = await call();
    return Array.isArray(answer) ? answer : [{ ok: true, result: answer }];
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    return Array.from({ length: count }, () => ({ ok: false, error }));
  }
}

function outcomeOf(answer, via) {
  return answer.ok ? { ok: true, result: answer.result, via } : { ok: false, error: answer.error.toJSON() };
}

// The extension could not read the bytes; when the relay cannot fetch the URL either, the image is unreadable.
function urlFailure(error) {
  if (["unreachable", "rate-limited", "unauthorized", "too-large"].includes(error.kind)) {
    return [error.kind, error.message, error.toJSON()];
  }
  return ["unreadable", `the extension could not read it and the relay could not fetch it (${error.message})`, error.toJSON()];
}

function failure(kind, message, extra = {}) {
  return { ok: false, error: { ...extra, kind, message } };
}

function chunks(items, size) {
  const result = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}
