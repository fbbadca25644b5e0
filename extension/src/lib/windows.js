/**
 * edge_runtime/explain.py's window map in JavaScript: the boxes of the grid x grid windows (2/grid of each side,
 * centred on each cell, clamped at the edges, row-major) and cropping them out of an RGB image.
 */
import { rgbImage } from "./pixels.js";

export const GRID = 7;

/** Crop boxes [left, top, right, bottom] in pixels, as explain.window_boxes (Python's half-to-even round). */
export function windowBoxes(width, height, grid = GRID) {
  const boxes = [];
  for (let row = 0; row < grid; row++) {
    for (let col = 0; col < grid; col++) {
      const left = Math.min(Math.max((col + 0.5) / grid - 1 / grid, 0), 1 - 2 / grid);
      const top = Math.min(Math.max((row + 0.5) / grid - 1 / grid, 0), 1 - 2 / grid);
      const x = roundHalfEven(left * width);
      const y = roundHalfEven(top * height);
      boxes.push([x, y, Math.max(x + 1, roundHalfEven((left + 2 / grid) * width)), Math.max(y + 1, roundHalfEven((top + 2 / grid) * height))]);
    }
  }
  return boxes;
}

/** The part of an RGB image inside box [left, top, right, bottom]. */
export function crop(image, [left, top, right, bottom]) {
  const width = right - left;
  const out = rgbImage(width, bottom - top);
  for (let y = top; y < bottom; y++) {
    const start = (y * image.width + left) * 3;
    out.data.set(image.data.subarray(start, start + width * 3), (y - top) * width * 3);
  }
  return out;
}

function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
