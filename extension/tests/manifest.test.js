import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { buildFirefox, FIREFOX_ANDROID_MIN_VERSION, FIREFOX_MIN_VERSION } from "../build_firefox.mjs";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));
const manifest = JSON.parse(readFileSync(join(SRC, "manifest.json"), "utf8"));

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

test("every file the Chromium manifest names exists", () => {
  const named = [
    manifest.background.service_worker,
    manifest.action.default_popup,
    manifest.options_ui.page,
    ...Object.values(manifest.icons),
    ...Object.values(manifest.action.default_icon),
  ];
  for (const path of named) assert.ok(existsSync(join(SRC, path)), `${path} is missing`);
});

test("permissions are the minimal set: no site access at install beyond the loopback relay", () => {
  assert.equal(manifest.manifest_version, 3);
  assert.deepEqual([...manifest.permissions].sort(), ["activeTab", "contextMenus", "offscreen", "scripting", "storage"]);
  assert.deepEqual(manifest.host_permissions, ["http://127.0.0.1/*", "http://localhost/*"]);
  assert.deepEqual(manifest.optional_host_permissions, ["http://*/*", "https://*/*"]);
  assert.equal(manifest.content_scripts, undefined, "content scripts are injected on demand or registered per allowed site");
  // The default MV3 policy plus WebAssembly compilation for the in-browser engine; nothing else.
  assert.deepEqual(manifest.content_security_policy, { extension_pages: "script-src 'self' 'wasm-unsafe-eval'; object-src 'self'" });
  assert.equal(manifest.web_accessible_resources, undefined);
});

test("no remote code: only local scripts and modules, no eval", () => {
  for (const file of filesUnder(SRC)) {
    const text = readFileSync(file, "utf8").toString();
    const name = relative(SRC, file);
    if (file.endsWith(".html")) {
      for (const [, src] of text.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)) {
        assert.ok(existsSync(resolve(dirname(file), src)), `${name}: ${src} is not a local file`);
      }
      assert.doesNotMatch(text, /<script(?![^>]*\ssrc=)[^>]*>/, `${name} has an inline script`);
    }
    if (file.endsWith(".js")) {
      assert.doesNotMatch(text, /\beval\(|new Function\(|import\(/, `${name} evaluates or imports code at run time`);
      for (const [, path] of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)) {
        assert.ok(path.startsWith("."), `${name} imports ${path}`);
        assert.ok(existsSync(resolve(dirname(file), path)), `${name} imports missing ${path}`);
      }
    }
  }
});

test("the content script is a classic script, as scripting.executeScript injects it", () => {
  const text = readFileSync(join(SRC, "content", "content.js"), "utf8");
  assert.doesNotMatch(text, /^\s*(import|export)\s/m);
});

test("the Firefox build has an event page, a Gecko id and Firefox ESR 140 as its floor, and the same files", () => {
  const out = mkdtempSync(join(tmpdir(), "firefox-build-"));
  try {
    buildFirefox(out);
    const firefox = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.deepEqual(firefox.background, { scripts: ["background.js"], type: "module" });
    assert.equal(firefox.browser_specific_settings.gecko.strict_min_version, FIREFOX_MIN_VERSION);
    assert.equal(FIREFOX_MIN_VERSION, "140.0");
    assert.equal(firefox.browser_specific_settings.gecko_android.strict_min_version, FIREFOX_ANDROID_MIN_VERSION);
    assert.match(firefox.browser_specific_settings.gecko.id, /@/);
    assert.equal(firefox.minimum_chrome_version, undefined);
    assert.deepEqual(firefox.permissions, manifest.permissions.filter((permission) => permission !== "offscreen"));
    assert.deepEqual(firefox.optional_host_permissions, manifest.optional_host_permissions);
    assert.equal(firefox.optional_permissions, manifest.optional_permissions);
    const names = (dir) => filesUnder(dir).map((file) => relative(dir, file)).sort();
    assert.deepEqual(names(out), names(SRC));
    assert.equal(readFileSync(join(out, "content", "content.js"), "utf8"), readFileSync(join(SRC, "content", "content.js"), "utf8"));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
