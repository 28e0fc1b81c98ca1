"""Raw-skeleton conversion throughput and peak memory, serial and in parallel (cache disabled).

    python bench/data_conversion.py [--shared ../shared] [--ntu-repeat 20] [--workers 2] [--json out.json]

Measures, for each (dataset, num_workers):

* NW-UCLA: every ``all_sqe`` json in ``<shared>/data/nw-ucla/all_sqe`` (1484 files), ``UCLASource``;
* NTU RGB+D: the 12 real ``.skeleton`` samples in ``<shared>/data/ntu-samples``, each linked
  ``--ntu-repeat`` times into a temporary folder under distinct sample names (a steadier figure),
  ``NTUSkeletonSource(dataset="ntu120")``;

files/s and MB/s (source bytes) of ``source.load()`` with ``cache=False``, the tracemalloc peak of
the Python heap in the main process, and ``getrusage`` max RSS of the process and of its worker
processes. Every configuration runs in a fresh subprocess (so max RSS is its own), twice: once
timed without tracemalloc (its tracing slows Python down), once under tracemalloc for the peak.
Files are read once beforehand so the figures measure parsing, not a cold disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from purls_pl.data.skeletons import SkeletonSource

REPO = Path(__file__).resolve().parents[1]


def _source(dataset: str, root: Path, workers: int) -> SkeletonSource:
    from purls_pl.data.readers import Conversion, NTUSkeletonSource, UCLASource

    if dataset == "nw-ucla":
        return UCLASource(
            str(root),
            conversion=Conversion(num_workers=workers, cache=False),
        )
    return NTUSkeletonSource(
        str(root),
        dataset="ntu120",
        conversion=Conversion(num_workers=workers, cache=False),
    )


def _measure(dataset: str, root: Path, workers: int, trace: bool) -> dict[str, float]:
    """One load in this process: seconds, samples, tracemalloc peak (if ``trace``), max RSS."""
    source = _source(dataset, root, workers)
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    loaded = source.load()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    return {
        "seconds": seconds,
        "samples": len(loaded),
        "tracemalloc_peak_mb": peak / 2**20,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
        "maxrss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _run_child(dataset: str, root: Path, workers: int, trace: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", dataset, str(root), str(workers), "1" if trace else "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def _ntu_folder(src: Path, repeat: int, into: Path) -> None:
    """Link each sample ``repeat`` times as ``S...C...P...R<k>A...`` (distinct replication numbers)."""
    for path in sorted(src.glob("*.skeleton")):
        name = path.name
        for k in range(1, repeat + 1):
            (into / f"{name[:12]}R{k:03d}{name[16:]}").symlink_to(path.resolve())


def _warm(files: list[Path]) -> int:
    return sum(len(p.read_bytes()) for p in files)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("PURLS_SHARED_DIR", REPO.parent / "shared")))
    parser.add_argument("--ntu-repeat", type=int, default=20, help="links per NTU sample (12 x N files)")
    parser.add_argument("--workers", type=int, default=2, help="num_workers of the parallel runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)

    ucla = args.shared / "data" / "nw-ucla" / "all_sqe"
    ntu = args.shared / "data" / "ntu-samples"
    for folder in (ucla, ntu):
        if not folder.is_dir():
            parser.error(f"{folder} does not exist; pass --shared <folder holding data/nw-ucla and data/ntu-samples>")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="purls-bench-") as tmp:
        ntu_root = Path(tmp)
        _ntu_folder(ntu, args.ntu_repeat, ntu_root)
        for dataset, root in (("nw-ucla", ucla), ("ntu", ntu_root)):
            files = sorted(root.glob("*.json" if dataset == "nw-ucla" else "*.skeleton"))
            size_mb = _warm(files) / 2**20
            for workers in (0, args.workers):
                timed = _run_child(dataset, root, workers, trace=False)
                traced = _run_child(dataset, root, workers, trace=True)
                rows.append(
                    {
                        "dataset": dataset,
                        "files": len(files),
                        "mb": round(size_mb, 1),
                        "workers": workers,
                        "seconds": round(timed["seconds"], 2),
                        "files_per_s": round(len(files) / timed["seconds"], 1),
                        "mb_per_s": round(size_mb / timed["seconds"], 2),
                        "tracemalloc_peak_mb": round(traced["tracemalloc_peak_mb"], 1),
                        "maxrss_mb": round(timed["maxrss_mb"], 1),
                        "maxrss_workers_mb": round(timed["maxrss_children_mb"], 1),
                        "samples": int(timed["samples"]),
                    }
                )
    print(f"machine: {_machine()}")
    head = f"{'dataset':8} {'files':>6} {'MB':>6} {'workers':>7} {'s':>6} {'files/s':>8} {'MB/s':>6} "
    head += f"{'heap peak MB':>12} {'maxrss MB':>9} {'worker maxrss MB':>16}"
    print(head)
    for r in rows:
        print(
            f"{r['dataset']:8} {r['files']:>6} {r['mb']:>6} {r['workers']:>7} {r['seconds']:>6} "
            f"{r['files_per_s']:>8} {r['mb_per_s']:>6} {r['tracemalloc_peak_mb']:>12} {r['maxrss_mb']:>9} "
            f"{r['maxrss_workers_mb']:>16}"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": _machine(), "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _, _, name, folder, n_workers, with_trace = sys.argv
        print(json.dumps(_measure(name, Path(folder), int(n_workers), with_trace == "1")))
    else:
        main()
