"""The two stages of a scan on Ray Data: `decode` runs as parallel tasks, `Classify` as a pool of actors.

`decode` turns a batch of paths into a batch (dict of numpy arrays) of the path, the file's SHA-256, the decoded
image (`edge_runtime.detector.Prepared`: pixels of the model's view geometries and the metadata evidence) and the
error that stopped it, if any; `Classify` turns that into result rows (a pyarrow table of `rows.SCHEMA`).
"""
from __future__ import annotations

import hashlib

import numpy as np

from archive_scan import rows
from archive_scan.inputs import location
from edge_runtime import Detector, ImageError

MAX_FILE_BYTES = 256 * 1024 * 1024  # no image the runtime accepts comes near this; larger files are not read
_decoders: dict[tuple, Detector] = {}  # one per worker process and settings: tasks reuse their worker's


def decode(batch: dict[str, np.ndarray], filesystem, detector_options: dict) -> dict[str, np.ndarray]:
    """Read, hash and decode each file of the batch; a file that cannot be read or decoded keeps its error."""
    key = tuple(sorted(detector_options.items()))
    if key not in _decoders:
        _decoders[key] = Detector(**detector_options, threads=1)
    detector = _decoders[key]
    outcomes = [_decode_one(path, filesystem, detector) for path in batch["path"]]
    return {"path": batch["path"], **{name: _objects([outcome[i] for outcome in outcomes])
                                      for i, name in enumerate(("sha256", "prepared", "error"))}}


def _decode_one(path: str, filesystem, detector: Detector) -> tuple:
    """(SHA-256, decoded image, error) of one file; None where there is none."""
    try:
        data = read(path, filesystem)
    except (OSError, ValueError) as exc:
        return None, None, f"cannot read the file: {exc}"
    digest = hashlib.sha256(data).hexdigest()
    try:
        return digest, detector.prepare(data), None
    except ImageError as exc:
        return digest, None, exc.reason
    except Exception as exc:  # noqa: BLE001 - one file's unforeseen failure must not fail a job of millions
        return digest, None, f"cannot judge the file: {type(exc).__name__}: {exc}"


def read(path: str, filesystem) -> bytes:
    """The bytes of a listed file (local, or through the pyarrow filesystem of the scan); ValueError when it is
    larger than MAX_FILE_BYTES."""
    if filesystem is None:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    else:
        with filesystem.open_input_stream(location(path)) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES:,} bytes")
    return data


class Classify:
    """Ray actor: loads the Detector once, then classifies decoded batches into result rows."""

    def __init__(self, detector_options: dict, threads: int, invoke_batch: int):
        self.detector = Detector(**detector_options, threads=threads)
        self.invoke_batch = invoke_batch

    def __call__(self, batch: dict[str, np.ndarray]):
        decoded = [image for image in batch["prepared"] if image is not None]
        results = iter(self.detector.classify(decoded, batch_size=self.invoke_batch))
        out = [rows.error_row(path, digest, error) if image is None else
               rows.verdict_row(path, digest, next(results))
               for path, digest, image, error in zip(batch["path"], batch["sha256"], batch["prepared"],
                                                      batch["error"])]
        return rows.table(out)


def _objects(values: list) -> np.ndarray:
    """A 1-D object array of `values` (np.array would try to stack the arrays inside them)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
