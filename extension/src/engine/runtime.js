/**
 * The in-browser engine: the bundled model (vendor/model/) run by LiteRT.js (vendor/litert/, WASM on the CPU),
 * with the edge runtime's pipeline: decode (first frame, no colour conversion), transparency over white, the
 * sidecar's views, threshold and unsure band. Needs a document (the loader adds a <script>): it runs in the
 * offscreen document (Chromium) or the background page (Firefox).
 *
 * LiteRT.js' Tensor API has no int8 type and rejects the model's dynamic batch, so tensors go through the
 * runtime's lower-level bindings (the same engine, bit-exact with Python's interpreter), one view per invoke.
 */
import { getGlobalLiteRt, loadLiteRt } from "../vendor/litert/core.js";
import { dequantise, rgbOverWhite, viewEncoder } from "../lib/pixels.js";
import { modelIo } from "../lib/tflite_io.js";

const VENDOR = new URL("../vendor/", import.meta.url);
const ELEMENT_TYPES = { float32: 1, uint8: 3, int8: 9 };
// The relay's limits: its request body limit and Pillow's decompression-bomb guard in edge_runtime/preprocess.py.
export const MAX_IMAGE_BYTES = 20 * 1024 * 1024;
export const MAX_PIXELS = 64_000_000;

/** Why an image got no verdict: kind is "unreadable" or "too-large", as the relay's errors. */
export class ImageError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

function decide(probability, threshold, [low, high]) {
  if (low < probability && probability < high) return "unsure";
  return probability >= threshold ? "ai" : "human";
}

/** Load the runtime and the bundled model; resolves to {check(bytes), info}. */
export async function createEngine() {
  const [metadata, modelBytes] = await Promise.all([
    fetch(new URL("model/model.json", VENDOR)).then((response) => response.json()),
    fetch(new URL("model/model.tflite", VENDOR)).then((response) => response.arrayBuffer()).then((b) => new Uint8Array(b)),
  ]);
  const liteRt = await loadLiteRt(new URL("litert/", VENDOR).href);
  const wasm = liteRt.liteRtWasm;
  const environment = getGlobalLiteRt().getDefaultEnvironment().liteRtEnvironment;
  const io = modelIo(modelBytes);
  const size = Number(metadata.input_size ?? 224);
  const views = metadata.tta_views ?? ["original", "flip", "bright+5", "bright-5"];
  const threshold = Number(metadata.threshold);
  const unsureBand = metadata.unsure_band ?? [threshold, threshold];
  const encode = viewEncoder(views, size, io.input);

  const modelPointer = wasm._malloc(modelBytes.byteLength);
  wasm.HEAPU8.set(modelBytes, modelPointer);
  const model = wasm.loadModel(environment, modelPointer, modelBytes.byteLength);
  const threads = wasm.getThreadCount();
  const compiled = await wasm.compileModel(environment, model, {
    accelerator: "wasm",
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

  /** P(ai) per entry of an encoded batch (count views of size x size x 3), one invoke per view. */
  async function predict(batch, count) {
    const plane = size * size * 3;
    const probabilities = [];
    for (let i = 0; i < count; i++) probabilities.push(await predictOne(batch.subarray(i * plane, (i + 1) * plane)));
    return probabilities;
  }

  /** The verdict on image bytes, shaped like the relay's answer; rejects with ImageError for bad input. */
  async function check(bytes) {
    const started = performance.now();
    const image = await decode(bytes);
    const decoded = performance.now();
    const probabilities = await predict(encode(image), views.length);
    const probability = probabilities.reduce((sum, p) => sum + p, 0) / probabilities.length;
    const done = performance.now();
    return {
      label: decide(probability, threshold, unsureBand),
      probability,
      view_probabilities: Object.fromEntries(views.map((name, i) => [name, probabilities[i]])),
      threshold,
      unsure_band: unsureBand,
      model_version: String(metadata.model_version ?? "unknown"),
      variant: String(metadata.variant ?? "unknown"),
      timings_ms: { decode: decoded - started, infer: done - decoded, total: done - started },
    };
  }

  return {
    check,
    predict,
    info: { ...metadata, views, threads, accelerator: "wasm", input: io.input, output: io.output },
  };
}

/** Image bytes -> RGB pixels: first frame, no colour management or EXIF rotation (as Pillow), alpha over white. */
export async function decode(bytes) {
  if (bytes.byteLength === 0) throw new ImageError("unreadable", "empty file (0 bytes)");
  if (bytes.byteLength > MAX_IMAGE_BYTES) throw new ImageError("too-large", `image over ${MAX_IMAGE_BYTES / 1048576} MB`);
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes]), {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "none",
    });
  } catch {
    throw new ImageError("unreadable", "not an image the browser can decode");
  }
  try {
    const { width, height } = bitmap;
    if (width * height > MAX_PIXELS) throw new ImageError("too-large", `image over ${MAX_PIXELS / 1e6} megapixels`);
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    return rgbOverWhite(width, height, context.getImageData(0, 0, width, height).data);
  } finally {
    bitmap.close();
  }
}
