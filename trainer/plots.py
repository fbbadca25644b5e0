"""PNG plots for reports: ROC curves, confusion matrices, training curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from trainer.data import LABELS  # noqa: E402


def roc(y: np.ndarray, predictions: dict, path: Path) -> None:
    """One ROC curve per prediction set (e.g. standard, TTA, format-equalised)."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    for name, p in predictions.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false-positive rate (human flagged as AI)", ylabel="true-positive rate (AI caught)", title="ROC")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def confusions(matrices: dict, path: Path) -> None:
    """Confusion matrices side by side (rows: true label, columns: predicted)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.4), dpi=100)
    for ax, (name, matrix) in zip(np.atleast_1d(axes), matrices.items()):
        matrix = np.array(matrix)
        ax.imshow(matrix, cmap="Blues")
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=LABELS, yticklabels=LABELS,
               xlabel="predicted", ylabel="true", title=name)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def training_curves(history: dict, path: Path) -> None:
    """Loss and accuracy per epoch, both stages in sequence, train vs validation."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), dpi=100)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        offset = 0
        for stage, h in history.items():
            epochs = np.arange(offset + 1, offset + len(h.get(metric, [])) + 1)
            ax.plot(epochs, h.get(metric, []), label=f"{stage} train")
            ax.plot(epochs, h.get(f"val_{metric}", []), linestyle="--", label=f"{stage} val")
            offset += len(epochs)
        ax.set(xlabel="epoch", title=metric)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def per_source_bars(loso: dict, path: Path, title: str) -> None:
    """Accuracy per held-out source (clean files and each degraded tier), AI and human sources apart."""
    tiers = list(loso)
    sources = list(loso[tiers[0]]["per_source"])
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(sources)), 4), dpi=100)
    width = 0.8 / len(tiers)
    for i, tier in enumerate(tiers):
        values = [loso[tier]["per_source"][s]["accuracy"] for s in sources]
        ax.bar(np.arange(len(sources)) + i * width, values, width, label=tier)
    labels = [f"{s}\n({loso[tiers[0]]['per_source'][s]['label']})" for s in sources]
    ax.set_xticks(np.arange(len(sources)) + width * (len(tiers) - 1) / 2, labels, rotation=60, ha="right", fontsize=7)
    ax.axhline(0.9, color="grey", linestyle=":")
    ax.set(ylim=(0, 1), ylabel="accuracy on the held-out source", title=f"leave-sources-out: {title}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
