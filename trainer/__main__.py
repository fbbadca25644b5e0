"""`python -m trainer train|evaluate|ablation ...`"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not sys.stderr.isatty():  # a log file, not a terminal: one progress update every 30 s (tqdm reads TQDM_*)
    os.environ.setdefault("TQDM_MININTERVAL", "30")


def config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per training hyper-parameter, defaulting to the paper's value."""
    from trainer.train import Config
    for f in fields(Config):
        default = f.default
        flag = "--" + f.name.replace("_", "-")
        if f.name == "sources":
            parser.add_argument(flag, nargs="+", default=None, help="only these manifest sources")
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif f.name == "weights":
            parser.add_argument(flag, type=lambda v: None if v.lower() in ("", "none") else v, default=default,
                                help="imagenet (default) or none for random initialisation")
        elif default is None:
            parser.add_argument(flag, type=float if f.name.endswith("lr") else int, default=None)
        else:
            parser.add_argument(flag, type=type(default), default=default)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train_p = commands.add_parser("train", help="two-stage training into a run directory")
    train_p.add_argument("--out", type=Path, required=True)
    train_p.add_argument("--cache", type=Path, help="reuse cached backbone activations (.npz)")
    config_arguments(train_p)
    eval_p = commands.add_parser("evaluate", help="test-split report: standard, TTA, format-equalised")
    eval_p.add_argument("run", type=Path)
    eval_p.add_argument("--data", default=None, help="dataset root (default: the run's)")
    eval_p.add_argument("--sources", nargs="+", default=None,
                        help="evaluate on every image of these sources (held out of training) instead")
    abl_p = commands.add_parser("ablation", help="train and evaluate every variant; prints table 5")
    abl_p.add_argument("--out", type=Path, required=True)
    abl_p.add_argument("--variants", nargs="+", default=None)
    config_arguments(abl_p)
    loso_p = commands.add_parser("loso", help="leave-sources-out evaluation of the v2 recipes (cached features)")
    loso_p.add_argument("--data", default="../shared/data")
    loso_p.add_argument("--out", type=Path, default=Path("runs/loso"))
    loso_p.add_argument("--cache", type=Path, default=Path("runs/blocks/features.npz"),
                        help="block-feature cache (made on first use)")
    loso_p.add_argument("--recipes", nargs="+", default=None, help="recipe names (default: all)")
    loso_p.add_argument("--lean-cache", action="store_true",
                        help="a new cache holds only the evaluated views (whole image and crop of the clean, "
                             "thumbnail, web and format-equalised tiers): no mirror images, no random "
                             "augmentations, half the backbone passes")
    ship_p = commands.add_parser("ship", help="train a recipe on all data into a run directory for the converter")
    ship_p.add_argument("recipe")
    ship_p.add_argument("--data", default="../shared/data")
    ship_p.add_argument("--loso", type=Path, default=Path("runs/loso"), help="where the recipe's loso report is")
    ship_p.add_argument("--cache", type=Path, default=Path("runs/blocks/features.npz"))
    ship_p.add_argument("--out", type=Path, required=True)
    for p in (loso_p, ship_p):
        p.add_argument("--augmented-cache", type=Path, default=None,
                       help="a second cache (made on first use) holding only random-augmentation tiers and the "
                            "clean image's four native-resolution corners, whose columns join --cache's: extends "
                            "a lean cache without recomputing it")
        p.add_argument("--augmented", type=int, default=6,
                       help="augmentation tiers of a new --augmented-cache (6: model v3.1's)")
    args = parser.parse_args(argv)

    if args.command == "train":
        from trainer.train import Config, train
        config = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
        from trainer.evaluate import evaluate_cached
        result = train(config, args.out, args.cache)
        evaluate_cached(args.out, result["tail"], result["cache"])
    elif args.command in ("loso", "ship"):
        return v2_command(args)
    elif args.command == "evaluate":
        from trainer.evaluate import evaluate
        evaluate(args.run, args.data, args.sources)
    else:
        from trainer.ablation import ablation
        from trainer.train import Config
        config = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
        print(ablation(config, args.out, args.variants))
    return 0


def v2_command(args) -> int:
    """`loso` (compare recipes out of source) and `ship` (train the pick on all data)."""
    import json

    import numpy as np

    from trainer import blocks, loso, plots
    from trainer.data import load_dataset
    samples = load_dataset(args.data, verify=False).samples
    if not args.cache.exists():
        lean = {"augmented": 0, "mirrored": False} if getattr(args, "lean_cache", False) else {}
        blocks.save(args.cache, samples, *blocks.embed(samples, **lean), **lean)
    caches = [args.cache]
    if args.augmented_cache:
        caches.append(args.augmented_cache)
        if not args.augmented_cache.exists():
            layout = {"augmented": args.augmented, "mirrored": False, "plain": False, "corners": True}
            blocks.save(args.augmented_cache, samples, *blocks.embed(samples, **layout), **layout)
    features, columns, cut = blocks.load_joined(caches, samples)
    table = loso.FeatureTable(features, columns, blocks.layer_slices(blocks.block_features_model(weights=None)), cut)
    if args.command == "ship":
        from trainer.ship import ship
        report = json.loads((args.loso / args.recipe / "report.json").read_text())
        ship(loso.RECIPES[args.recipe], report, table, samples, args.data, args.out)
        print(f"wrote {args.out}: convert it with python -m converter {args.out} --out {args.out}/tflite")
        return 0
    for name in args.recipes or list(loso.RECIPES):
        report = loso.evaluate_recipe(loso.RECIPES[name], table, samples)
        loso.write_report(report, args.out / name)
        print(loso.markdown(report))
    # The comparison covers every recipe reported in --out, so recipes can be run a few at a time.
    reports = [json.loads(p.read_text()) for p in sorted(args.out.glob("*/report.json"))]
    rows = [loso.comparison_row(r) for r in reports]
    curves = {r["recipe"]["name"]: np.mean(r["oof"]["p_views"], axis=1) for r in reports}
    (args.out / "comparison.md").write_text(loso.comparison_table(rows))
    plots.roc(np.array([s.label for s in samples]), curves, args.out / "roc.png")
    print(loso.comparison_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
