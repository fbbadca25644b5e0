"""The two stages of a scan on Ray Data: `decode` runs as parallel tasks, `Classify` as a pool of actors.

Both take and return column batches (dicts of numpy arrays). Between them a row carries the path, the file's
SHA-256, the decoded image (`edge_runtime.detector.Prepared`: pixels of the model's view geometries and the
metadata evidence) and the error that stopped it, if any.
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
    digests, prepared, errors = [], [], []
    for path in batch["path"]:
        digest, image, error = None, None, None
        try:
            data = read(path, filesystem)
            digest = hashlib.sha256(data).hexdigest()
            image = detector.prepare(data)
        except ImageError as exc:
            error = exc.reason
        except (OSError, ValueError) as exc:
            error = f"cannot read the file: {exc}"
        digests.append(digest)
        prepared.append(image)
        errors.append(error)
    return {"path": batch["path"], "sha256": _objects(digests), "prepared": _objects(prepared),
            "error": _objects(errors)}


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
        raise ValueError(f"larger than {MAX_FILE_BYTES // 2 ** 20} MiB")
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
