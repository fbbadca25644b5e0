"""`python -m trainer train|evaluate|ablation ...`"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
    args = parser.parse_args(argv)

    if args.command == "train":
        from trainer.train import Config, train
        config = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
        from trainer.evaluate import evaluate_cached
        result = train(config, args.out, args.cache)
        evaluate_cached(args.out, result["tail"], result["cache"])
    elif args.command == "evaluate":
        from trainer.evaluate import evaluate
        evaluate(args.run, args.data, args.sources)
    else:
        from trainer.ablation import ablation
        from trainer.train import Config
        config = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
        print(ablation(config, args.out, args.variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
