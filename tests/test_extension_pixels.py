"""The extension's JavaScript preprocessing (extension/src/lib/pixels.js, run by Node) against edge_runtime's on real
dataset images: the model input tensor for every view kind, whole-image and native-resolution crop, must be
identical byte for byte to `quantise(preprocess.view_batch(...))` with each bundled model's (default, paper) input type (float32, or
int8/uint8 with its quantisation), from the same decoded RGB pixels. (Decoding itself differs between browsers and Pillow; the browser parity test
covers that.)"""
from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime import bundle, preprocess
from edge_runtime.encoding import quantise
from edge_runtime.interpreter import make_interpreter
from test_extension_e2e import REPO

VIEWS = ["original", "flip", "bright+5", "bright-5", "crop", "crop-flip"]
# Sizes that exercise downscaling both ways and odd sizes; the two images with the shortest sides are added (under
# 224 px: the whole view enlarges one side, the crop enlarges the image first).
SOURCES = {"danbooru-facecrops": 1, "agbooks-2018": 2, "frenzyexists-wallpapers-2021": 1, "animaginexl4-gallery": 1,
           "wfjsw-prompt-builder": 1}

ENCODE_IN_NODE = """
import { viewEncoder } from "./extension/src/lib/pixels.js";
import { modelIo } from "./extension/src/lib/tflite_io.js";
import { readFileSync } from "node:fs";
const request = JSON.parse(readFileSync(0, "utf8"));
const io = modelIo(new Uint8Array(readFileSync(request.model)));
const encode = viewEncoder(request.views, 224, io.input);
const out = encode({ width: request.width, height: request.height, data: Buffer.from(request.data, "base64") });
process.stdout.write(JSON.stringify({ input: io.input, tensor: Buffer.from(out.buffer).toString("base64") }));
"""


def js_tensor(img: Image.Image, model: Path) -> tuple[dict, np.ndarray]:
    request = {"model": str(model), "views": VIEWS, "width": img.width, "height": img.height,
               "data": base64.b64encode(np.asarray(img, dtype=np.uint8).tobytes()).decode()}
    run = subprocess.run(["node", "--input-type=module", "-e", ENCODE_IN_NODE], cwd=REPO, input=json.dumps(request),
                         capture_output=True, text=True, timeout=120, check=True)
    answer = json.loads(run.stdout)
    dtype = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8}[answer["input"]["type"]]
    return answer["input"], np.frombuffer(base64.b64decode(answer["tensor"]), dtype=dtype)


@pytest.mark.parametrize("name", ["default", "paper"])  # the models the extension bundles
def test_javascript_views_equal_the_runtimes_byte_for_byte(manifest_rows, data_root, name):
    model = bundle.bundled_models()[name]
    input_detail = make_interpreter(model.read_bytes(), None, None).get_input_details()[0]
    by_short_side = sorted(manifest_rows, key=lambda r: (min(int(r["width"]), int(r["height"])), r["sha256"]))
    rows = [r for source, n in SOURCES.items() for r in [r for r in manifest_rows if r["source"] == source][:n]]
    paths = [data_root / r["path"] for r in rows + by_short_side[:2]]
    sizes = set()
    for path in paths:
        img = preprocess.load_image(path)
        sizes.add(img.size)
        js_input, tensor = js_tensor(img, model)
        assert js_input["type"] == np.dtype(input_detail["dtype"]).name
        if js_input["type"] != "float32":
            assert js_input["scale"] == pytest.approx(input_detail["quantization"][0], rel=1e-7)
            assert js_input["zeroPoint"] == input_detail["quantization"][1]
        expected = quantise(preprocess.view_batch(img, VIEWS), input_detail)
        got = tensor.reshape(expected.shape)
        for i, view in enumerate(VIEWS):
            assert np.array_equal(got[i], expected[i]), \
                f"{path.name} {img.size} view {view}: {np.count_nonzero(got[i] != expected[i])} values differ"
    assert any(min(size) < 224 for size in sizes) and any(min(size) > 224 for size in sizes), sizes


SIZE_RULES_IN_NODE = """
import { sizeProblem } from "./extension/src/lib/image_limits.js";
import { readFileSync } from "node:fs";
const cases = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(cases.map(([w, h, format]) => sizeProblem(w, h, format)?.kind ?? null)));
"""


def python_size_problem(width: int, height: int, fmt: str) -> str | None:
    try:
        preprocess.check_pixels((width, height), fmt)
        preprocess.require_judgeable(width, height)
    except preprocess.ImageError as exc:
        return "too-large" if "too large" in exc.reason else "too-small"
    return None


def test_javascript_size_rules_equal_the_runtimes():
    sides = [1, 31, 32, 33, 100, 512, 513, 600, 3000, 3464, 3465, 4000, 4473, 6000, 6001, 9000]
    cases = [[w, h, fmt] for w in sides for h in sides for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP")]
    run = subprocess.run(["node", "--input-type=module", "-e", SIZE_RULES_IN_NODE], cwd=REPO, input=json.dumps(cases),
                         capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(run.stdout)
    expected = [python_size_problem(*case) for case in cases]
    assert {kind for kind in expected} == {None, "too-large", "too-small"}
    assert [(case, g, e) for case, g, e in zip(cases, got, expected) if g != e] == []
