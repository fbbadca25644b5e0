#!/usr/bin/env node
/**
 * Put the in-browser engine's files into the loadable extension (src/vendor/, generated, not committed):
 * the LiteRT.js runtime from node_modules/@litertjs (installed by `npm ci` from the committed lockfile, which
 * checks every file's integrity) and the bundled models the extension offers (the default and `paper`) with their
 * sidecars from edge_runtime/models/.
 * Only the two WASM builds the loader can pick without threads or JSPI are copied (relaxed SIMD, else compat).
 * The one change to a copied file: core's bare import of "@litertjs/wasm-utils" becomes a relative path (no
 * bundler, no import map). Usage:
 *   node extension/bundle_runtime.mjs           write src/vendor/
 *   node extension/bundle_runtime.mjs --check   fail unless src/vendor/ is exactly what this script writes
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const EXTENSION = dirname(fileURLToPath(import.meta.url));
const MODELS = resolve(EXTENSION, "..", "edge_runtime", "models");
const PACKAGES = join(EXTENSION, "node_modules", "@litertjs");
export const VENDOR = join(EXTENSION, "src", "vendor");
const WASM_BUILDS = ["litert_wasm_internal", "litert_wasm_compat_internal"];
const BARE_IMPORT = 'from "@litertjs/wasm-utils";';
const MODEL_FILES = ["model", "model-paper"]; // the settings' models "default" and "paper" (lib/settings.js MODELS)

/** The pinned version of an npm package from package.json, checked against the installed one. */
function installedPinned(name) {
  const pinned = JSON.parse(readFileSync(join(EXTENSION, "package.json"), "utf8")).devDependencies[name];
  const installed = JSON.parse(readFileSync(join(EXTENSION, "node_modules", name, "package.json"), "utf8")).version;
  if (installed !== pinned) throw new Error(`${name} ${installed} is installed but ${pinned} is pinned: run npm ci`);
  return installed;
}

function rewriteCoreImport(text) {
  if (text.split(BARE_IMPORT).length !== 2) throw new Error(`expected exactly one ${BARE_IMPORT} in @litertjs/core`);
  return text.replace(BARE_IMPORT, 'from "./wasm-utils.js";');
}

/** Every vendored file as {path relative to src/vendor: bytes}, plus BUNDLE.json describing them. */
export function vendorFiles() {
  const files = {
    "litert/core.js": Buffer.from(rewriteCoreImport(readFileSync(join(PACKAGES, "core", "dist", "index.js"), "utf8"))),
    "litert/wasm-utils.js": readFileSync(join(PACKAGES, "wasm-utils", "dist", "index.js")),
  };
  for (const stem of MODEL_FILES) {
    for (const ext of ["tflite", "json"]) files[`model/${stem}.${ext}`] = readFileSync(join(MODELS, `${stem}.${ext}`));
  }
  for (const build of WASM_BUILDS) {
    for (const ext of ["js", "wasm"]) files[`litert/${build}.${ext}`] = readFileSync(join(PACKAGES, "core", "wasm", `${build}.${ext}`));
  }
  const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
  const bundle = {
    generatedBy: "extension/bundle_runtime.mjs",
    litertjsCore: installedPinned("@litertjs/core"),
    files: Object.fromEntries(Object.keys(files).sort().map((path) => [path, sha256(files[path])])),
  };
  files["BUNDLE.json"] = Buffer.from(`${JSON.stringify(bundle, null, 2)}\n`);
  return files;
}

function listFiles(dir, prefix = "") {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}

/** Differences between src/vendor/ and what vendorFiles() would write; [] when it is current. */
export function staleFiles() {
  const expected = vendorFiles();
  const present = listFiles(VENDOR);
  const stale = Object.keys(expected).filter((path) => {
    try {
      return !readFileSync(join(VENDOR, path)).equals(expected[path]);
    } catch {
      return true;
    }
  });
  return [...stale, ...present.filter((path) => !(path in expected))];
}

export function writeVendor() {
  rmSync(VENDOR, { recursive: true, force: true });
  for (const [path, bytes] of Object.entries(vendorFiles())) {
    mkdirSync(dirname(join(VENDOR, path)), { recursive: true });
    writeFileSync(join(VENDOR, path), bytes);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--check")) {
    const stale = staleFiles();
    if (stale.length > 0) {
      console.error(`src/vendor is not current (run: cd extension && npm ci && npm run bundle): ${stale.join(", ")}`);
      process.exit(1);
    }
    console.log("src/vendor is current");
  } else {
    writeVendor();
    console.log(`wrote ${VENDOR}`);
  }
}
