"""Extraction figures on the development clips (issue: extraction).

Run: .venv/bin/python benchmarks/bench_extract.py [--quick]

- speed: `doppel extract` end to end on foreman_cif (wall clock of the whole command, model loading and
  process start-up included), using every core;
- recall: frames with a face on akiyo, deadline, vtc1nw; frames with both people on mother_daughter;
- reference: on mother_daughter, with a reference cut from its last frame, the share of frames whose chosen
  face is the daughter's;
- stability: frame-to-frame landmark motion / inter-ocular distance on akiyo, raw and smoothed, the same for
  jitter (second difference), and on foreman the mean distance of smoothed from raw points.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from common import CLIPS, doppel
from doppel.extract.layout import inter_ocular
from doppel.media import MediaReader, probe
from doppel.workspace import Workspace


def workspace(tmp: Path, clip: str, *extract_args: str) -> tuple[Path, float, int]:
    ws = tmp / clip
    doppel("init", ws)
    doppel("add", ws, "--target", CLIPS / f"{clip}.mp4")
    t0 = time.perf_counter()
    doppel("extract", ws, *extract_args)
    seconds = time.perf_counter() - t0
    frames = probe(CLIPS / f"{clip}.mp4").frame_count
    return ws, seconds, frames


def faces_per_frame(ws: Path, frames: int) -> list[int]:
    with Workspace.open(ws) as w:
        counts = Counter(f.frame_idx for m in w.media() for f in w.faces.of_media(m.id))
    return [counts.get(i, 0) for i in range(frames)]


def chosen_track(ws: Path) -> tuple[list[int], np.ndarray, np.ndarray]:
    with Workspace.open(ws) as w:
        faces = w.faces.of_chosen("target")
    smoothed = [f.lm68_smooth if f.lm68_smooth is not None else f.lm68 for f in faces]
    return [f.frame_idx for f in faces], np.stack([f.lm68 for f in faces]), np.stack(smoothed)


def motion(idx: list[int], pts: np.ndarray, ref: np.ndarray) -> float:
    iod = np.array([inter_ocular(p) for p in ref])
    steps = [np.linalg.norm(pts[i] - pts[i - 1], axis=1).mean() / iod[i]
             for i in range(1, len(pts)) if idx[i] == idx[i - 1] + 1]
    return float(np.mean(steps))


def image_motion(path: Path, lm: np.ndarray) -> float:
    """Mean frame-to-frame shift (pixels) of the face region's image content, by phase correlation."""
    with MediaReader(probe(path)) as reader:
        gray = [cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in reader]
    (x0, y0), (x1, y1) = lm.reshape(-1, 2).min(0).astype(int), lm.reshape(-1, 2).max(0).astype(int)
    window = cv2.createHanningWindow((x1 - x0, y1 - y0), cv2.CV_32F)
    shifts = [np.hypot(*cv2.phaseCorrelate(a[y0:y1, x0:x1], b[y0:y1, x0:x1], window)[0])
              for a, b in zip(gray, gray[1:], strict=False)]
    return float(np.mean(shifts))


def jitter(pts: np.ndarray, ref: np.ndarray) -> float:
    iod = np.array([inter_ocular(p) for p in ref])
    return float((np.linalg.norm(pts[2:] - 2 * pts[1:-1] + pts[:-2], axis=2) / iod[2:, None]).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the long deadline clip")
    args = parser.parse_args()
    if not CLIPS.is_dir():
        sys.exit(f"development clips not found in {CLIPS}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ws, seconds, frames = workspace(tmp, "foreman_cif")
        print(f"speed   foreman_cif: {frames} frames in {seconds:.2f} s end to end = {frames / seconds:.1f} frames/s")
        idx, raw, smooth = chosen_track(ws)
        lag = np.mean([np.linalg.norm(smooth[i] - raw[i], axis=1).mean() / inter_ocular(raw[i])
                       for i in range(len(raw))])
        print(f"stability foreman_cif: smoothed points are {100 * lag:.2f} % of the inter-ocular distance "
              "from the raw ones on average")

        clips = ["akiyo_cif", "vtc1nw_422_ntsc"] + ([] if args.quick else ["deadline_cif"])
        for clip in clips:
            ws, seconds, frames = workspace(tmp, clip)
            counts = faces_per_frame(ws, frames)
            print(f"recall  {clip}: a face on {sum(c >= 1 for c in counts)}/{frames} frames "
                  f"({frames / seconds:.1f} frames/s end to end)")
            if clip == "akiyo_cif":
                idx, raw, smooth = chosen_track(ws)
                m_raw, m_smooth = motion(idx, raw, raw), motion(idx, smooth, raw)
                j_raw, j_smooth = jitter(raw, raw), jitter(smooth, raw)
                real = image_motion(CLIPS / f"{clip}.mp4", raw)
                print(f"stability akiyo_cif: the face region itself moves {real:.2f} px/frame (phase correlation); "
                      f"the raw landmarks {np.linalg.norm(np.diff(raw, axis=0), axis=2).mean():.2f} px/frame")
                print(f"stability akiyo_cif: motion/frame raw {m_raw:.4f}, smoothed {m_smooth:.4f} "
                      f"({m_smooth / m_raw:.2f}x); jitter raw {j_raw:.4f}, smoothed {j_smooth:.4f} "
                      f"({j_smooth / j_raw:.2f}x)  [units: inter-ocular distance]")

        clip = "mother_daughter_cif"
        info = probe(CLIPS / f"{clip}.mp4")
        with MediaReader(info) as reader:
            last = reader[info.frame_count - 1]
        ref = tmp / "daughter.png"
        Image.fromarray(last[100:260, 40:180]).save(ref)  # the daughter sits on the left
        ws, seconds, frames = workspace(tmp, clip, "--reference", str(ref))
        counts = faces_per_frame(ws, frames)
        print(f"recall  {clip}: both people on {sum(c >= 2 for c in counts)}/{frames} frames "
              f"({frames / seconds:.1f} frames/s end to end)")
        with Workspace.open(ws) as w:
            chosen = {f.frame_idx: float(f.box[0] + f.box[2]) / 2 for f in w.faces.of_chosen("target")}
        right = sum(1 for i in range(frames) if i in chosen and chosen[i] < info.width / 2)
        print(f"reference {clip}: the daughter chosen on {right}/{frames} frames ({100 * right / frames:.1f} %)")


if __name__ == "__main__":
    main()
