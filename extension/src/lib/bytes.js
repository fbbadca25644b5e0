/** Image bytes: hashing and data: URL decoding (the form in which content scripts hand bytes to the worker). */

/** Hex SHA-256 of a Uint8Array, the same digest the relay reports as `sha256`. */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Decode a data: URL into {bytes, type}; null when it is not a well-formed data: URL. */
export function decodeDataUrl(url) {
  const match = /^data:([^,]*),(.*)$/s.exec(url);
  if (!match) return null;
  const params = match[1].split(";");
  const type = params[0].trim().toLowerCase() || "text/plain";
  const isBase64 = params.slice(1).some((param) => param.trim().toLowerCase() === "base64");
  try {
    if (isBase64) {
      const binary = atob(match[2].replace(/\s+/g, ""));
      return { bytes: Uint8Array.from(binary, (char) => char.charCodeAt(0)), type };
    }
    return { bytes: percentDecode(match[2]), type };
  } catch {
    return null;
  }
}

function percentDecode(text) {
  const encoder = new TextEncoder();
  const bytes = [];
  for (const part of text.split(/(%[0-9a-f]{2})/i)) {
    if (/^%[0-9a-f]{2}$/i.test(part)) bytes.push(parseInt(part.slice(1), 16));
    else bytes.push(...encoder.encode(part));
  }
  return Uint8Array.from(bytes);
}
