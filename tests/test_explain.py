"""The explanation map on a constructed case: an AI render pasted into a human wallpaper."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from conftest import pick
from edge_runtime import Detector, ImageError, explain, preprocess

SIDE, PASTE = 768, 512  # the AI render keeps (most of) its own resolution inside the composite


@pytest.fixture(scope="module")
def det():
    return Detector(threads=2)


@pytest.fixture(scope="module")
def confident_pair(det, manifest_rows):
    """An AI render and a human wallpaper that the bundled model gets right with confidence."""
    ai = next(p for p in pick(manifest_rows, "wfjsw-prompt-builder", 20) if det.check(p).probability > 0.9)
    human = next(p for p in pick(manifest_rows, "frenzyexists-wallpapers-2021", 20)
                 if det.check(p).probability < 0.1)
    return ai, human


def composite(ai, human, corner: tuple[int, int]) -> bytes:
    base = preprocess.load_image(human).resize((SIDE, SIDE))
    base.paste(preprocess.load_image(ai).resize((PASTE, PASTE)), corner)
    out = io.BytesIO()
    base.save(out, "PNG")
    return out.getvalue()


def pasted_cells(corner: tuple[int, int], grid: int) -> np.ndarray:
    """Cells whose centre lies in the pasted square."""
    centres = (np.arange(grid) + 0.5) * SIDE / grid
    rows = (centres >= corner[1]) & (centres < corner[1] + PASTE)
    cols = (centres >= corner[0]) & (centres < corner[0] + PASTE)
    return rows[:, None] & cols[None, :]


@pytest.mark.parametrize("corner", [(0, 0), (SIDE - PASTE, SIDE - PASTE)])
def test_map_peaks_on_the_pasted_ai_region(det, confident_pair, corner):
    explanation = det.explain(composite(*confident_pair, corner))
    values = np.asarray(explanation.grid)
    inside = pasted_cells(corner, explain.GRID)
    assert values.shape == (explain.GRID, explain.GRID)
    assert inside[np.unravel_index(values.argmax(), values.shape)]
    assert values[inside].mean() > values[~inside].mean() + 0.2
    assert explanation.invokes == -(-(explain.GRID ** 2 + 1) // explain.BATCH)
    assert explanation.cost_ms > 0


def test_whole_picture_probability_is_the_primary_view(det, confident_pair):
    ai, _ = confident_pair
    explanation = det.explain(ai)
    assert explanation.probability == pytest.approx(det.check(ai, tta=False).probability, abs=0.02)


def test_overlay_tints_the_ai_region(det, confident_pair):
    data = composite(*confident_pair, (0, 0))
    picture = np.asarray(preprocess.load_image(data), dtype=np.int16)
    tinted = np.asarray(explain.overlay(data, det.explain(data)), dtype=np.int16)
    redder = (tinted[..., 0] - tinted[..., 2]) - (picture[..., 0] - picture[..., 2])
    quarter = SIDE // 4
    assert tinted.shape == picture.shape
    assert redder[:quarter, :quarter].mean() > redder[-quarter:, -quarter:].mean() + 20


def test_window_boxes_cover_the_picture_and_stay_inside():
    boxes = explain.window_boxes((300, 200), 7)
    assert len(boxes) == 49
    assert all(0 <= left < right <= 300 and 0 <= top < bottom <= 200 for left, top, right, bottom in boxes)
    assert min(b[0] for b in boxes) == 0 and max(b[2] for b in boxes) == 300
    assert min(b[1] for b in boxes) == 0 and max(b[3] for b in boxes) == 200


def test_bad_input_and_bad_grid(det, confident_pair):
    with pytest.raises(ImageError):
        det.explain(b"not an image")
    with pytest.raises(ValueError):
        det.explain(confident_pair[0], grid=1)


def test_cli_writes_one_overlay_per_image(confident_pair, tmp_path, capsys, monkeypatch):
    from edge_runtime import cli
    ai, human = confident_pair
    out_dir = tmp_path / "overlays"
    assert cli.main(["--explain", str(out_dir), str(ai), str(human)]) == 0
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == sorted([f"{ai.stem}.explain.png", f"{human.stem}.explain.png"])
    assert Image.open(out_dir / f"{ai.stem}.explain.png").size == preprocess.load_image(ai).size
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(ai.read_bytes())))
    assert cli.main(["--explain", str(out_dir), "-"]) == 1  # stdin is checked, but cannot be explained
    assert "--explain needs a file" in capsys.readouterr().err
