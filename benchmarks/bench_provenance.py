"""Watermark figures (issue: provenance).

For every development clip, 3-second excerpts (non-overlapping) are watermarked, then transformed as platforms
do: H.264 re-encode at CRF 28, downscale to half size, 10 % cropped off each edge, JPEG quality 75 of every
frame. Reported: detection rate per transformation; false positives over the same excerpts and variants
unmarked; the threshold's theoretical false-positive rate; PSNR; embedding speed at 352x288.

Run: .venv/bin/python benchmarks/bench_provenance.py [--max-excerpts N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from common import CLIPS
from doppel.media import MediaReader, probe
from doppel.provenance import watermark


def h264_crf28(frames: list[np.ndarray], fps: float) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.mp4"
        with av.open(str(path), "w") as out:
            s = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001), options={"crf": "28"})
            s.width, s.height, s.pix_fmt = w // 2 * 2, h // 2 * 2, "yuv420p"
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: s.height, : s.width]), format="rgb24")
                vf.pts = i
                vf.time_base = 1 / Fraction(fps).limit_denominator(1001)
                for p in s.encode(vf):
                    out.mux(p)
            for p in s.encode(None):
                out.mux(p)
        with av.open(str(path)) as inp:
            return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def half(frames: list[np.ndarray], fps: float) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    return [cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA) for f in frames]


def crop10(frames: list[np.ndarray], fps: float) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    return [f[h // 10: h - h // 10, w // 10: w - w // 10] for f in frames]


def jpeg75(frames: list[np.ndarray], fps: float) -> list[np.ndarray]:
    return [cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 75])[1], cv2.IMREAD_COLOR)
            for f in frames]


TRANSFORMS: dict[str, Callable[[list[np.ndarray], float], list[np.ndarray]]] = {
    "none": lambda f, fps: f, "h264-crf28": h264_crf28, "half-size": half, "crop-10%": crop10, "jpeg-q75": jpeg75}


def detect(frames: list[np.ndarray]) -> watermark.Detection:
    d = watermark.Detector()
    for f in frames:
        d.add(f)
    return d.result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-excerpts", type=int, default=4, help="per clip")
    args = parser.parse_args()
    clips = sorted(CLIPS.glob("*.mp4"))
    if not clips:
        sys.exit(f"no clips in {CLIPS}")
    hits = {k: 0 for k in TRANSFORMS}
    false_alarms = {k: 0 for k in TRANSFORMS}
    scores_marked = {k: [] for k in TRANSFORMS}  # type: dict[str, list[float]]
    scores_clean: list[float] = []
    total = 0
    psnrs, embed_time, embed_frames = [], 0.0, 0
    for clip in clips:
        info = probe(clip)
        fps = float(info.fps)
        n = int(round(3 * fps))
        with MediaReader(info) as reader:
            frames = [f.image for f in reader]
        starts = list(range(0, len(frames) - n + 1, n))[: args.max_excerpts]
        for start in starts:
            excerpt = frames[start:start + n]
            t0 = time.perf_counter()
            marked = [watermark.embed(f, 0xD0B) for f in excerpt]
            if excerpt[0].shape[:2] == (288, 352):
                embed_time += time.perf_counter() - t0
                embed_frames += len(excerpt)
            psnrs += [watermark.psnr(a, b) for a, b in zip(excerpt, marked, strict=True)]
            total += 1
            for name, fn in TRANSFORMS.items():
                d = detect(fn(marked, fps))
                hits[name] += d.found
                scores_marked[name].append(d.score)
                c = detect(fn(excerpt, fps))
                false_alarms[name] += c.found
                scores_clean.append(c.score)
        print(f"{clip.name}: {len(starts)} excerpts done", flush=True)
    print(f"\n{total} three-second excerpts from {len(clips)} clips; threshold z > {watermark.THRESHOLD} "
          f"(theoretical false-positive rate per excerpt <= {watermark.false_positive_rate():.2e})")
    for name in TRANSFORMS:
        print(f"  {name:11s} detected {hits[name]}/{total} ({100 * hits[name] / total:.1f} %), lowest score "
              f"{min(scores_marked[name]):.1f}; false positives on unmarked {false_alarms[name]}/{total}")
    print(f"highest score on any unmarked excerpt or variant: {max(scores_clean):.2f}")
    print(f"PSNR marked vs unmarked: mean {np.mean(psnrs):.2f} dB, lowest {min(psnrs):.2f} dB")
    if embed_frames:
        print(f"embedding at 352x288: {embed_frames / embed_time:.0f} frames/s (one core)")


if __name__ == "__main__":
    main()
