"""`python -m edge_runtime` on a folder of real images mixed with broken files."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from conftest import REPO, pick
from edge_runtime import Detector, wording
from edge_runtime.cli import csv_fields, main

BAD = {"empty.jpg": "empty file (0 bytes)", "notes.png": "not an image", "truncated.jpg": "truncated",
       "garbage.webp": "not an image", "bomb.png": "too large"}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, manifest_rows):
    """Real AI and human images (one in a sub-folder), broken files, and a non-image file to skip."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "nested").mkdir()
    ai = pick(manifest_rows, "wfjsw-prompt-builder", 2)
    human = pick(manifest_rows, "danbooru-facecrops", 2)
    good = [shutil.copy(ai[0], root), shutil.copy(ai[1], root), shutil.copy(human[0], root),
            shutil.copy(human[1], root / "nested")]
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("this is text with an image suffix")
    (root / "truncated.jpg").write_bytes(human[0].read_bytes()[:2500])
    (root / "garbage.webp").write_bytes(bytes(range(256)) * 4)
    Image.new("L", (9000, 9000)).save(root / "bomb.png")  # 81 MP, over the 20 MP limit, ~80 kB on disk
    (root / "README.txt").write_text("not an image suffix: a folder scan skips it")
    return root, sorted(str(p) for p in good)


@pytest.fixture(scope="module")
def expected(mixed):
    """What the Python API says about the good files, with and without TTA."""
    det = Detector()
    return ({path: det.check(path) for path in mixed[1]}, {path: det.check(path, tta=False) for path in mixed[1]})


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_lists_every_file_and_fails_for_bad_ones(capsys, mixed, expected):
    root, good = mixed
    code, out, err = run_cli(capsys, root)
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[0].split() == ["LABEL", "P(AI)", "MS", "FILE"]
    rows, legend = lines[1:-3], lines[-3:-1]
    assert len(rows) == len(good) + len(BAD)  # README.txt is not scanned
    threshold, (low, high) = Detector().threshold, Detector().unsure_band
    assert legend == ["ai = likely AI-generated; human = no clear sign of AI; unsure = unsure: the model cannot tell.",
                      f"P(AI) is the AI score: ai from {threshold:.1%} (this model's threshold), unsure between "
                      f"{low:.1%} and {high:.1%}. {wording.CAVEAT}"]
    assert "\r" not in err and "img/s" not in err  # stderr is no terminal here: no progress bar in logs
    by_file = {row.split()[3]: row for row in rows}
    for path in good:
        label, probability = by_file[path].split()[:2]
        assert label == expected[0][path].label
        assert probability == wording.score_percent(expected[0][path].probability)  # "93%", ">99%", "<1%"
    for name, reason in BAD.items():
        row = by_file[str(root / name)]
        assert row.startswith("error") and reason in row
        assert any(line.startswith(f"{root / name}: ") and reason in line for line in err.splitlines())
    counts = {label: sum(r.label == label for r in expected[0].values()) for label in ("ai", "human", "unsure")}
    assert lines[-1] == (f"summary: ai {counts['ai']}, human {counts['human']}, unsure {counts['unsure']}, "
                         f"error {len(BAD)} ({len(rows)} files)")


def test_json_lines(capsys, mixed, expected):
    root, good = mixed
    code, out, err = run_cli(capsys, root, "--json", "--no-tta", "--no-progress")
    assert code == 1
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["path"] for r in records] == sorted(good + [str(root / name) for name in BAD])
    for record in records:
        if record["ok"]:
            result = expected[1][record["path"]]
            assert record["label"] == result.label
            assert record["probability"] == pytest.approx(result.probability, abs=1e-6)
            assert list(record["view_probabilities"]) == ["original"]
        else:
            assert BAD[record["path"].rsplit("/", 1)[1]] in record["error"]
    assert "summary:" in err and "summary:" not in out


def test_csv(capsys, mixed, expected):
    root, good = mixed
    code, out, _ = run_cli(capsys, *good, root / "truncated.jpg", "--csv")
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == csv_fields(Detector().views)
    assert [r["path"] for r in rows] == good + [str(root / "truncated.jpg")]
    for row in rows[:-1]:
        result = expected[0][row["path"]]
        assert row["ok"] == "True" and row["label"] == result.label and row["error"] == ""
        assert row["views_run"] == "+".join(result.views_run)
        for view in result.views_run:
            assert float(row[f"p_{view}"]) == pytest.approx(result.view_probabilities[view], abs=1e-5)
    assert rows[-1]["ok"] == "False" and "truncated" in rows[-1]["error"]


def test_good_files_only_exit_zero(capsys, mixed):
    code, out, _ = run_cli(capsys, mixed[1][0], "--no-tta")
    assert code == 0 and "summary: " in out and "error 0 (1 files)" in out


def test_missing_file_is_reported(capsys, tmp_path):
    code, out, err = run_cli(capsys, tmp_path / "nope.jpg")
    assert code == 1 and "cannot read file" in err and "error 1 (1 files)" in out


def test_empty_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, tmp_path)
    assert code == 1 and "no image files found" in err


def test_unknown_model_exits_2(capsys, mixed):
    code, _, err = run_cli(capsys, mixed[1][0], "--model", "no-such-variant")
    assert code == 2 and "no-such-variant" in err


def test_missing_runtime_message(capsys, monkeypatch, mixed):
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)
    code, _, err = run_cli(capsys, mixed[1][0])
    assert code == 2 and "pip install ai-edge-litert" in err


def test_stdin_through_module_entry_point(mixed, expected):
    path = mixed[1][2]
    run = subprocess.run([sys.executable, "-m", "edge_runtime", "--json", "-"], cwd=REPO, capture_output=True,
                         input=open(path, "rb").read(), timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    record = json.loads(run.stdout)
    assert record["path"] == "<stdin>"
    assert record["probability"] == pytest.approx(expected[0][path].probability, abs=1e-6)
