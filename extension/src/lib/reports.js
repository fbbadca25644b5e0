/** "Wrong verdict" reports: the image hash and the user's label, kept locally and exportable as JSON. */

const STORAGE_KEY = "reports";
const USER_LABELS = ["ai", "human"];

/** Check a report from the badge's details panel; returns the record to store or throws with the reason. */
export function validateReport({ sha256, userLabel, modelLabel, probability, modelVersion }) {
  if (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) throw new Error("sha256 must be 64 hex digits");
  if (!USER_LABELS.includes(userLabel)) throw new Error(`userLabel must be one of ${USER_LABELS.join(", ")}`);
  if (typeof probability !== "number" || !(probability >= 0 && probability <= 1)) throw new Error("probability must be in [0, 1]");
  return {
    sha256,
    userLabel,
    modelLabel: String(modelLabel),
    probability,
    modelVersion: String(modelVersion),
  };
}

export async function loadReports(storageArea) {
  const reports = (await storageArea.get(STORAGE_KEY))[STORAGE_KEY];
  return Array.isArray(reports) ? reports : [];
}

/** Store a report, replacing an earlier one for the same image; resolves to the stored record. */
export async function addReport(storageArea, report, now = new Date()) {
  const record = { ...validateReport(report), reportedAt: now.toISOString() };
  const reports = (await loadReports(storageArea)).filter((old) => old.sha256 !== record.sha256);
  reports.push(record);
  await storageArea.set({ [STORAGE_KEY]: reports });
  return record;
}

/** The JSON document the options page offers for download. */
export function exportReports(reports, now = new Date()) {
  return JSON.stringify({ format: "animeart-detector-reports", version: 1, exportedAt: now.toISOString(), reports }, null, 2);
}

export async function clearReports(storageArea) {
  await storageArea.remove(STORAGE_KEY);
}
