"""Datasets: find labelled images, skip unreadable ones, and split them without leaks.

A dataset is either a folder (`ROOT/human/**`, `ROOT/ai/**`, any depth) or the manifest CSV of
`../shared/data` (sources can be filtered). The split is the paper's stratified 64/16/20 with seed 42,
made over *groups*: manifest groups (a face crop and the render it was cut from) and perceptual-hash
near-duplicates are merged and always land on the same side.
"""
from __future__ import annotations

import csv
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_runtime.preprocess import ImageError, load_image

LABELS = ("human", "ai")  # index = class id: 0 human, 1 ai
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
NEAR_DUPLICATE_BITS = 4  # perceptual hashes this close (Hamming distance) are treated as one image
# Sources whose images are tight face crops rather than full illustrations (the framing shortcut).
CROP_SOURCES = {"danbooru-facecrops", "wfjsw-prompt-builder-facecrops"}


@dataclass
class Sample:
    path: Path
    label: int
    source: str = ""
    group: str = ""
    phash: int | None = None

    @property
    def framing(self) -> str:
        """'crop' for face-crop sources, 'full' otherwise."""
        return "crop" if self.source in CROP_SOURCES else "full"


@dataclass
class Dataset:
    samples: list[Sample]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_dataset(root: str | Path, sources: set[str] | None = None, verify: bool = True) -> Dataset:
    """All labelled images under `root` (manifest.csv when present), optionally only some sources.

    With `verify`, every file is decoded once; unreadable files are reported on stderr and skipped.
    """
    root = Path(root)
    manifest = root / "manifest.csv" if root.is_dir() else root
    samples = read_manifest(manifest) if manifest.suffix == ".csv" and manifest.exists() else scan_folder(root)
    if sources:
        samples = [s for s in samples if s.source in sources]
    if not samples:
        raise ValueError(f"no labelled images found under {root} (expected human/ and ai/ folders or manifest.csv)")
    skipped = []
    if verify:
        samples, skipped = drop_unreadable(samples)
    return Dataset(samples, skipped)


def read_manifest(path: Path) -> list[Sample]:
    """Samples from a manifest CSV (columns path, label, source, group, phash; paths relative to it)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        Sample(path.parent / row["path"], LABELS.index(row["label"]), row.get("source", ""),
               row.get("group") or row["path"], int(row["phash"], 16) if row.get("phash") else None)
        for row in rows if row.get("usage", "train") == "train"
    ]


def scan_folder(root: Path) -> list[Sample]:
    """Samples from `root/human/**` and `root/ai/**`; the source is the first sub-folder, if any."""
    samples = []
    for label, name in enumerate(LABELS):
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                parts = path.relative_to(root / name).parts
                source = parts[0] if len(parts) > 1 else name
                samples.append(Sample(path, label, source, group=str(path.relative_to(root))))
    return samples


def drop_unreadable(samples: list[Sample]) -> tuple[list[Sample], list[tuple[Path, str]]]:
    """Decode every sample once (filling in missing perceptual hashes); return (good, [(path, reason)])."""
    good, skipped = [], []
    for sample in tqdm(samples, desc="checking images", unit="img", file=sys.stderr, leave=False):
        try:
            img = load_image(sample.path)
        except ImageError as exc:
            skipped.append((sample.path, exc.reason))
            continue
        if sample.phash is None:
            sample.phash = perceptual_hash(img)
        good.append(sample)
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return good, skipped


def perceptual_hash(img) -> int:
    """64-bit DCT perceptual hash (32x32 greyscale, low 8x8 frequencies above their median)."""
    pixels = np.asarray(img.convert("L").resize((32, 32)), dtype=np.float64)
    n = np.arange(32)
    dct = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 64)
    low = (dct @ pixels @ dct.T)[:8, :8].ravel()
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def merge_groups(samples: list[Sample], max_bits: int = NEAR_DUPLICATE_BITS) -> tuple[list[int], int]:
    """Group id per sample: manifest groups joined with perceptual near-duplicates (union-find).

    Returns (ids, merges) where `merges` counts the near-duplicate unions that joined two groups.
    """
    parent = list(range(len(samples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> bool:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
        return ri != rj

    first_of_group: dict[str, int] = {}
    for i, sample in enumerate(samples):
        union(i, first_of_group.setdefault(sample.group, i))
    merges = 0
    hashed = [i for i, s in enumerate(samples) if s.phash is not None]
    hashes = np.array([samples[i].phash for i in hashed], dtype=np.uint64)
    for a, b in near_duplicate_pairs(hashes, max_bits):
        merges += union(hashed[a], hashed[b])
    return [find(i) for i in range(len(samples))], merges


def near_duplicate_pairs(hashes: np.ndarray, max_bits: int, chunk: int = 512):
    """Index pairs (a < b) of 64-bit hashes within `max_bits` Hamming distance."""
    as_bytes = hashes.view(np.uint8).reshape(-1, 8)
    for start in range(0, len(hashes), chunk):
        xor = as_bytes[start:start + chunk, None, :] ^ as_bytes[None, :, :]
        distance = np.unpackbits(xor, axis=2).sum(axis=2)
        for a, b in zip(*np.nonzero(distance <= max_bits)):
            if start + a < b:
                yield start + a, b


def split(samples: list[Sample], seed: int = 42, test: float = 0.2, val: float = 0.2) -> tuple[dict, dict]:
    """Stratified group split: `test` of each class to test, then `val` of the rest to val (64/16/20).

    Returns ({"train"|"val"|"test": [Sample]}, report) where report counts merged groups.
    """
    group_ids, merges = merge_groups(samples)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(group_ids):
        members[g].append(i)
    rng = random.Random(seed)
    parts: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for label in range(len(LABELS)):
        groups = [g for g, idx in members.items()
                  if Counter(samples[i].label for i in idx).most_common(1)[0][0] == label]
        groups.sort()
        rng.shuffle(groups)
        total = sum(len(members[g]) for g in groups)
        n_test = round(total * test)
        n_val = round((total - n_test) * val)
        filled = Counter()
        for g in groups:
            name = "test" if filled["test"] < n_test else "val" if filled["val"] < n_val else "train"
            filled[name] += len(members[g])
            parts[name].extend(samples[i] for i in members[g])
    multi = sum(1 for idx in members.values() if len(idx) > 1)
    report = {"groups": len(members), "multi_image_groups": multi, "near_duplicate_merges": merges,
              **{f"{name}_count": len(items) for name, items in parts.items()}}
    return parts, report


def write_split(parts: dict, path: Path) -> None:
    """Write the split as CSV (split, label, source, path) so a run can be reproduced and audited."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "label", "source", "path"])
        for name, items in parts.items():
            for s in items:
                writer.writerow([name, LABELS[s.label], s.source, str(s.path)])
