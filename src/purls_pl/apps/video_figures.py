"""Pictures of a :class:`~purls_pl.apps.recognize_video.VideoResult`: the timeline figure and the rendered video.

:func:`timeline_figure` (matplotlib, the ``plots`` extra): classes x time, each window's smoothed score as
colour over the frames it stands for, unscored windows grey, and the segments as a bar above.
:func:`render_video` (Pillow draws; a GIF needs nothing else, an MP4 OpenCV): every frame with the person's
skeleton (the checkpoint's layout, its bones) and the window's three best classes; on the video's own frames,
or on a blank canvas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from purls_pl.apps.video_segments import VideoResult, window_cores
from purls_pl.data.layouts import get_layout
from purls_pl.video.landmarks import to_layout

__all__ = ["render_video", "timeline_figure"]


def timeline_figure(result: VideoResult, path: str | Path) -> Path:
    """Write the timeline (classes x seconds, scores as colour, the segments above) to ``path``; returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fps, frames = result.track.fps, result.track.num_frames
    grid = np.full((len(result.classes), frames), np.nan)
    for (lo, hi), ok, row in zip(window_cores(result.windows), result.valid, result.scores):
        if ok:
            grid[:, lo:hi] = row[:, None]
    height = 1.2 + 0.32 * len(result.classes)
    fig, (bar, ax) = plt.subplots(
        2, 1, figsize=(9, height), sharex=True, gridspec_kw={"height_ratios": [0.5, len(result.classes)]}
    )
    cmap = matplotlib.colormaps["viridis"].copy()
    cmap.set_bad("0.85")
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        extent=(0, frames / fps, len(result.classes) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(result.classes)), result.classes)
    ax.set_xlabel("time (s)")
    colours = matplotlib.colormaps["tab10"]
    for seg in result.segments:
        k = result.classes.index(seg.label)
        bar.axvspan(seg.start_s, seg.end_s, color=colours(k % 10))
        bar.text((seg.start_s + seg.end_s) / 2, 0.5, seg.label, ha="center", va="center", fontsize=7, clip_on=True)
        ax.plot([seg.start_s, seg.end_s], [k, k], color="white", lw=1.2)
    bar.set_yticks([])
    bar.set_title(f"{Path(result.track.source).name}: best class per window (smoothed), {result.layout} model")
    fig.colorbar(image, ax=[bar, ax], label="score", pad=0.01)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _canvas(result: VideoResult) -> tuple[int, int]:
    """``(H, W)`` of a blank canvas for JSON input: the image size, else the joints' extent plus a margin."""
    if result.track.image_size is not None:
        return int(result.track.image_size[0]), int(result.track.image_size[1])
    kp = result.track.keypoints
    seen = kp[..., 2] > 0
    hi = kp[..., :2][seen].max(axis=0) if seen.any() else np.array([320.0, 240.0])
    return int(hi[1] * 1.1) + 10, int(hi[0] * 1.1) + 10


def _frames(result: VideoResult, video: str | Path | None):
    if video is not None:
        from purls_pl.video.frames import iter_frames

        yield from iter_frames(video, result.track.num_frames)
        return
    h, w = _canvas(result)
    for _ in range(result.track.num_frames):
        yield np.full((h, w, 3), 255, np.uint8)


def _draw(frame: np.ndarray, joints: np.ndarray, edges, top: list[tuple[str, float]], scale: float) -> np.ndarray:
    """One frame (RGB uint8) with the skeleton ``joints`` ``(J, 3)`` (pixels, 0 = missing) and the ``top`` classes."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(frame)
    if scale < 1:
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
    draw = ImageDraw.Draw(img)
    pts = [(float(x * scale), float(y * scale)) if s > 0 else None for x, y, s in joints]
    for a, b in edges:
        if pts[a] is not None and pts[b] is not None:
            draw.line([pts[a], pts[b]], fill=(255, 140, 0), width=3)
    for p in pts:
        if p is not None:
            draw.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=(220, 0, 0))
    for r, (name, score) in enumerate(top):
        draw.text(
            (6, 4 + 14 * r),
            f"{r + 1}. {name} {score:+.3f}",
            fill=(255, 255, 255),
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
    return np.asarray(img)


def render_video(result: VideoResult, path: str | Path, video: str | Path | None = None, max_width: int = 480) -> Path:
    """Write ``path`` (``.gif`` with Pillow, ``.mp4`` with OpenCV): each frame with the skeleton and the window's
    top-3 classes.

    Args:
        result: What :func:`~purls_pl.apps.recognize_video.recognize_video` returned.
        path: The output file; its suffix picks the format.
        video: The frames to draw on (the input video, needs OpenCV); ``None``: a white canvas.
        max_width: Frames wider than this are scaled down.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"{path}: --render writes .mp4 or .gif files; give a name ending in one of them")
    layout = get_layout(result.layout)
    joints = to_layout(result.track.keypoints, result.layout, result.settings.get("min_score", 0.3))
    drawn = []
    for t, frame in enumerate(_frames(result, video)):
        if t >= len(joints):
            break
        drawn.append(_draw(frame, joints[t], layout.edges, result.top(t), min(1.0, max_width / frame.shape[1])))
    if not drawn:
        raise ValueError(f"{path}: no frame to render (the video has none)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in drawn]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 / result.track.fps, loop=0)
        return path
    from purls_pl.video.frames import require

    cv2 = require("cv2", "writing an MP4 (a .gif needs only Pillow)")
    h, w = drawn[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), result.track.fps, (w, h))
    for f in drawn:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
