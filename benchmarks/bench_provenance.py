"""Watermark figures (issue 11: the mark survives what people do to video).

For every development clip, every non-overlapping 3-second excerpt is watermarked and then transformed as
people and platforms do (each edit followed by an H.264 CRF 18 encode, as the issue's table measured, unless
the row is itself an encode). Reported per row: detection rate, lowest / median margin (score minus its family's
threshold, watermark.FAMILIES) and the families that found the mark, over all excerpts, at the single-excerpt
thresholds (false-positive bound 1e-6 over every test of every family). The same excerpts
unmarked, and their mirrored, blurred, rescaled, cropped and re-encoded variants, give the false-positive
scores. Also: PSNR, embedding speed (352x288 and 1920x1080), detection and `verify` speed, and `verify` on
files where other footage is prepended.

Run: nice -n 10 .venv/bin/python benchmarks/bench_provenance.py [--max-excerpts N] [--rows "a;b"] [--clips a,b]
(with --rows: those rows only, without the speed figures and the `verify` runs)
Split over processes: run with --clips ... --save part1.json (and part2.json ...), then --merge part1.json ...
--synthetic: the export CRF limits on one-second synthetic hand-held moves (the tests' clips) instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from common import CLIPS, attacks
from doppel.media import MediaReader, probe
from doppel.media.encode import VideoWriter
from doppel.provenance import watermark
from doppel.provenance.detect import Detection, Detector
from doppel.provenance.verify import verify

Frames = attacks.Frames
Edit = attacks.Edit


def crop(share: float, back: bool) -> Edit:
    """Keep the (1 - share) x (1 - share) part at the bottom right, optionally resized back to full size."""
    return attacks.crop(share, share, back=back)


CRF18 = attacks.crf(18)
ROWS: dict[str, Edit] = {
    # the table (each edit then x264 CRF 18)
    "none": CRF18,
    "mirror": attacks.chain(attacks.mirror, CRF18),
    "rotate 3°": attacks.chain(attacks.rotate(3), CRF18),
    "crop 25 % + resize back": attacks.chain(crop(0.25, True), CRF18),
    "rescale 0.33x": attacks.chain(attacks.scale(0.33), CRF18),
    "rescale 0.9x": attacks.chain(attacks.scale(0.9), CRF18),
    "rescale 1.5x": attacks.chain(attacks.scale(1.5), CRF18),
    "re-encode CRF 35": attacks.crf(35),
    "re-encode CRF 40": attacks.crf(40),
    "mirror + 0.5x + CRF 35": attacks.chain(attacks.mirror, attacks.scale(0.5), attacks.crf(35)),
    "export CRF 32 (remuxed)": attacks.crf(32),
    "export CRF 35 (remuxed)": attacks.crf(35),
    "export CRF 38 (remuxed)": attacks.crf(38),
    # the new transformations
    "rotate +5°": attacks.chain(attacks.rotate(5), CRF18),
    "rotate -5°": attacks.chain(attacks.rotate(-5), CRF18),
    "rescale 0.3x": attacks.chain(attacks.scale(0.3), CRF18),
    "rescale 2x": attacks.chain(attacks.scale(2.0), CRF18),
    "rescale 0.5x, aspect +10 %": attacks.chain(attacks.scale(0.55, 0.5), CRF18),
    "crop 25 %": attacks.chain(crop(0.25, False), CRF18),
    "re-encode CRF 28": attacks.crf(28),
    "re-encode CRF 32": attacks.crf(32),
    "VP9 500 kbit/s": attacks.vp9,
    "blur sigma 2": attacks.chain(attacks.blur(2.0), CRF18),
    "gamma 0.7": attacks.chain(attacks.tone(0.7), CRF18),
    "brightness -20, contrast 1.25": attacks.chain(attacks.tone(1.0, 1.25, -20), CRF18),
    "30 -> 24 fps (drops)": attacks.chain(attacks.to_24fps, CRF18),
    "duplicated frames": attacks.chain(attacks.duplicate, CRF18),
    "crop 25 % + 0.7x + CRF 32": attacks.chain(crop(0.25, False), attacks.scale(0.7), attacks.crf(32)),
}


def small_export(q: int) -> Edit:
    """A smaller plate exported by doppel: marked at its own size (176x144), then encoded at CRF q."""
    def run(fr: Frames) -> Frames:
        small = [cv2.resize(f, (176, 144), interpolation=cv2.INTER_AREA) for f in fr]
        return attacks.crf(q)([watermark.embed(f, 0xD0B) for f in small])
    return run


EXPORTS: dict[str, Edit] = {f"export at 176x144 CRF {q} (remuxed)": small_export(q) for q in (26, 30, 32, 35)}
CLEAN_ROWS = ("none", "mirror", "blur sigma 2", "rescale 0.5x, aspect +10 %", "re-encode CRF 35",
              "crop 25 % + resize back")


def detect(frames: Frames, exhaustive: bool) -> tuple[Detection, float]:
    t0 = time.perf_counter()
    d = Detector()
    coded = getattr(frames, "coded", [None] * len(frames))  # sizes from the last encode (attacks.Decoded)
    for f, size in zip(frames, coded, strict=True):
        d.add(f, size)
    return d.result(exhaustive=exhaustive), time.perf_counter() - t0


def excerpts(max_per_clip: int, names: str = "") -> list[tuple[str, float, Frames]]:
    out = []
    for clip in sorted(CLIPS.glob("*.mp4")):
        if names and clip.stem not in names.split(","):
            continue
        info = probe(clip)
        n = int(round(3 * float(info.fps)))
        with MediaReader(info) as reader:
            frames = [f.image for f in reader]
        for start in list(range(0, len(frames) - n + 1, n))[:max_per_clip]:
            out.append((clip.stem, float(info.fps), frames[start:start + n]))
    return out


def embed_speed(width: int, height: int, frames: int = 30) -> float:
    base = cv2.resize(cv2.imread(str(CLIPS.parent / "stills" / "astronaut.png"))[..., ::-1], (width, height))
    watermark.embed(base, 1)  # the pattern is made once per frame size (cached)
    t0 = time.perf_counter()
    for _ in range(frames):
        watermark.embed(base, 1)
    return frames / (time.perf_counter() - t0)


def prepended(clips: list[tuple[str, float, Frames]], tmp: Path) -> list[str]:
    """10.5 s of another clip, then a marked excerpt: `verify` (default sampling) on the file."""
    lines = []
    with MediaReader(probe(CLIPS / "deadline_cif.mp4")) as reader:
        filler = [reader[i] for i in range(315)]
    for name, _, fr in {c[0]: c for c in clips}.values():
        marked = [cv2.resize(watermark.embed(f, 0xD0B), (filler[0].shape[1], filler[0].shape[0])) for f in fr]
        path = tmp / f"{name}.mp4"
        with VideoWriter(path, width=marked[0].shape[1], height=marked[0].shape[0], time_base=Fraction(1, 30),
                         fps=Fraction(30)) as w:
            for i, f in enumerate(filler + marked):
                w.write(f, i)
        t0 = time.perf_counter()
        r = verify(path)
        lines.append(f"  {name}: found {r.watermark_found}, score {r.watermark_score} (threshold "
                     f"{r.watermark_threshold}), ranges {r.watermark_ranges}, {len(r.excerpts)} excerpts, "
                     f"{time.perf_counter() - t0:.1f} s")
    return lines


Scores = dict[str, float]
"""Family (watermark.FAMILIES) -> best score in it."""


def margin(s: Scores, thr: Scores) -> float:
    """How far the best family is above (or below) its threshold."""
    return max(s[f] - thr[f] for f in thr)


def synthetic(seeds: int = 3) -> None:
    """The export limits against fast synthetic camera moves: one-second shots (the tests' hand-held moves over
    two public-domain portraits, doppel.demo.moving_frames), marked at 352x288 or 176x144, encoded at CRF q."""
    from tests.faces import astro, hopper

    from doppel.demo import moving_frames

    thr = watermark.thresholds()["plain"]
    print(f"\n| shot | size | CRF | plain score (threshold {thr:.2f}) | found |\n| --- | --- | --- | --- | --- |")
    for name, face in (("astronaut", astro()), ("grace_hopper", hopper())):
        for seed in range(1, seeds + 1):
            for size, qs in (((352, 288), (32, 35, 38)), ((176, 144), (26, 28, 30, 32))):
                clip = [watermark.embed(f, 0xD0B) for f in moving_frames(face, frames=30, size=size, seed=seed)]
                for q in qs:
                    d, _ = detect(attacks.crf(q)(clip), exhaustive=False)
                    print(f"| {name} seed {seed} | {size[0]}x{size[1]} | {q} | {d.scores['plain']:.2f} | "
                          f"{'yes' if d.found else 'NO'} |", flush=True)


def report(scores: dict[str, list[Scores]], clean: dict[str, list[Scores]], thr: Scores) -> None:
    print("\n| transformation | detected | lowest margin | median margin | found by (plain/zoom/any) | lowest plain "
          "| lowest any |\n| --- | --- | --- | --- | --- | --- | --- |")
    for row, s in scores.items():
        m = [margin(v, thr) for v in s]
        hits = sum(x > 0 for x in m)
        by = [max(thr, key=lambda f, v=v: v[f] - thr[f]) for v, x in zip(s, m, strict=True) if x > 0]
        print(f"| {row} | {hits}/{len(s)} ({100 * hits / len(s):.1f} %) | {min(m):+.2f} | {np.median(m):+.2f} | "
              + "/".join(str(by.count(f)) for f in thr)
              + f" | {min(v['plain'] for v in s):.2f} | {min(v['any'] for v in s):.2f} |")
    print("\nUnmarked excerpts (exhaustive search):\n| variant | false positives | highest margin | highest plain "
          "| highest zoom | highest any |\n| --- | --- | --- | --- | --- | --- |")
    for row, s in clean.items():
        m = [margin(v, thr) for v in s]
        print(f"| {row} | {sum(x > 0 for x in m)}/{len(s)} | {max(m):+.2f} | "
              + " | ".join(f"{max(v[f] for v in s):.2f}" for f in thr) + " |")
    every = [v for s in clean.values() for v in s]
    marked = [v for s in scores.values() for v in s]
    if every:
        for f in thr:
            e = [v[f] for v in every]
            print(f"unmarked, {f} family (threshold {thr[f]}): n={len(e)}, max {max(e):.2f}, 99th percentile "
                  f"{np.percentile(e, 99):.2f}, mean {np.mean(e):.2f} +- {np.std(e):.2f}")
        m = [margin(v, thr) for v in marked]
        print(f"all marked margins: n={len(m)}, min {min(m):+.2f}, 1st percentile {np.percentile(m, 1):+.2f}, "
              f"median {np.median(m):+.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-excerpts", type=int, default=100, help="per clip")
    parser.add_argument("--rows", default="", help="row names separated by ; (default: all)")
    parser.add_argument("--clips", default="", help="comma-separated clip names (default: all)")
    parser.add_argument("--save", type=Path, default=None, help="also write the raw scores here (JSON)")
    parser.add_argument("--merge", type=Path, nargs="*", default=None, help="print the tables of saved runs")
    parser.add_argument("--synthetic", action="store_true", help="only the export limits on fast synthetic moves")
    args = parser.parse_args()
    thr = watermark.thresholds()
    if args.synthetic:
        synthetic()
        return
    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        scores = {k: [v for p in parts for v in p["scores"][k]] for k in parts[0]["scores"]}
        clean = {k: [v for p in parts for v in p["clean"][k]] for k in parts[0]["clean"]}
        print(f"{sum(p['excerpts'] for p in parts)} excerpts; thresholds {thr}")
        report(scores, clean, thr)
        return
    if not CLIPS.is_dir():
        sys.exit(f"no clips in {CLIPS}")
    rows = {k: v for k, v in ROWS.items() if not args.rows or k in args.rows.split(";")}
    exports = {k: v for k, v in EXPORTS.items() if not args.rows or k in args.rows.split(";")}
    clips = excerpts(args.max_excerpts, args.clips)
    tests = sum(n for n, _ in watermark.FAMILIES.values())
    print(f"{len(clips)} three-second excerpts from {len({c[0] for c in clips})} clips; thresholds {thr} "
          f"(false-positive bound per excerpt {watermark.false_positive_rate(thr):.2e} over {tests:,} tests: "
          + ", ".join(f"{f} {n:,}" for f, (n, _) in watermark.FAMILIES.items()) + ")", flush=True)
    scores: dict[str, list[Scores]] = {k: [] for k in [*rows, *exports]}
    clean: dict[str, list[Scores]] = {k: [] for k in CLEAN_ROWS if k in rows}
    psnrs: list[float] = []
    search_s: list[float] = []
    for k, (name, _fps, frames) in enumerate(clips):
        marked = [watermark.embed(f, 0xD0B) for f in frames]
        psnrs += [watermark.psnr(a, b) for a, b in zip(frames, marked, strict=True)]
        for row, edit in rows.items():
            d, _ = detect(edit(marked), exhaustive=False)
            scores[row].append(d.scores)
            if row in clean:
                c, s = detect(edit(frames), exhaustive=True)
                clean[row].append(c.scores)
                search_s.append(s)
        for row, make in exports.items():
            scores[row].append(detect(make(frames), exhaustive=False)[0].scores)
        print(f"[{k + 1}/{len(clips)}] {name}", flush=True)
        if args.save:
            args.save.write_text(json.dumps({"excerpts": k + 1, "scores": scores, "clean": clean}))
    report(scores, clean, thr)
    if search_s:
        print(f"exhaustive search of one excerpt: median {np.median(search_s):.2f} s")
    print(f"PSNR marked vs unmarked: mean {np.mean(psnrs):.2f} dB, lowest {min(psnrs):.2f} dB")
    if args.rows:  # iterating on a few rows: no speed figures, no `verify` runs
        return
    print(f"embedding: {embed_speed(352, 288, 60):.0f} frames/s at 352x288, "
          f"{embed_speed(1920, 1080, 10):.1f} frames/s at 1920x1080 (one process)")
    if (CLIPS / "deadline_cif.mp4").exists():
        with tempfile.TemporaryDirectory() as tmp:
            print("verify, 10.5 s of deadline_cif prepended to a marked excerpt of each clip:")
            print("\n".join(prepended(clips, Path(tmp))))


if __name__ == "__main__":
    main()
