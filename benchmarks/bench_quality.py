"""Quality on real footage (issue 14): expression dynamics, detail, identity and flicker against training time.

  prepare PAIR --dir D        workspace D/PAIR/base: init, add, extract (the target cut to its first 300 frames)
  train PAIR --dir D --label L --minutes 5 10 [--preset cpu-64]
                              copy of the base trained by `doppel train`, the model saved after each mark as
                              models/main-m<minutes>
  score PAIR --dir D --label L
                              for each saved model: `doppel merge` (grain 0, so the detail is the model's and the
                              merge's own) and `doppel eval --json`; figures into D/PAIR/L/scores.json and a table
  strip PAIR --dir D --label L --out PNG
                              plate | swap pairs at evenly spread frames of the last scored model

Pairs (development footage in ../shared/data/clips): foreman->akiyo and foreman->deadline (both targets speak
and blink). Training time is wall-clock on whatever CPU runs it: note the machine's load beside every figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
PAIRS = {
    "foreman-akiyo": ("foreman_cif.mp4", "akiyo_cif.mp4"),
    "foreman-deadline": ("foreman_cif.mp4", "deadline_cif.mp4"),
    "vtc1nw-akiyo": ("vtc1nw_422_ntsc.mp4", "akiyo_cif.mp4"),
}
TARGET_FRAMES = 300
KEYS = ("source_wins", "eye_corr", "mouth_corr", "detail_ratio", "flicker_ratio", "landmark_error",
        "expression_error", "seam")


def doppel(*args: str) -> str:
    proc = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "doppel", *args], capture_output=True,
                          text=True)
    if proc.returncode:
        raise SystemExit(f"doppel {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def _cut(clip: Path, folder: Path, frames: int) -> Path:
    """The first `frames` frames of `clip` as a PNG sequence (so long targets stay quick to merge and score)."""
    from doppel.media.probe import probe
    from doppel.media.video import MediaReader

    folder.mkdir(parents=True, exist_ok=True)
    with MediaReader(probe(clip)) as reader:
        for i in range(min(frames, len(reader))):
            cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(reader[i], cv2.COLOR_RGB2BGR))
    return folder


def cmd_prepare(args: argparse.Namespace) -> None:
    src, dst = PAIRS[args.pair]
    root = Path(args.dir) / args.pair
    base = root / "base"
    if base.exists():
        print(f"{base} exists")
        return
    target = _cut(CLIPS / dst, root / "target_frames", TARGET_FRAMES)
    doppel("init", str(base))
    doppel("add", str(base), "--source", str(CLIPS / src))
    doppel("add", str(base), "--target", str(target), "--fps", "30000/1001")
    print(doppel("extract", str(base)))


def _set_merge(ws: Path, **values: object) -> None:
    """Edit [merge] keys of doppel.toml in place (the file is ours: a benchmark workspace)."""
    path = ws / "doppel.toml"
    lines = path.read_text().splitlines()
    section = ""
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[] ")
        key = line.split("=")[0].strip()
        if section == "merge" and key in values:
            v = values[key]
            lines[i] = f"{key} = " + (f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool)
                                      else str(v))
    path.write_text("\n".join(lines) + "\n")


def cmd_train(args: argparse.Namespace) -> None:
    root = Path(args.dir) / args.pair
    ws = root / args.label
    if not ws.exists():
        shutil.copytree(root / "base", ws)
    done = 0.0
    for mark in args.minutes:
        preset = ["--preset", args.preset] if done == 0 else []
        out = json.loads(doppel("train", str(ws), *preset, "--minutes", str(mark - done), "--json",
                                "--preview-minutes", "100"))
        done = mark
        shutil.copytree(ws / "models" / "main", ws / "models" / f"main-m{mark:g}", dirs_exist_ok=True)
        print(f"{args.label}: {mark:g} min, step {out['step']}, {out['samples_per_s']:.1f} samples/s", flush=True)


def cmd_score(args: argparse.Namespace) -> None:
    ws = Path(args.dir) / args.pair / args.label
    snaps = sorted((p.name for p in (ws / "models").glob("main-m*")), key=lambda n: float(n.split("-m")[1]))
    scores: dict[str, dict[str, float]] = {}
    for name in snaps:
        _set_merge(ws, model=name, grain=0.0, **dict(kv.split("=") for kv in args.set))
        doppel("merge", str(ws))
        scores[name] = json.loads(doppel("eval", str(ws), "--json"))
        shutil.copy(ws / "eval" / "report.png", ws / f"report-{name}.png")
        s = scores[name]
        print(f"{args.pair} {args.label} {name}: " + ", ".join(f"{k} {s.get(k, float('nan')):.3f}" for k in KEYS),
              flush=True)
    (ws / "scores.json").write_text(json.dumps(scores, indent=1))


def cmd_strip(args: argparse.Namespace) -> None:
    from doppel.media.probe import probe
    from doppel.media.video import MediaReader

    ws = Path(args.dir) / args.pair / args.label
    renders = sorted((ws / "renders").rglob("*.png"))
    target = Path(args.dir) / args.pair / "target_frames"
    picks = np.linspace(20, TARGET_FRAMES - 20, args.count).astype(int)
    rows = []
    with MediaReader(probe(target)) as reader:
        for i in picks:
            plate = cv2.cvtColor(reader[int(i)], cv2.COLOR_RGB2BGR)
            render = [r for r in renders if r.stem.split("_")[0].lstrip("0") in (str(i), "")]
            swap = cv2.imread(str(render[0])) if render else plate
            rows.append(np.concatenate([plate, swap], 0))
    strip = np.concatenate(rows, 1)
    scale = args.width / strip.shape[1]
    strip = cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(args.out, strip)
    print(f"{args.out}: top row plate, bottom row swap, frames {', '.join(map(str, picks))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("prepare", "train", "score", "strip"):
        p = sub.add_parser(name)
        p.add_argument("pair", choices=sorted(PAIRS))
        p.add_argument("--dir", default="/tmp/doppel-quality")
        if name != "prepare":
            p.add_argument("--label", default="default")
    sub.choices["train"].add_argument("--minutes", type=float, nargs="+", default=[5, 10])
    sub.choices["train"].add_argument("--preset", default="cpu-64")
    sub.choices["score"].add_argument("--set", nargs="*", default=[], help="merge settings KEY=VALUE")
    sub.choices["strip"].add_argument("--out", default="strip.png")
    sub.choices["strip"].add_argument("--count", type=int, default=5)
    sub.choices["strip"].add_argument("--width", type=int, default=1200)
    args = parser.parse_args()
    {"prepare": cmd_prepare, "train": cmd_train, "score": cmd_score, "strip": cmd_strip}[args.cmd](args)


if __name__ == "__main__":
    main()
