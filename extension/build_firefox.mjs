#!/usr/bin/env node
/**
 * Write the Firefox (140+: ESR 140 and newer) variant of the extension: the same files as src/, with a manifest whose background is
 * an event page (`background.scripts`) instead of a service worker, and a Gecko id. Usage:
 *   node extension/build_firefox.mjs [output directory, default build/firefox at the repository root]
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const GECKO_ID = "animeart-detector@example.org";
// The oldest Firefox the end-to-end tests run on (ESR 140), which also reads every manifest key used here
// (optional_host_permissions from 128, data_collection_permissions from 140; on Android from 142).
export const FIREFOX_MIN_VERSION = "140.0";
export const FIREFOX_ANDROID_MIN_VERSION = "142.0";

/** The Firefox manifest for a Chromium manifest object. */
export function firefoxManifest(chromium) {
  const { minimum_chrome_version: _unused, background, ...rest } = chromium;
  return {
    ...rest,
    background: { scripts: [background.service_worker], type: background.type },
    // The background page has a DOM and hosts the in-browser engine itself: no offscreen document.
    permissions: (rest.permissions ?? []).filter((permission) => permission !== "offscreen"),
    browser_specific_settings: {
      gecko: {
        id: GECKO_ID,
        strict_min_version: FIREFOX_MIN_VERSION,
        // Images go only to the relay the user runs and configures (loopback by default); nothing to the developer.
        data_collection_permissions: { required: ["none"] },
      },
      gecko_android: { strict_min_version: FIREFOX_ANDROID_MIN_VERSION },
    },
  };
}

/** Copy src/ to outDir with the Firefox manifest; returns outDir. */
export function buildFirefox(outDir) {
  const src = join(dirname(fileURLToPath(import.meta.url)), "src");
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  cpSync(src, outDir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(src, "manifest.json"), "utf8"));
  writeFileSync(join(outDir, "manifest.json"), `${JSON.stringify(firefoxManifest(manifest), null, 2)}\n`);
  return outDir;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const outDir = resolve(process.argv[2] ?? join(repoRoot, "build", "firefox"));
  console.log(`Firefox build written to ${buildFirefox(outDir)}`);
}
