"""One Parquet row per file: the verdict of `python -m edge_runtime --json`, its SHA-256, or why it has none."""
from __future__ import annotations

import pyarrow as pa

from edge_runtime import Result

SCHEMA = pa.schema([
    ("path", pa.string()),
    ("sha256", pa.string()),  # null where the file could not be read
    ("ok", pa.bool_()),
    ("label", pa.string()),  # ai, human or unsure; null on an error row
    ("probability", pa.float64()),  # P(ai), the mean over views_run
    ("views_run", pa.list_(pa.string())),
    ("reason", pa.string()),  # model, or metadata when the file's metadata names an AI generator
    ("evidence_kinds", pa.list_(pa.string())),
    ("evidence", pa.list_(pa.struct([("kind", pa.string()), ("detail", pa.string())]))),
    ("model_version", pa.string()),
    ("variant", pa.string()),
    ("threshold", pa.float64()),
    ("tta", pa.string()),
    ("error", pa.string()),  # why the file could not be judged; null on a verdict row
])


def verdict_row(path: str, sha256: str, result: Result) -> dict:
    return {"path": path, "sha256": sha256, "ok": True, "label": result.label, "probability": result.probability,
            "views_run": list(result.views_run), "reason": result.reason,
            "evidence_kinds": [item["kind"] for item in result.evidence],
            "evidence": [{"kind": item["kind"], "detail": item["detail"]} for item in result.evidence],
            "model_version": result.model_version, "variant": result.variant, "threshold": result.threshold,
            "tta": result.tta, "error": None}


def error_row(path: str, sha256: str | None, error: str) -> dict:
    return {"path": path, "sha256": sha256, "ok": False, "error": error}


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)
