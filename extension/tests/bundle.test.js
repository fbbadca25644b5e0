import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { VENDOR, staleFiles } from "../bundle_runtime.mjs";

test("src/vendor holds exactly what bundle_runtime.mjs writes from the lockfile's LiteRT.js and the bundled models (default and paper)", () => {
  assert.deepEqual(staleFiles(), [], "run: cd extension && npm ci && npm run bundle");
  const bundle = JSON.parse(readFileSync(join(VENDOR, "BUNDLE.json"), "utf8"));
  const lock = JSON.parse(readFileSync(new URL("../package-lock.json", import.meta.url), "utf8"));
  assert.equal(bundle.litertjsCore, lock.packages["node_modules/@litertjs/core"].version);
  for (const stem of ["model", "model-paper"]) {
    const model = JSON.parse(readFileSync(join(VENDOR, "model", `${stem}.json`), "utf8"));
    assert.equal(bundle.files[`model/${stem}.tflite`], model.tflite_sha256, `${stem}: the model is the one its sidecar describes`);
  }
});
