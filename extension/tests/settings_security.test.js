import assert from "node:assert/strict";
import { test } from "node:test";

import { validateSettings } from "../src/lib/settings.js";

test("the relay URL is https, or plain http only on this computer", () => {
  for (const relayUrl of ["http://127.0.0.1:8765", "http://127.8.9.10:8765", "http://localhost:8765", "http://[::1]:8765",
    "https://relay.example", "https://192.168.1.5:8443"]) {
    assert.deepEqual(validateSettings({ relayUrl }).errors, {}, relayUrl);
  }
  for (const relayUrl of ["http://192.168.1.5:8765", "http://relay.example", "http://localhost.evil.example:8765"]) {
    assert.match(validateSettings({ relayUrl }).errors.relayUrl, /must be https/, relayUrl);
  }
});
