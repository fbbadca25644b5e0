import assert from "node:assert/strict";
import { test } from "node:test";

import { decodeDataUrl, sha256Hex } from "../src/lib/bytes.js";
import { datasetBytes, datasetRows } from "./helpers.js";

test("sha256Hex of a dataset image equals the manifest's sha256", async () => {
  for (const row of datasetRows(1)) assert.equal(await sha256Hex(datasetBytes(row)), row.sha256);
});

test("a base64 data: URL of an image decodes to the same bytes", () => {
  const [row] = datasetRows(1);
  const bytes = datasetBytes(row);
  const url = `data:image/${row.format};base64,${Buffer.from(bytes).toString("base64")}`;
  const decoded = decodeDataUrl(url);
  assert.equal(decoded.type, `image/${row.format}`);
  assert.deepEqual(decoded.bytes, bytes);
});

test("percent-encoded data: URLs keep raw bytes and UTF-8 text", () => {
  const decoded = decodeDataUrl("data:image/svg+xml,%3Csvg%3E%FF%00é");
  assert.equal(decoded.type, "image/svg+xml");
  assert.deepEqual([...decoded.bytes], [0x3c, 0x73, 0x76, 0x67, 0x3e, 0xff, 0x00, 0xc3, 0xa9]);
  assert.equal(decodeDataUrl("data:,x").type, "text/plain");
});

test("malformed data: URLs give null", () => {
  assert.equal(decodeDataUrl("https://example.com/a.png"), null);
  assert.equal(decodeDataUrl("data:image/png;base64"), null);
  assert.equal(decodeDataUrl("data:image/png;base64,@@@"), null);
});
