/** Test helpers: an in-memory stand-in for chrome.storage areas, and paths to the shared dataset. */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Behaves like chrome.storage.local: get/set/remove with promises, values copied in and out. */
export class MemoryStorage {
  constructor(initial = {}) {
    this.data = structuredClone(initial);
  }

  async get(keys) {
    const wanted = keys === null || keys === undefined ? Object.keys(this.data) : [keys].flat();
    const result = {};
    for (const key of wanted) if (key in this.data) result[key] = structuredClone(this.data[key]);
    return result;
  }

  async set(items) {
    Object.assign(this.data, structuredClone(items));
  }

  async remove(keys) {
    for (const key of [keys].flat()) delete this.data[key];
  }
}

// <repo>/../shared/data, as every test in the project finds it.
export const DATA_DIR = fileURLToPath(new URL("../../../shared/data/", import.meta.url));

/** The manifest rows of the shared dataset as objects (the first `limit` of each label). */
export function datasetRows(limit = 3) {
  const [header, ...lines] = readFileSync(`${DATA_DIR}manifest.csv`, "utf8").trim().split("\n");
  const columns = header.split(",");
  const rows = lines.map((line) => {
    const cells = line.match(/("([^"]|"")*"|[^,]*)(,|$)/g).map((cell) => cell.replace(/,$/, "").replace(/^"|"$/g, ""));
    return Object.fromEntries(columns.map((column, index) => [column, cells[index]]));
  });
  return ["ai", "human"].flatMap((label) => rows.filter((row) => row.label === label).slice(0, limit));
}

/** Bytes of a dataset image as a Uint8Array. */
export function datasetBytes(row) {
  return new Uint8Array(readFileSync(`${DATA_DIR}${row.path}`));
}
