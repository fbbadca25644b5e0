"""Dataset loading, the leak-guarded split, corrupt-file handling and augmentation."""
from __future__ import annotations

import random
import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from conftest import pick
from trainer.augment import augment, format_equalise
from trainer.data import LABELS, load_dataset, split


@pytest.fixture(scope="module")
def manifest_split(data_root):
    dataset = load_dataset(data_root, verify=False)
    return dataset.samples, *split(dataset.samples, seed=42)


def test_manifest_split_is_stratified_64_16_20(manifest_split):
    samples, parts, report = manifest_split
    assert sum(len(v) for v in parts.values()) == len(samples) == 2709  # data v3
    for label in range(len(LABELS)):
        total = sum(s.label == label for s in samples)
        shares = {name: sum(s.label == label for s in items) / total for name, items in parts.items()}
        assert shares["test"] == pytest.approx(0.20, abs=0.01)
        assert shares["val"] == pytest.approx(0.16, abs=0.01)
        assert shares["train"] == pytest.approx(0.64, abs=0.01)
    face_crops = sum(s.source == "wfjsw-prompt-builder-facecrops" for s in samples)
    assert report["multi_image_groups"] >= face_crops == 439  # every AI face crop shares a group with its render


def test_no_group_or_near_duplicate_straddles_splits(manifest_split):
    samples, parts, report = manifest_split
    side = {}
    for name, items in parts.items():
        for s in items:
            side.setdefault(s.group, set()).add(name)
    assert all(len(names) == 1 for names in side.values())
    crops = [s for s in samples if s.source == "wfjsw-prompt-builder-facecrops"]
    renders = {s.group: s for s in samples if s.source == "wfjsw-prompt-builder"}
    where = {id(s): name for name, items in parts.items() for s in items}
    assert all(where[id(c)] == where[id(renders[c.group])] for c in crops if c.group in renders)
    assert report["near_duplicate_merges"] >= 1


def test_split_is_deterministic_and_seeded(data_root, manifest_split):
    samples, parts, _ = manifest_split
    again, _ = split(load_dataset(data_root, verify=False).samples, seed=42)
    other, _ = split(load_dataset(data_root, verify=False).samples, seed=7)
    paths = lambda p: [str(s.path) for s in p["test"]]  # noqa: E731
    assert paths(again) == paths(parts)
    assert paths(other) != paths(parts)


def test_folder_dataset_any_depth_skips_corrupt_files(tmp_path, manifest_rows, capsys):
    human = pick(manifest_rows, "danbooru-facecrops", 3)
    ai = pick(manifest_rows, "wfjsw-prompt-builder", 3)
    (tmp_path / "human" / "a" / "b").mkdir(parents=True)
    (tmp_path / "ai").mkdir()
    for i, path in enumerate(human):
        shutil.copy(path, tmp_path / "human" / "a" / "b" / f"{i}{path.suffix}")
    for i, path in enumerate(ai):
        shutil.copy(path, tmp_path / "ai" / f"{i}{path.suffix}")
    Image.open(ai[0]).save(tmp_path / "ai" / "frame.gif")
    Image.open(human[0]).save(tmp_path / "human" / "bitmap.bmp")
    (tmp_path / "ai" / "empty.png").write_bytes(b"")
    (tmp_path / "ai" / "text.jpg").write_text("not an image at all")
    (tmp_path / "human" / "cut.jpg").write_bytes(human[1].read_bytes()[:2000])
    (tmp_path / "human" / "notes.txt").write_text("ignored: not an image suffix")

    dataset = load_dataset(tmp_path)
    names = sorted(p.name for p, _ in dataset.skipped)
    assert names == ["cut.jpg", "empty.png", "text.jpg"]
    reasons = dict((p.name, r) for p, r in dataset.skipped)
    assert "empty" in reasons["empty.png"] and "not an image" in reasons["text.jpg"]
    assert "truncated" in reasons["cut.jpg"]
    assert Counter(LABELS[s.label] for s in dataset.samples) == {"human": 4, "ai": 4}
    assert "skipped" in capsys.readouterr().err


def test_near_duplicates_are_merged_into_one_group(tmp_path, manifest_rows):
    images = pick(manifest_rows, "danbooru-facecrops", 12) + pick(manifest_rows, "wfjsw-prompt-builder", 12)
    for path in images:
        label = "human" if "human" in path.parts else "ai"
        (tmp_path / label).mkdir(exist_ok=True)
        shutil.copy(path, tmp_path / label / path.name)
    recompressed = tmp_path / "human" / "copy.jpg"
    Image.open(images[0]).convert("RGB").resize((200, 200)).save(recompressed, quality=70)
    dataset = load_dataset(tmp_path)
    parts, report = split(dataset.samples, seed=1)
    assert report["near_duplicate_merges"] >= 1
    side = {s.path.name: name for name, items in parts.items() for s in items}
    assert side["copy.jpg"] == side[images[0].name]


def test_augment_gives_model_sized_views_and_varies(manifest_rows):
    img = Image.open(pick(manifest_rows, "wfjsw-prompt-builder", 1)[0]).convert("RGB")
    rng = random.Random(0)
    views = [augment(img, rng) for _ in range(6)]
    assert all(v.shape == (224, 224, 3) and v.dtype == np.uint8 for v in views)
    assert len({v.tobytes() for v in views}) == 6


def test_format_equalise_is_a_smaller_jpeg(manifest_rows):
    img = Image.open(pick(manifest_rows, "wfjsw-prompt-builder", 1)[0]).convert("RGB")
    out = format_equalise(img)
    assert out.size == (384, 384)
    assert out.mode == "RGB"
    assert np.abs(np.asarray(out, float) - np.asarray(img.resize((384, 384)), float)).mean() < 8
