"""The runtime on aarch64: benchmarks/aarch64_smoke.sh runs `python -m edge_runtime --json` with Debian's arm64
Python 3.11 and the aarch64 wheels under qemu-user-static (Pi 4 and Pi 5 CPU profiles) on real dataset images,
and compares every label and P(ai) with the x86 run's, for the default model and for `--model paper`. About a
minute from scratch (the arm64 sysroot and wheels are then cached in build/aarch64), half that cached."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.bundle import read_sidecar, resolve_model

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["default", "paper"])
def test_edge_runtime_on_aarch64_matches_x86(data_root, model):
    run = subprocess.run(["bash", str(REPO / "benchmarks" / "aarch64_smoke.sh"), "--model", model], cwd=REPO,
                         env=dict(os.environ, DATA=str(data_root), PY=sys.executable),
                         capture_output=True, text=True, timeout=900)
    report = f"{run.stdout}\n{run.stderr[-4000:]}"
    assert run.returncode == 0, report
    assert "PASS: labels equal, probabilities within tolerance" in run.stdout, report
    for cpu in ("cortex-a72", "cortex-a76"):
        assert f"aarch64 {cpu}:" in run.stdout, report
    assert f"model {read_sidecar(resolve_model(model))['model_version']} " in run.stdout, report
