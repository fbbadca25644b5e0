"""Leave-sources-out evaluation: folds on the real data, weights, threshold and band rules, the shipped graph."""
from __future__ import annotations

import numpy as np
import pytest

from trainer import loso
from trainer.data import load_dataset


@pytest.fixture(scope="module")
def samples(data_root):
    return load_dataset(str(data_root), verify=False).samples


def test_the_folds_hold_out_every_source_once_with_both_classes(samples):
    loso.check_folds(samples)
    held = [src for fold in loso.FOLDS for src in fold]
    assert set(held) == {s.source for s in samples}


def test_folds_that_miss_a_source_or_a_class_are_refused(samples):
    with pytest.raises(ValueError, match="held out exactly once"):
        loso.check_folds(samples, loso.FOLDS[1:])
    one_class = (("hdm-xut",), ("style2paints",)) + tuple(
        f for f in loso.FOLDS if "hdm-xut" not in f)
    with pytest.raises(ValueError, match="both an AI and a human"):
        loso.check_folds(samples, one_class)


def test_folds_never_split_a_manifest_group(samples):
    crops_apart = (("wfjsw-prompt-builder", "mimvoid-wallpapers"),
                   ("wfjsw-prompt-builder-facecrops", "danbooru-facecrops")) + loso.FOLDS[1:]
    with pytest.raises(ValueError, match="group straddles"):
        loso.check_folds(samples, crops_apart)


def test_weights_give_each_class_and_each_source_the_same_total(samples):
    rows = np.arange(len(samples))
    w = loso.row_weights(samples, rows, source_balanced=True)
    labels = np.array([s.label for s in samples])
    sources = np.array([s.source for s in samples])
    assert w.sum() == pytest.approx(len(rows), rel=1e-4)
    assert w[labels == 1].sum() == pytest.approx(w[labels == 0].sum(), rel=1e-4)
    ai_sources = sorted(set(sources[labels == 1]))
    totals = [w[sources == src].sum() for src in ai_sources]
    assert max(totals) == pytest.approx(min(totals), rel=1e-4)
    plain = loso.row_weights(samples, rows, source_balanced=False)
    assert len(set(np.round(plain[labels == 1], 6))) == 1
    heavier = loso.row_weights(samples, rows, source_balanced=True, human_weight=3.0)
    assert heavier.sum() == pytest.approx(len(rows), rel=1e-4)
    assert heavier[labels == 0].sum() == pytest.approx(3 * heavier[labels == 1].sum(), rel=1e-4)
    human_sources = sorted(set(sources[labels == 0]))
    totals = [heavier[sources == src].sum() for src in human_sources]
    assert max(totals) == pytest.approx(min(totals), rel=1e-4)


def test_the_threshold_keeps_the_mean_human_false_positive_rate_per_source_at_most_3_percent():
    rng = np.random.default_rng(0)
    y = np.array([1] * 400 + [0] * 400)
    sources = np.array(["ai"] * 400 + ["faces"] * 300 + ["paintings"] * 100)
    p = np.concatenate([rng.uniform(0.3, 1.0, 400), rng.uniform(0.0, 0.6, 300), rng.uniform(0.2, 0.9, 100)])
    t = loso.choose_threshold(y, p, sources)
    fprs = loso.human_fpr_by_source(y, p, sources, t)
    assert np.mean(list(fprs.values())) <= 0.03
    looser = loso.choose_threshold(y, p, sources, max_fpr=0.2)
    assert looser < t
    assert loso.balanced_accuracy(y, p, looser) > loso.balanced_accuracy(y, p, t)


def test_the_unsure_band_surrounds_the_threshold_and_holds_its_share():
    p = np.random.default_rng(1).uniform(0, 1, 1000)
    low, high = loso.band_around(0.7, p, 0.10)
    assert low < 0.7 < high
    assert ((p > low) & (p < high)).mean() == pytest.approx(0.10, abs=0.01)


def test_a_recipe_trains_on_its_views_in_its_tiers_only():
    columns = ["clean/original", "clean/flip", "clean/crop", "clean/crop-flip", "thumb/original", "thumb/crop",
               "aug0/original", "aug0/crop"]
    table = loso.FeatureTable(np.zeros((1, len(columns), 4), np.float16), columns, {"x": slice(0, 4)})
    whole = loso.Recipe("r", "linear", train_tiers=("clean", "aug"))
    assert table.training_columns(whole) == ["clean/original", "clean/flip", "aug0/original"]
    crops = loso.Recipe("r", "linear", views=("original", "crop"), train_tiers=("clean", "thumb"))
    assert table.training_columns(crops) == ["clean/original", "clean/flip", "clean/crop", "clean/crop-flip",
                                             "thumb/original", "thumb/crop"]


def test_an_augmented_cache_extends_a_lean_one_column_by_column(samples, tmp_path):
    from trainer import blocks
    few = samples[:3]
    lean = {"augmented": 0, "mirrored": False}
    augmented = {"augmented": 2, "mirrored": False, "plain": False, "corners": True}
    assert blocks.view_columns(**augmented) == ["aug0/original", "aug0/crop", "aug1/original", "aug1/crop",
                                                "corner0/crop", "corner1/crop", "corner2/crop", "corner3/crop"]
    rng = np.random.default_rng(5)
    for name, layout in (("lean", lean), ("augmented", augmented)):
        width = len(blocks.view_columns(**layout))
        blocks.save(tmp_path / f"{name}.npz", few, rng.normal(size=(3, width, 4)).astype(np.float16),
                    rng.normal(size=(3, width, 2, 2, 1)).astype(np.float16), **layout)
    features, columns, cut = blocks.load_joined([tmp_path / "lean.npz", tmp_path / "augmented.npz"], few)
    assert columns == blocks.view_columns(**lean) + blocks.view_columns(**augmented)
    assert features.shape == (3, 16, 4) and cut.shape == (3, 16, 2, 2, 1)
    np.testing.assert_array_equal(features[:, 8:], np.load(tmp_path / "augmented.npz")["features"])
    table = loso.FeatureTable(features, columns, {"x": slice(0, 4)}, cut)
    assert "aug1/crop" in table.training_columns(loso.RECIPES["augmented-linear"])
    assert "corner3/crop" not in table.training_columns(loso.RECIPES["augmented-linear"])
    assert "corner3/crop" in table.training_columns(loso.RECIPES["augmented-corners-linear"])
    with pytest.raises(ValueError, match="share column names"):
        blocks.load_joined([tmp_path / "lean.npz", tmp_path / "lean.npz"], few)
    with pytest.raises(ValueError, match="other images"):
        blocks.load_joined([tmp_path / "lean.npz"], samples[1:4])


def test_corner_tiers_are_the_native_resolution_corners_the_centre_crop_would_see(data_root, manifest_rows):
    from edge_runtime.preprocess import centre_crop, load_image
    from trainer import blocks
    img = load_image(data_root / next(r["path"] for r in manifest_rows if r["source"] == "animaginexl4-gallery"))
    corners = [np.asarray(c) for c in blocks.corner_crops(img)]
    pixels = np.asarray(img)
    for corner, expected in zip(corners, (pixels[:224, :224], pixels[:224, -224:], pixels[-224:, :224],
                                          pixels[-224:, -224:])):
        np.testing.assert_array_equal(corner, expected)
    small = img.resize((200, 300))  # enlarged to 224 x 336 first, as the runtime's centre crop enlarges it
    top_left, _, bottom_left, _ = [np.asarray(c) for c in blocks.corner_crops(small)]
    centre = centre_crop(small)  # rows 56-279 of the enlarged image
    np.testing.assert_array_equal(top_left[56:], centre[:168])
    np.testing.assert_array_equal(bottom_left[:168], centre[56:])


def test_robustness_augmentation_reaches_the_bit_rates_of_web_galleries(data_root, manifest_rows, monkeypatch):
    """wfjsw's renders are WebP at about 0.4 bits per pixel (WebP quality ~25): the augmentation must make such
    files of every image, or a detector learns that heavy compression means a human drew it."""
    import io
    import random

    from PIL import Image

    from trainer import augment
    encoded = []
    save = Image.Image.save

    def recording_save(image, fp, format=None, **params):
        save(image, fp, format, **params)
        if isinstance(fp, io.BytesIO):
            encoded.append((format, params.get("quality"), 8 * fp.tell() / (image.width * image.height)))

    monkeypatch.setattr(Image.Image, "save", recording_save)
    path = data_root / next(r["path"] for r in manifest_rows if r["source"] == "agbooks-2021")
    img = Image.open(path).convert("RGB")
    rng = random.Random(7)
    for _ in range(40):
        augment.robust_augment(img, rng)
    webp = [bits for fmt, _, bits in encoded if fmt == "WEBP"]
    jpeg = [quality for fmt, quality, _ in encoded if fmt == "JPEG"]
    assert len(webp) >= 6 and min(webp) < 0.5 and max(webp) > 1.0
    assert min(jpeg) < 35 and max(jpeg) > 80


def test_the_shipped_graph_equals_the_head_on_pooled_block_features(manifest_rows, data_root):
    import keras

    from edge_runtime.preprocess import load_image, view_batch
    from trainer import blocks
    from trainer.ship import full_model
    recipe = loso.Recipe("t", "linear", layers=("block_15_add", "out_relu"), views=("original", "crop"))
    features = blocks.block_features_model()
    table_slices = blocks.layer_slices(features)
    width = 160 + 1280
    head = keras.Sequential([keras.Input((width,)), keras.layers.Dense(1, activation="sigmoid")])
    head.layers[-1].set_weights([np.random.default_rng(2).normal(0, 0.05, (width, 1)), np.zeros(1)])
    model = full_model(recipe, head)
    paths = [data_root / r["path"] for r in manifest_rows[::900]]
    batch = np.concatenate([view_batch(load_image(p), recipe.views) for p in paths])
    pooled = features.predict(batch, verbose=0)
    selected = np.concatenate([pooled[:, table_slices[n]] for n in recipe.layers], axis=1)
    np.testing.assert_allclose(model.predict(batch, verbose=0), head.predict(selected, verbose=0), atol=1e-5)


def test_calibration_shrinks_over_confident_logits_and_folds_into_the_head():
    import keras
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 500)
    true_logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.5, 1000)
    over_confident = 1 / (1 + np.exp(-4 * true_logit))
    slope, intercept = loso.fit_calibration(over_confident[:, None], y)
    assert 0.15 < slope < 0.4 and abs(intercept) < 0.2
    head = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    x = rng.normal(0, 1, (16, 3)).astype(np.float32)
    raw = head.predict(x, verbose=0)
    loso.bake_calibration(head, [slope, intercept])
    np.testing.assert_allclose(head.predict(x, verbose=0), loso.calibrate(raw, [slope, intercept]), atol=1e-5)


def test_the_comparison_puts_recipes_that_break_the_false_positive_rule_last():
    def row(name, balanced, mean_fpr):
        return {"recipe": name, "balanced_accuracy": balanced, "macro": balanced, "auc": 0.8, "human_fpr": mean_fpr,
                "worst_fpr": mean_fpr, "mean_fpr": mean_fpr, "thumb": 0.5, "web": 0.5, "in_domain": 0.9,
                "views": 1, "mean_views": 1.0}
    table = loso.comparison_table([row("loud", 0.70, 0.10), row("safe", 0.60, 0.03), row("safer", 0.55, 0.01)])
    names = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]]
    assert names == ["safe", "safer", "loud"]
    assert "**over 3%**" in table.splitlines()[-1]


def test_the_shipped_fine_tuned_graph_equals_its_tail_on_cached_block_12_activations(manifest_rows, data_root):
    import keras

    from edge_runtime.preprocess import load_image, view_batch
    from trainer import blocks, finetune
    from trainer.ship import full_model
    recipe = loso.Recipe("t", "linear", layers=("block_12_add", "block_15_add", "out_relu"),
                         views=("original", "crop"), finetune=finetune.FineTune(from_block=15))
    width = 96 + 160 + 1280
    head = keras.Sequential([keras.Input((width,)), keras.layers.Dense(1, activation="sigmoid")])
    head.layers[-1].set_weights([np.random.default_rng(4).normal(0, 0.05, (width, 1)), np.zeros(1)])
    tail = finetune.tail_model(recipe.layers, head, recipe.finetune.from_block)
    trained = {w.path.split("/")[0] for w in tail.trainable_weights}
    assert {"block_15_expand", "block_16_project", "Conv_1"} <= trained
    assert not any(name.startswith(("block_13", "block_14")) or name.endswith(("_BN", "_bn")) for name in trained)
    model = full_model(recipe, tail)
    paths = [data_root / r["path"] for r in manifest_rows[::900]]
    batch = np.concatenate([view_batch(load_image(p), recipe.views) for p in paths])
    _, cut = blocks.block_features_model(cut=True).predict(batch, verbose=0)
    np.testing.assert_allclose(model.predict(batch, verbose=0), tail.predict(cut, verbose=0), atol=1e-5)
