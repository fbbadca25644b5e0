import assert from "node:assert/strict";
import { test } from "node:test";

import { addReport, clearReports, exportReports, loadReports, validateReport } from "../src/lib/reports.js";
import { MemoryStorage } from "./helpers.js";

const report = (overrides = {}) => ({
  sha256: "a".repeat(64),
  userLabel: "human",
  modelLabel: "ai",
  probability: 0.91,
  modelVersion: "m1",
  ...overrides,
});

test("a report keeps the hash, the user's label and what the model said, with the time", async () => {
  const storage = new MemoryStorage();
  const record = await addReport(storage, report(), new Date("2025-01-02T03:04:05Z"));
  assert.deepEqual(record, { ...report(), reportedAt: "2025-01-02T03:04:05.000Z" });
  assert.deepEqual(await loadReports(storage), [record]);
});

test("a second report on the same image replaces the first", async () => {
  const storage = new MemoryStorage();
  await addReport(storage, report());
  await addReport(storage, report({ sha256: "b".repeat(64) }));
  await addReport(storage, report({ userLabel: "ai" }));
  const reports = await loadReports(storage);
  assert.equal(reports.length, 2);
  assert.equal(reports.find((r) => r.sha256 === "a".repeat(64)).userLabel, "ai");
  await clearReports(storage);
  assert.deepEqual(await loadReports(storage), []);
});

test("malformed reports are refused", () => {
  assert.throws(() => validateReport(report({ sha256: "xyz" })), /sha256/);
  assert.throws(() => validateReport(report({ userLabel: "unsure" })), /userLabel/);
  assert.throws(() => validateReport(report({ probability: 2 })), /probability/);
  assert.throws(() => validateReport(report({ probability: "0.5" })), /probability/);
});

test("the export is a self-describing JSON document", async () => {
  const storage = new MemoryStorage();
  await addReport(storage, report());
  const exported = JSON.parse(exportReports(await loadReports(storage), new Date("2025-06-01T00:00:00Z")));
  assert.equal(exported.format, "animeart-detector-reports");
  assert.equal(exported.version, 1);
  assert.equal(exported.exportedAt, "2025-06-01T00:00:00.000Z");
  assert.equal(exported.reports[0].sha256, "a".repeat(64));
});
