"""Parity of each TFLite variant against the Keras model: agreement, probability error, accuracy/F1/AUC."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Mean |P(ai) TFLite - P(ai) Keras| accepted per variant on the same inputs. float32 differs by rounding only.
# Quantised variants move single probabilities much more where the sigmoid is steep (the trained model's
# int8 moved one test image by 0.6), so the bound is on the mean; the maximum is reported beside it.
MEAN_TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "dynamic": 0.02, "int8": 0.05}
# Full int8 may cost at most this much accuracy (percentage points) against float to be the default.
INT8_MAX_ACCURACY_DROP_PP = 0.5
# Preference when int8 is not good enough: smallest first.
FALLBACK_ORDER = ("dynamic", "float16", "float32")


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    """Accuracy, F1 and recall (positive class 'ai'), human false-positive rate, ROC AUC; labels: 1 ai, 0 human."""
    predicted = probabilities >= threshold
    positive = labels == 1
    tp = int(np.sum(predicted & positive))
    fp = int(np.sum(predicted & ~positive))
    fn = int(np.sum(~predicted & positive))
    return {"accuracy": float(np.mean(predicted == positive)), "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
            "ai_recall": tp / max(1, tp + fn), "human_fpr": fp / max(1, int(np.sum(~positive))),
            "auc": roc_auc(labels, probabilities)}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); None with a single class."""
    positives, negatives = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    if not positives or not negatives:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return float((np.sum(ranks[labels == 1]) - positives * (positives + 1) / 2) / (positives * negatives))


def compare(variant: str, reference: np.ndarray, probabilities: np.ndarray, labels: np.ndarray,
            threshold: float) -> dict:
    """A variant's probabilities against the Keras model's on the same inputs."""
    diff = np.abs(probabilities - reference)
    return {
        "within_tolerance": bool(diff.mean() <= MEAN_TOLERANCE[variant]),
        "top_label_agreement_pct": float(np.mean((probabilities >= threshold) == (reference >= threshold)) * 100),
        "max_abs_prob_diff": float(diff.max()),
        "mean_abs_prob_diff": float(diff.mean()),
        **classification_metrics(labels, probabilities, threshold),
    }


def recommend(results: dict) -> tuple[str, str]:
    """The variant the runtime should default to, and why: int8 when its accuracy is within 0.5 pp of float32.

    "Within" counts both ways: an int8 model far better than float32 has drifted from the model whose
    threshold was chosen, too. Otherwise the smallest variant within the limit.
    """
    float_accuracy = results["float32"]["accuracy"]
    gaps = {name: (r["accuracy"] - float_accuracy) * 100 for name, r in results.items()}
    limit = INT8_MAX_ACCURACY_DROP_PP
    if "int8" in results and abs(gaps["int8"]) <= limit:
        return "int8", f"int8 accuracy is {gaps['int8']:+.2f} pp from float32, within {limit} pp"
    fallback = next(n for n in FALLBACK_ORDER if n in results and abs(gaps[n]) <= limit)
    why = (f"int8 accuracy is {gaps['int8']:+.2f} pp from float32, outside {limit} pp"
           if "int8" in results else "int8 was not converted")
    return fallback, f"{why}; {fallback} is the smallest variant within {limit} pp"


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write parity.json and parity.md into out_dir."""
    json_path, md_path = out_dir / "parity.json", out_dir / "parity.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path


def markdown(report: dict) -> str:
    """The parity report as a markdown document."""
    keras_metrics = report["keras"]
    lines = [
        f"# TFLite parity report: {report['model']}",
        "",
        f"Images: {report['images']['count']} ({report['images']['description']}); probability = mean over the "
        f"views {', '.join(report['views'])}; threshold {report['threshold']:.4f}. Probabilities compared with "
        "the Keras model on the same preprocessed inputs.",
        "",
        f"Keras model: accuracy {keras_metrics['accuracy']:.4f}, F1 {keras_metrics['f1']:.4f}, AI recall "
        f"{keras_metrics['ai_recall']:.4f}, human FPR {keras_metrics['human_fpr']:.4f}, AUC "
        f"{fmt(keras_metrics['auc'])}. Delegate-friendly graph vs Keras: max |diff| "
        f"{report['delegate_graph_max_abs_diff']:.2e}.",
        "",
        "| variant | size (MB) | label agreement % | max abs diff | mean abs diff (tolerance) | accuracy | F1 "
        "| AI recall | human FPR | AUC |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in report["variants"].items():
        tolerance = f"{MEAN_TOLERANCE[name]:g}" + ("" if r["within_tolerance"] else ", EXCEEDED")
        lines.append(f"| {name} | {r['size_bytes'] / 1e6:.2f} | {r['top_label_agreement_pct']:.2f} | "
                     f"{r['max_abs_prob_diff']:.2e} | {r['mean_abs_prob_diff']:.2e} ({tolerance}) | "
                     f"{r['accuracy']:.4f} | {r['f1']:.4f} | {r['ai_recall']:.4f} | {r['human_fpr']:.4f} | "
                     f"{fmt(r['auc'])} |")
    lines += ["", f"**Default variant: {report['recommended']}** ({report['recommendation_reason']}).", "",
              "## Ops", ""]
    for name, r in report["variants"].items():
        extra = " — GPU delegate check passed" if r.get("gpu_compatible") else ""
        lines.append(f"- {name} (input {r['input_type']}, output {r['output_type']}){extra}: {', '.join(r['ops'])}")
    return "\n".join(lines) + "\n"


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
