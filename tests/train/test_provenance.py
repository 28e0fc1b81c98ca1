"""W&B logging (offline), provenance without secrets, run directories per run, sweep definitions that parse."""

import json
import math
from pathlib import Path

import pytest
import yaml
from jsonargparse import Namespace

from purls_pl.apps.experiments import experiment_args
from purls_pl.train import cli
from purls_pl.train.provenance import REDACTED, git_state, redact, secret_values

REPO = Path(__file__).resolve().parents[2]
SWEEPS = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))
WANDB_LOGGER = REPO / "experiments" / "loggers" / "wandb.yaml"
OPENAI_KEY = "sk-test-NOT-A-REAL-KEY-0123456789abcdef"
WANDB_KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0f12345678"


def test_trainer_logger_takes_the_wandb_file(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit):
        cli.main(["fit", *experiment_args("demo_15_5"), "--trainer.logger", str(WANDB_LOGGER), "--print_config"])
    logger = yaml.safe_load(capsys.readouterr().out)["trainer"]["logger"]
    assert logger["class_path"] == "pytorch_lightning.loggers.WandbLogger"
    assert logger["init_args"]["project"] == "purls-pl" and logger["init_args"]["log_model"] is False
    assert logger["init_args"]["save_dir"] == "lightning_logs"


def test_each_wandb_run_reserves_its_own_directory(tmp_path):
    def config() -> Namespace:
        wandb = Namespace(
            class_path="pytorch_lightning.loggers.WandbLogger", init_args=Namespace(save_dir=str(tmp_path))
        )
        return Namespace(
            config=["experiments/purls.yaml", "experiments/demo.yaml"],
            data=Namespace(split="demo_15_5"),
            trainer=Namespace(logger=wandb, default_root_dir=None),
        )

    first, second = config(), config()
    cli.pair_wandb_logger(first)
    cli.pair_wandb_logger(second)  # a parallel agent in the same directory
    dirs = [c.trainer.logger[1].init_args.save_dir for c in (first, second)]
    assert dirs == [str(tmp_path / "demo_15_5" / "version_0"), str(tmp_path / "demo_15_5" / "version_1")]
    assert all(Path(d).is_dir() for d in dirs)
    tensorboard = first.trainer.logger[0]
    assert tensorboard.class_path.endswith("TensorBoardLogger") and tensorboard.init_args.version == 0
    alone = Namespace(config=None, data=Namespace(split="x"), trainer=Namespace(logger=None, default_root_dir=None))
    cli.pair_wandb_logger(alone)
    assert alone.trainer.logger is None  # anything but a lone W&B logger is left alone


def test_redaction_and_git_state(tmp_path):
    env = {"OPENAI_API_KEY": OPENAI_KEY, "HF_TOKEN": "hf_abcdefghijk", "TOKENIZERS_PARALLELISM": "false"}
    secrets = secret_values(env)
    assert set(secrets) == {OPENAI_KEY, "hf_abcdefghijk"}
    cleaned = redact({"a": {"api_key": "x", "tokenizer": "t", "note": f"key={OPENAI_KEY}"}, "l": [OPENAI_KEY]}, secrets)
    assert cleaned == {"a": {"api_key": REDACTED, "tokenizer": "t", "note": f"key={REDACTED}"}, "l": [REDACTED]}
    assert git_state(tmp_path) == {"git_commit": None, "git_dirty": None}


def test_wandb_offline_fit_records_config_and_commit_and_no_secret(tmp_path, monkeypatch, tiny_backbone, tiny_clip):
    monkeypatch.chdir(REPO)
    for var, sub in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)
    runs = tmp_path / "runs"
    cli.main(
        [
            "fit",
            *experiment_args("demo_15_5"),
            "--trainer.logger",
            str(WANDB_LOGGER),
            f"--trainer.logger.init_args.save_dir={runs}",
            f"--trainer.default_root_dir={runs}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.precision=32-true",
            f"--model.backbone.checkpoint={tiny_backbone}",
            f"--data.text_encoder.model={tiny_clip}",
            "--data.source.init_args.samples_per_class=4",
            "--data.source.init_args.num_frames=12",
            "--data.batch_size=8",
        ]
    )
    import wandb

    assert wandb.run is not None and wandb.run.config["config"]["data"]["split"] == "demo_15_5"  # resolved config
    assert wandb.run.config["git_commit"] == git_state()["git_commit"]
    wandb.finish()
    run = runs / "demo_15_5" / "version_0"
    wandb_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1 and list(wandb_runs[0].glob("run-*.wandb"))
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert list(run.glob("events.out.tfevents*"))
    results = json.loads((run / "results.json").read_text())
    assert "git_commit" in results and "git_dirty" in results and len(results["config_hash"]) == 20
    assert set(results["per_class"]) == set(results["unseen_classes"]) and len(results["confusion"]) == 5
    assert 0.0 <= results["gzsl"]["unseen"] <= 1.0 and results["gzsl"]["num_unseen_classes"] == 5
    assert (run / "confusion.png").is_file() and (run / "gzsl_curve.png").is_file()
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["git_commit"] == results["git_commit"] and hparams["config"]["data"]["split"] == "demo_15_5"
    run_file = next(wandb_runs[0].glob("run-*.wandb")).read_bytes()
    assert b"seed_everything" in run_file and b"git_commit" in run_file  # ... and in the offline run file
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert OPENAI_KEY.encode() not in data and WANDB_KEY.encode() not in data, path


def _samples(spec: dict) -> list:
    """Values a W&B parameter spec can take: every listed value, or the ends and middle of a range
    (https://docs.wandb.ai/guides/sweeps/sweep-config-keys#parameters)."""
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    lo, hi = spec["min"], spec["max"]
    kind = spec.get("distribution", "int_uniform" if isinstance(lo, int) and isinstance(hi, int) else "uniform")
    if kind in ("log_uniform_values", "q_log_uniform_values"):
        return [lo, math.sqrt(lo * hi), hi]
    if kind in ("int_uniform", "q_uniform"):
        return [lo, (lo + hi) // 2, hi]
    if kind == "uniform":
        return [lo, (lo + hi) / 2, hi]
    raise AssertionError(f"no sampler for distribution {kind!r}")


def _agent_command(sweep: dict, values: dict) -> list[str]:
    """The argv the W&B agent runs for one trial: wandb's own macro expansion and argument formatting
    (``wandb.sdk.launch.sweeps.utils``), substituted as ``wandb.wandb_agent.Agent._command_run`` does."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    sweep_vars.update(env=["/usr/bin/env"], interpreter=["python"], program=[sweep["program"]])
    argv: list[str] = []
    for c in map(str, create_sweep_command(list(sweep["command"]))):
        argv += (sweep_vars.get(c[2:-1]) or []) if c.startswith("${") and c.endswith("}") else [c]
    return argv


@pytest.mark.parametrize("sweep_file", SWEEPS, ids=lambda p: p.stem)
def test_sweep_trials_parse_with_the_cli(sweep_file, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    sweep = yaml.safe_load(sweep_file.read_text())
    assert sweep["metric"]["name"] in ("test/zsl_top1", "val/zsl_top1") and "${args}" in sweep["command"]
    # `make sweep` substitutes SPLIT and its recipe here
    assert {"--config=experiments/demo.yaml", "--data.split=demo_15_5"} <= set(sweep["command"])
    samples = {name: _samples(spec) for name, spec in sweep["parameters"].items()}
    for trial in range(max(map(len, samples.values()))):
        values = {name: vals[trial % len(vals)] for name, vals in samples.items()}
        argv = _agent_command(sweep, values)
        assert argv[:4] == ["/usr/bin/env", "python", "-m", "purls_pl"]
        assert all(f"--{k}={v}" in argv for k, v in values.items())
        with pytest.raises(SystemExit) as stop:
            cli.main([*argv[4:], "--print_config"])
        assert stop.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["trainer"]["logger"]["class_path"].endswith("WandbLogger")
        for name, value in values.items():
            node = printed
            for key in name.split("."):
                node = node[key] if key in node else node["init_args"][key]  # a method's own arguments
            node = node["class_path"] if isinstance(node, dict) else node
            assert node == value or math.isclose(float(node), float(value)), (name, node, value)


def test_config_hash_ignores_where_a_run_writes_and_sees_what_it_computes(tmp_path):
    from purls_pl.train.provenance import config_hash

    backbone = tmp_path / "b.pt"
    backbone.write_bytes(b"weights v1")
    config = {
        "model": {"lr": 0.001, "backbone": {"init_args": {"checkpoint": str(backbone), "cache_dir": "/a"}}},
        "trainer": {"default_root_dir": "/runs/a", "max_epochs": 3},
        "data": {"num_workers": 0, "source": {"init_args": {"root": "/data/a"}}},
    }
    same = json.loads(json.dumps(config))
    same["trainer"]["default_root_dir"], same["data"]["num_workers"] = "/runs/b", 8
    same["data"]["source"]["init_args"]["root"] = "/elsewhere"
    assert config_hash(config) == config_hash(same)
    other = json.loads(json.dumps(config))
    other["trainer"]["max_epochs"] = 4
    assert config_hash(other) != config_hash(config)
    before = config_hash(config)
    backbone.write_bytes(b"weights v2")  # retrained at the same path
    assert config_hash(config) != before
