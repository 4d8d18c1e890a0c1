"""The bundled default: two short moving clips made from public-domain portraits that ship in packages.

The astronaut (Eileen Collins, NASA) comes with scikit-image and Grace Hopper (US Navy) with matplotlib;
both portraits are public-domain works of the US government.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from PIL import Image

from doppel.errors import DoppelError
from doppel.fsutil import atomic_path
from doppel.progress import ProgressCallback
from doppel.reports import Report

if TYPE_CHECKING:
    from doppel.evaluate.metrics import EvalReport


def astronaut() -> np.ndarray:
    """Eileen Collins' NASA portrait, 512x512x3 uint8 RGB."""
    from skimage import data

    return np.asarray(data.astronaut())


def grace_hopper() -> np.ndarray:
    """Grace Hopper's US Navy portrait, 600x512x3 uint8 RGB."""
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(str(path)) as im:
        return np.asarray(im.convert("RGB"))


def moving_frames(portrait: np.ndarray, *, frames: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """A slow hand-held camera move over a portrait: drift, small rotation and zoom. Returns HxWx3 uint8."""
    rng = np.random.default_rng(seed)
    width, height = size
    img = Image.fromarray(portrait)
    phase = rng.uniform(0, 2 * math.pi, 4)
    out = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        angle = 6 * math.sin(2 * math.pi * t + phase[0])
        zoom = 1.1 + 0.08 * math.sin(2 * math.pi * t + phase[1])
        dx = 0.04 * portrait.shape[1] * math.sin(2 * math.pi * t + phase[2])
        dy = 0.03 * portrait.shape[0] * math.sin(2 * math.pi * t + phase[3])
        moved = img.rotate(angle, resample=Image.Resampling.BICUBIC, translate=(dx, dy))
        cw, ch = portrait.shape[1] / zoom, portrait.shape[0] / zoom
        left, top = (portrait.shape[1] - cw) / 2, (portrait.shape[0] - ch) / 2
        crop = moved.resize(size, Image.Resampling.BICUBIC, box=(left, top, left + cw, top + ch))
        out.append(np.asarray(crop))
    return out


def write_clip(path: Path, frames: list[np.ndarray], *, fps: int = 25, tone_hz: float | None = 220.0) -> Path:
    """Encode frames as H.264 MP4 (with a quiet AAC tone when `tone_hz` is set), atomically."""
    height, width = frames[0].shape[:2]
    with atomic_path(path) as tmp, av.open(str(tmp), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"crf": "16", "preset": "fast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=48000) if tone_hz else None
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None and tone_hz:
            n = int(48000 * len(frames) / fps)
            t = np.arange(n) / 48000
            samples = (0.1 * np.sin(2 * math.pi * tone_hz * t)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = samples[start:start + 1024][None, :]
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                af.sample_rate = 48000
                af.pts = start
                for packet in audio.encode(af):
                    out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
    return path


def make_demo_clips(folder: Path, *, frames: int = 75, size: tuple[int, int] = (320, 320)) -> tuple[Path, Path]:
    """Write `source.mp4` (the astronaut) and `target.mp4` (Grace Hopper) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    source = write_clip(folder / "source.mp4", moving_frames(astronaut(), frames=frames, size=size, seed=1))
    target = write_clip(folder / "target.mp4", moving_frames(grace_hopper(), frames=frames, size=size, seed=2),
                        tone_hz=330.0)
    return source, target


@dataclass(frozen=True)
class DemoReport(Report):
    """Where the demo put things: the labelled video, the workspace, the last training preview, the
    evaluation folder, and the evaluation's figures."""

    video: Path
    workspace: Path
    preview: Path | None
    report: Path
    evaluation: EvalReport


def run_demo(folder: Path, *, source: Path | None = None, target: Path | None = None, minutes: float = 8.0,
             preset: str = "cpu-64", progress: ProgressCallback | None = None) -> DemoReport:
    """The whole job through the public API: clips (the bundled portraits unless `source` and `target` are
    given), add, extract, train for `minutes`, merge, export with provenance, evaluate. Everything goes under
    `folder`; each step is announced as progress("demo", step, 7, what)."""
    import doppel

    if (source is None) != (target is None):
        raise DoppelError("give both --source and --target, or neither")
    folder = folder.expanduser().resolve()
    ws_path = folder / "workspace"
    if ws_path.exists():
        raise DoppelError("demo workspace already exists; remove it or pick another folder", ws_path)

    def say(step: int, what: str) -> None:
        if progress is not None:
            progress("demo", step, 7, what)

    if source is None or target is None:
        say(1, "making demo clips from the astronaut and Grace Hopper portraits")
        source, target = make_demo_clips(folder / "clips")
    video = folder / "swapped.mp4"
    with doppel.create(ws_path) as project:
        say(2, "ingesting")
        project.add(source=source, progress=progress)
        project.add(target=target, progress=progress)
        say(3, "extracting faces")
        extracted = project.extract(progress=progress)
        for warning in extracted.warnings:
            say(3, f"warning: {warning}")
        say(4, f"training the {preset} model for {minutes:g} minutes (previews in {ws_path / 'models'})")
        trained = project.train(minutes=minutes, preset=preset, preview_minutes=1.0, progress=progress)
        say(4, f"{trained.step} steps, {trained.samples_per_s:.1f} samples/s")
        say(5, "merging")
        project.merge(progress=progress)
        say(6, "exporting, labelled as synthetic media")
        project.export(video, progress=progress)
        say(7, "evaluating")
        evaluation = project.evaluate(progress=progress)
    assert evaluation.folder is not None
    return DemoReport(video, ws_path, trained.preview, evaluation.folder, evaluation)
