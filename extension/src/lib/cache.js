/**
 * Verdicts already obtained from the relay, by image URL and by SHA-256 of the image bytes, so that no image is
 * sent twice. Least recently used entries are dropped beyond `maxEntries`.
 */
export class VerdictCache {
  constructor({ maxEntries = 500 } = {}) {
    this.maxEntries = maxEntries;
    this.byHash = new Map(); // sha256 -> relay result
    this.byUrl = new Map(); // url -> sha256
  }

  /** The cached result for an image URL, or undefined. data: and blob: URLs are never cached by URL. */
  getByUrl(url) {
    const sha256 = this.byUrl.get(url);
    if (sha256 === undefined) return undefined;
    const result = this.getByHash(sha256);
    if (result === undefined) this.byUrl.delete(url);
    else touch(this.byUrl, url, sha256);
    return result;
  }

  /** The cached result for image bytes with this SHA-256 (hex), or undefined. */
  getByHash(sha256) {
    const result = this.byHash.get(sha256);
    if (result !== undefined) touch(this.byHash, sha256, result);
    return result;
  }

  /** Remember a result under its hash and, when given and cacheable, its URL. */
  put({ url, sha256, result }) {
    touch(this.byHash, sha256, result);
    if (url && isCacheableUrl(url)) touch(this.byUrl, url, sha256);
    dropOldest(this.byHash, this.maxEntries);
    dropOldest(this.byUrl, this.maxEntries);
  }

  clear() {
    this.byHash.clear();
    this.byUrl.clear();
  }

  get size() {
    return this.byHash.size;
  }

  toJSON() {
    return { byHash: [...this.byHash], byUrl: [...this.byUrl] };
  }

  /** Rebuild a cache from toJSON() output; anything malformed gives an empty cache. */
  static fromJSON(data, options) {
    const cache = new VerdictCache(options);
    if (!data || !Array.isArray(data.byHash) || !Array.isArray(data.byUrl)) return cache;
    for (const [sha256, result] of data.byHash) cache.byHash.set(sha256, result);
    for (const [url, sha256] of data.byUrl) cache.byUrl.set(url, sha256);
    dropOldest(cache.byHash, cache.maxEntries);
    dropOldest(cache.byUrl, cache.maxEntries);
    return cache;
  }
}

/** http(s) URLs identify an image; data: URLs are the image itself (too big a key) and blob: URLs are per page. */
export function isCacheableUrl(url) {
  return /^https?:/i.test(url);
}

function touch(map, key, value) {
  map.delete(key);
  map.set(key, value);
}

function dropOldest(map, maxEntries) {
  for (const key of map.keys()) {
    if (map.size <= maxEntries) break;
    map.delete(key);
  }
}
