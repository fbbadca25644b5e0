"""Where in the picture the model sees signs of generation: a map of local windows run through the TFLite model.

A `grid` x `grid` raster of windows, each 2/grid of the picture's width and height (so neighbours overlap by
half) and centred on its cell (clamped at the edges), is cut from the decoded picture at its own resolution,
resized to the model input and run through the model in a few batched invokes, with the whole picture first.
A cell's value is P(ai) of its window: everything outside the window is masked away, so the map shows which
parts of the picture alone carry what the model reads as signs of generation.

Why windows rather than occluding one cell at a time: on pictures the int8 model is sure of, P(ai) sits at the
output's top step (255/256) and hiding one cell changes nothing; and on 12 composites of an AI render pasted
into a human wallpaper (as in tests/test_explain.py) the window map peaked on the pasted part 12 times, a
blurred-cell occlusion map 9 times.
The map is coarse (7 x 7 by default) and explains the model, not the truth.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from edge_runtime import preprocess

GRID = 7
# Model inputs per invoke: the whole picture + grid*grid windows in ceil(n / BATCH) invokes. The interpreter for
# a batch keeps its tensors: 10 inputs hold ~100 MB (25 held ~200 MB) and run as fast on a CPU.
BATCH = 10
OVERLAY_MAX_SIDE = 768
OVERLAY_COLOUR = (255, 40, 0)
OVERLAY_OPACITY = 0.6


@dataclass
class Explanation:
    """A window map: `grid[row][col]` is P(ai) of the window centred on that cell."""

    probability: float  # P(ai) of the whole picture (primary squashed view, no TTA)
    grid: list[list[float]]
    cost_ms: float  # decode + windows + all invokes
    invokes: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def window_map(detector, source: preprocess.Source | Image.Image, grid: int = GRID) -> Explanation:
    """The window map of `source` (a file, or an image `preprocess.load_image` decoded) for `detector` (an
    edge_runtime.Detector).

    Raises preprocess.ImageError for bad input and ValueError for a grid outside 2..16.
    """
    if not 2 <= grid <= 16:
        raise ValueError(f"grid must be 2..16 cells per side, not {grid}")
    start = time.perf_counter()
    img = source if isinstance(source, Image.Image) else preprocess.load_image(source)
    inputs = preprocess.normalise(np.stack([preprocess.resize(img, detector.input_size)] +
                                           [preprocess.resize(img.crop(box), detector.input_size)
                                            for box in window_boxes(img.size, grid)]))
    probabilities, invokes = [], 0
    for first in range(0, len(inputs), BATCH):
        chunk = inputs[first:first + BATCH]
        padding = BATCH - len(chunk)  # keep one interpreter size: pad the last chunk with the whole picture
        if padding:
            chunk = np.concatenate([chunk, np.repeat(inputs[:1], padding, axis=0)])
        probabilities.append(detector.predict(chunk)[:BATCH - padding])
        invokes += 1
    probabilities = np.concatenate(probabilities)
    return Explanation(probability=float(probabilities[0]),
                       grid=[[round(float(p), 4) for p in row] for row in probabilities[1:].reshape(grid, grid)],
                       cost_ms=round((time.perf_counter() - start) * 1e3, 3), invokes=invokes)


def window_boxes(size: tuple[int, int], grid: int) -> list[tuple[int, int, int, int]]:
    """Crop boxes (left, top, right, bottom), row-major: 2/grid of each side, centred on each cell, clamped."""
    width, height = size
    boxes = []
    for row in range(grid):
        for col in range(grid):
            left = min(max((col + 0.5) / grid - 1 / grid, 0.0), 1 - 2 / grid)
            top = min(max((row + 0.5) / grid - 1 / grid, 0.0), 1 - 2 / grid)
            boxes.append((round(left * width), round(top * height),
                          max(round(left * width) + 1, round((left + 2 / grid) * width)),
                          max(round(top * height) + 1, round((top + 2 / grid) * height))))
    return boxes


def overlay(source: preprocess.Source | Image.Image, explanation: Explanation) -> Image.Image:
    """The picture (long side at most 768 px) tinted red where the map says AI: opacity 0.6 x P(ai). Pass the
    image `window_map` was given to decode it once."""
    img = source.copy() if isinstance(source, Image.Image) else preprocess.load_image(source)
    img.thumbnail((OVERLAY_MAX_SIDE, OVERLAY_MAX_SIDE))
    weights = np.clip(np.asarray(explanation.grid, dtype=np.float32), 0.0, 1.0)
    alpha = Image.fromarray((weights * 255 * OVERLAY_OPACITY).astype(np.uint8)).resize(img.size, Image.BILINEAR)
    tint = Image.new("RGB", img.size, OVERLAY_COLOUR)
    return Image.composite(tint, img, alpha)
