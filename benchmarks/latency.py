"""Latency of every TFLite variant against the Keras model with the paper's TTA; prints a markdown table.

    python benchmarks/latency.py                          # every bundled model (default, paper), Keras untrained
    python benchmarks/latency.py --models out/ --keras runs/v1

Per variant and thread count: p50/p95 of one invoke (batch 1), of the batch of all the model's views (its
sidecar's `tta_views`, one invoke), and end to end (file on disk -> verdict, all views) for a 1024x1024 JPEG
and a 512x512 WebP made from a real dataset image. The Keras path is the paper's: decode, then one `predict`
call per view of the paper's 4-view TTA (and, for reference, one batched `predict`). Weights do not change the
timings, so an untrained Keras model is fine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_runtime import Detector  # noqa: E402
from edge_runtime.bundle import bundled_models  # noqa: E402
from edge_runtime.preprocess import preprocess_tta  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SAMPLE = "ai/wfjsw-prompt-builder"  # 512x512 WebP renders
TARGET_E2E_MS = 10.0
TARGET_SPEEDUP = 50.0


def percentiles(fn, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """(p50, p95) wall time of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]


def make_test_images(folder: Path) -> dict[str, Path]:
    """A 1024x1024 JPEG (q90) and a 512x512 WebP (q90) from the first real 512px render of the dataset."""
    source = sorted((DATA / SAMPLE).iterdir())[0]
    img = Image.open(source).convert("RGB")
    paths = {"jpeg1024": folder / "sample-1024.jpg", "webp512": folder / "sample-512.webp"}
    img.resize((1024, 1024), Image.LANCZOS).save(paths["jpeg1024"], quality=90)
    img.resize((512, 512), Image.LANCZOS).save(paths["webp512"], quality=90)
    return paths


def time_invoke(detector: Detector, batch_size: int, repeats: int) -> tuple[float, float]:
    """Invoke alone (input already set), for one batch size."""
    interpreter = detector._interpreter(batch_size)
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    return percentiles(interpreter.invoke, repeats)


def bench_variant(path: Path, threads: int, images: dict[str, Path], repeats: int) -> dict:
    detector = Detector(path, threads=threads)
    row = {"invoke1": time_invoke(detector, 1, repeats),
           "invoke_tta": time_invoke(detector, len(detector.views), repeats), "views": len(detector.views)}
    for name, image in images.items():
        row[name] = percentiles(lambda: detector.check(image, tta="always"), repeats)
    return row


def keras_model(spec: str | None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    if spec:
        path = Path(spec)
        return keras.models.load_model(path / "model.keras" if path.is_dir() else path, compile=False)
    from trainer.model import build_model
    return build_model("enhanced", weights=None)


def bench_keras(model, images: dict[str, Path], repeats: int) -> dict:
    """The paper's TTA in Keras: one predict per view (and one batched predict), decode included."""
    def per_view(image):
        batch = preprocess_tta(image)
        return np.mean([model.predict(batch[i:i + 1], verbose=0) for i in range(len(batch))])

    def batched(image):
        return float(np.mean(model.predict(preprocess_tta(image), verbose=0)))

    return {name: {"per_view": percentiles(lambda: per_view(image), repeats),
                   "batched": percentiles(lambda: batched(image), repeats)} for name, image in images.items()}


def variant_models(models_dir: str | None) -> dict[str, Path]:
    """row name -> .tflite: a converter output folder's variants (model-<variant>.tflite), or the bundled models
    as "NAME (variant)" (a file bundled under two names, such as default and float16, once: the default's)."""
    if models_dir:
        found = {p.stem[len("model-"):]: p for p in sorted(Path(models_dir).glob("model-*.tflite"))}
    else:
        found, seen = {}, set()
        for name, path in sorted(bundled_models().items(), key=lambda item: item[0] != "default"):
            if path.read_bytes() not in seen:
                seen.add(path.read_bytes())
                found[f"{name} ({Detector(path).info()['variant']})"] = path
    if not found:
        raise SystemExit(f"no models found in {models_dir or 'the bundled models'}")
    return found


def fmt(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.1f} / {pair[1]:.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="converter output folder with model-<variant>.tflite (default: every bundled "
                                         "model: default, paper, ...)")
    parser.add_argument("--keras", help="run directory or .keras file (default: untrained model, same speed)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--keras-repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras baseline")
    args = parser.parse_args(argv)

    models = variant_models(args.models)
    with tempfile.TemporaryDirectory() as tmp:
        images = make_test_images(Path(tmp))
        rows = {(v, t): bench_variant(p, t, images, args.repeats) for v, p in models.items() for t in args.threads}
        keras_times = None if args.no_keras else bench_keras(keras_model(args.keras), images, args.keras_repeats)

    print(f"Latency in ms, p50 / p95 ({args.repeats} runs; Keras {args.keras_repeats}); all of a model's views in one "
          f"invoke; {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} (other work on the machine "
          "inflates every figure)\n")
    print("| model | threads | invoke (1 view) | invoke (all views) | e2e 1024px JPEG, all views | "
          "e2e 512px WebP, all views |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for (variant, threads), row in rows.items():
        print(f"| {variant} | {threads} | {fmt(row['invoke1'])} | {fmt(row['invoke_tta'])} ({row['views']}) | "
              f"{fmt(row['jpeg1024'])} | {fmt(row['webp512'])} |")
    if keras_times:
        for mode, label in (("per_view", "4 predict calls (paper)"), ("batched", "1 batched predict")):
            print(f"| Keras, {label} | all | | | {fmt(keras_times['jpeg1024'][mode])} "
                  f"| {fmt(keras_times['webp512'][mode])} |")

    print("\nTargets:")
    variant = Detector().info()["variant"]
    shipped = next((name for name in models if name in (variant, f"default ({variant})")), None)
    if shipped is None:
        print(f"- the shipped variant ({variant}) is not among the benchmarked models: e2e target not measured")
        return 0
    best = min(rows[(shipped, t)]["jpeg1024"][0] for t in args.threads)
    print(f"- shipped variant ({shipped}) e2e 1024px JPEG with all {rows[(shipped, args.threads[0])]['views']} views, "
          f"median <= {TARGET_E2E_MS:.0f} ms: {best:.1f} ms -> {'met' if best <= TARGET_E2E_MS else 'MISSED'}")
    if keras_times:
        speedup = keras_times["jpeg1024"]["per_view"][0] / best
        print(f"- >= {TARGET_SPEEDUP:.0f}x faster than Keras TTA (paper's 4 predict calls): {speedup:.0f}x -> "
              f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'} "
              f"(vs one batched Keras predict: {keras_times['jpeg1024']['batched'][0] / best:.0f}x)")
    print("- directory scan and adaptive TTA: see benchmarks/speed.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
