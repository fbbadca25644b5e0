"""Shared fixtures: the real dataset in ../shared/data and small samples of it."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA / "manifest.csv").exists():
        pytest.fail(f"the dataset is missing: expected {DATA}/manifest.csv (see ../shared/README.md)")
    return DATA


@pytest.fixture(scope="session")
def manifest_rows(data_root) -> list[dict]:
    with open(data_root / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def pick(rows: list[dict], source: str, n: int) -> list[Path]:
    """The first `n` dataset files of one source (manifest order is fixed, so this is deterministic)."""
    return [DATA / r["path"] for r in rows if r["source"] == source][:n]
