"""Figure commands: ``plot-attention`` (partitioner weights of chosen samples) and ``plot-results``
(accuracy vs. number of unseen classes, per-run confusion matrices and GZSL curves)::

    python -m purls_pl plot-attention --ckpt <run>/checkpoints/last.ckpt --split demo_15_5 --samples 0,5,7 --out figs/
    python -m purls_pl plot-results lightning_logs/ntu60_* --out figs/acc_vs_unseen.png
"""

from __future__ import annotations

import argparse
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser, Namespace

from purls_pl.apps.experiments import experiment_args
from purls_pl.apps.report import collect, finished
from purls_pl.data.sample_sets import SET_NAMES
from purls_pl.eval.figures import (
    accuracy_vs_unseen_figure,
    attention_figure,
    confusion_figure,
    gzsl_curve_figure,
    save_figure,
)
from purls_pl.eval.metrics import TEST_TOP1
from purls_pl.models.method import ZeroShotMethod
from purls_pl.models.purls_module import PurlsModule
from purls_pl.train.cli import PurlsCLI
from purls_pl.train.datamodule import ZeroShotDataModule


def load_datamodule(args: Sequence[str]) -> ZeroShotDataModule:
    """The datamodule (not set up) of a run, parsed like ``fit <args>`` (``--config`` files and overrides)."""

    class _DataOnly(PurlsCLI):
        def before_instantiate_classes(self) -> None:
            pass

        def instantiate_classes(self) -> None:
            parser = ArgumentParser()
            parser.add_class_arguments(ZeroShotDataModule, "data", fail_untyped=False)
            self.datamodule = parser.instantiate_classes(Namespace(data=self.config["data"])).data

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python")
        cli = _DataOnly(
            ZeroShotMethod,
            ZeroShotDataModule,
            args=list(args),
            run=False,
            save_config_callback=None,
            subclass_mode_model=True,
        )
    return cli.datamodule


@torch.no_grad()
def attention_maps(
    module: PurlsModule, datamodule: ZeroShotDataModule, set_name: str, positions: Sequence[int]
) -> Iterator[dict[str, Any]]:
    """Partitioner weights of chosen samples, queried with each sample's TRUE class's descriptions.

    Yields:
        ``{"attn": (D, S) array, "label", "sample_id", "position"}`` per position in ``set_name``.
    """
    datamodule.setup("test")
    dataset = datamodule.sets[set_name]
    class_text = datamodule.class_text
    fields = list(module.partitioner.field_index)
    if class_text.embed_dim != module.seen_text.shape[-1]:
        raise ValueError("the config's text tower differs from the checkpoint's (embedding sizes differ)")
    device = module.seen_text.device
    for pos in positions:
        if not 0 <= pos < len(dataset):
            raise IndexError(f"sample {pos} is outside {set_name} (0..{len(dataset) - 1})")
        item = dataset[pos]
        label = int(item.y)
        nodes = module.node_features(item.x[None].to(device))
        text = class_text.embeddings[label][fields][None].to(device=device, dtype=nodes.dtype)
        _, attn = module(nodes, text)
        yield {
            "attn": attn[0].float().cpu().numpy(),
            "label": class_text.class_names[label],
            "sample_id": datamodule.skeletons.sample_ids[int(dataset.index[pos])],
            "position": pos,
        }


def plot_results_main(argv: Sequence[str] | None = None) -> list[Path]:
    """``python -m purls_pl plot-results <run dirs> --out figs/acc_vs_unseen.png``."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl plot-results",
        description="Accuracy vs. number of unseen classes over finished runs (the newest finished version of "
        "each), plus each run's confusion matrix and GZSL curve when recorded, as PNG files.",
    )
    parser.add_argument("roots", nargs="+", help="run directories, e.g. lightning_logs/ntu60_*")
    parser.add_argument("--out", default="figs/acc_vs_unseen.png", help="accuracy plot (default: %(default)s)")
    parser.add_argument("--metric", default=TEST_TOP1, help="results key to plot (default: %(default)s)")
    parser.add_argument("--no-per-run", action="store_true", help="skip the per-run confusion / GZSL figures")
    args = parser.parse_args(argv)
    rows = finished(collect(args.roots))
    if not rows:
        raise FileNotFoundError(
            f"{', '.join(args.roots)}: no finished runs; train first, or see `report` for their status"
        )
    out = Path(args.out)
    written = [save_figure(accuracy_vs_unseen_figure(rows, args.metric), out)]
    for row in [] if args.no_per_run else rows:
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(row["run"]))
        if "confusion" in row and "unseen_classes" in row:
            written.append(
                save_figure(
                    confusion_figure(row["confusion"], row["unseen_classes"]), out.parent / f"confusion_{tag}.png"
                )
            )
        if isinstance(row.get("gzsl"), dict) and "curve" in row["gzsl"]:
            written.append(save_figure(gzsl_curve_figure(row["gzsl"]), out.parent / f"gzsl_{tag}.png"))
    for path in written:
        print(path)
    return written


def plot_attention_main(argv: Sequence[str] | None = None) -> list[Path]:
    """``python -m purls_pl plot-attention --ckpt <ckpt> --split <split> --samples 0,5,7 --out figs/``."""
    parser = argparse.ArgumentParser(
        prog="python -m purls_pl plot-attention",
        description="Attention of the adaptive partitioner for chosen samples: one frame x joint heatmap per "
        "description. Queries are the sample's TRUE class's descriptions (as in training). Further "
        "--data.* arguments override the experiment config.",
    )
    parser.add_argument("--ckpt", required=True, help="PURLS checkpoint (e.g. <run>/checkpoints/last.ckpt)")
    parser.add_argument("--split", help="a registered split: its experiment files give the data (see `configs`)")
    parser.add_argument("--config", action="append", default=[], help="experiment YAML(s) instead of --split")
    parser.add_argument("--samples", default="0", help="comma-separated sample positions in --set (default: 0)")
    parser.add_argument(
        "--set",
        default="unseen_eval",
        choices=SET_NAMES,
        help="which sample set the positions index (default: %(default)s)",
    )
    parser.add_argument("--out", default="figs", help="output folder (default: %(default)s)")
    args, overrides = parser.parse_known_args(argv)
    module = PurlsModule.from_checkpoint(args.ckpt)
    if not args.config and not args.split:
        parser.error("name the data: --split <split>, or --config <experiment yaml> (repeatable)")
    configs = experiment_args(args.split) if args.split else []
    configs += [a for c in args.config for a in ("--config", c)]
    datamodule = load_datamodule([*configs, *overrides])
    indices = [int(i) for i in args.samples.split(",") if i.strip()]
    written = []
    for item in attention_maps(module, datamodule, args.set, indices):
        title = (
            f"{item['sample_id']} — true class '{item['label']}' "
            "(queries: the true class's descriptions, as in training)"
        )
        fig = attention_figure(item["attn"], module.partitioner.layout, module.fields, title)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"attention_{args.set}_{item['position']}_{item['sample_id']}")
        written.append(save_figure(fig, Path(args.out) / f"{name}.png"))
        print(written[-1])
    return written
