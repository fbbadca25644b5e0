"""Ablation: train every variant on the same split and cached activations; the paper's table 5 layout."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from trainer.model import VARIANTS


def ablation(config, out: Path, variants: list[str] | None = None) -> str:
    """Train + evaluate each variant into out/VARIANT (sharing out/features.npz); return a markdown table.

    The frozen part of the backbone is the same in every variant, so one activation cache serves all.
    A variant whose run directory already holds a report is reused (an interrupted ablation resumes).
    """
    from trainer.evaluate import evaluate_cached
    from trainer.train import train

    out.mkdir(parents=True, exist_ok=True)
    rows = ["| Model | Accuracy | Precision | Recall | F1 | AUC | Accuracy (TTA) | Accuracy (TTA, format-eq.) | Parameters |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for variant in variants or list(VARIANTS):
        run = out / variant
        if (run / "report" / "report.json").exists():  # finished earlier: resume, do not retrain
            report = json.loads((run / "report" / "report.json").read_text())
        else:
            tail = train(replace(config, variant=variant), run, cache=out / "features.npz")["tail"]
            report = evaluate_cached(run, tail, out / "features.npz")
        params = json.loads((run / "config.json").read_text())["parameters"]["total"]
        s, t, e = report["standard"], report["tta"], report["tta_equalised"]
        rows.append(f"| {variant} | {s['accuracy']:.2%} | {s['precision']:.2%} | {s['recall']:.2%} | {s['f1']:.2%} | "
                    f"{s['auc']:.4f} | {t['accuracy']:.2%} | {e['accuracy']:.2%} | {params:,} |")
    table = "\n".join(rows) + "\n"
    (out / "ablation.md").write_text(table)
    return table
