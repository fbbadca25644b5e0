"""archive_scan on a real local Ray: rows equal to `python -m edge_runtime --json`, hostile files as error rows,
a killed job resumed without loss or duplicates, and an s3:// prefix served by a real moto S3 server on loopback.

One Ray (2 CPUs) serves the module; the kill test runs its job as a separate driver joined to it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import ray
from PIL import Image
from pyarrow.fs import S3FileSystem

from archive_scan import scan
from archive_scan.__main__ import main as archive_scan_main
from archive_scan.parts import TEMPORARY
from conftest import REPO, pick

SOURCES = {"wfjsw-prompt-builder": 4, "wfjsw-prompt-builder-facecrops": 3, "tsunamori-novelai": 3,
           "animaginexl4-gallery": 2, "etherportal-modelexamples": 2, "danbooru-facecrops": 4, "agbooks-2021": 3,
           "katawa-shoujo": 3, "style2paints": 2, "mimvoid-wallpapers": 2}  # 28 images: every format, both labels


def child_env(**extra) -> dict:
    """The environment of a child process, read when it starts: Ray's token mode is set by ray.init."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray of 2 CPUs for the module; afterwards the environment variables and SIGTERM handler that
    ray.init sets are put back, so that later test modules see the process as it was."""
    environ, sigterm = dict(os.environ), signal.getsignal(signal.SIGTERM)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGTERM, sigterm)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def hostile_files(jpeg: bytes) -> dict[str, bytes]:
    """Files a scan meets in a real archive and must turn into error rows (`jpeg`: a real one to cut short)."""
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)) + \
        png_chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + png_chunk(b"IEND", b"")  # 3.6 GP declared in 100 bytes
    tiny = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 90)).save(tiny, "PNG")
    return {"truncated.jpg": jpeg[:400], "garbage.png": os.urandom(5000), "empty.webp": b"", "bomb.png": bomb,
            "text-named.gif": b"GIF89a this is not a picture\n" * 20, "tiny.png": tiny.getvalue()}


HOSTILE = sorted(hostile_files(b""))


@pytest.fixture(scope="module")
def archive(tmp_path_factory, manifest_rows):
    """A folder of 28 dataset images (in two levels) and 6 hostile files."""
    root = tmp_path_factory.mktemp("archive")
    (root / "nested" / "deeper").mkdir(parents=True)
    for source, n in SOURCES.items():
        for i, path in enumerate(pick(manifest_rows, source, n)):
            folder = root / "nested" / "deeper" if i % 2 else root
            shutil.copy(path, folder / f"{source}-{i}{path.suffix}")
    for name, data in hostile_files((root / "danbooru-facecrops-0.jpg").read_bytes()).items():
        (root / "nested" / name).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def cli_rows(archive) -> dict[str, dict]:
    """path -> the JSON row of `python -m edge_runtime --json` on the archive."""
    run = subprocess.run([sys.executable, "-m", "edge_runtime", "--json", "--no-progress", str(archive)], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env=child_env())
    assert run.returncode == 1, run.stderr  # the hostile files fail
    return {row["path"]: row for row in map(json.loads, run.stdout.splitlines())}


def read_rows(folder) -> list[dict]:
    return pq.read_table(str(folder)).to_pylist()


def assert_rows_match_cli(rows: list[dict], cli_rows: dict[str, dict], path_of=lambda path: path):
    """Same files, once each; same verdict (label, P, views, reason, evidence, model) or the same error."""
    paths = [path_of(row["path"]) for row in rows]
    assert sorted(paths) == sorted(cli_rows)  # nothing lost, nothing twice
    for row in rows:
        cli = cli_rows[path_of(row["path"])]
        assert row["ok"] == cli["ok"], (row, cli)
        if not cli["ok"]:
            assert row["error"] == cli["error"] and row["label"] is None
            continue
        assert row["sha256"] == hashlib.sha256(open(cli["path"], "rb").read()).hexdigest()
        assert (row["label"], row["views_run"], row["reason"], row["tta"]) == \
            (cli["label"], cli["views_run"], cli["reason"], cli["tta"]), (row, cli)
        assert row["probability"] == pytest.approx(cli["probability"], abs=1e-6)
        assert row["evidence"] == cli["evidence"]
        assert row["evidence_kinds"] == [item["kind"] for item in cli["evidence"]]
        assert (row["model_version"], row["variant"], row["threshold"]) == \
            (cli["model_version"], cli["variant"], cli["threshold"])
        assert row["error"] is None


def test_rows_equal_the_cli_on_dataset_images_and_hostile_files(ray_address, archive, cli_rows, tmp_path):
    summary = scan(str(archive), str(tmp_path / "out"), batch_rows=8, rows_per_file=10, progress=False)
    rows = read_rows(tmp_path / "out")
    assert_rows_match_cli(rows, cli_rows)
    errors = {os.path.basename(row["path"]): row["error"] for row in rows if not row["ok"]}
    assert sorted(errors) == HOSTILE  # every hostile file, and only they
    assert "too large" in errors["bomb.png"] and "too small" in errors["tiny.png"]
    labels = [cli["label"] if cli["ok"] else "error" for cli in cli_rows.values()]
    assert summary.counts == {label: labels.count(label) for label in ("ai", "human", "unsure", "error")}
    assert any(row["reason"] == "metadata" for row in rows)  # the NovelAI PNGs' text chunks
    assert summary.skipped == 0 and summary.images_per_second > 0
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) == 4  # 34 rows, 10 per part file

    again = scan(str(archive), str(tmp_path / "out"), progress=False)  # everything already written
    assert (again.skipped, again.written) == (len(cli_rows), 0)


def test_killed_job_resumes_without_loss_or_duplicates(ray_address, archive, cli_rows, tmp_path):
    """A driver joined to the cluster is killed (SIGKILL) after its first part files; a re-run finishes the job."""
    big = tmp_path / "big"
    for copy in range(4):  # 136 files: long enough to be killed midway
        shutil.copytree(archive, big / f"copy{copy}")
    out = tmp_path / "out"
    job = subprocess.Popen([sys.executable, "-m", "archive_scan", str(big), "--out", str(out), "--address",
                            ray_address, "--batch-rows", "4", "--rows-per-file", "4", "--no-progress"],
                           cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while len(list(out.glob("part-*.parquet"))) < 3 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    _, stderr = job.communicate()
    assert job.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    before = len(read_rows(out))
    assert 12 <= before < 136  # killed midway

    summary = scan(str(big), str(out), address=ray_address, progress=False)
    rows = read_rows(out)
    assert summary.skipped == before and summary.written == 136 - before
    assert_rows_match_cli(rows, {os.path.join(big, copy, os.path.relpath(path, archive)): cli
                                 for path, cli in cli_rows.items() for copy in ("copy0", "copy1", "copy2", "copy3")})


def test_part_file_cut_short_is_dropped_and_its_files_scanned_again(ray_address, archive, cli_rows, tmp_path):
    out = tmp_path / "out"
    scan(str(archive), str(out), rows_per_file=20, progress=False)
    first, second = sorted(out.glob("part-*.parquet"))
    first.write_bytes(first.read_bytes()[:300])  # a crash mid-write, on a filesystem without atomic rename
    (out / ("part-leftover.parquet" + TEMPORARY)).write_bytes(b"PAR1")
    summary = scan(str(archive), str(out), progress=False)
    assert summary.skipped == pq.read_metadata(second).num_rows and summary.written == len(cli_rows) - summary.skipped
    assert not first.exists() and sorted(p.name for p in out.iterdir() if p.name.endswith(TEMPORARY)) == []
    assert_rows_match_cli(read_rows(out), cli_rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server():
    """A real S3-protocol server (moto's standalone server) on loopback: its port."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_s3_prefix_through_a_real_s3_server_with_an_embedded_ray(archive, cli_rows, s3_server):
    """`python -m archive_scan s3://...` starts its own local Ray, reads the bucket and writes Parquet into it."""
    options = f"?endpoint_override=127.0.0.1:{s3_server}&scheme=http&region=us-east-1"
    s3 = S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1", scheme="http",
                      endpoint_override=f"127.0.0.1:{s3_server}", allow_bucket_creation=True)
    s3.create_dir("archive-bucket")
    names = {}
    for path in sorted(cli_rows)[::3]:  # 12 of the files, hostile ones among them
        key = f"archive-bucket/incoming/{os.path.basename(path)}"
        with s3.open_output_stream(key) as f:
            f.write(open(path, "rb").read())
        names[f"s3://{key}"] = path
    assert any(not cli_rows[path]["ok"] for path in names.values())
    env = child_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run([sys.executable, "-m", "archive_scan", "s3://archive-bucket/incoming/" + options,
                          "--out", "s3://archive-bucket/verdicts" + options, "--no-progress"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-3000:]  # error rows for the hostile files
    summary = run.stderr.strip().splitlines()[-1]
    assert summary.startswith("summary: ") and f"({len(names)} written, 0 already done" in summary
    rows = pq.read_table("archive-bucket/verdicts", filesystem=s3).to_pylist()
    assert_rows_match_cli(rows, {path: cli_rows[path] for path in names.values()}, path_of=names.__getitem__)


def test_decode_turns_unreadable_and_oversized_files_into_errors(archive, tmp_path, monkeypatch):
    """The decode stage as a plain function (no Ray): a read error or a file over the byte cap is an error, not a
    failed task; a good file carries its SHA-256 and decoded pixels."""
    from archive_scan import stages
    good = archive / "danbooru-facecrops-0.jpg"
    monkeypatch.setattr(stages, "MAX_FILE_BYTES", good.stat().st_size)
    (tmp_path / "big.jpg").write_bytes(good.read_bytes() + b"\0")
    paths = [str(good), str(tmp_path / "big.jpg"), str(tmp_path / "missing.jpg")]
    batch = stages.decode({"path": np.array(paths, dtype=object)}, None, {})
    assert batch["sha256"][0] == hashlib.sha256(good.read_bytes()).hexdigest() and batch["error"][0] is None
    assert batch["prepared"][0].bases and batch["prepared"][1] is None and batch["prepared"][2] is None
    assert batch["error"][1] == f"cannot read the file: larger than {good.stat().st_size:,} bytes"
    assert batch["error"][2].startswith("cannot read the file: [Errno 2]") and batch["sha256"][2] is None


def test_unknown_model_and_empty_folder_are_clear_errors(archive, tmp_path, capsys):
    assert archive_scan_main([str(archive), "--out", str(tmp_path / "out"), "--model", "no-such-model"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    (tmp_path / "empty").mkdir()
    assert archive_scan_main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == "error: no image files found\n"
