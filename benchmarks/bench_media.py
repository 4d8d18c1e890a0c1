"""Media I/O figures on the development clips: probe speed, sequential decode, random access, encode.

Run: .venv/bin/python benchmarks/bench_media.py [CLIP ...]   (default: every clip in ../shared/data/clips)
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from common import CLIPS
from doppel.media import MediaReader, VideoWriter, probe


def bench(path: Path) -> None:
    t0 = time.perf_counter()
    info = probe(path)
    t_probe = time.perf_counter() - t0
    with MediaReader(info) as reader:
        t0 = time.perf_counter()
        frames = [f.image for f in reader]
        t_seq = time.perf_counter() - t0
        picks = random.Random(0).sample(range(len(reader)), min(30, len(reader)))
        t0 = time.perf_counter()
        for i in picks:
            reader[i]
        t_rand = (time.perf_counter() - t0) / len(picks)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with VideoWriter(Path(tmp) / "out.mp4", width=info.width, height=info.height, time_base=info.time_base,
                         fps=info.fps, audio_from=path) as writer:
            for image, pts in zip(frames, info.pts, strict=True):
                writer.write(image, pts)
        t_enc = time.perf_counter() - t0
    n = info.frame_count
    print(f"{path.name:28s} {info.width}x{info.height} {n:5d} frames | probe {n / t_probe:7.0f} fps | "
          f"decode {n / t_seq:6.0f} fps | random access {t_rand * 1000:6.1f} ms/frame | "
          f"h264 encode {n / t_enc:5.0f} fps")


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(CLIPS.glob("*.mp4"))
    if not paths:
        sys.exit(f"no clips given and none found in {CLIPS}")
    for p in paths:
        bench(p)


if __name__ == "__main__":
    main()
