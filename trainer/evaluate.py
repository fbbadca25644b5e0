"""Test-split report: standard and TTA predictions, plain and format-equalised; JSON, markdown, PNG plots."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import keras
import numpy as np
from sklearn import metrics as skm
from tqdm import tqdm

from edge_runtime.preprocess import TTA_VIEWS, load_image, resize, tta_batch
from trainer import plots
from trainer.augment import format_equalise
from trainer.data import CROP_SOURCES, LABELS, load_dataset

BATCH_IMAGES = 16


def read_test_split(run: Path, data: str | None = None) -> list[tuple[Path, int, str]]:
    """(path, label, source) of the run's test split; `data` re-roots the paths at another dataset copy."""
    config = json.loads((run / "config.json").read_text())
    old_root = Path(config["data"])
    rows = []
    with open(run / "split.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] == "test":
                path = Path(row["path"])
                if data:
                    path = Path(data) / path.relative_to(old_root)
                rows.append((path, LABELS.index(row["label"]), row["source"]))
    return rows


def predict_views(model: keras.Model, paths: list[Path], equalise: bool = False) -> np.ndarray:
    """P(ai) of every TTA view of every image: (N, len(TTA_VIEWS))."""
    out = []
    desc = "predicting (format-equalised)" if equalise else "predicting"
    for i in tqdm(range(0, len(paths), BATCH_IMAGES), desc=desc, unit="batch", file=sys.stderr):
        batch = []
        for path in paths[i:i + BATCH_IMAGES]:
            img = load_image(path)
            batch.append(tta_batch(resize(format_equalise(img) if equalise else img)))
        probs = model.predict_on_batch(np.concatenate(batch))
        out.append(np.asarray(probs).reshape(-1, len(TTA_VIEWS)))
    return np.concatenate(out)


def scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Accuracy, balanced accuracy, per-class precision/recall/F1, AUC and confusion matrix."""
    pred = (p >= threshold).astype(int)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    both = len(set(y.tolist())) == 2
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)) if both else None,
        "precision": float(precision[1]), "recall": float(recall[1]), "f1": float(f1[1]),
        "per_class": {LABELS[c]: {"precision": float(precision[c]), "recall": float(recall[c]),
                                  "f1": float(f1[c]), "support": int(support[c])} for c in (0, 1)},
        "auc": float(skm.roc_auc_score(y, p)) if both else None,
        "confusion": skm.confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "threshold": threshold,
    }


def per_source(y, p, sources, threshold) -> dict:
    """Accuracy per data source (human full illustrations are where false positives hurt most)."""
    out = {}
    for source in sorted(set(sources)):
        mask = np.array(sources) == source
        out[source] = {"n": int(mask.sum()), "accuracy": float(((p[mask] >= threshold) == y[mask]).mean())}
    return out


def evaluate(run: Path, data: str | None = None, sources: list[str] | None = None) -> dict:
    """Evaluate run directory `run` end to end from image files with the Keras model.

    By default on the run's test split; with `sources`, on every image of those dataset sources instead
    (for leave-sources-out runs), written to run/report-heldout.
    """
    model = keras.models.load_model(run / "model.keras", compile=False)
    if sources:
        dataset = load_dataset(data or json.loads((run / "config.json").read_text())["data"], set(sources))
        rows = [(s.path, s.label, s.source) for s in dataset.samples]
    else:
        rows = read_test_split(run, data)
    paths = [r[0] for r in rows]
    return write_report(run, rows, predict_views(model, paths), predict_views(model, paths, equalise=True),
                        "report-heldout" if sources else "report")


def evaluate_cached(run: Path, tail: keras.Model, cache: Path) -> dict:
    """Evaluate from the cached activations of the test images' views (`trainer.features`).

    The frozen backbone prefix is exactly the computation the cache holds, so this equals `evaluate`
    on the files while skipping the expensive part; `evaluate` remains the end-to-end check.
    """
    from trainer import features
    from trainer.train import tail_predict

    cached = features.load(cache)
    return write_report(run, read_test_split(run), tail_predict(tail, cached["test"]),
                        tail_predict(tail, cached["test_equalised"]))


def write_report(run: Path, rows: list, plain: np.ndarray, equalised: np.ndarray, name: str = "report") -> dict:
    """Score per-view predictions (N, V) of (path, label, source) rows; writes run/NAME/{report.json, .md, .png}."""
    threshold = json.loads((run / "threshold.json").read_text())["threshold"]
    y = np.array([r[1] for r in rows])
    sources = [r[2] for r in rows]
    predictions = {"standard": plain[:, 0], "tta": plain.mean(axis=1),
                   "standard_equalised": equalised[:, 0], "tta_equalised": equalised.mean(axis=1)}
    report = {kind: scores(y, p, threshold) for kind, p in predictions.items()}
    full_humans = np.array([s not in CROP_SOURCES for s in sources]) & (y == 0)
    for kind, p in predictions.items():
        report[kind]["per_source"] = per_source(y, p, sources, threshold)
        report[kind]["human_full_fpr"] = float((p[full_humans] >= threshold).mean()) if full_humans.any() else None
    report["n_test"] = len(y)
    out = run / name
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(markdown(report))
    plots.roc(y, predictions, out / "roc.png")
    plots.confusions({k: report[k]["confusion"] for k in ("standard", "tta")}, out / "confusion.png")
    if (run / "history.json").exists():
        plots.training_curves(json.loads((run / "history.json").read_text()), out / "training_curves.png")
    print(markdown(report))
    return report


def markdown(report: dict) -> str:
    """The paper's tables 1-3 layout: overall, TTA vs standard, per class; plus format-equalised."""
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"

    lines = ["| Evaluation | Accuracy | Balanced acc. | Precision | Recall | F1 | AUC | Human full-illustration FPR |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("standard", "tta", "standard_equalised", "tta_equalised"):
        r = report[name]
        auc = "n/a" if r["auc"] is None else f"{r['auc']:.4f}"
        lines.append(f"| {name} | {pct(r['accuracy'])} | {pct(r['balanced_accuracy'])} | {pct(r['precision'])} | "
                     f"{pct(r['recall'])} | {pct(r['f1'])} | {auc} | {pct(r['human_full_fpr'])} |")
    lines += ["", "| Class | Precision (std / TTA) | Recall (std / TTA) | F1 (std / TTA) | Support |",
              "| --- | --- | --- | --- | --- |"]
    for label in LABELS:
        s, t = report["standard"]["per_class"][label], report["tta"]["per_class"][label]
        lines.append(f"| {label} | {pct(s['precision'])} / {pct(t['precision'])} | {pct(s['recall'])} / "
                     f"{pct(t['recall'])} | {pct(s['f1'])} / {pct(t['f1'])} | {s['support']} |")
    lines += ["", "| Source | n | Accuracy (TTA) | Accuracy (TTA, format-equalised) |", "| --- | --- | --- | --- |"]
    for source, r in report["tta"]["per_source"].items():
        eq = report["tta_equalised"]["per_source"][source]["accuracy"]
        lines.append(f"| {source} | {r['n']} | {pct(r['accuracy'])} | {pct(eq)} |")
    lines.append(f"\nThreshold {report['tta']['threshold']:.3f} (chosen on the validation split); "
                 f"{report['n_test']} test images.")
    return "\n".join(lines) + "\n"
