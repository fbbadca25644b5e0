/** The page-scan allow list: sites as host-permission match patterns such as "https://example.com/*". */

const STORAGE_KEY = "scanSites";

/** The match pattern for the site of a page URL (any port, as match patterns have none); null if not http(s). */
export function sitePattern(pageUrl) {
  let url;
  try {
    url = new URL(pageUrl);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return `${url.protocol}//${url.hostname}/*`;
}

/** Whether page scan is allowed on the page at pageUrl. */
export function isScanAllowed(sites, pageUrl) {
  const pattern = sitePattern(pageUrl);
  return pattern !== null && sites.includes(pattern);
}

export async function loadScanSites(storageArea) {
  const sites = (await storageArea.get(STORAGE_KEY))[STORAGE_KEY];
  return Array.isArray(sites) ? sites.filter((site) => typeof site === "string") : [];
}

/** Add a site pattern to the allow list or remove it; resolves to the new list. */
export async function setScanSite(storageArea, pattern, enabled) {
  const sites = (await loadScanSites(storageArea)).filter((site) => site !== pattern);
  if (enabled) sites.push(pattern);
  sites.sort();
  await storageArea.set({ [STORAGE_KEY]: sites });
  return sites;
}
