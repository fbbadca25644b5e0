/**
 * Provenance metadata read from an image file's own bytes: the JavaScript twin of edge_runtime/provenance.py
 * (same kinds, same detail strings), for images checked by the in-browser engine. The container is walked by
 * hand with the same caps (bytes, segments walked, metadata blocks judged, text scanned), and every rule runs in
 * linear time on that capped text, so hostile metadata (lying lengths, zlib bombs, endless chunks, thousands of
 * EXIF blocks, text built to make a regex backtrack) costs milliseconds and never throws.
 *
 * Evidence items are {kind, detail}: "generator" (the metadata names an AI generator), "ai-declared" (IPTC
 * DigitalSourceType says AI), "c2pa" (the file claims content credentials; no signature is checked) or "software"
 * (an editor or camera). Only the first two are evidence of AI; no metadata proves nothing.
 */

export const AI_KINDS = ["generator", "ai-declared"];
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const MAX_SEGMENTS = 4096;
const MAX_BLOCKS = 32; // metadata blocks judged per file; the rest are skipped
const MAX_TEXT_BYTES = 64 * 1024;
const MAX_C2PA_BYTES = 1024 * 1024;
const MAX_CHUNK_BYTES = 1024 * 1024;
const MAX_ITEMS = 16;
const DETAIL_CHARS = 160;

const GENERATOR_NAMES = new RegExp(
  "\\b(novelai|stable[ -]?diffusion|sdxl|automatic1111|stable-diffusion-webui|comfyui|invokeai|fooocus|" +
    "swarmui|sd\\.next|draw things|diffusionbee|midjourney|nijijourney|niji ?journey|dall[-·]?e|" +
    "openai|chatgpt|gpt-4o|firefly|imagen|ideogram|leonardo\\.ai|flux\\.1|bing image creator|" +
    "dreamstudio|nightcafe|tensor\\.art|civitai|pixai|holara|animagine)\\b",
);
const MODEL_CHARS = 80;
const DIGITAL_SOURCE_TYPE = /digitalsourcetype\/(compositeWithTrainedAlgorithmicMedia|trainedAlgorithmicMedia)\b/;
const DIGITAL_SOURCE_TYPES = {
  compositeWithTrainedAlgorithmicMedia: "compositeWithTrainedAlgorithmicMedia (contains output of a generative model)",
  trainedAlgorithmicMedia: "trainedAlgorithmicMedia (made by a generative model)",
};
const XMP_CREATOR_TOOL = /CreatorTool(?:="([^"<]{1,200})"|>([^<]{1,200})<)/;
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

/** Evidence items {kind, detail} from image bytes (Uint8Array); never throws. */
export async function inspect(bytes) {
  const data = bytes.subarray(0, MAX_FILE_BYTES);
  const items = [];
  try {
    if (startsWith(data, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) await png(data, items);
    else if (data[0] === 0xff && data[1] === 0xd8) jpeg(data, items);
    else if (latin1.decode(data.subarray(0, 4)) === "RIFF" && latin1.decode(data.subarray(8, 12)) === "WEBP") webp(data, items);
  } catch {
    // malformed beyond what the walkers check: keep what was found before it
  }
  const unique = new Map();
  for (const item of items) {
    const key = `${item.kind}\n${item.detail}`;
    if (!unique.has(key)) unique.set(key, item);
  }
  return [...unique.values()].slice(0, MAX_ITEMS);
}

/** Whether any item says the picture came from an AI generator. */
export function namesGenerator(evidence) {
  return (evidence ?? []).some((item) => AI_KINDS.includes(item.kind));
}

function startsWith(data, prefix) {
  return prefix.every((byte, i) => data[i] === byte);
}

function view(data) {
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}

function chunk(data, start, length) {
  return data.subarray(start, start + Math.min(length, MAX_CHUNK_BYTES));
}

async function png(data, items) {
  let position = 8;
  let blocks = 0;
  for (let i = 0; i < MAX_SEGMENTS && position + 8 <= data.length; i++) {
    const length = view(data).getUint32(position);
    const kind = latin1.decode(data.subarray(position + 4, position + 8));
    const metadata = ["tEXt", "zTXt", "iTXt", "eXIf", "caBX"].includes(kind);
    if (metadata && ++blocks > MAX_BLOCKS) return;
    const body = metadata ? chunk(data, position + 8, length) : null;
    position += 12 + length;
    if (kind === "tEXt") {
      const [key, value] = split(body);
      text(name(key), latin1.decode(value.subarray(0, MAX_TEXT_BYTES)), items);
    } else if (kind === "zTXt") {
      const [key, rest] = split(body);
      text(name(key), latin1.decode(await inflate(rest.subarray(1))), items);
    } else if (kind === "iTXt") {
      const [key, rest] = split(body);
      const compressed = rest[0] === 1;
      const [, afterLanguage] = split(rest.subarray(2));
      const [, value] = split(afterLanguage);
      const decoded = utf8.decode(compressed ? await inflate(value) : value.subarray(0, MAX_TEXT_BYTES));
      if (name(key) === "XML:com.adobe.xmp") xmp(decoded, items);
      else text(name(key), decoded, items);
    } else if (kind === "eXIf") {
      exif(body, items);
    } else if (kind === "caBX") {
      c2pa(body, "PNG caBX chunk", items);
    } else if (kind === "IEND") {
      return;
    }
  }
}

function split(bytes) {
  const zero = bytes.indexOf(0);
  return zero < 0 ? [bytes, bytes.subarray(bytes.length)] : [bytes.subarray(0, zero), bytes.subarray(zero + 1)];
}

function name(raw) {
  return latin1.decode(raw.subarray(0, 79));
}

/** zlib-inflate at most MAX_TEXT_BYTES (a zlib bomb stops there); empty if the stream is corrupt. */
async function inflate(compressed) {
  const parts = [];
  let size = 0;
  const reader = new Blob([compressed]).stream().pipeThrough(new DecompressionStream("deflate")).getReader();
  try {
    while (size < MAX_TEXT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.length;
    }
  } catch {
    // corrupt or truncated stream: keep what inflated
  } finally {
    reader.cancel().catch(() => {});
  }
  const out = new Uint8Array(Math.min(size, MAX_TEXT_BYTES));
  let offset = 0;
  for (const part of parts) {
    const piece = part.subarray(0, out.length - offset);
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

function jpeg(data, items) {
  let position = 2;
  let blocks = 0;
  let c2paBytes = 0;
  const c2paParts = [];
  for (let i = 0; i < MAX_SEGMENTS && position + 4 <= data.length && data[position] === 0xff; i++) {
    const marker = data[position + 1];
    if (marker === 0xff) {
      position += 1;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda || (marker >= 0xd0 && marker <= 0xd8) || marker === 0x01) break;
    const length = view(data).getUint16(position + 2);
    if (length < 2) break;
    const payload = data.subarray(position + 4, position + 2 + length);
    position += 2 + length;
    const head = latin1.decode(payload.subarray(0, 29));
    if (marker === 0xeb && head.startsWith("JP")) {
      if (c2paBytes < MAX_C2PA_BYTES) c2paParts.push(payload);
      c2paBytes += payload.length;
      continue;
    }
    const isExif = marker === 0xe1 && head.startsWith("Exif\0\0");
    const isXmp = marker === 0xe1 && head === "http://ns.adobe.com/xap/1.0/\0";
    if ((isExif || isXmp) && ++blocks > MAX_BLOCKS) break;
    if (isExif) exif(payload, items);
    else if (isXmp) xmp(utf8.decode(payload.subarray(29, 29 + MAX_TEXT_BYTES)), items);
  }
  if (c2paParts.length > 0) {
    const store = new Uint8Array(c2paParts.reduce((n, part) => n + part.length, 0));
    let offset = 0;
    for (const part of c2paParts) {
      store.set(part, offset);
      offset += part.length;
    }
    c2pa(store, "JPEG APP11 JUMBF", items);
  }
}

function webp(data, items) {
  let position = 12;
  let blocks = 0;
  for (let i = 0; i < MAX_SEGMENTS && position + 8 <= data.length; i++) {
    const kind = latin1.decode(data.subarray(position, position + 4));
    const length = view(data).getUint32(position + 4, true);
    if (["EXIF", "XMP ", "C2PA"].includes(kind) && ++blocks > MAX_BLOCKS) return;
    const body = chunk(data, position + 8, length);
    position += 8 + length + (length & 1);
    if (kind === "EXIF") exif(body, items);
    else if (kind === "XMP ") xmp(utf8.decode(body.subarray(0, MAX_TEXT_BYTES)), items);
    else if (kind === "C2PA") c2pa(body, "WebP C2PA chunk", items);
  }
}

function text(key, value, items) {
  if (!clean(value)) return;
  const where = `PNG text '${key}'`;
  const lowered = key.toLowerCase();
  if (lowered === "parameters") {
    const tool = value.includes("sui_image_params") ? "SwarmUI" : "A1111/Forge-style";
    items.push(item("generator", `${where} (${tool} generation parameters): ${summary(value)}`));
  } else if ((lowered === "prompt" || lowered === "workflow") && (value.includes('"class_type"') || value.includes('"nodes"'))) {
    items.push(item("generator", `${where} (ComfyUI ${lowered} graph)`));
  } else if (["invokeai_metadata", "invokeai_graph", "sd-metadata", "dream"].includes(lowered)) {
    items.push(item("generator", `${where} (InvokeAI generation metadata): ${summary(value)}`));
  } else if (lowered === "comment" && novelAiSettings(value)) {
    items.push(item("generator", `${where} (NovelAI-style generation settings): ${summary(value)}`));
  } else if (["software", "source", "generator", "creator", "author", "title"].includes(lowered)) {
    software(where, value, items, lowered === "software");
  }
}

function novelAiSettings(value) {
  try {
    const settings = JSON.parse(value);
    return settings !== null && typeof settings === "object" && !Array.isArray(settings) && "steps" in settings && ("sampler" in settings || "uc" in settings);
  } catch {
    return false;
  }
}

function software(where, value, items, reportOther) {
  const cleaned = clean(value);
  if (!cleaned) return;
  if (GENERATOR_NAMES.test(cleaned.toLowerCase().replaceAll("_", " "))) items.push(item("generator", `${where}: ${cleaned}`));
  else if (reportOther) items.push(item("software", `${where}: ${cleaned}`));
}

function summary(value) {
  const head = value.slice(0, MAX_TEXT_BYTES);
  const model = modelName(head);
  const settings = head.indexOf("Steps: ");
  if (settings >= 0) return clean(model ? `model ${model}; ${head.slice(settings)}` : head.slice(settings));
  return clean(head);
}

function exif(raw, items) {
  const tiff = latin1.decode(raw.subarray(0, 6)) === "Exif\0\0" ? raw.subarray(6) : raw;
  const order = latin1.decode(tiff.subarray(0, 4));
  if (order !== "II*\0" && order !== "MM\0*") return;
  const little = order.startsWith("II");
  const ifd0 = ifd(tiff, little, view(tiff).getUint32(4, little));
  if (ifd0.has(0x0131)) software("EXIF Software", ascii(ifd0.get(0x0131)), items, true);
  if (ifd0.has(0x010e)) parametersOrName("EXIF ImageDescription", ascii(ifd0.get(0x010e)), items);
  if (ifd0.has(0x8769) && ifd0.get(0x8769).length >= 4) {
    const exifIfd = ifd(tiff, little, view(ifd0.get(0x8769)).getUint32(0, little));
    if (exifIfd.has(0x9286)) parametersOrName("EXIF UserComment", userComment(exifIfd.get(0x9286), little), items);
  }
}

function ifd(tiff, little, offset) {
  const sizes = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8 };
  const entries = new Map();
  if (offset + 2 > tiff.length) return entries;
  const count = Math.min(view(tiff).getUint16(offset, little), 256);
  for (let index = 0; index < count; index++) {
    const entry = offset + 2 + 12 * index;
    if (entry + 12 > tiff.length) break;
    const tag = view(tiff).getUint16(entry, little);
    const size = (sizes[view(tiff).getUint16(entry + 2, little)] ?? 1) * view(tiff).getUint32(entry + 4, little);
    if (size <= 4) {
      entries.set(tag, tiff.subarray(entry + 8, entry + 8 + size));
    } else {
      const start = view(tiff).getUint32(entry + 8, little);
      entries.set(tag, tiff.subarray(start, start + Math.min(size, MAX_TEXT_BYTES)));
    }
  }
  return entries;
}

function ascii(raw) {
  return utf8.decode(split(raw)[0]);
}

function userComment(raw, little) {
  const code = latin1.decode(raw.subarray(0, 8));
  const body = raw.subarray(8);
  if (code.startsWith("UNICODE")) {
    let encoding = little ? "utf-16le" : "utf-16be";
    if ((body[0] === 0xff && body[1] === 0xfe) || (body[0] === 0xfe && body[1] === 0xff)) encoding = body[0] === 0xff ? "utf-16le" : "utf-16be";
    return trimNuls(new TextDecoder(encoding).decode(body));
  }
  return trimNuls(utf8.decode(body));
}

// The text without its trailing NULs (a loop: the regex /\0+$/ is quadratic on a long run of NULs).
function trimNuls(value) {
  let end = value.length;
  while (end > 0 && value.charCodeAt(end - 1) === 0) end--;
  return value.slice(0, end);
}

function parametersOrName(where, value, items) {
  if (hasGenerationParameters(value.slice(0, MAX_TEXT_BYTES))) {
    items.push(item("generator", `${where} (A1111/Forge-style generation parameters): ${summary(value)}`));
  } else {
    software(where, value, items, false);
  }
}

// A1111/Forge settings: "Steps: <digits>", then "Sampler: " somewhere after. Linear: the first "Steps: <digit>"
// leaves the most room after it, so one search for each marker decides (Steps: \d+.*Sampler: is quadratic).
function hasGenerationParameters(value) {
  let steps = findWord(value, "Steps: ");
  while (steps >= 0 && !/[0-9]/.test(value.charAt(steps + 7))) steps = findWord(value, "Steps: ", steps + 1);
  return steps >= 0 && findWord(value, "Sampler: ", steps + 8) >= 0;
}

// Index of the first marker at or after start that starts a word (no ASCII letter, digit or _ before it, like
// the regex \b), or -1. Linear: each search goes on from the last hit.
function findWord(value, marker, start = 0) {
  let at = value.indexOf(marker, start);
  while (at > 0 && /\w/.test(value[at - 1])) at = value.indexOf(marker, at + 1);
  return at;
}

// The first non-empty A1111 "Model: <name>" (up to a comma or line end, at most MODEL_CHARS), or "".
function modelName(value) {
  for (let at = findWord(value, "Model: "); at >= 0; at = findWord(value, "Model: ", at + 1)) {
    const name = value.slice(at + 7, at + 7 + MODEL_CHARS).split(",")[0].split("\n")[0];
    if (name) return name;
  }
  return "";
}

function xmp(packet, items) {
  const sourceType = DIGITAL_SOURCE_TYPE.exec(packet);
  if (sourceType) items.push(item("ai-declared", `XMP Iptc4xmpExt:DigitalSourceType: ${DIGITAL_SOURCE_TYPES[sourceType[1]]}`));
  const tool = XMP_CREATOR_TOOL.exec(packet);
  if (tool) software("XMP CreatorTool", tool[1] ?? tool[2], items, true);
}

function c2pa(raw, where, items) {
  const store = latin1.decode(raw.subarray(0, MAX_C2PA_BYTES));
  if (!store.includes("c2pa")) return;
  const generator = claimGenerator(raw.subarray(0, MAX_C2PA_BYTES), store);
  items.push(item("c2pa", `C2PA manifest, not verified (${where})${generator ? `, claim generator: ${generator}` : ""}`));
  if (generator) software("C2PA claim generator", generator, items, false);
  const sourceType = DIGITAL_SOURCE_TYPE.exec(store);
  if (sourceType) items.push(item("ai-declared", `C2PA action digitalSourceType: ${DIGITAL_SOURCE_TYPES[sourceType[1]]}`));
}

// The claim's claim_generator text (C2PA 1.x) or claim_generator_info name (2.x), read from CBOR.
function claimGenerator(raw, store) {
  for (const [key, then] of [["\x6fclaim_generator", ""], ["\x74claim_generator_info", "\x64name"]]) {
    let start = store.indexOf(key);
    if (start < 0) continue;
    start += key.length;
    if (then) {
      const found = store.indexOf(then, start);
      if (found < 0 || found > start + 64) continue;
      start = found + then.length;
    }
    const value = cborText(raw, start);
    if (value) return value;
  }
  return "";
}

function cborText(data, position) {
  if (position >= data.length || data[position] >> 5 !== 3) return "";
  const info = data[position] & 0x1f;
  let length;
  let start;
  if (info < 24) [length, start] = [info, position + 1];
  else if (info === 24) [length, start] = [data[position + 1], position + 2];
  else if (info === 25) [length, start] = [(data[position + 1] << 8) | data[position + 2], position + 3];
  else return "";
  return clean(utf8.decode(data.subarray(start, start + length)));
}

// One printable line of at most DETAIL_CHARS characters (as Python's str.isprintable + split/join).
function clean(value) {
  const printable = Array.from(value.slice(0, 4 * DETAIL_CHARS), (c) => (/[\p{C}\p{Z}]/u.test(c) && c !== " " ? " " : c)).join("");
  const text = printable.split(/\s+/).filter(Boolean).join(" ");
  return [...text].length <= DETAIL_CHARS ? text : [...text].slice(0, DETAIL_CHARS - 1).join("") + "…";
}

function item(kind, detail) {
  return { kind, detail };
}
