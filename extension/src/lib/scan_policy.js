/**
 * Which image URLs page scan lets the extension fetch by itself. A page chooses the URLs it shows, so fetching
 * any of them with the extension's privileges (host access to localhost on every port, the user's cookies)
 * would turn the verdict or error into a port scanner and a login-state oracle for that page. Page scan fetches
 * only images on the page's own origin, never loopback, private or link-local hosts, never the relay; every
 * other image is read from the page the way the page itself may read it (the browser's CORS rules).
 */

const PRIVATE_NAMES = /(^|\.)(localhost|local|internal|home\.arpa)$/i;

/** True for loopback, private, link-local, shared (CGNAT), unspecified and multicast IPv4 addresses. */
function isPrivateIPv4(hostname) {
  const parts = hostname.split(".").map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) return false;
  const [a, b] = parts;
  return (
    a === 0 || a === 10 || a === 127 || a >= 224 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168)
  );
}

/** True for ::, ::1, unique-local, link-local, site-local, multicast and IPv4-mapped IPv6 addresses. */
function isPrivateIPv6(hostname) {
  if (!hostname.startsWith("[")) return false;
  const address = hostname.slice(1, -1).toLowerCase();
  return (
    address === "::" || address === "::1" || address.startsWith("::ffff:") ||
    /^f[cd]/.test(address) || /^fe[89a-f]/.test(address) || address.startsWith("ff")
  );
}

/** Whether `hostname` (as `new URL()` normalises it) names this machine or a private network. */
export function isPrivateHost(hostname) {
  return PRIVATE_NAMES.test(hostname) || isPrivateIPv4(hostname) || isPrivateIPv6(hostname);
}

/**
 * The rules for one page scan of the page at `pageUrl`, with the relay at `relayUrl`:
 *   extension(url): whether the extension may fetch the image itself (same origin as the page, a public host,
 *     not the relay);
 *   relay(url): whether the relay's check-url may be asked for it (http(s) on a public host other than the
 *     relay; the relay fetches without the user's cookies, through its own SSRF guard).
 */
export function scanFetchPolicy(pageUrl, relayUrl) {
  const page = parse(pageUrl);
  const relay = parse(relayUrl);
  const publicWeb = (url) =>
    url !== null && (url.protocol === "http:" || url.protocol === "https:") && url.origin !== relay?.origin &&
    !isPrivateHost(url.hostname);
  return {
    extension: (imageUrl) => {
      const url = parse(imageUrl);
      return page !== null && publicWeb(url) && url.origin === page.origin;
    },
    relay: (imageUrl) => publicWeb(parse(imageUrl)),
  };
}

function parse(url) {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}
