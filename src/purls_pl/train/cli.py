"""Command line: ``python -m purls_pl {fit,validate,test,predict} --config experiments/<split>.yaml``.

Values the datamodule derives (the classes' description embeddings with the seen/unseen split, the
skeleton layout) are linked into the model when both are instantiated, so no config repeats them.
``fit`` ends with a test of the final weights on the unseen classes; the metrics land in
``<log_dir>/results.json``.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from pytorch_lightning import Trainer
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from purls_pl.data.released_features import feature_dim
from purls_pl.data.splits import get_split, selection_name, split_name
from purls_pl.eval.callbacks import GeneralizedZeroShotEvaluation, ZeroShotEvaluation
from purls_pl.eval.metrics import VAL_TOP1
from purls_pl.eval.results import read_results, results_path, summary_lines
from purls_pl.models.checkpoint import import_class
from purls_pl.models.features import require_backbone
from purls_pl.models.method import ZeroShotMethod
from purls_pl.models.skeleton_cache import CacheSettings, SkeletonCache
from purls_pl.text.descriptions import load_descriptions
from purls_pl.train.checkpoint_io import use_atomic_checkpoint_io
from purls_pl.train.datamodule import ZeroShotDataModule
from purls_pl.train.guards import FiniteLoss
from purls_pl.train.log_progress import use_log_progress
from purls_pl.train.paths import AUTO, backbone_export_path, variant_of
from purls_pl.train.provenance import RunProvenance
from purls_pl.train.ranges import check_ranges
from purls_pl.train.wiring import FinalCheckpoint, attach_wiring

#: Trainer defaults of every experiment (a config or flag overrides any of them).
TRAINER_DEFAULTS: dict = {
    "deterministic": "warn",
    "log_every_n_steps": 10,
    "num_sanity_val_steps": 0,
    "enable_model_summary": False,
}


#: LightningCLI options of both stages: the config is saved with every run (overwritten on resume), the
#: trainer defaults above, and optimizers are configured by the modules themselves.
CLI_OPTIONS: dict[str, Any] = {
    "save_config_kwargs": {"overwrite": True},
    "trainer_defaults": TRAINER_DEFAULTS,
    "auto_configure_optimizers": False,
}
#: The method a ``model:`` section without ``class_path`` configures (its keys are that class's arguments).
DEFAULT_METHOD = "purls_pl.models.purls_module.PurlsModule"


# Expected with a frozen backbone inside the module, and a Lightning-internal deprecation.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
# A final run returns no validation loader on purpose (it selects nothing).
warnings.filterwarnings("ignore", message=r"Total length of `list` across ranks is zero")
# Our entry points hand LightningCLI an explicit argv (commands.main strips the subcommand name).
warnings.filterwarnings("ignore", message=r"LightningCLI.s args parameter is intended to run from within Python")
# Under DDP: the zero-shot metrics are reduced by torchmetrics before they are logged (and GZSL is global).
warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('(val|test|gzsl)/")
# Small datasets have fewer batches than the logging interval: the epoch-level metrics are logged anyway.
warnings.filterwarnings(
    "ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval"
)


class _DropLibraryTips(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger (printed by every run, saying nothing to a user)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropLibraryTips())
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropLibraryTips())


def guard_trainer(trainer: Trainer) -> None:
    """What every trainer of both stages gets: checkpoints written atomically and sealed, loaded with
    ``weights_only=True`` and verified (:mod:`purls_pl.train.checkpoint_io`), a stop at the first non-finite
    loss (:class:`FiniteLoss`), and progress lines when the output is not a terminal
    (:func:`use_log_progress`)."""
    use_atomic_checkpoint_io(trainer)
    trainer.callbacks.append(FiniteLoss())
    use_log_progress(trainer)


def _split_value(config: Namespace) -> str | dict[str, Any]:
    split = config.data.split
    return split.as_dict() if isinstance(split, Namespace) else str(split)


def _source_dataset(config: Namespace) -> str | None:
    """The dataset the config's source reads (its ``dataset`` argument, else its class's), when known."""
    source = config.data.get("source")
    if not isinstance(source, Namespace):
        return None
    args = source.get("init_args")
    if isinstance(args, Namespace) and args.get("dataset"):
        return str(args.dataset)
    dataset = getattr(import_class(str(source.get("class_path"))), "dataset", None)
    return dataset if isinstance(dataset, str) else None


def run_split_name(config: Namespace) -> str:
    """The name of the split a run trains on: the split, or its selection split (``<split>-val<fold>``)."""
    data = config.data
    name = split_name(_split_value(config), _source_dataset(config))
    if data.get("protocol", "final") == "select":
        return selection_name(name, int(data.get("val_fold") or 0))
    return name


def resolve_data_derived(config: Namespace) -> None:
    """Fill in what follows from the split: the source's ``dataset`` (``ntu60`` for ``ntu60_55_5``) when the
    config leaves it unset, and the ``auto`` backbone paths of both stages (:func:`backbone_export_path` of
    the run's split: a selection run has a backbone of its own, trained without its validation classes)."""
    source = config.data.get("source")
    args = source.get("init_args") if isinstance(source, Namespace) else None
    split = _split_value(config)
    if isinstance(args, Namespace) and "dataset" in args and args.dataset is None and isinstance(split, str):
        args.dataset = get_split(split).dataset
    seed = config.get("seed_everything")
    path = str(backbone_export_path(run_split_name(config), int(seed or 0), config.trainer.get("default_root_dir")))
    model = config.get("model")
    model = model.get("init_args", model) if isinstance(model, Namespace) else None
    backbone = model.get("backbone") if isinstance(model, Namespace) else None
    backbone = backbone.get("init_args", backbone) if isinstance(backbone, Namespace) else None
    if isinstance(backbone, Namespace) and backbone.get("checkpoint") == AUTO:
        backbone.checkpoint = path
    if isinstance(backbone, Namespace) and backbone.get("checkpoint"):
        require_backbone(backbone.checkpoint)  # before the datamodule loads data and text
    export = config.get("export")
    if isinstance(export, Namespace) and export.get("path") == AUTO:
        export.path = path


def resolve_feature_dim(config: Namespace) -> None:
    """Give a :class:`~purls_pl.models.pooled.ReleasedFeatures` backbone left without ``dim`` the width of the
    released features ``data.source.init_args.path`` names (read from their header, before the model is built)."""
    model = config.get("model")
    model = model.get("init_args", model) if isinstance(model, Namespace) else None
    backbone = model.get("backbone") if isinstance(model, Namespace) else None
    if not isinstance(backbone, Namespace) or not str(backbone.get("class_path", "")).endswith(".ReleasedFeatures"):
        return
    args = backbone.get("init_args")
    if isinstance(args, Namespace) and args.get("dim") is not None:
        return
    source = config.data.get("source")
    path = source.get("init_args", Namespace()).get("path") if isinstance(source, Namespace) else None
    if not path:
        raise ValueError(
            "model.backbone ReleasedFeatures needs its width: give data.source a ReleasedFeatureSource with a path "
            "(experiments/sources/released-features.yaml), or set model.backbone.init_args.dim"
        )
    backbone.init_args = Namespace(dim=feature_dim(str(path)))


def check_description_file(config: Namespace) -> None:
    """Read ``data.descriptions`` when it names a file, before anything heavy is built: its shape, and that
    every entry has all 8 fields, none empty (whether it covers the run's classes is checked when the class
    text is built)."""
    spec = config.data.get("descriptions")
    if isinstance(spec, str) and spec not in ("auto", "labels", "demo"):
        descriptions = load_descriptions(spec)
        descriptions.validate(list(descriptions.entries))


def run_name(config: Namespace, prefix: str = "") -> str:
    """``<prefix><run split>``, with the name of the last ``--config`` file appended when it is a variant
    (e.g. ``nw-ucla_8_2-global``) rather than a base, a recipe or a selection."""
    configs = [str(c) for c in (config.get("config") or []) if c is not None]
    variant = next((v for c in reversed(configs) if (v := variant_of(c))), "")
    return prefix + run_split_name(config) + (f"-{variant}" if variant else "")


def run_final_test(cli: LightningCLI) -> None:
    """After a final fit (``data.protocol=final``), test the final weights once unless ``--test_after_fit=false``,
    then print the zero-shot metrics and where ``results.json`` is (:func:`~purls_pl.eval.results.summary_lines`)."""
    if cli.config[cli.subcommand].get("test_after_fit", True) and cli.datamodule.protocol == "final":
        cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
        path = results_path(cli.trainer)  # in every process: under DDP trainer.log_dir is a collective
        if cli.trainer.is_global_zero and path.is_file():
            print("\n" + "\n".join(summary_lines(read_results(path), path)), flush=True)


def add_final_run_args(parser: LightningArgumentParser, monitor: str, test_help: str) -> None:
    """The ``checkpoint`` group (:class:`FinalCheckpoint`: ``last.ckpt`` holds the final weights; a "best"
    checkpoint is chosen by ``monitor``, a validation metric) with its defaults, and ``--test_after_fit``
    (what the test after a final fit measures: ``test_help``)."""
    parser.add_lightning_class_args(FinalCheckpoint, "checkpoint")
    parser.set_defaults(
        {
            "checkpoint.monitor": monitor,
            "checkpoint.mode": "max",
            "checkpoint.save_last": True,
            "checkpoint.filename": "best-{epoch:03d}",
            "checkpoint.auto_insert_metric_name": False,
        }
    )
    parser.add_argument("--test_after_fit", type=bool, default=True, help=test_help)


def checkpoint_defaults(config: Namespace, monitor: str, validates: bool) -> None:
    """A run without validation (a final PURLS run, or stage 1 without a holdout) has nothing to monitor: it
    keeps ``last.ckpt`` only, the final weights. A configured monitor other than the default stays."""
    checkpoint = config.get("checkpoint")
    if not validates and isinstance(checkpoint, Namespace) and checkpoint.get("monitor") == monitor:
        checkpoint.monitor = None
        checkpoint.save_top_k = 0


def resumed_run(config: Namespace) -> tuple[Path, int] | None:
    """``(<run>, k)`` when a ``fit`` resumes from a checkpoint inside ``<run>/version_<k>/checkpoints/``, else
    ``None`` (``validate``/``test``/``predict``, recognised by their own arguments, never continue a run)."""
    if "verbose" in config or "return_predictions" in config or not config.get("ckpt_path"):
        return None
    version = Path(str(config.ckpt_path)).parent.parent
    match = re.fullmatch(r"version_(\d+)", version.name)
    if Path(str(config.ckpt_path)).parent.name != "checkpoints" or match is None:
        return None
    return version.parent, int(match[1])


def name_runs(config: Namespace, prefix: str = "") -> None:
    """Give runs without an explicit logger a TensorBoard logger named after the experiment file:
    ``lightning_logs/<prefix><config stem>/version_<k>/`` (checkpoints, config, results inside). A fit resumed
    from ``<run>/version_<k>/checkpoints/*.ckpt`` continues in that ``version_<k>`` (:func:`resumed_run`). A
    ``fast_dev_run`` (Lightning drops every logger) without ``trainer.default_root_dir`` writes under
    ``lightning_logs/<prefix><config stem>/fast_dev_run/``, never into the working directory."""
    trainer = config.trainer
    root = trainer.default_root_dir or "lightning_logs"
    if trainer.get("fast_dev_run") and not trainer.default_root_dir:
        trainer.default_root_dir = str(Path(root) / run_name(config, prefix) / "fast_dev_run")
    if trainer.logger not in (None, True):
        return
    args = Namespace(save_dir=root, name=run_name(config, prefix))
    resumed = resumed_run(config)
    if resumed is not None:
        run, version = resumed
        args = Namespace(save_dir=str(run.parent), name=run.name, version=version)
    trainer.logger = Namespace(class_path="pytorch_lightning.loggers.TensorBoardLogger", init_args=args)


def reserve_version(root: Path) -> int:
    """Create ``root/version_<k>`` for the next free ``k`` (atomic ``mkdir``, so parallel runs such as sweep
    agents never share a directory) and return ``k``. A DDP worker process (``LOCAL_RANK``/``NODE_RANK``, or
    a SLURM task other than the first) only looks the newest one up."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[8:]) for p in root.glob("version_*") if p.name[8:].isdigit()]
    k = max(taken, default=-1) + 1
    if any(os.environ.get(var, "0") != "0" for var in ("LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")):
        return max(k - 1, 0)
    while True:
        try:
            (root / f"version_{k}").mkdir()
            return k
        except FileExistsError:
            k += 1


def pair_wandb_logger(config: Namespace, prefix: str = "") -> None:
    """A lone W&B logger (``--trainer.logger experiments/loggers/wandb.yaml``) gets a TensorBoard logger in
    front of it, and both write into one run directory of their own,
    ``<root>/<prefix><config stem>/version_<k>/`` (reserved at once; root = ``trainer.default_root_dir``, else
    the W&B ``save_dir``): config, checkpoints, results and ``wandb/run-*`` stay together per run, and
    ``report`` reads it like any other run. A resumed fit (:func:`resumed_run`) reuses its own directory."""
    trainer = config.trainer
    logger = trainer.logger
    if not isinstance(logger, Namespace) or not str(logger.get("class_path", "")).endswith("WandbLogger"):
        return
    if trainer.get("fast_dev_run"):  # Lightning drops every logger: no run directory to reserve
        return
    name = run_name(config, prefix)
    args = logger.init_args
    root = Path(trainer.default_root_dir or args.get("save_dir") or "lightning_logs")
    resumed = resumed_run(config)
    if resumed is not None:  # a resumed fit continues in its own run directory (see name_runs)
        root, name, version = resumed[0].parent, resumed[0].name, resumed[1]
    else:
        version = reserve_version(root / name)
    args.save_dir = str(root / name / f"version_{version}")
    if not args.get("name"):
        args.name = f"{name}/version_{version}"
    tensorboard = Namespace(
        class_path="pytorch_lightning.loggers.TensorBoardLogger",
        init_args=Namespace(save_dir=str(root), name=name, version=version),
    )
    trainer.logger = [tensorboard, logger]


#: How jsonargparse starts the error that wraps an exception raised by a subclass's constructor.
_UNION_ERROR = "Does not validate against any of the Union subtypes"


def constructor_error(err: BaseException) -> BaseException:
    """The exception a constructor raised, out of jsonargparse's wrapping of it (else ``err`` itself)."""
    if not str(err).startswith(_UNION_ERROR):
        return err
    inner: BaseException = err
    while (inner.__cause__ or inner.__context__) is not None:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    return inner


def attach_test_time_cache(cli: LightningCLI) -> None:
    """Give the method a Skeleton-Cache over its evaluation stream when ``--test_time_cache.enabled=true``
    (:mod:`purls_pl.models.skeleton_cache`), with the dataset's field descriptions for its ``text`` prior."""
    settings = cli.config_init[cli.subcommand].get("test_time_cache")
    if settings is None or not settings.enabled:
        return
    class_text = getattr(cli.datamodule, "class_text", None)
    text = None if class_text is None else class_text.embeddings
    cli.model.test_time_cache = SkeletonCache(settings, cli.model.layout, text)


class PurlsCLI(LightningCLI):
    """LightningCLI for PURLS with argument links and zero-shot evaluation always attached."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.class_text", "model.init_args.class_text", apply_on="instantiate")
        parser.link_arguments("data.layout", "model.init_args.layout", apply_on="instantiate")
        parser.set_defaults({"model": {"class_path": DEFAULT_METHOD}})
        parser.add_lightning_class_args(ZeroShotEvaluation, "zero_shot")
        parser.add_lightning_class_args(GeneralizedZeroShotEvaluation, "gzsl")
        parser.add_class_arguments(CacheSettings, "test_time_cache", fail_untyped=False)
        add_final_run_args(
            parser,
            VAL_TOP1,
            "After a final fit (data.protocol=final), test its final weights on the unseen classes once "
            "and write results.json. A selection run never tests.",
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        check_ranges(config)
        check_description_file(config)
        resolve_data_derived(config)
        resolve_feature_dim(config)
        checkpoint_defaults(config, VAL_TOP1, validates=config.data.get("protocol", "final") == "select")
        name_runs(config)
        pair_wandb_logger(config)

    def resolved_config(self) -> dict[str, Any]:
        """The run's full resolved configuration as a plain dict (what ``config.yaml`` holds)."""
        parser = self._parser(self.subcommand)
        try:
            return yaml.safe_load(parser.dump(self.config.get(str(self.subcommand), self.config), skip_none=False))
        except Exception as err:  # provenance must never stop a run
            warnings.warn(f"could not dump the resolved config for the loggers: {err}", stacklevel=2)
            return {}

    def instantiate_classes(self) -> None:
        """Lightning's, with a method's own constructor error (a refused backbone, an impossible option)
        raised as itself: jsonargparse wraps it in "Does not validate against any of the Union subtypes"."""
        try:
            super().instantiate_classes()
        except ValueError as err:
            raise constructor_error(err) from None
        attach_test_time_cache(self)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with :class:`RunProvenance` recording the resolved config and the git commit, the
        data-model wiring (:func:`~purls_pl.train.wiring.attach_wiring`), and :func:`guard_trainer`."""
        trainer = super().instantiate_trainer(**kwargs)
        trainer.callbacks.append(RunProvenance(self.resolved_config()))
        attach_wiring(trainer)
        guard_trainer(trainer)
        return trainer

    def after_fit(self) -> None:
        run_final_test(self)


def main(args: Sequence[str] | None = None) -> PurlsCLI:
    """Run the PURLS LightningCLI (``fit``/``validate``/``test``/``predict``) on ``args``.

    The command-line entry point is :func:`purls_pl.apps.commands.main`, which also dispatches the other
    commands (``pretrain``, ``report``, ``describe`` ...).
    """
    return PurlsCLI(
        ZeroShotMethod,
        ZeroShotDataModule,
        args=None if args is None else list(args),
        subclass_mode_model=True,
        **CLI_OPTIONS,
    )
