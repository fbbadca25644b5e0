/**
 * The in-browser engine: the bundled model (vendor/model/) run by LiteRT.js (vendor/litert/, WASM on the CPU),
 * with the edge runtime's pipeline: format allow-list, pixel limits and "too small to judge", decode (first
 * frame, no colour conversion), transparency over white, large images shrunk as Pillow's draft/reduce, the
 * sidecar's views, threshold, unsure band and adaptive escalation (the primary view; all views only when its
 * P(ai) is inside the escalation band). Needs a document (the loader adds a <script>): it runs in the offscreen
 * document (Chromium) or the background page (Firefox).
 *
 * LiteRT.js' Tensor API has no int8 type and rejects the model's dynamic batch, so tensors go through the
 * runtime's lower-level bindings (the same engine, bit-exact with Python's interpreter), one view per invoke.
 */
import { getGlobalLiteRtPromise, loadLiteRt } from "../vendor/litert/core.js";
import { MAX_IMAGE_BYTES, sizeProblem, sniffFormat } from "../lib/image_limits.js";
import { dequantise, rgbOverWhite, shrinkLarge, viewEncoder } from "../lib/pixels.js";
import { modelIo } from "../lib/tflite_io.js";
import { crop, GRID, windowBoxes } from "../lib/windows.js";

const VENDOR = new URL("../vendor/", import.meta.url);
const ELEMENT_TYPES = { float32: 1, uint8: 3, int8: 9 };
// edge_runtime.adaptive.DEFAULT_WIDENING: without a sidecar `escalation_band`, the unsure band widened 2x.
const DEFAULT_WIDENING = 2;
const TTA_MODES = ["adaptive", "always", "never"];
const BUNDLED_MODELS = ["default", "paper"]; // extension/bundle_runtime.mjs vendors these

/** Why an image got no verdict: kind is "unreadable", "too-large" or "too-small", as the relay's errors. */
export class ImageError extends Error {
  constructor(kind, message, { width, height } = {}) {
    super(message);
    this.kind = kind;
    this.width = width;
    this.height = height;
  }
}

function decide(probability, threshold, [low, high]) {
  if (low < probability && probability < high) return "unsure";
  return probability >= threshold ? "ai" : "human";
}

/**
 * Load the runtime (once per page) and a bundled model: "default" (vendor/model/model.tflite) or "paper"
 * (vendor/model/model-paper.tflite), as edge_runtime.bundle names them; resolves to {check(bytes, tta), info}.
 * accelerator: "wasm" (the CPU, default) or "webgpu" (only where the browser offers a WebGPU adapter; for benchmarks).
 */
export async function createEngine({ accelerator = "wasm", model: name = "default" } = {}) {
  if (!BUNDLED_MODELS.includes(name)) throw new Error(`no bundled model ${JSON.stringify(name)}`);
  const stem = name === "default" ? "model" : `model-${name}`;
  const [metadata, modelBytes] = await Promise.all([
    fetch(new URL(`model/${stem}.json`, VENDOR)).then((response) => response.json()),
    fetch(new URL(`model/${stem}.tflite`, VENDOR)).then((response) => response.arrayBuffer()).then((b) => new Uint8Array(b)),
  ]);
  const liteRt = await (getGlobalLiteRtPromise() ?? loadLiteRt(new URL("litert/", VENDOR).href));
  const wasm = liteRt.liteRtWasm;
  const defaultEnvironment = liteRt.getDefaultEnvironment();
  if (accelerator === "webgpu" && !defaultEnvironment.webGpuDevice) throw new Error("this browser offers no WebGPU adapter");
  const environment = defaultEnvironment.liteRtEnvironment;
  const io = modelIo(modelBytes);
  const size = Number(metadata.input_size ?? 224);
  const views = metadata.tta_views ?? ["original", "flip", "bright+5", "bright-5"];
  const threshold = Number(metadata.threshold);
  const unsureBand = metadata.unsure_band ?? [threshold, threshold];
  const escalationBand = metadata.escalation_band ?? [
    Math.max(0, threshold - DEFAULT_WIDENING * (threshold - unsureBand[0])),
    Math.min(1, threshold + DEFAULT_WIDENING * (unsureBand[1] - threshold)),
  ];
  const encode = viewEncoder(views, size, io.input);
  const encodeWhole = viewEncoder(["original"], size, io.input);

  const modelPointer = wasm._malloc(modelBytes.byteLength);
  wasm.HEAPU8.set(modelBytes, modelPointer);
  const model = wasm.loadModel(environment, modelPointer, modelBytes.byteLength);
  const threads = wasm.getThreadCount();
  const compiled = await wasm.compileModel(environment, model, {
    accelerator,
    cpuOptions: { numThreads: threads },
    gpuOptions: {},
    webNNOptions: {},
  });

  function inputBuffer(data, shape) {
    const dimensions = new wasm.VectorInt32();
    for (const d of shape) dimensions.push_back(d);
    const layout = wasm.LiteRtLayout.create(dimensions);
    dimensions.delete();
    const tensorType = wasm.LiteRtRankedTensorType.create({ value: ELEMENT_TYPES[io.input.type] }, layout);
    layout.delete();
    const buffer = wasm.LiteRtTensorBuffer.createManaged(environment, wasm.LiteRtTensorBufferType.HOST_MEMORY, tensorType, data.byteLength);
    tensorType.delete();
    const pointer = buffer.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
    wasm.HEAPU8.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pointer);
    buffer.unlock();
    return buffer;
  }

  function readOutput(buffer) {
    const pointer = buffer.lock(wasm.LiteRtTensorBufferLockMode.READ);
    const bytes = wasm.HEAPU8.slice(pointer, pointer + buffer.packedSize());
    buffer.unlock();
    const types = { float32: Float32Array, int8: Int8Array, uint8: Uint8Array };
    return new types[io.output.type](bytes.buffer);
  }

  /** P(ai) of one encoded view (the compiled model keeps the batch of 1 it was saved with). */
  async function predictOne(view) {
    const input = inputBuffer(view, [1, size, size, 3]);
    let outputs;
    try {
      outputs = await compiled.run(0, [input]);
    } finally {
      input.delete();
    }
    try {
      return dequantise(readOutput(outputs[0]), io.output)[0];
    } finally {
      for (const output of outputs) output.delete();
    }
  }

  /** P(ai) of views first..last-1 of an encoded batch (views of size x size x 3), one invoke per view. */
  async function predict(batch, first, last) {
    const plane = size * size * 3;
    const probabilities = [];
    for (let i = first; i < last; i++) probabilities.push(await predictOne(batch.subarray(i * plane, (i + 1) * plane)));
    return probabilities;
  }

  /**
   * The verdict on image bytes, shaped like the relay's answer; rejects with ImageError for bad input.
   * tta as the edge runtime's: "adaptive" (default), "always" (every view) or "never" (the primary view only).
   */
  async function check(bytes, tta = "adaptive") {
    if (!TTA_MODES.includes(tta)) throw new Error(`tta must be one of ${TTA_MODES.join(", ")}`);
    const started = performance.now();
    const batch = encode(await decode(bytes, size));
    const decoded = performance.now();
    const probabilities = await predict(batch, 0, 1);
    const escalates = escalationBand[0] < probabilities[0] && probabilities[0] < escalationBand[1];
    if (tta === "always" || (tta === "adaptive" && escalates)) {
      probabilities.push(...(await predict(batch, 1, views.length)));
    }
    const probability = probabilities.reduce((sum, p) => sum + p, 0) / probabilities.length;
    const done = performance.now();
    return {
      label: decide(probability, threshold, unsureBand),
      probability,
      view_probabilities: Object.fromEntries(probabilities.map((p, i) => [views[i], p])),
      threshold,
      unsure_band: unsureBand,
      model_version: String(metadata.model_version ?? "unknown"),
      variant: String(metadata.variant ?? "unknown"),
      tta,
      views_run: views.slice(0, probabilities.length),
      timings_ms: { decode: decoded - started, infer: done - decoded, total: done - started },
    };
  }

  /**
   * Where the model sees signs of generation, as edge_runtime.explain.window_map: P(ai) of the whole picture and
   * of grid x grid windows of it at its own resolution, shaped like the relay's /api/v1/explain (no overlay).
   */
  async function explain(bytes, grid = GRID) {
    const started = performance.now();
    const image = await decode(bytes, size);
    const probability = await predictOne(encodeWhole(image));
    const cells = [];
    for (const box of windowBoxes(image.width, image.height, grid)) cells.push(await predictOne(encodeWhole(crop(image, box))));
    const rows = Array.from({ length: grid }, (_, row) => cells.slice(row * grid, (row + 1) * grid));
    return { probability, grid: rows, grid_size: grid, cost_ms: performance.now() - started, invokes: 1 + grid * grid };
  }

  return {
    check,
    explain,
    predict,
    info: { ...metadata, views, escalationBand, threads, accelerator, input: io.input, output: io.output },
  };
}

/**
 * Image bytes -> RGB pixels ready for the resize: a format the edge runtime reads, within its pixel limits and
 * judgeable; first frame, no colour management or EXIF rotation (as Pillow), alpha over white, large images
 * shrunk as preprocess.load_image does (to no less than 2 x inputSize on each side).
 */
export async function decode(bytes, inputSize) {
  if (bytes.byteLength === 0) throw new ImageError("unreadable", "empty file (0 bytes)");
  if (bytes.byteLength > MAX_IMAGE_BYTES) throw new ImageError("too-large", `file over ${MAX_IMAGE_BYTES / 1048576} MB`);
  const format = sniffFormat(bytes);
  if (format === null) throw new ImageError("unreadable", "not an image, or a format this tool does not read (JPEG, PNG, GIF, WebP, BMP)");
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes]), {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "none",
    });
  } catch {
    throw new ImageError("unreadable", "truncated or corrupt image data");
  }
  try {
    const { width, height } = bitmap;
    const problem = sizeProblem(width, height, format);
    if (problem) throw new ImageError(problem.kind, problem.message, { width, height });
    return shrinkLarge(rgbOverWhite(width, height, await straightRgba(bitmap)), format, 2 * inputSize);
  } finally {
    bitmap.close();
  }
}

/**
 * The decoded RGBA pixels, not premultiplied. A 2D canvas stores premultiplied pixels, and reading back a nearly
 * transparent one loses its colour: Firefox's getImageData is off by up to 127 levels at alpha 2, which moved
 * P(ai) by 0.09 on a real dataset PNG. VideoFrame.copyTo reads the bitmap as decoded (exact in Firefox, the
 * same as the canvas in Chromium); the canvas stays the fallback where VideoFrame is missing.
 */
async function straightRgba(bitmap) {
  const { width, height } = bitmap;
  if (typeof VideoFrame === "function") {
    let frame = null;
    try {
      frame = new VideoFrame(bitmap, { timestamp: 0, alpha: "keep" });
      const data = new Uint8ClampedArray(width * height * 4);
      await frame.copyTo(data, { format: "RGBA", layout: [{ offset: 0, stride: width * 4 }] });
      return data;
    } catch {
      // fall back to the canvas
    } finally {
      frame?.close();
    }
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  return context.getImageData(0, 0, width, height).data;
}
