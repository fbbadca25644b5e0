"""Leave-sources-out evaluation of the v2 recipes on cached block features (`python -m trainer loso`).

Whole sources are held out: each fold trains a recipe's head on every other source and predicts the
held-out images exactly as the runtime will (the recipe's views of the clean file, P averaged). The
out-of-fold predictions of all folds are pooled; the threshold, the unsure band and the adaptive
escalation band are chosen on them, never on an in-domain split.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers
from sklearn.metrics import roc_auc_score

from edge_runtime import adaptive
from trainer.data import LABELS, Sample, split
from trainer.finetune import FineTune
from trainer.model import VARIANTS

# Every source of data v3 with >= 20 images is held out in exactly one fold, each fold holding out at least
# one AI and one human source. The face crops of both classes are held out together with the renders the AI
# crops were cut from (they share manifest groups): a fold that trained on face crops of one class only would
# learn the framing shortcut instead of the class. The small agbooks-2018 is the human side of fold 5. The two
# folds new in data v3 hold out SD1.5 checkpoints the model has never seen: the two one-prompt checkpoint
# comparisons with the visual novel, and the tutorial's twice-lossy JPEGs with the webcomic tiles.
FOLDS = (
    ("wfjsw-prompt-builder", "wfjsw-prompt-builder-facecrops", "danbooru-facecrops", "mimvoid-wallpapers"),
    ("jamesflare-codex", "agbooks-2021"),
    ("animaginexl4-gallery", "frenzyexists-wallpapers-2021"),
    ("hdm-xut", "style2paints"),
    ("tsunamori-novelai", "shm-image-magic", "agbooks-2018"),
    ("etherportal-modelexamples", "wyrde-comfy-modelcompare", "katawa-shoujo"),
    ("zuntan-pochigacha", "peppercarrot-printbook"),
)
EVAL_TIERS = ("clean", "thumb", "web", "equalised")
MAX_HUMAN_FPR = 0.03
UNSURE_SHARE = 0.10  # the unsure band holds this share of out-of-fold predictions, nearest the threshold
BLOCKS_12_15 = ("block_12_add", "block_13_project_BN", "block_14_add", "block_15_add")
BLOCKS = ("block_12_add", "block_13_project_BN", "block_14_add", "block_15_add", "block_16_project_BN",
          "block_13_expand_relu", "block_14_expand_relu", "block_15_expand_relu", "block_16_expand_relu")


@dataclass(frozen=True)
class Recipe:
    """A head on frozen block features: which layers, which views, which training tiers, which head."""

    name: str
    head: str  # "linear", a trainer.model variant name (the paper's heads, stage 1 only), or "ensemble"
    layers: tuple = ("out_relu",)
    views: tuple = ("original",)  # the runtime's views, first = primary
    # "clean", "aug" (robustness augmentations), "thumb", "web", "equalised", "corner" (native-resolution corners)
    train_tiers: tuple = ("clean",)
    source_balanced: bool = False
    finetune: FineTune | None = None  # also train the backbone's late blocks (on cached block-12 activations)
    # The human class weighs this many times the AI class in training: human art is what a false positive costs,
    # and the threshold rule (mean unseen-human FPR <= 3%) is set on it
    human_weight: float = 1.0
    about: str = ""


RECIPES = {r.name: r for r in (
    Recipe("paper-stage1", "enhanced", about="the paper's enhanced head, backbone frozen (stage 1 only), whole image"),
    Recipe("paper-stage1-aug", "enhanced", train_tiers=("clean", "aug"),
           about="+ robustness augmentation (thumbnails, JPEG q30-95, WebP, sharpen, colour, borders)"),
    Recipe("paper-stage1-crops", "enhanced", views=("original", "crop"), train_tiers=("clean", "aug"),
           about="+ native-resolution centre crop view beside the whole image"),
    Recipe("paper-ensemble", "ensemble", train_tiers=("clean", "aug"),
           about="0.6 x enhanced + 0.4 x mean(baseline, no_attention, no_enhanced_head), stage 1, augmented"),
    Recipe("blocks-linear", "linear", layers=BLOCKS, train_tiers=("clean", "aug"), source_balanced=True,
           about="linear head on pooled blocks 12-16, whole image, augmented, source-balanced"),
    Recipe("blocks-linear-crops", "linear", layers=BLOCKS, views=("original", "crop"),
           train_tiers=("clean", "aug"), source_balanced=True, about="+ native-resolution crop view"),
    Recipe("blocks-linear-crops-alltiers", "linear", layers=BLOCKS, views=("original", "crop"),
           train_tiers=("clean", "aug", "thumb", "web", "equalised"), source_balanced=True,
           about="+ thumbnail, web-degraded and format-equalised copies as training views"),
    Recipe("blocks12-15-linear-crops-alltiers", "linear", layers=BLOCKS_12_15 + ("out_relu",),
           views=("original", "crop"), train_tiers=("clean", "aug", "thumb", "web", "equalised"),
           source_balanced=True, about="linear head on pooled blocks 12-15 and the last layer, whole image + "
                                       "crop, every training tier"),
    Recipe("lastlayer-linear-crops", "linear", layers=("out_relu",), views=("original", "crop"),
           train_tiers=("clean", "aug"), source_balanced=True, about="linear head on the last layer only"),
    Recipe("finetune13-lr1e-4-e4", "linear", layers=BLOCKS_12_15 + ("out_relu",), views=("original", "crop"),
           train_tiers=("clean", "aug", "thumb", "web", "equalised"), source_balanced=True,
           finetune=FineTune(from_block=13, lr=1e-4, weight_decay=1e-2, epochs=4),
           about="blocks12-15-linear-crops-alltiers, then blocks 13-16, the last conv and the head fine-tuned "
                 "together: AdamW 1e-4, weight decay 1e-2, 4 epochs of 1,024 source-balanced draws"),
    Recipe("finetune13-lr3e-5-e2", "linear", layers=BLOCKS_12_15 + ("out_relu",), views=("original", "crop"),
           train_tiers=("clean", "aug", "thumb", "web", "equalised"), source_balanced=True,
           finetune=FineTune(from_block=13, lr=3e-5, weight_decay=1e-2, epochs=2),
           about="as finetune13-lr1e-4-e4, but gentler: AdamW 3e-5, 2 epochs"),
    Recipe("finetune16-lr3e-4-e4", "linear", layers=BLOCKS_12_15 + ("out_relu",), views=("original", "crop"),
           train_tiers=("clean", "aug", "thumb", "web", "equalised"), source_balanced=True,
           finetune=FineTune(from_block=16, lr=3e-4, weight_decay=1e-2, epochs=4),
           about="as finetune13, but only block 16, the last conv and the head train, at AdamW 3e-4"),
    Recipe("augmented-linear", "linear", layers=BLOCKS_12_15 + ("out_relu",), views=("original", "crop"),
           train_tiers=("clean", "aug", "thumb", "web", "equalised"), source_balanced=True,
           about="blocks12-15-linear-crops-alltiers with --augmented-cache: 6 random-augmentation tiers of every "
                 "image join the training views (JPEG q20-95, WebP q10-95, crops down to a tenth of the picture, "
                 "thumbnails, blur, sharpening, colour, borders)"),
    Recipe("augmented-corners-linear", "linear", layers=BLOCKS_12_15 + ("out_relu",), views=("original", "crop"),
           train_tiers=("clean", "aug", "thumb", "web", "equalised", "corner"), source_balanced=True,
           about="augmented-linear, plus the clean image's four native-resolution 224 px corners as crop-view "
                 "training examples (training only: the runtime still runs the whole image and the centre crop)"),
    *(Recipe(f"augmented-corners-human{w}-linear", "linear", layers=BLOCKS_12_15 + ("out_relu",),
             views=("original", "crop"), train_tiers=("clean", "aug", "thumb", "web", "equalised", "corner"),
             source_balanced=True, human_weight=float(w),
             about=f"augmented-corners-linear with the human class weighted {w}x the AI class in training")
      for w in (2, 3, 4)),
    Recipe("augmented-finetune13-lr3e-5-e2", "linear", layers=BLOCKS_12_15 + ("out_relu",), views=("original", "crop"),
           train_tiers=("clean", "aug", "thumb", "web", "equalised"), source_balanced=True,
           finetune=FineTune(from_block=13, lr=3e-5, weight_decay=1e-2, epochs=2),
           about="finetune13-lr3e-5-e2 with --augmented-cache (the augmented tiers are drawn as training views)"),
)}


def check_folds(samples: list[Sample], folds=FOLDS, min_size: int = 20) -> None:
    """Raise ValueError unless every source is held out once, each fold has both classes, no group is split."""
    sources = defaultdict(set)
    for s in samples:
        sources[s.source].add(s.label)
    held = [src for fold in folds for src in fold]
    missing = {src for src in sources if src not in held and sum(x.source == src for x in samples) >= min_size}
    if missing or len(held) != len(set(held)):
        raise ValueError(f"sources not held out exactly once: {sorted(missing) or held}")
    for fold in folds:
        if {label for src in fold for label in sources[src]} != {0, 1}:
            raise ValueError(f"fold {fold} does not hold out both an AI and a human source")
    fold_of = {src: i for i, fold in enumerate(folds) for src in fold}
    groups = defaultdict(set)
    for s in samples:
        groups[s.group or str(s.path)].add(fold_of.get(s.source))
    if any(len(f) > 1 for f in groups.values()):
        raise ValueError("a manifest group straddles two folds")


class FeatureTable:
    """The cached block features with named columns ('tier/view') and named layer slices, and the cached
    block-12 activations of the same columns (`cut`, (N, columns, 14, 14, 96)) where fine-tuning needs them."""

    def __init__(self, features: np.ndarray, columns: list[str], slices: dict[str, slice],
                 cut: np.ndarray | None = None):
        self.features, self.slices, self.cut = features, slices, cut
        self.column = {name: i for i, name in enumerate(columns)}

    def select(self, rows: np.ndarray, column: str, layer_names) -> np.ndarray:
        """float32 features of `rows` in one column, restricted to some layers."""
        parts = [self.features[rows, self.column[column], self.slices[n]] for n in layer_names]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def inputs(self, rows: np.ndarray, column: str, recipe: Recipe) -> np.ndarray:
        """What the recipe's trained model takes for `rows` in one column: pooled features, or block-12 activations."""
        if recipe.finetune is None:
            return self.select(rows, column, recipe.layers)
        if self.cut is None:
            raise ValueError(f"{recipe.name} fine-tunes blocks: it needs the cached block-12 activations")
        return self.cut[rows, self.column[column]].astype(np.float32)

    def training_columns(self, recipe: Recipe) -> list[str]:
        """Every cached column a recipe trains on: its views (and their mirror images) in its tiers."""
        geometries = {"crop" if v.startswith("crop") else "original" for v in recipe.views}
        out = []
        for name in self.column:
            tier, view = name.split("/")
            tier_kind = tier.rstrip("0123456789")  # aug0 -> aug, corner3 -> corner
            geometry = "crop" if view.startswith("crop") else "original"
            if tier_kind in recipe.train_tiers and geometry in geometries:
                out.append(name)
        return out


def row_weights(samples: list[Sample], rows: np.ndarray, source_balanced: bool, human_weight: float = 1.0
                ) -> np.ndarray:
    """Sample weights: classes equal (the human class `human_weight` times the AI class); with
    `source_balanced`, every source within a class equal too."""
    keys = [(samples[i].label, samples[i].source if source_balanced else "") for i in rows]
    counts = defaultdict(int)
    for k in keys:
        counts[k] += 1
    per_class = defaultdict(int)
    for label, _ in counts:
        per_class[label] += 1
    w = np.array([(1.0 if k[0] else human_weight) / (per_class[k[0]] * counts[k]) for k in keys], dtype=np.float32)
    return w * len(rows) / w.sum()


def pooled_paper_head(inputs, variant: str):
    """The paper's head of `variant` on globally pooled out_relu features (stage 1: backbone frozen).

    With the backbone frozen, GAP(features * gate) = gate * GAP(features) for the channel gate of the
    squeeze-and-excitation block, so this is exactly the paper's model on cached pooled features.
    """
    attention, head = VARIANTS[variant]
    x = inputs
    if attention:
        gate = layers.Dense(320, activation="relu", name=f"{variant}_se_reduce")(x)
        gate = layers.Dense(x.shape[-1], activation="sigmoid", name=f"{variant}_se_expand")(gate)
        x = layers.Multiply(name=f"{variant}_se_scale")([x, gate])
    for i, (units, rate) in enumerate(head, start=1):
        x = layers.Dense(units, activation="relu", name=f"{variant}_dense{i}")(x)
        x = layers.Dropout(rate, name=f"{variant}_dropout{i}")(x)
    return layers.Dense(1, activation="sigmoid", name=f"{variant}_probability")(x)


def build_head(recipe: Recipe, x_train: np.ndarray) -> keras.Model:
    """The recipe's head: pooled block features -> P(ai); inputs are standardised inside the model."""
    inputs = keras.Input((x_train.shape[1],), name="block_features")
    norm = layers.Normalization(name="standardise")
    norm.adapt(x_train)
    x = norm(inputs)
    if recipe.head == "linear":
        out = layers.Dense(1, activation="sigmoid", kernel_regularizer=keras.regularizers.l2(1e-3),
                           name="ai_probability")(x)
    elif recipe.head == "ensemble":
        members = [pooled_paper_head(x, v) for v in ("enhanced", "baseline", "no_attention", "no_enhanced_head")]
        rest = layers.Average(name="variants_mean")(members[1:])
        out = layers.Add(name="ai_probability")([layers.Rescaling(0.6)(members[0]), layers.Rescaling(0.4)(rest)])
    else:
        out = pooled_paper_head(x, recipe.head)
    return keras.Model(inputs, out, name=f"head_{recipe.name.replace('-', '_')}")


def fit_head(recipe: Recipe, table: FeatureTable, samples: list[Sample], rows: np.ndarray,
             seed: int = 42) -> keras.Model:
    """Train the recipe's head on the given image rows (all of their training columns); a fine-tuning recipe's
    model takes block-12 activations instead of pooled features."""
    if recipe.finetune is not None:
        from trainer import finetune
        return finetune.fit(recipe, table, samples, rows, seed)
    keras.utils.set_random_seed(seed)
    columns = table.training_columns(recipe)
    x = np.concatenate([table.select(rows, c, recipe.layers) for c in columns])
    y = np.tile(np.array([samples[i].label for i in rows], dtype=np.float32), len(columns))
    w = np.tile(row_weights(samples, rows, recipe.source_balanced, recipe.human_weight), len(columns))
    head = build_head(recipe, x)
    linear = recipe.head == "linear"
    head.compile(keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    head.fit(x, y, sample_weight=w, batch_size=256 if linear else 32, epochs=20 if linear else 10,
             shuffle=True, verbose=0)
    return head


def predict_columns(head: keras.Model, table: FeatureTable, rows: np.ndarray, recipe: Recipe,
                    tier: str) -> np.ndarray:
    """P(ai) of each of the recipe's views in one tier: (len(rows), len(views))."""
    return np.stack([head.predict(table.inputs(rows, f"{tier}/{view}", recipe), batch_size=256,
                                  verbose=0)[:, 0] for view in recipe.views], axis=1)


def leave_sources_out(recipe: Recipe, table: FeatureTable, samples: list[Sample], folds=FOLDS) -> dict:
    """Out-of-fold P per view for every image and tier: {tier: (N, len(views))}, plus the fold of each image."""
    check_folds(samples, folds)
    fold_of_source = {src: i for i, fold in enumerate(folds) for src in fold}
    fold = np.array([fold_of_source[s.source] for s in samples])
    out = {tier: np.zeros((len(samples), len(recipe.views)), dtype=np.float32) for tier in EVAL_TIERS}
    for k in range(len(folds)):
        held, kept = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        head = fit_head(recipe, table, samples, kept)
        for tier in EVAL_TIERS:
            out[tier][held] = predict_columns(head, table, held, recipe, tier)
    return {"views": out, "fold": fold}


def human_fpr_by_source(y, p, sources, threshold) -> dict:
    """Share of each human source's images scored at or above `threshold`."""
    return {src: float((p[(sources == src) & (y == 0)] >= threshold).mean())
            for src in sorted(set(sources[y == 0]))}


def choose_threshold(y: np.ndarray, p: np.ndarray, sources: np.ndarray, max_fpr: float = MAX_HUMAN_FPR) -> float:
    """Best pooled balanced accuracy among thresholds whose mean human FPR over sources is <= max_fpr."""
    candidates = np.unique(np.concatenate([p, [0.5]]))
    best, best_score = float(candidates[-1]), -1.0
    for t in candidates:
        if np.mean(list(human_fpr_by_source(y, p, sources, t).values())) > max_fpr:
            continue
        score = balanced_accuracy(y, p, t)
        if score > best_score:
            best, best_score = float(t), score
    return best


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def fit_calibration(p_views: np.ndarray, y: np.ndarray) -> list[float]:
    """[slope, intercept] mapping a head's logit to P(ai) calibrated on out-of-fold predictions (Platt scaling).

    Heads are over-confident on sources they have not seen; fitted on every view of the pooled out-of-fold
    predictions, with both classes weighted equally, the shipped score means what it says on unseen sources.
    """
    from sklearn.linear_model import LogisticRegression
    z = logit(p_views).reshape(-1, 1)
    labels = np.repeat(y, p_views.shape[1])
    fit = LogisticRegression(C=1e6, class_weight="balanced").fit(z, labels)
    return [float(fit.coef_[0, 0]), float(fit.intercept_[0])]


def calibrate(p: np.ndarray, calibration) -> np.ndarray:
    """P(ai) after the calibration of `fit_calibration`."""
    slope, intercept = calibration
    return sigmoid(slope * logit(p) + intercept).astype(np.float32)


def bake_calibration(head: keras.Model, calibration) -> None:
    """Fold the calibration into the head's final sigmoid Dense layer, so the shipped model outputs it."""
    dense = head.layers[-1]
    while isinstance(dense, keras.Model):  # a fine-tuned tail ends in its head
        dense = dense.layers[-1]
    if not isinstance(dense, layers.Dense):
        raise ValueError(f"cannot fold the calibration into a head ending in {type(dense).__name__}")
    slope, intercept = calibration
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * slope, bias * slope + intercept])


def band_around(threshold: float, p: np.ndarray, share: float) -> list[float]:
    """The band, symmetric in logit space around `threshold`, holding `share` of the predictions `p`."""
    distance = np.sort(np.abs(logit(p) - logit(np.array(threshold))))
    width = float(distance[min(len(distance) - 1, int(share * len(distance)))])
    centre = float(logit(np.array(threshold)))
    return [float(sigmoid(centre - width)), float(sigmoid(centre + width))]


def balanced_accuracy(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    return float(((p[y == 1] >= threshold).mean() + (p[y == 0] < threshold).mean()) / 2)


def summary(y: np.ndarray, p: np.ndarray, sources: np.ndarray, threshold: float) -> dict:
    """Pooled and per-source figures of one set of predictions at `threshold`."""
    per_source = {}
    for src in sorted(set(sources)):
        mask = sources == src
        label = int(y[mask][0])
        correct = (p[mask] >= threshold) == (label == 1)
        per_source[src] = {"label": LABELS[label], "n": int(mask.sum()), "accuracy": float(correct.mean()),
                           "mean_p": float(p[mask].mean())}
    macro = [np.mean([v["accuracy"] for v in per_source.values() if v["label"] == name]) for name in LABELS]
    fprs = human_fpr_by_source(y, p, sources, threshold)
    return {
        "n": int(len(y)), "balanced_accuracy": balanced_accuracy(y, p, threshold),
        "source_macro_balanced_accuracy": float(np.mean(macro)),
        "auc": float(roc_auc_score(y, p)), "ai_recall": float((p[y == 1] >= threshold).mean()),
        "human_fpr": float((p[y == 0] >= threshold).mean()), "human_fpr_mean_over_sources": float(np.mean(list(fprs.values()))),
        "human_fpr_worst_source": max(fprs.values()), "per_source": per_source,
    }


def in_domain(recipe: Recipe, table: FeatureTable, samples: list[Sample], threshold: float, calibration,
              seed: int = 42) -> dict:
    """The seed-42 group split: head trained on train+val, calibrated P, figures on the test split at `threshold`."""
    parts, _ = split(samples, seed)
    index = {str(s.path): i for i, s in enumerate(samples)}
    train = np.array([index[str(s.path)] for name in ("train", "val") for s in parts[name]])
    test = np.array([index[str(s.path)] for s in parts["test"]])
    head = fit_head(recipe, table, samples, train, seed)
    y = np.array([samples[i].label for i in test])
    sources = np.array([samples[i].source for i in test])
    out = {}
    for tier in EVAL_TIERS:
        p = calibrate(predict_columns(head, table, test, recipe, tier), calibration).mean(axis=1)
        s = summary(y, p, sources, threshold)
        s["accuracy"] = float(((p >= threshold) == (y == 1)).mean())
        out[tier] = s
    return out


def evaluate_recipe(recipe: Recipe, table: FeatureTable, samples: list[Sample]) -> dict:
    """Leave-sources-out and in-domain report of one recipe, with its threshold and bands."""
    oof = leave_sources_out(recipe, table, samples)
    y = np.array([s.label for s in samples])
    sources = np.array([s.source for s in samples])
    calibration = fit_calibration(oof["views"]["clean"], y)
    views = {tier: calibrate(p, calibration) for tier, p in oof["views"].items()}
    clean = views["clean"]
    p = clean.mean(axis=1)
    threshold = choose_threshold(y, p, sources)
    unsure = band_around(threshold, p, UNSURE_SHARE)
    escalation = list(adaptive.choose_band(clean, threshold, unsure)) if clean.shape[1] > 1 else None
    report = {
        "recipe": asdict(recipe), "folds": [list(f) for f in FOLDS], "calibration": calibration,
        "calibration_rule": "Platt scaling of the head's logit on every view of the pooled out-of-fold predictions",
        "threshold": threshold,
        "threshold_rule": f"best pooled balanced accuracy with mean human FPR over held-out human sources "
                          f"<= {MAX_HUMAN_FPR:.0%}, on pooled out-of-fold predictions",
        "unsure_band": unsure,
        "unsure_rule": f"logit-symmetric band around the threshold holding {UNSURE_SHARE:.0%} of out-of-fold P",
        "escalation_band": escalation,
        "loso": {tier: summary(y, views[tier].mean(axis=1), sources, threshold) for tier in EVAL_TIERS},
        "loso_primary_view_only": summary(y, clean[:, 0], sources, threshold),
    }
    if escalation:
        agree, escalated = adaptive.agreement(clean, escalation, threshold, unsure)
        report["adaptive"] = {"escalated_share": escalated, "label_agreement_with_all_views": agree,
                              "mean_views_per_image": 1 + escalated * (clean.shape[1] - 1),
                              "balanced_accuracy": balanced_accuracy(
                                  y, adaptive.adaptive_probabilities(clean, escalation), threshold)}
    report["in_domain"] = in_domain(recipe, table, samples, threshold, calibration)
    report["oof"] = {"paths": [str(s.path) for s in samples], "p_views": clean.tolist()}
    return report


def write_report(report: dict, out: Path) -> None:
    """report.json, report.md and a per-source bar chart PNG in `out`."""
    from trainer import plots
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(markdown(report))
    plots.per_source_bars(report["loso"], out / "per_source.png", report["recipe"]["name"])


def markdown(report: dict) -> str:
    """The report as markdown tables."""
    r = report
    lines = [f"# Leave-sources-out: {r['recipe']['name']}", "", r["recipe"]["about"], "",
             f"Calibration (slope, intercept on the logit) {r['calibration'][0]:.3f}, {r['calibration'][1]:.3f} "
             f"({r['calibration_rule']})", "",
             f"Threshold {r['threshold']:.3f} ({r['threshold_rule']}); unsure band "
             f"{r['unsure_band'][0]:.3f}-{r['unsure_band'][1]:.3f}; escalation band {r['escalation_band']}", "",
             "| tier | balanced acc. | source-macro bal. acc. | AUC | AI recall | human FPR | mean human FPR over sources | worst |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for tier, s in r["loso"].items():
        lines.append(f"| {tier} | {s['balanced_accuracy']:.2%} | {s['source_macro_balanced_accuracy']:.2%} | "
                     f"{s['auc']:.4f} | {s['ai_recall']:.2%} | {s['human_fpr']:.2%} | "
                     f"{s['human_fpr_mean_over_sources']:.2%} | {s['human_fpr_worst_source']:.2%} |")
    lines += ["", "Held-out sources (clean files, runtime views):", "",
              "| source | label | n | accuracy | mean P(ai) |", "| --- | --- | ---: | ---: | ---: |"]
    for src, s in r["loso"]["clean"]["per_source"].items():
        lines.append(f"| {src} | {s['label']} | {s['n']} | {s['accuracy']:.2%} | {s['mean_p']:.3f} |")
    lines += ["", "In-domain test split (head trained on train+val, same threshold):", "",
              "| tier | accuracy | balanced acc. | AUC | human FPR |", "| --- | ---: | ---: | ---: | ---: |"]
    for tier, s in r["in_domain"].items():
        lines.append(f"| {tier} | {s['accuracy']:.2%} | {s['balanced_accuracy']:.2%} | {s['auc']:.4f} | "
                     f"{s['human_fpr']:.2%} |")
    if r.get("adaptive"):
        a = r["adaptive"]
        lines += ["", f"Adaptive views: {a['escalated_share']:.1%} escalated, {a['mean_views_per_image']:.2f} views "
                      f"per image, label agreement with all views {a['label_agreement_with_all_views']:.2%}, "
                      f"balanced accuracy {a['balanced_accuracy']:.2%}"]
    return "\n".join(lines) + "\n"


def comparison_row(report: dict) -> dict:
    """One recipe's headline figures for the comparison table."""
    clean, ind = report["loso"]["clean"], report["in_domain"]["clean"]
    return {"recipe": report["recipe"]["name"], "about": report["recipe"]["about"], "threshold": report["threshold"],
            "balanced_accuracy": clean["balanced_accuracy"], "macro": clean["source_macro_balanced_accuracy"],
            "auc": clean["auc"], "human_fpr": clean["human_fpr"], "worst_fpr": clean["human_fpr_worst_source"],
            "mean_fpr": clean["human_fpr_mean_over_sources"],
            "thumb": report["loso"]["thumb"]["balanced_accuracy"], "web": report["loso"]["web"]["balanced_accuracy"],
            "in_domain": ind["accuracy"], "views": len(report["recipe"]["views"]),
            "mean_views": (report.get("adaptive") or {}).get("mean_views_per_image", 1.0)}


def comparison_table(rows: list[dict]) -> str:
    """Markdown table comparing recipes (pooled out-of-fold figures at each recipe's own threshold): the ones that
    keep the mean human FPR over held-out sources within MAX_HUMAN_FPR first, then by balanced accuracy."""
    rows = sorted(rows, key=lambda r: (r["mean_fpr"] > MAX_HUMAN_FPR + 1e-9, -r["balanced_accuracy"]))
    lines = ["| recipe | LOSO balanced acc. | source-macro | AUC | human FPR: mean over sources (pooled, worst) | "
             "thumbnail tier | web tier | in-domain acc. | views (adaptive mean) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        rule = "" if r["mean_fpr"] <= MAX_HUMAN_FPR + 1e-9 else " **over 3%**"
        lines.append(f"| {r['recipe']} | {r['balanced_accuracy']:.2%} | {r['macro']:.2%} | {r['auc']:.4f} | "
                     f"{r['mean_fpr']:.2%}{rule} ({r['human_fpr']:.2%}, {r['worst_fpr']:.1%}) | {r['thumb']:.2%} | "
                     f"{r['web']:.2%} | {r['in_domain']:.2%} | {r['views']} ({r['mean_views']:.2f}) |")
    return "\n".join(lines) + "\n"
