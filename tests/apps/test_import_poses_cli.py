"""``python -m purls_pl import-poses SRC DST`` in a subprocess: writes the custom dataset, refuses to write over a
folder, and a bad file is one ``error:`` line naming the file, with nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _purls(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "purls_pl", *map(str, args)], capture_output=True, text=True, cwd=REPO)


def _source(tmp_path: Path) -> Path:
    """Two MMPose prediction files of one walking person each, index.csv and classes.txt."""
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    src.mkdir()
    for sid in ("a", "b"):
        frames = []
        for t in range(6):
            xy = rng.uniform(100, 200, (17, 2)) + 3 * t
            inst = {"keypoints": xy.tolist(), "keypoint_scores": [0.9] * 17, "bbox": [[90.0, 90.0, 230.0, 230.0]]}
            frames.append({"frame_id": t, "instances": [inst]})
        (src / f"{sid}.json").write_text(json.dumps(frames))
    (src / "index.csv").write_text("sample_id,label,split\na,wave,train\nb,jump,test\n")
    (src / "classes.txt").write_text("wave\njump\n")
    return src


def test_import_poses_command(tmp_path: Path) -> None:
    src = _source(tmp_path)
    run = _purls("import-poses", src, tmp_path / "set", "--max-persons", "1")
    assert run.returncode == 0, run.stderr
    assert f"wrote 2 samples (layout coco17) to {tmp_path / 'set'}" in run.stdout
    assert np.load(tmp_path / "set" / "a.npy").shape == (1, 6, 17, 3)
    assert json.loads((tmp_path / "set" / "layout.json").read_text())["name"] == "coco17"
    again = _purls("import-poses", src, tmp_path / "set")
    assert again.returncode == 2 and "error:" in again.stderr and "--overwrite" in again.stderr
    (src / "b.json").write_text((src / "b.json").read_text()[:200])
    bad = _purls("import-poses", src, tmp_path / "new")
    assert bad.returncode == 2 and str(src / "b.json") in bad.stderr and "truncated" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "src"]
    assert "import-poses" in _purls("--help").stderr
