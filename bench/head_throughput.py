"""Training throughput and peak memory of the PURLS head on cached features, vs. a naive text-per-step design.

Stages (each runs in a fresh subprocess, so its peak RSS is its own):

* ``head``  — one training step of :class:`purls_pl.models.purls_module.PurlsModule`'s head on cached
  node features: float16 features ``(B, S, n)`` -> float32, adaptive partitioner, f_skel, the α-weighted
  contrastive loss over the seen classes' precomputed text, backward, AdamW step;
* ``naive`` — the same step, but first re-encoding all ``K_seen x 8`` class descriptions with a frozen
  CLIP text tower (no grad), as the reference code does every step;
* ``read``  — reading a random batch from a float16 memory-mapped feature cache (page cache warm) and
  converting it to float32, i.e. what ``FrozenBackbone`` in cached mode adds per step.

Defaults are NTU-120 96/24 shapes: S = 75 x 25 nodes, n = 256, 8 descriptions, batch 256, 96 seen
classes, m = 512, attention h = 150. The text tower is a random ``CLIPTextModelWithProjection`` sized
like ViT-B/32's (12 layers, width 512, 8 heads, MLP 2048, projection 512) fed random token ids of a
fixed length (``--text-tokens``; the paper's prompts are ~20-40 BPE tokens), so tokenisation is not
counted (it would only make the naive design slower).

Examples::

    OMP_NUM_THREADS=1 .venv/bin/python bench/head_throughput.py                      # CPU, fp32 + bf16
    .venv/bin/python bench/head_throughput.py --device cuda --precision fp32 bf16 --steps 20 --json gpu.json
    .venv/bin/python bench/head_throughput.py --sizes-only                            # feature cache sizes

Peak memory: CUDA ``torch.cuda.max_memory_allocated`` per stage; CPU the process's peak RSS
(``ru_maxrss``) and its RSS after setup (inputs, model and optimiser built), whose difference is what the
steps add. (``tracemalloc`` does not see tensor memory, which torch allocates outside Python's heap.)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Samples per dataset (train + test together), joints, and the frames the readers keep (experiments/sources).
#: Kinetics-400: 240,436 + 19,796 st-gcn clips; Kinetics-200 (its classes 0-199) is estimated as half of
#: that; NW-UCLA: 1,494 videos.
DATASETS: dict[str, dict[str, Any]] = {
    "NTU-60": {"samples": 56_880, "joints": 25, "frames": 300},
    "NTU-120": {"samples": 114_480, "joints": 25, "frames": 300},
    "Kinetics-200": {"samples": 130_116, "joints": 18, "frames": 300},  # estimate: half of Kinetics-400
    "Kinetics-400": {"samples": 260_232, "joints": 18, "frames": 300},
    "NW-UCLA": {"samples": 1_494, "joints": 20, "frames": 32},
}


def _rss_mb() -> float:
    """Current resident set size of this process in MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_head(args: argparse.Namespace, device: torch.device, partitioner: Any = None, pooled: bool = False) -> Any:
    """A PurlsModule with a random ``(K, 8, m)`` text table; only its head is exercised. ``partitioner``: a
    partitioner factory (default: the adaptive one, ``args.attn_dim`` wide); ``pooled``: on released pooled
    vectors ``(B, 1, n)`` (the ``pooled`` layout) instead of NTU's 25 joints."""
    from purls_pl.models.backbones import ShiftGCN
    from purls_pl.models.features import FrozenBackbone, export_backbone
    from purls_pl.models.partition import AdaptivePartitioner
    from purls_pl.models.purls_module import PurlsModule
    from purls_pl.text.encoder import ClassText

    k = args.seen + args.unseen
    text = ClassText(
        tuple(f"class{i}" for i in range(k)),
        F.normalize(torch.randn(k, 8, args.text_dim), dim=-1),
        tuple(range(args.seen)),
        tuple(range(args.seen, k)),
    )
    part = partitioner or functools.partial(AdaptivePartitioner, attn_dim=args.attn_dim)
    if pooled:
        from purls_pl.models.pooled import ReleasedFeatures

        return PurlsModule(text, "pooled", ReleasedFeatures(args.node_dim), partitioner=part).to(device).train()
    with tempfile.TemporaryDirectory() as tmp:  # the head needs only the backbone's width n
        encoder = ShiftGCN(layout="ntu25", num_persons=1, channels=[args.node_dim], strides=[1])
        backbone = FrozenBackbone(str(export_backbone(encoder, Path(tmp) / "b.pt")))
    return PurlsModule(text, "ntu25", backbone, partitioner=part).to(device).train()


def build_text_tower(args: argparse.Namespace, device: torch.device) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """A random frozen CLIP text tower and ``(K_seen·8, L)`` token ids with their attention mask."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    sizes = {
        "vit-b32": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8},
        "tiny": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    }[args.text_tower]
    config = CLIPTextConfig(vocab_size=49_408, max_position_embeddings=77, projection_dim=args.text_dim, **sizes)
    tower = CLIPTextModelWithProjection(config).to(device).eval().requires_grad_(False)
    prompts = args.seen * 8
    ids = torch.randint(0, 49_406, (prompts, args.text_tokens), device=device)
    ids[:, -1] = 49_407  # end-of-text token (CLIP pools there)
    return tower, ids, torch.ones_like(ids)


def run_stage(args: argparse.Namespace) -> dict[str, Any]:
    """One stage at one precision, in this process."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    stage, precision = args.stage, args.run_precision
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    nodes = args.frames * args.joints
    out: dict[str, Any] = {"stage": stage, "precision": precision, "device": args.device, "batch": args.batch}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    if stage == "read":
        from purls_pl.models.features import FeatureCache

        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            shape = (args.read_samples, nodes, args.node_dim)
            array = np.lib.format.open_memmap(Path(tmp) / "features.npy", mode="w+", dtype=np.float16, shape=shape)
            for i in range(0, shape[0], 64):
                array[i : i + 64] = np.random.default_rng(i).standard_normal((len(array[i : i + 64]), *shape[1:]))
            array.flush()
            del array
            (Path(tmp) / "manifest.json").write_text("{}")
            cache = FeatureCache(tmp)
            out["rss_setup_mb"] = _rss_mb()
            g = torch.Generator().manual_seed(0)
            times = []
            for step in range(args.warmup + args.steps):
                index = torch.randperm(args.read_samples, generator=g)[: args.batch].sort().values
                start = time.perf_counter()
                x = cache.read(index).to(device=device, dtype=torch.float32)
                _sync(device)
                if step >= args.warmup:
                    times.append(time.perf_counter() - start)
            del x, cache
        return _finish(out, times, args, device)

    module = build_head(args, device)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    features = torch.randn(args.batch, nodes, args.node_dim, device=device).half()  # as read from the cache
    targets = torch.randint(0, args.seen, (args.batch,), device=device)
    tower = ids = mask = None
    if stage == "naive":
        tower, ids, mask = build_text_tower(args, device)

    def step(prompts: int | None = None) -> None:
        seen_text = module.seen_text
        with amp:
            if tower is not None:
                with torch.no_grad():
                    rows = slice(0, prompts)
                    emb = tower(input_ids=ids[rows], attention_mask=mask[rows]).text_embeds
                if prompts is None:  # the whole table, fed to the loss and the queries like the cached one
                    seen_text = F.normalize(emb.float(), dim=-1).view(args.seen, 8, args.text_dim)
            v, _ = module(features.float(), seen_text[targets])
            loss = module.criterion(v, seen_text, targets)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    out["rss_setup_mb"] = _rss_mb()
    times = []
    for i in range(args.warmup + (args.naive_steps if stage == "naive" else args.steps)):
        warm = i < args.warmup
        start = time.perf_counter()
        step(prompts=8 if warm and stage == "naive" and device.type == "cpu" else None)
        _sync(device)
        if not warm:
            times.append(time.perf_counter() - start)
    return _finish(out, times, args, device)


def _finish(out: dict[str, Any], times: list[float], args: argparse.Namespace, device: torch.device) -> dict:
    step_s = float(np.median(times))
    out.update(
        step_ms=round(step_s * 1e3, 1),
        samples_per_s=round(args.batch / step_s, 1),
        steps_timed=len(times),
        peak_rss_mb=round(_peak_rss_mb(), 1),
        rss_setup_mb=round(out["rss_setup_mb"], 1),
    )
    if device.type == "cuda":
        out["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def cache_sizes(node_dim: int = 256, pools: tuple[int | None, ...] = (None, 15, 5)) -> list[dict[str, Any]]:
    """Feature cache size ``N · L' · J · n · 2`` bytes per dataset and temporal length L'.

    L' without pooling is the input frames / 4 (Shift-GCN's two temporal strides of 2).
    """
    rows = []
    for name, d in DATASETS.items():
        native = d["frames"] // 4
        for pool in pools:
            if pool is not None and pool >= native:
                continue
            frames = native if pool is None else pool
            size = d["samples"] * frames * d["joints"] * node_dim * 2
            rows.append(
                {
                    "dataset": name,
                    "samples": d["samples"],
                    "J": d["joints"],
                    "L'": frames,
                    "pool_frames": pool,
                    "GB": round(size / 1e9, 2),
                    "per_sample_KB": round(size / d["samples"] / 1e3, 1),
                }
            )
    return rows


def markdown(results: list[dict[str, Any]], sizes: list[dict[str, Any]]) -> str:
    lines = []
    if results:
        cuda = any("cuda_peak_mb" in r for r in results)
        head = "| stage | precision | step ms | samples/s | RSS after setup MB | peak RSS MB |"
        head += " CUDA peak MB |" if cuda else ""
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for r in results:
            row = f"| {r['stage']} | {r['precision']} | {r['step_ms']} | {r['samples_per_s']} | "
            row += f"{r['rss_setup_mb']} | {r['peak_rss_mb']} |"
            row += f" {r.get('cuda_peak_mb', '—')} |" if cuda else ""
            lines.append(row)
        by = {(r["stage"], r["precision"]): r for r in results}
        for precision in sorted({r["precision"] for r in results}):
            if ("head", precision) in by and ("naive", precision) in by:
                ratio = by[("head", precision)]["samples_per_s"] / by[("naive", precision)]["samples_per_s"]
                lines.append(f"\nhead / naive throughput, {precision}: **{ratio:.1f}x**")
    if sizes:
        lines += ["", "| dataset | samples | J | L' | pool_frames | cache GB | KB/sample |", "|---" * 7 + "|"]
        for s in sizes:
            pool = s["pool_frames"] if s["pool_frames"] is not None else "none"
            frames = s["L'"]
            lines.append(
                f"| {s['dataset']} | {s['samples']} | {s['J']} | {frames} | {pool} | {s['GB']} | {s['per_sample_KB']} |"
            )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--stages", nargs="+", default=["head", "naive", "read"], choices=["head", "naive", "read"])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--frames", type=int, default=75, help="L'")
    p.add_argument("--joints", type=int, default=25, help="J")
    p.add_argument("--node-dim", type=int, default=256, help="n")
    p.add_argument("--text-dim", type=int, default=512, help="m")
    p.add_argument("--attn-dim", type=int, default=150, help="h")
    p.add_argument("--seen", type=int, default=96)
    p.add_argument("--unseen", type=int, default=24)
    p.add_argument("--text-tower", default="vit-b32", choices=["vit-b32", "tiny"])
    p.add_argument("--text-tokens", type=int, default=40, help="prompt length in tokens (naive stage)")
    p.add_argument("--steps", type=int, default=3, help="timed steps (head, read); the median is reported")
    p.add_argument("--naive-steps", type=int, default=1, help="timed steps of the naive stage")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--read-samples", type=int, default=512, help="samples in the temporary feature cache (read)")
    p.add_argument("--tmp", default=None, help="directory for the temporary feature cache")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--sizes-only", action="store_true", help="print the feature cache sizes and exit")
    p.add_argument("--stage", help=argparse.SUPPRESS)
    p.add_argument("--run-precision", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.stage:  # child process: one stage
        print(json.dumps(run_stage(args)))
        return
    sizes = cache_sizes(args.node_dim)
    results = []
    if not args.sizes_only:
        forwarded = list(argv if argv is not None else sys.argv[1:])  # a child ignores --json
        for stage in args.stages:
            for precision in args.precision if stage != "read" else ["fp16->fp32"]:
                cmd = [sys.executable, __file__, *forwarded, "--stage", stage, "--run-precision", precision]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"stage {stage} {precision} failed")
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), file=sys.stderr)
    machine = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if args.device == "cuda" and torch.cuda.is_available() else None,
    }
    print(f"machine: {json.dumps(machine)}\n")
    print(markdown(results, sizes))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results, "cache_sizes": sizes}, indent=1))


if __name__ == "__main__":
    main()
