import assert from "node:assert/strict";
import { test } from "node:test";

import { inspect, namesGenerator } from "../src/lib/provenance.js";

// Containers built by hand: the walkers read chunk headers, not pixels, so no image data is needed.
const ascii = (text) => new TextEncoder().encode(text);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function u32(value, little = false) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, little);
  return out;
}

function png(...chunks) {
  const body = chunks.map(([kind, data]) => concat(u32(data.length), ascii(kind), data, u32(0)));
  return concat(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...body, u32(0), ascii("IEND"), u32(0));
}

// A little-endian TIFF with one IFD0 entry (ASCII `tag`) pointing at `text`.
function tiff(tag, text) {
  const value = concat(ascii(text), new Uint8Array(1));
  const entry = new Uint8Array(12);
  const view = new DataView(entry.buffer);
  view.setUint16(0, tag, true);
  view.setUint16(2, 2, true);
  view.setUint32(4, value.length, true);
  view.setUint32(8, 26, true);
  return concat(ascii("II*\0"), u32(8, true), new Uint8Array([1, 0]), entry, u32(0), value);
}

// A little-endian TIFF whose Exif IFD holds a UserComment of `comment` (raw bytes).
function userCommentTiff(comment) {
  const head = concat(ascii("II*\0"), u32(8, true), new Uint8Array([1, 0]));
  const pointer = new Uint8Array(12);
  new DataView(pointer.buffer).setUint16(0, 0x8769, true);
  new DataView(pointer.buffer).setUint16(2, 4, true);
  new DataView(pointer.buffer).setUint32(4, 1, true);
  new DataView(pointer.buffer).setUint32(8, 26, true);
  const entry = new Uint8Array(12);
  new DataView(entry.buffer).setUint16(0, 0x9286, true);
  new DataView(entry.buffer).setUint16(2, 7, true);
  new DataView(entry.buffer).setUint32(4, comment.length, true);
  new DataView(entry.buffer).setUint32(8, 26 + 18, true);
  return concat(head, pointer, u32(0), new Uint8Array([1, 0]), entry, u32(0), comment);
}

function jpegApp1(payload) {
  const length = new Uint8Array([(payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  return concat(new Uint8Array([0xff, 0xd8, 0xff, 0xe1]), length, payload, new Uint8Array([0xff, 0xd9]));
}

const stepsBomb = tiff(0x010e, "Steps: " + "1".repeat(65000)); // issue 21's reproduction, no "Sampler:"
const worst = {
  "steps bomb in eXIf": png(["eXIf", stepsBomb]),
  "Steps: repeated": png(["eXIf", tiff(0x010e, "Steps: 1 ".repeat(7000))]),
  "parameters text": png(["tEXt", ascii("parameters\0Steps: " + "1".repeat(65000))]),
  "UserComment of NULs": jpegApp1(concat(ascii("Exif\0\0"), userCommentTiff(concat(ascii("ASCII\0\0\0"), new Uint8Array(60000), ascii("x"))))),
  "300 steps bombs": png(...Array.from({ length: 300 }, () => ["eXIf", stepsBomb])),
  "4000 Software chunks": png(...Array.from({ length: 4000 }, (_, i) => ["tEXt", ascii(`Software\0NovelAI ${i}`)])),
};

async function timed(data) {
  const start = performance.now();
  await inspect(data);
  return performance.now() - start;
}

test("every metadata rule runs in linear time, with capped block counts (issue 21)", async () => {
  // A time budget is the point of this test: the quadratic rule took 5.9 s per 64 KiB value, the linear one ~1 ms.
  for (const [name, data] of Object.entries(worst)) {
    let best = await timed(data);
    for (let retry = 0; retry < 2 && best >= 50; retry++) best = Math.min(best, await timed(data)); // a busy machine
    assert.ok(best < 50, `${name}: ${best.toFixed(0)} ms`);
  }
  assert.deepEqual(await inspect(worst["steps bomb in eXIf"]), []);
});

test("the linear rule still finds A1111 parameters, and a generator within the block cap", async () => {
  const a1111 = "1girl\nSteps: 28, Sampler: Euler a, CFG scale: 7, Model: animefull-final";
  const found = await inspect(png(["eXIf", tiff(0x010e, a1111)]));
  assert.equal(found[0].detail, "EXIF ImageDescription (A1111/Forge-style generation parameters): model animefull-final; Steps: 28, Sampler: Euler a, CFG scale: 7, Model: animefull-final");
  for (const text of ["Sampler: Euler, Steps: 20", "Steps: 20Sampler: Euler", "Steps: x, Sampler: Euler"]) {
    assert.deepEqual(await inspect(png(["eXIf", tiff(0x010e, text)])), [], text);
  }
  const filler = Array.from({ length: 31 }, (_, i) => ["tEXt", ascii(`Title\0page ${i}`)]);
  const novelai = ["tEXt", ascii("Software\0NovelAI")];
  assert.ok(namesGenerator(await inspect(png(...filler, novelai))));
  assert.deepEqual(await inspect(png(...filler, ["tEXt", ascii("Title\0one more")], novelai)), [], "blocks past the cap are skipped");
});
