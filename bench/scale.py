"""The NTU-120-sized rehearsal: every data and training step at the size a user brings, timed.

    python bench/scale.py [--samples 114480] [--work DIR] [--steps raw1 raw2 pyskl datamodule stage1 stage2]
    python bench/scale.py --samples 4000 --work /tmp/scale   # a quick rehearsal of the same steps

What it builds in ``--work`` (deleted at the end unless ``--keep``):

* ``raw/``: ``--samples`` ``.skeleton`` files with valid NTU-120 names over all 120 classes, 106 performers,
  32 setups, 3 cameras and 2 replications (954 per class at full size), each a symlink to one of the 12 real
  samples in ``<shared>/data/ntu-samples``, so the parser does real work on real files;
* ``ntu120_3danno.pkl``: the same samples as a pyskl annotation pickle (each one's denoised raw keypoints
  ``(M, T, 25, 3)`` as its own array, the ``xsub_train`` / ``xsub_val`` lists), written by a pickler that
  serialises one sample at a time so the writer itself stays small.

Steps, each in a fresh subprocess. Its peak RSS is its own: ``VmHWM`` of ``/proc/self/status`` (``ru_maxrss``
would not do: Linux carries a parent's peak over ``fork`` and ``exec``); the worker column is ``ru_maxrss`` of
the largest worker process, which counts what it shared with the step's process when it was forked.

* ``raw1``, ``raw2``: raw folder -> cache (``NTUSkeletonSource``, 300 frames, 2 persons) with 1 and 2 worker
  processes: wall time, files/s, MB/s of skeleton text, peak RSS, the cache entry's size on disk;
* ``pyskl``: the pickle -> cache (``PysklSource``, ``split_key=xsub``);
* ``datamodule``: the ``ntu120_96_24`` stage-1 datamodule on the built cache: source load (a cache hit),
  the split, the sample sets, the loader and its first batch;
* ``stage1``: Shift-GCN (the NTU recipe's, n = 256) training steps on ``(B, 2, 300, 25, 3)`` batches and
  feature-export steps (no grad), samples/s and the epoch time it implies for the split's seen-class
  training samples; ``stage1-checkpoint``: the training steps with ``checkpoint_layers=True``;
* ``stage2``: PURLS training steps on node features ``(B, S, n)`` (L' = 75, J = 25) and a Global-baseline
  epoch over time-pooled features ``(N, 25, n)`` (``pool_frames=1``) of every seen-class training sample.

Figures print as a Markdown table (and ``--json``); ``bench/README.md`` holds the latest. ``load`` is the 1-minute
load average when the step ended: the step itself accounts for about one per busy process, anything above that
is other work that shared the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FULL = 114_480
SETUPS, CAMERAS, PERFORMERS, REPLICATIONS, CLASSES = 32, 3, 106, 2, 120
# Two 300-frame, 2-person float32 caches at a time (180 kB each per sample) and the pickle (~60 kB per sample).
SCRATCH_BYTES_PER_SAMPLE = 2 * 2 * 300 * 25 * 3 * 4 + 60_000
STEPS = ("raw1", "raw2", "pyskl", "datamodule", "stage1", "stage1-checkpoint", "stage2")


def _peak_rss_mb() -> tuple[float, float]:
    """The peak RSS of this process (``VmHWM``) and ``ru_maxrss`` of its largest finished child, MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # an upper bound where /proc is missing
    status = Path("/proc/self/status")
    if status.is_file():
        hwm = [ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM:")]
        own = int(hwm[0].split()[1]) / 1024 if hwm else own
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def _du_mb(path: Path) -> float:
    """Allocated size of ``path`` (a file or a folder), MB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_blocks * 512 for p in files) / 1e6


def sample_names(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct NTU-120 sample names spread evenly over the 120 classes, drawn over every setup,
    camera, performer and replication."""
    import numpy as np

    rng = np.random.default_rng(seed)
    per_class = [n // CLASSES + (a < n % CLASSES) for a in range(CLASSES)]
    combos = SETUPS * CAMERAS * PERFORMERS * REPLICATIONS
    names = []
    for action, count in enumerate(per_class, start=1):
        for code in rng.choice(combos, size=count, replace=False).tolist():
            code, s = divmod(code, SETUPS)
            code, c = divmod(code, CAMERAS)
            r, p = divmod(code, PERFORMERS)
            names.append(f"S{s + 1:03d}C{c + 1:03d}P{p + 1:03d}R{r + 1:03d}A{action:03d}")
    return sorted(names)


def build_raw(work: Path, shared: Path, n: int) -> dict[str, Any]:
    """The symlinked raw folder (reused when it already holds ``n`` files)."""
    real = sorted((shared / "data" / "ntu-samples").glob("*.skeleton"))
    if not real:
        raise SystemExit(f"{shared}/data/ntu-samples holds no .skeleton files; pass --shared")
    raw = work / "raw"
    names = sample_names(n)
    t0 = time.perf_counter()
    if not raw.is_dir() or len(os.listdir(raw)) != n:
        shutil.rmtree(raw, ignore_errors=True)
        raw.mkdir(parents=True)
        for i, name in enumerate(names):
            (raw / f"{name}.skeleton").symlink_to(real[i % len(real)])
    text_bytes = sum(real[i % len(real)].stat().st_size for i in range(n))
    return {"step": "link", "seconds": time.perf_counter() - t0, "items": n, "mb": text_bytes / 1e6}


class _OneSample:
    """An annotation's keypoint, copied from a shared real sample only when the pickler writes it."""

    def __init__(self, array: Any) -> None:
        self.array = array


def write_pickle(work: Path, raw: Path) -> dict[str, Any]:
    """The pyskl pickle of the raw folder's samples (each keypoint a distinct array in the file)."""
    import pickle

    import numpy as np

    from purls_pl.data.readers.ntu import NTUSampleName, load_ntu_skeleton, ntu_partition

    class Writer(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, _OneSample):
                return obj.array.copy().__reduce_ex__(4)
            return NotImplemented

    t0 = time.perf_counter()
    decoded: dict[Path, np.ndarray] = {}
    annotations, split = [], {"xsub_train": [], "xsub_val": []}
    for f in sorted(raw.iterdir()):
        target = f.resolve()
        if target not in decoded:
            seq = load_ntu_skeleton(target)  # (2, T, 25, 3); pyskl keeps one person where there is one
            decoded[target] = seq if seq[1].any() else seq[:1]
        kp = decoded[target]
        name = NTUSampleName.parse(f.name)
        annotations.append(
            {"frame_dir": f.stem, "label": name.label, "total_frames": kp.shape[1], "keypoint": _OneSample(kp)}
        )
        part = ntu_partition(name, "ntu120", "xsub")
        split["xsub_train" if part == "train" else "xsub_val"].append(f.stem)
    path = work / "ntu120_3danno.pkl"
    with open(path, "wb") as out:
        writer = Writer(out, protocol=4)
        writer.fast = True  # no memo: it would keep every sample's bytes alive until the end (a tree needs none)
        writer.dump({"split": split, "annotations": annotations})
    return {"step": "pyskl write", "seconds": time.perf_counter() - t0, "items": len(annotations)}


def _raw_source(work: Path, workers: int, cache: Path) -> Any:
    from purls_pl.data.readers import Conversion, NTUSkeletonSource

    return NTUSkeletonSource(
        str(work / "raw"), dataset="ntu120", conversion=Conversion(num_workers=workers, cache_dir=str(cache))
    )


def step_convert(work: Path, step: str) -> dict[str, Any]:
    """``raw1`` / ``raw2`` / ``pyskl``: build a cache entry from nothing."""
    from purls_pl.data.readers import Conversion, PysklSource

    cache = work / f"cache-{step}"
    shutil.rmtree(cache, ignore_errors=True)
    if step == "pyskl":
        path = work / "ntu120_3danno.pkl"
        source: Any = PysklSource(
            str(path), split_key="xsub", dataset="ntu120", conversion=Conversion(cache_dir=str(cache))
        )
        mb = path.stat().st_size / 1e6
    else:
        source = _raw_source(work, int(step[-1]), cache)
        mb = json.loads((work / "link.json").read_text())["mb"]
    t0 = time.perf_counter()
    s = source.load()
    seconds = time.perf_counter() - t0
    return {"step": step, "seconds": seconds, "items": len(s), "mb": mb, "disk_mb": _du_mb(cache)}


def step_datamodule(work: Path) -> dict[str, Any]:
    """The ``ntu120_96_24`` stage-1 datamodule on the raw cache of ``raw2`` (or ``raw1``)."""
    from purls_pl.train.datamodule import PretrainDataModule

    cache = next((work / f"cache-{s}" for s in ("raw2", "raw1") if (work / f"cache-{s}").is_dir()), None)
    if cache is None:
        raise SystemExit("datamodule: run the raw1 or raw2 step first (it builds the cache)")
    t0 = time.perf_counter()
    dm = PretrainDataModule(_raw_source(work, 0, cache), "ntu120_96_24", batch_size=64)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    seconds = time.perf_counter() - t0
    sizes = {k: len(v) for k, v in dm.sets.items()}
    (work / "sets.json").write_text(json.dumps(sizes))
    return {"step": "datamodule", "seconds": seconds, "items": sum(sizes.values()), "batch": list(batch.x.shape)}


def _seen_train(work: Path) -> int:
    sets = work / "sets.json"
    return json.loads(sets.read_text())["train"] if sets.is_file() else 0


def step_stage1(work: Path, batch: int, steps: int, checkpoint_layers: bool = False) -> list[dict[str, Any]]:
    """Shift-GCN training and export throughput at NTU shapes (``checkpoint_layers``: recompute each layer's
    activations in the backward pass instead of keeping them)."""
    import torch
    import torch.nn.functional as F

    from purls_pl.models.backbones import ShiftGCN

    torch.manual_seed(0)
    model = ShiftGCN(layout="ntu25", num_persons=2, checkpoint_layers=checkpoint_layers)  # the NTU recipe's
    head = torch.nn.Linear(256, 96)
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=1e-3)
    x, y = torch.randn(batch, 2, 300, 25, 3), torch.randint(0, 96, (batch,))
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(head(model(x).mean(dim=(2, 3))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t0)
    train_rate = batch / (sum(times) / len(times))
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(steps + 1):
            t0 = time.perf_counter()
            model(x)
            if i:
                times.append(time.perf_counter() - t0)
    export_rate = batch / (sum(times) / len(times))
    seen = _seen_train(work)
    train = f"stage1 train (B = {batch}{', checkpoint_layers' if checkpoint_layers else ''})"
    rows = [{"step": train, "items_per_s": train_rate, "epoch_s": seen / train_rate if seen else None}]
    if not checkpoint_layers:  # the export runs without gradients: nothing to checkpoint
        rows.append(
            {"step": "stage1 export", "items_per_s": export_rate, "epoch_s": seen / export_rate if seen else None}
        )
    return rows


def step_stage2(work: Path, batch: int, steps: int) -> list[dict[str, Any]]:
    """PURLS steps on node features ``(B, 75·25, 256)``, and Global-baseline epochs over the split's seen-class
    training samples as time-pooled features ``(N, 25, 256)`` (``pool_frames=1``) and as pooled vectors
    ``(N, 1, 256)`` (released features), with one torch thread and with one per CPU: random values at NTU-120
    96/24 shapes, with a random ``(120, 8, 512)`` text table (no text tower is loaded)."""
    sys.path.insert(0, str(REPO / "bench"))
    import torch
    from head_throughput import build_head

    from purls_pl.models.partition import GlobalPartitioner

    args = argparse.Namespace(seen=96, unseen=24, text_dim=512, node_dim=256, attn_dim=150)
    seen = _seen_train(work) or 60_000
    out = []
    cpus = os.cpu_count() or 1
    for label, nodes, size, partitioner, threads in (
        ("stage2 PURLS step, node features", 75 * 25, batch, None, cpus),
        *(
            (f"stage2 Global epoch, {what} ({t} thread{'s' * (t > 1)})", nodes, 256, GlobalPartitioner, t)
            for what, nodes in (("time-pooled features", 25), ("pooled vectors", 1))
            for t in sorted({1, cpus})
        ),
    ):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        module = build_head(args, torch.device("cpu"), partitioner, pooled=nodes == 1)
        opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
        features = torch.randn(size, nodes, 256).half()  # as read from a feature cache
        targets = torch.randint(0, 96, (size,))
        epoch = partitioner is not None
        count = -(-seen // size) if epoch else steps  # pooled: a whole epoch
        t0 = time.perf_counter()
        for _ in range(count):
            seen_text = module.seen_text
            v, _ = module(features.float(), seen_text[targets])
            module.criterion(v, seen_text, targets)["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        rate = count * size / seconds
        row = {"step": label, "items_per_s": rate, "epoch_s": seen / rate}
        if epoch:
            row.update(items=count * size, seconds=seconds)
        out.append(row)
    return out


def run_step(args: argparse.Namespace) -> None:
    """In the step's own process: run it, print one JSON line of results with the peak RSS."""
    work = Path(args.work)
    if args.step in ("raw1", "raw2", "pyskl"):
        results = [step_convert(work, args.step)]
    elif args.step == "datamodule":
        results = [step_datamodule(work)]
    elif args.step in ("stage1", "stage1-checkpoint"):
        results = step_stage1(work, args.batch, args.train_steps, args.step == "stage1-checkpoint")
    else:
        results = step_stage2(work, args.stage2_batch, args.train_steps)
    own, children = _peak_rss_mb()
    for r in results:
        r.update(rss_mb=own, worker_rss_mb=children or None, load=os.getloadavg()[0])
    print("RESULT " + json.dumps(results))


def _spawn(args: argparse.Namespace, step: str) -> list[dict[str, Any]]:
    cmd = [sys.executable, __file__, "--step", step, "--work", args.work, "--batch", str(args.batch)]
    cmd += ["--train-steps", str(args.train_steps), "--stage2-batch", str(args.stage2_batch)]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"step {step} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def _fmt(v: Any, digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}" if isinstance(v, float) else str(v)


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| step | items | wall s | items/s | MB/s | epoch s (implied) | peak RSS MB | worker RSS MB | disk MB | load |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        seconds = r.get("seconds")
        rate = r.get("items_per_s") or (r["items"] / seconds if seconds and r.get("items") else None)
        mbs = r["mb"] / seconds if r.get("mb") and seconds else None
        cells = [r["step"], r.get("items"), seconds, rate, mbs, r.get("epoch_s"), r.get("rss_mb")]
        cells += [r.get("worker_rss_mb"), r.get("disk_mb"), r.get("load")]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=FULL, help="raw files (NTU-120: 114,480)")
    p.add_argument("--work", default=None, help="working folder (default: a new one under $TMPDIR)")
    p.add_argument("--shared", default=str(REPO.parent / "shared"), help="the shared data folder")
    p.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    p.add_argument("--batch", type=int, default=8, help="stage-1 batch (the recipe's 64 needs ~34 GB on CPU)")
    p.add_argument("--stage2-batch", type=int, default=64, help="PURLS node-feature batch")
    p.add_argument("--train-steps", type=int, default=3, help="timed stage-1 / PURLS steps")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--markdown", default=None, help="also write the table here")
    p.add_argument("--step", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.step:
        return run_step(args)
    sys.path.insert(0, str(REPO / "src"))
    import tempfile

    work = Path(args.work or tempfile.mkdtemp(prefix="purls-scale-"))
    args.work = str(work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; work folder {work}", flush=True)
    need = args.samples * SCRATCH_BYTES_PER_SAMPLE
    free = shutil.disk_usage(work).free
    if free < need:
        raise SystemExit(
            f"{work}: {free / 1e9:.1f} GB free; the rehearsal of {args.samples} samples needs about {need / 1e9:.1f} GB"
            " (two caches at a time and the pickle); pass --work on a larger disk or fewer --samples"
        )
    rows = [build_raw(work, Path(args.shared), args.samples)]
    (work / "link.json").write_text(json.dumps(rows[0]))
    start = time.perf_counter()
    try:
        for step in args.steps:
            if step == "pyskl":
                rows.append(write_pickle(work, work / "raw"))
                print(markdown(rows[-1:]).splitlines()[-1], flush=True)
            rows += _spawn(args, step)
            for r in rows[-1:]:
                print(markdown([r]).splitlines()[-1], flush=True)
            if step in ("raw1", "pyskl"):  # 20 GB each at full size: keep one cache only (raw2's)
                shutil.rmtree(work / f"cache-{step}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.samples} samples; {time.perf_counter() - start:.0f} s in all\n")
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(f"{args.samples} samples, {os.cpu_count()} CPUs\n\n{markdown(rows)}\n")


if __name__ == "__main__":
    main()
