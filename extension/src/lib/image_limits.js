/**
 * The edge runtime's rules for which images get a verdict (edge_runtime/preprocess.py): the formats it reads, the
 * pixel limits per format, and "too small to judge" (icons, spacers, rules).
 */

// preprocess.MAX_PIXELS and FORMAT_MAX_PIXELS.
const DEFAULT_MAX_PIXELS = 20_000_000;
const FORMAT_MAX_PIXELS = { JPEG: 36_000_000, WEBP: 12_000_000 };
// preprocess.MIN_SIDE and MAX_ASPECT.
export const MIN_SIDE = 32;
export const MAX_ASPECT = 16;
// The relay's request body limit (server/config.py max_body_bytes).
export const MAX_IMAGE_BYTES = 20 * 1024 * 1024;

/** "JPEG", "PNG", "GIF", "WEBP" or "BMP" from the file's first bytes; null for anything else. */
export function sniffFormat(bytes) {
  const starts = (...values) => values.every((value, i) => bytes[i] === value);
  const ascii = (offset, text) => [...text].every((char, i) => bytes[offset + i] === char.charCodeAt(0));
  if (starts(0xff, 0xd8, 0xff)) return "JPEG";
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "PNG";
  if (ascii(0, "GIF87a") || ascii(0, "GIF89a")) return "GIF";
  if (ascii(0, "RIFF") && ascii(8, "WEBP")) return "WEBP";
  if (ascii(0, "BM")) return "BMP";
  return null;
}

/** Why an image of this size and format gets no verdict: {kind: "too-large"|"too-small", message}, or null. */
export function sizeProblem(width, height, format) {
  const limit = FORMAT_MAX_PIXELS[format] ?? DEFAULT_MAX_PIXELS;
  if (width * height > limit) {
    return { kind: "too-large", message: `image too large: ${width}x${height} pixels (limit for ${format}: ${limit / 1e6} megapixels)` };
  }
  if (Math.min(width, height) < MIN_SIDE || Math.max(width, height) > MAX_ASPECT * Math.min(width, height)) {
    return {
      kind: "too-small",
      message: `too small to judge: ${width}x${height} pixels (needs at least ${MIN_SIDE} px on the short side and at most ${MAX_ASPECT}:1)`,
    };
  }
  return null;
}
