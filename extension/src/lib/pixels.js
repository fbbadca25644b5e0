/**
 * edge_runtime/preprocess.py in JavaScript, from decoded RGB pixels to the model's input tensor: Pillow's
 * antialiased bilinear resize (same coefficients, same fixed-point rounding), the native-resolution centre crop,
 * the named views `[crop-]OP` with OP one of original, flip, bright+N, bright-N, [-1, 1] scaling and the model's
 * input quantisation, all in float32 arithmetic as NumPy does it.
 */

const PRECISION_BITS = 32 - 8 - 2; // Pillow's fixed point for 8-bit images

/** An RGB image: {width, height, data: Uint8Array of width*height*3}. */
export function rgbImage(width, height, data = new Uint8Array(width * height * 3)) {
  return { width, height, data };
}

/** RGBA pixels (canvas ImageData order, not premultiplied) over white, as an RGB image. */
export function rgbOverWhite(width, height, rgba) {
  const out = rgbImage(width, height);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    const alpha = rgba[i + 3];
    for (let c = 0; c < 3; c++) out.data[j + c] = Math.round((rgba[i + c] * alpha + 255 * (255 - alpha)) / 255);
  }
  return out;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // bilinear support 1.0
  const kernelSize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * kernelSize);
  const ww = new Float64Array(kernelSize);
  for (let xx = 0; xx < outSize; xx++) {
    const centre = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(centre - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(centre + support + 0.5)) - xmin;
    let sum = 0;
    const ss = 1 / filterScale; // multiplied, not divided: the same rounding as Pillow
    for (let x = 0; x < xmax; x++) {
      const distance = Math.abs((x + xmin - centre + 0.5) * ss);
      ww[x] = distance < 1 ? 1 - distance : 0;
      sum += ww[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? ww[x] / sum : ww[x];
      weights[xx * kernelSize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, kernelSize };
}

function clip8(value) {
  if (value >= 2 ** (PRECISION_BITS + 8)) return 255;
  if (value <= 0) return 0;
  return Math.floor(value / 2 ** PRECISION_BITS);
}

// One pass of Pillow's separable resample along x (horizontal) or y (vertical), in its 8-bit fixed point.
function horizontalPass(image, width) {
  const { bounds, weights, kernelSize } = coefficients(image.width, width);
  const out = rgbImage(width, image.height);
  for (let y = 0; y < image.height; y++) {
    const row = y * image.width * 3;
    for (let x = 0; x < width; x++) {
      const xmin = bounds[x * 2];
      const xmax = bounds[x * 2 + 1];
      for (let c = 0; c < 3; c++) {
        let sum = 1 << (PRECISION_BITS - 1);
        for (let k = 0; k < xmax; k++) sum += image.data[row + (xmin + k) * 3 + c] * weights[x * kernelSize + k];
        out.data[(y * width + x) * 3 + c] = clip8(sum);
      }
    }
  }
  return out;
}

function verticalPass(image, height) {
  const { bounds, weights, kernelSize } = coefficients(image.height, height);
  const out = rgbImage(image.width, height);
  const stride = image.width * 3;
  for (let y = 0; y < height; y++) {
    const ymin = bounds[y * 2];
    const ymax = bounds[y * 2 + 1];
    for (let x = 0; x < stride; x++) {
      let sum = 1 << (PRECISION_BITS - 1);
      for (let k = 0; k < ymax; k++) sum += image.data[(ymin + k) * stride + x] * weights[y * kernelSize + k];
      out.data[y * stride + x] = clip8(sum);
    }
  }
  return out;
}

/**
 * Resize an RGB image to width x height as Pillow's Image.resize(..., BILINEAR) does: two rounded 8-bit passes.
 * The order of the passes changes the result by a level here and there; the Pillow this project installs (13)
 * resizes vertically first when the height shrinks by more than twice as many pixels as the width does, else
 * horizontally first (found by comparing with Pillow on all sizes; tests/test_extension_pixels.py holds it).
 */
export function resizeBilinear(image, width, height) {
  const pass = (img, axis) => (axis === "x" ? (img.width === width ? img : horizontalPass(img, width)) : img.height === height ? img : verticalPass(img, height));
  const verticalFirst = height < image.height && image.height - height > 2 * (image.width - width);
  return verticalFirst ? pass(pass(image, "y"), "x") : pass(pass(image, "x"), "y");
}

// Pillow's division_UINT32(n, 8): 2^32 / (256 n) in float32, truncated; the mean is (sum + n/2) * this >> 24.
function reduceMultiplier(count) {
  return Math.trunc(Math.fround(2 ** 32 / (256 * count)));
}

/**
 * Box-downscale by whole factors (Pillow's Image.reduce): each output pixel is the rounded mean of its block;
 * the blocks on the right and bottom edges may be smaller. Output size ceil(width / fx) x ceil(height / fy).
 */
export function reduceBox(image, fx, fy) {
  if (fx === 1 && fy === 1) return image;
  const width = Math.ceil(image.width / fx);
  const height = Math.ceil(image.height / fy);
  const out = rgbImage(width, height);
  for (let y = 0; y < height; y++) {
    const y1 = Math.min(image.height, (y + 1) * fy);
    for (let x = 0; x < width; x++) {
      const x1 = Math.min(image.width, (x + 1) * fx);
      const count = (y1 - y * fy) * (x1 - x * fx);
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let yy = y * fy; yy < y1; yy++) for (let xx = x * fx; xx < x1; xx++) sum += image.data[(yy * image.width + xx) * 3 + c];
        out.data[(y * width + x) * 3 + c] = Math.floor(((sum + Math.floor(count / 2)) * reduceMultiplier(count)) / 2 ** 24);
      }
    }
  }
  return out;
}

/**
 * What edge_runtime.preprocess.load_image does to large images before the resize: a JPEG is decoded at 1/2,
 * 1/4 or 1/8 scale while both sides stay >= minSide (Pillow's draft; here a box mean of the full decode, which
 * approximates the DCT scaling), then any image is box-reduced by whole factors while both sides stay >= minSide.
 */
export function shrinkLarge(image, format, minSide) {
  let shrunk = image;
  if (format === "JPEG") {
    const scale = [8, 4, 2, 1].find((s) => s <= Math.min(Math.floor(image.width / minSide), Math.floor(image.height / minSide))) ?? 1;
    shrunk = reduceBox(image, scale, scale);
  }
  return reduceBox(shrunk, Math.max(1, Math.floor(shrunk.width / minSide)), Math.max(1, Math.floor(shrunk.height / minSide)));
}

/** The size x size centre at the image's own resolution; a smaller image is first enlarged to that short side. */
export function centreCrop(image, size) {
  let source = image;
  const short = Math.min(image.width, image.height);
  if (short < size) {
    const scale = size / short;
    // Python's round() is half to even; the products here are never exactly .5 for real image sizes.
    source = resizeBilinear(image, Math.max(size, Math.round(image.width * scale)), Math.max(size, Math.round(image.height * scale)));
  }
  const left = Math.floor((source.width - size) / 2);
  const top = Math.floor((source.height - size) / 2);
  const out = rgbImage(size, size);
  for (let y = 0; y < size; y++) {
    const start = ((top + y) * source.width + left) * 3;
    out.data.set(source.data.subarray(start, start + size * 3), y * size * 3);
  }
  return out;
}

/** [geometry, pixel operation] of a view name: "crop-flip" -> ["crop", "flip"], "bright+5" -> ["whole", "bright+5"]. */
export function splitView(name) {
  if (name === "crop") return ["crop", "original"];
  if (name.startsWith("crop-")) return ["crop", name.slice("crop-".length)];
  return ["whole", name];
}

const GEOMETRIES = { whole: (image, size) => resizeBilinear(image, size, size), crop: centreCrop };

/** The pixel operation's value map on one pixel value v (float32, as preprocess.view), and whether it mirrors. */
function pixelOperation(name) {
  if (name === "original") return { map: (v) => v, mirrored: false };
  if (name === "flip") return { map: (v) => v, mirrored: true };
  const match = /^bright([+-]\d+(?:\.\d+)?)$/.exec(name);
  if (!match) throw new Error(`unknown view ${JSON.stringify(name)}; known: [crop-]original, flip, bright+N, bright-N`);
  const factor = Math.fround(1 + Number(match[1]) / 100);
  return { map: (v) => Math.min(255, Math.max(0, Math.fround(v * factor))), mirrored: false };
}

/**
 * A function from an RGB image to the model input for `views`: a typed array (views.length, size, size, 3) in the
 * input's type. input = {type: "float32"|"int8"|"uint8", scale, zeroPoint} (scale/zeroPoint for quantised types).
 */
export function viewEncoder(views, size, input) {
  const operations = views.map((name) => {
    const [geometry, operation] = splitView(name);
    const { map, mirrored } = pixelOperation(operation);
    const table = new (typedArrayFor(input.type))(256);
    for (let v = 0; v < 256; v++) table[v] = encodeValue(map(v), input);
    return { geometry, table, mirrored };
  });
  const geometries = [...new Set(operations.map((operation) => operation.geometry))];

  return function encode(image) {
    const bases = Object.fromEntries(geometries.map((geometry) => [geometry, GEOMETRIES[geometry](image, size).data]));
    const plane = size * size * 3;
    const out = new (typedArrayFor(input.type))(views.length * plane);
    operations.forEach(({ geometry, table, mirrored }, index) => {
      const base = bases[geometry];
      const offset = index * plane;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const from = (y * size + (mirrored ? size - 1 - x : x)) * 3;
          const to = offset + (y * size + x) * 3;
          out[to] = table[base[from]];
          out[to + 1] = table[base[from + 1]];
          out[to + 2] = table[base[from + 2]];
        }
      }
    });
    return out;
  };
}

// normalise (x / 127.5 - 1 in float32), then quantise as encoding.quantise: round half to even, clip.
function encodeValue(value, input) {
  const normalised = Math.fround(Math.fround(value / 127.5) - 1);
  if (input.type === "float32") return normalised;
  const [lo, hi] = input.type === "int8" ? [-128, 127] : [0, 255];
  const q = Math.fround(Math.fround(normalised / Math.fround(input.scale)) + input.zeroPoint);
  return Math.min(hi, Math.max(lo, roundHalfEven(q)));
}

function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function typedArrayFor(type) {
  const types = { float32: Float32Array, int8: Int8Array, uint8: Uint8Array };
  if (!types[type]) throw new Error(`unsupported model input type ${type}`);
  return types[type];
}

/** P(ai) per view from the raw model output (dequantised for int8/uint8 outputs). */
export function dequantise(values, output) {
  if (output.type === "float32") return Array.from(values);
  return Array.from(values, (q) => (q - output.zeroPoint) * output.scale);
}
