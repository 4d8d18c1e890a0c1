"""Quality on real footage (issue 14): expression dynamics, detail, identity and flicker against training time.

  prepare PAIR --dir D        workspace D/PAIR/base: init, add, extract (the target cut to its first 300 frames)
  train PAIR --dir D --label L --minutes 5 10 [--preset cpu-64] [--train-args=--true-face-power=0.1]
                              copy of the base trained by `doppel train`, the model saved after each mark as
                              models/main-m<minutes>
  score PAIR --dir D --label L
                              for each saved model: `doppel merge` (grain 0, so the detail is the model's and the
                              merge's own) and `doppel eval --json`; figures into D/PAIR/L/scores.json and a table
  reference PAIR --dir D --label L
                              the eval figures of renders made from the plate itself (untouched, blurred by a
                              Gaussian of sigma 1.5, blurred plus noise): what the measures give a perfect, a
                              soft and a soft-but-grainy face (overwrites that workspace's renders)
  ceiling PAIR --dir D --label L [--preset cpu-128]
                              the figures when real photographs stand in for the model: the source face nearest
                              in landmarks, or the target's own from 30+ frames away, warped onto the target's landmarks
  source-detail PAIR --dir D --label L --model main-m30 [--apart 15]
                              detail against the source's own photographs (the nearest in landmarks, warped onto
                              the target's), beside another source photograph, it blurred, and the plate
  diagnose PAIR --dir D --label L --model main-m10
                              where the expression is lost: eye/mouth-opening correlation with the plate of the
                              target's aligned crops at the model's resolution (the ceiling), of the model's
                              target->target reconstruction, and of the swap (landmarks found again on each)
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
KEYS = ("source_wins", "source_match", "eye_corr", "mouth_corr", "look_corr", "blink_corr", "detail_ratio",
        "flicker_ratio", "landmark_error", "expression_error", "seam")


def doppel(*args: str, nice: int = 10) -> str:
    proc = subprocess.run(["nice", "-n", str(nice), sys.executable, "-m", "doppel", *args], capture_output=True,
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
    missing = dict(values)
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[] ")
        key = line.split("=")[0].strip()
        if section == "merge" and key in values:
            lines[i] = f"{key} = {_toml(values[key])}"
            missing.pop(key)
    at = lines.index("[merge]") + 1  # keys this workspace's doppel.toml predates
    lines[at:at] = [f"{key} = {_toml(v)}" for key, v in missing.items()]
    path.write_text("\n".join(lines) + "\n")


def _toml(v: object) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)


def _value(text: str) -> object:
    """A --set value as TOML wants it: a number or a boolean where it reads as one, else a string."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


def _model_step(ws: Path) -> int:
    pointer = ws / "models" / "main" / "latest.json"
    return int(json.loads(pointer.read_text())["step"]) if pointer.exists() else 0


def cmd_train(args: argparse.Namespace) -> None:
    root = Path(args.dir) / args.pair
    ws = root / args.label
    if not ws.exists():
        shutil.copytree(root / "base", ws)
    done = args.start
    for mark in args.minutes:
        preset = ["--preset", args.preset] if not (ws / "models" / "main").exists() else []
        if args.steps_per_minute:  # a step budget: what `mark` minutes give on an idle machine, however busy
            step = _model_step(ws)
            budget = ["--iterations", str(max(0, round(mark * args.steps_per_minute) - step))]
        else:
            budget = ["--minutes", str(mark - done)]
        out = json.loads(doppel("train", str(ws), *preset, *budget, *args.train_args, "--json",
                                "--preview-minutes", "100", nice=args.nice))
        done = mark
        shutil.copytree(ws / "models" / "main", ws / "models" / f"main-m{mark:g}", dirs_exist_ok=True)
        print(f"{args.label}: {mark:g} min, step {out['step']}, {out['samples_per_s']:.1f} samples/s", flush=True)


def cmd_score(args: argparse.Namespace) -> None:
    ws = Path(args.dir) / args.pair / args.label
    snaps = sorted((p.name for p in (ws / "models").glob("main-m*")), key=lambda n: float(n.split("-m")[1]))
    scores: dict[str, dict[str, float]] = (json.loads((ws / "scores.json").read_text())
                                           if (ws / "scores.json").exists() else {})
    for name in snaps:
        if args.only and name not in args.only:
            continue
        _set_merge(ws, model=name, grain=0.0, **{k: _value(v) for k, v in (kv.split("=", 1) for kv in args.set)})
        doppel("merge", str(ws))
        key = name + args.tag
        scores[key] = json.loads(doppel("eval", str(ws), "--json"))
        shutil.copy(ws / "eval" / "report.png", ws / f"report-{key}.png")
        s = scores[key]
        print(f"{args.pair} {args.label} {key}: " + ", ".join(f"{k} {s.get(k, float('nan')):.3f}" for k in KEYS),
              flush=True)
    (ws / "scores.json").write_text(json.dumps(scores, indent=1))


REFERENCES = {
    "plate": lambda img, rng: img,
    "blur1.5": lambda img, rng: cv2.GaussianBlur(img, (0, 0), 1.5),
    "blur1.5+noise": lambda img, rng: np.clip(cv2.GaussianBlur(img, (0, 0), 1.5).astype(np.float32)
                                              + rng.normal(0, 6, img.shape[:2])[..., None], 0, 255).astype(np.uint8),
}


def cmd_reference(args: argparse.Namespace) -> None:
    ws = Path(args.dir) / args.pair / args.label
    target = Path(args.dir) / args.pair / "target_frames"
    renders = _renders(ws)
    results = {}
    for name, make in REFERENCES.items():
        rng = np.random.default_rng(0)
        for i, rel in renders.items():
            plate = cv2.imread(str(target / f"{i:05d}.png"))
            cv2.imwrite(str(ws / rel), make(plate, rng))
        results[name] = s = json.loads(doppel("eval", str(ws), "--json"))
        print(f"{args.pair} reference {name}: " + ", ".join(f"{k} {s.get(k, float('nan')):.3f}" for k in KEYS),
              flush=True)
    (ws / "reference.json").write_text(json.dumps(results, indent=1))


def _pool(w: object, role: str) -> tuple[list, dict[int, np.ndarray], dict[int, np.ndarray]]:
    """A person's photographs to stand in for the model: the usable faces inside their frame (as
    `[merge] source_detail` picks them), their stored crops (RGB) and the landmarks in those crops, by face id."""
    from doppel.extract.align import transform_points
    from doppel.merge.photos import usable_photos

    pool = usable_photos(w, role)  # type: ignore[arg-type]
    root = w.root  # type: ignore[attr-defined]
    crops = {f.id: cv2.cvtColor(cv2.imread(str(root / f.crop_path)), cv2.COLOR_BGR2RGB) for f in pool}
    return pool, crops, {f.id: transform_points(f.matrix, f.lm68) for f in pool}


def _fits(dst: np.ndarray, pool: list, points: dict) -> list[tuple[float, object]]:
    """Each pool face's landmark distance to `dst` (crop points) after a similarity fit, nearest first, as
    (error in crop pixels of the face's own scale, face)."""
    from doppel.extract.align import transform_points, umeyama

    out = []
    for f in pool:
        src = points[f.id]
        fit = umeyama(dst, src)
        out.append((float(np.sqrt(((transform_points(fit, dst) - src) ** 2).sum(1).mean())
                          / np.linalg.norm(fit[:, 0])), f))
    return sorted(out, key=lambda e: e[0])


def _warped(crop: np.ndarray, src_pts: np.ndarray, dst: np.ndarray, res: int) -> np.ndarray:
    """A stored crop warped triangle by triangle so that its landmarks `src_pts` land on `dst` (res x res), as
    `[merge] source_detail` warps the photograph it lends."""
    from doppel.merge.photos import warp_onto

    return np.clip(warp_onto(crop.astype(np.float32), src_pts, dst, res), 0, 255).astype(np.uint8)


def _real_faces(ws: Path, kind: str, res: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each target face, the crop `doppel merge` gives the model (by its hash) and a real photograph put in
    its place: the nearest face in landmarks (pose and expression) of the source (`kind` "source"), or of the
    target itself at least 30 frames away ("target"), warped triangle by triangle onto the target's landmarks."""
    from bench_gpu_quality import _key
    from doppel.extract.align import transform_points
    from doppel.extract.aligned import AlignedFace
    from doppel.media.video import MediaReader
    from doppel.merge.render import _crop
    from doppel.workspace import Workspace

    with Workspace.open(ws) as w:
        face_type = w.settings.extract.face_type
        targets = w.faces.of_chosen("target", usable_only=True)
        pool, crops, points = _pool(w, kind)
        info = w.target().info
        swaps = {}
        with MediaReader(info) as reader:
            for t in targets:
                m = AlignedFace.of(t).alignment(res, face_type)
                crop = _crop(reader[t.frame_idx], m, res)
                dst = transform_points(m, t.lm68)
                ranked = [e for e in _fits(dst, pool, points)
                          if kind != "target" or abs(e[1].frame_idx - t.frame_idx) >= 30]
                _, best = ranked[0]
                swaps[_key(crop)] = (_warped(crops[best.id], points[best.id], dst, res),
                                     np.full((res, res), 255, np.uint8))
    return swaps


def cmd_ceiling(args: argparse.Namespace) -> None:
    """Detail and the other figures when the model is replaced by real photographs (`_real_faces`): what a
    perfect model of the source would score at most, and what warping a real face of the same person costs."""
    import dataclasses

    from bench_gpu_quality import _score, _workspace
    from doppel.train.config import PRESETS

    ws = _workspace(args)  # a copy of the base with the merge settings of every scored run
    _set_merge(ws, source_detail=0.0)  # the stand-ins are real photographs: lending them a photograph's band again
    config = dataclasses.replace(PRESETS[args.preset].model, expression_dims=0)  # would count it twice
    scores = json.loads((ws / "scores.json").read_text()) if (ws / "scores.json").exists() else {}
    for kind in ("source", "target"):
        swaps = _real_faces(ws, kind, config.resolution)
        scores[f"real-{kind}"] = s = _score(ws, config, swaps, f"real-{kind}")
        print(f"{args.pair} real {kind}: " + ", ".join(f"{k} {s.get(k, float('nan')):.3f}" for k in KEYS),
              flush=True)
    (ws / "scores.json").write_text(json.dumps(scores, indent=1))


BLURS = (0.75, 1.5, 2.25, 3.0, 4.5, 6.0)
"""Gaussian blurs (sigma in plate pixels) of a real source photograph that `source-detail` scores the swap
against: the swap's figure read on this ladder is the blur it looks like."""


def cmd_source_detail(args: argparse.Namespace) -> None:
    """Detail against the source's own photographs rather than the plate (whose mid frequencies are the target
    person's): for each target frame the nearest real source face in landmarks, warped onto the target's
    landmarks, is the reference; the model's swap of that frame (its raw output, as the merge asks for it) is
    projected onto the reference's band, as `doppel eval`'s detail projects onto the plate's. Beside it, on the
    same references: another real source face (the next nearest, from a frame `--apart` or more away) as the
    ceiling, that face blurred by the Gaussians of BLURS, and the target's own crop (the plate). The swap's
    figure read on that ladder of blurs is `equivalent_blur`: the Gaussian (plate pixels) that takes a real
    photograph of the source down to the swap's figure (0: as sharp as a photograph; 6: the ladder's end)."""
    from doppel.evaluate.detail import BAND, band_pass, gray
    from doppel.extract import blendshapes
    from doppel.extract.align import transform_points
    from doppel.extract.aligned import AlignedFace
    from doppel.media.video import MediaReader
    from doppel.merge.model import SwapModel
    from doppel.merge.render import _crop
    from doppel.train import expression
    from doppel.workspace import Workspace

    ws_path = Path(args.dir) / args.pair / args.label
    sums: dict[str, list[float]] = {}
    energy: list[float] = []
    with Workspace.open(ws_path) as w:
        model = SwapModel(w, args.model, "cpu")
        res = model.config.resolution
        band = (BAND[0] * res / 128, BAND[1] * res / 128)
        face_type = w.settings.extract.face_type
        targets = sorted(w.faces.of_chosen("target", usable_only=True), key=lambda f: f.frame_idx)
        pool, crops, points = _pool(w, "source")
        gaze = blendshapes.of_faces(w, targets) if model.expression_dims > expression.DIMS else None
        codes = expression.codes([t.lm68 for t in targets],
                                 expression.person_reference([t.lm68 for t in targets]), gaze)
        with MediaReader(w.target().info) as reader:
            for t, code in zip(targets, codes, strict=True):
                m = AlignedFace.of(t).alignment(res, face_type)
                plate = _crop(reader[t.frame_idx], m, res)
                dst = transform_points(m, t.lm68)
                ranked = _fits(dst, pool, points)
                _, first = ranked[0]
                _, other = next(e for e in ranked[1:] if abs(e[1].frame_idx - first.frame_idx) >= args.apart)
                reference = _warped(crops[first.id], points[first.id], dst, res)
                second = _warped(crops[other.id], points[other.id], dst, res)
                if model.expression_dims:
                    face, _ = model.swap(plate[None], code[None], expression.eyes_mouth_region(dst, res)[None])
                else:
                    face, _ = model.swap(plate[None])
                sigma = float(np.linalg.norm(m[:, 0]))  # crop pixels per plate pixel
                shown = {"swap": np.clip(face[0] * 255 + 0.5, 0, 255).astype(np.uint8), "source-other": second,
                         **{f"source-other-blur{b:g}": cv2.GaussianBlur(second, (0, 0), b * sigma) for b in BLURS},
                         "plate": plate}
                inside = np.zeros((res, res), np.uint8)
                cv2.fillConvexPoly(inside, cv2.convexHull(np.round(dst).astype(np.int32)), 1)
                grow = max(1, res // 32)
                inside = cv2.erode(inside, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).astype(np.float32)
                ref = band_pass(gray(reference), band)
                energy.append(float((inside * ref * ref).sum()))
                for name, img in shown.items():
                    sums.setdefault(name, []).append(float((inside * band_pass(gray(img), band) * ref).sum()))
    total = sum(energy)
    result = {name: sum(v) / total for name, v in sums.items()}
    result["swap/source-other"] = result["swap"] / result["source-other"]
    ladder = [result["source-other"]] + [result[f"source-other-blur{b:g}"] for b in BLURS]
    result["equivalent_blur"] = float(np.interp(-result["swap"], [-v for v in ladder], [0.0, *BLURS]))
    print(f"{args.pair} {args.label} {args.model} detail against the source's photographs: "
          + ", ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)
    out = ws_path / "source_detail.json"
    saved = json.loads(out.read_text()) if out.exists() else {}
    saved[args.model] = result
    out.write_text(json.dumps(saved, indent=1))


def cmd_diagnose(args: argparse.Namespace) -> None:
    import torch

    from doppel.evaluate.expression import correlation, openings
    from doppel.extract.analyze import AnalyzerConfig, FaceAnalyzer
    from doppel.extract.curate import face_set
    from doppel.merge.model import SwapModel
    from doppel.workspace import Workspace

    ws_path = Path(args.dir) / args.pair / args.label
    with Workspace.open(ws_path) as ws:
        faces = sorted(face_set(ws, "target", excluded=False), key=lambda f: f.frame_idx)
        model = SwapModel(ws, args.model, "cpu")
        analyzer = FaceAnalyzer(AnalyzerConfig.from_settings(ws.settings.extract))
    res = model.config.resolution
    series: dict[str, list[tuple[float, float]]] = {"plate": [], "input": [], "reconstruction": [], "swap": []}
    nan = (float("nan"), float("nan"))
    for start in range(0, len(faces), 32):
        chunk = faces[start:start + 32]
        crops = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(ws_path / f.crop_path)), cv2.COLOR_BGR2RGB),
                                     (res, res), interpolation=cv2.INTER_AREA) for f in chunk])
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255)
        with torch.no_grad():
            recon = model.model(x, x)["dst"].float()  # type: ignore[operator]
            swap = model.model.swap(x)[0].float()  # type: ignore[operator]
        outs = {"input": x, "reconstruction": recon, "swap": swap}
        for j, f in enumerate(chunk):
            series["plate"].append(openings(f.lm68))
            for key, batch in outs.items():
                img = (batch[j].permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)
                big = cv2.copyMakeBorder(cv2.resize(img, (256, 256), interpolation=cv2.INTER_CUBIC), 64, 64, 64, 64,
                                         cv2.BORDER_REFLECT)
                found = analyzer.analyze(big)
                series[key].append(openings(found[0].lm68) if found else nan)
    plate = np.array(series["plate"])
    for key in ("input", "reconstruction", "swap"):
        v = np.array(series[key])
        print(f"{args.pair} {args.label} {args.model} {key:15s}: eye corr {correlation(v[:, 0], plate[:, 0]):.3f}, "
              f"mouth corr {correlation(v[:, 1], plate[:, 1]):.3f}, found {np.isfinite(v[:, 0]).mean():.2f}, "
              f"mouth opening p5-p95 {np.nanpercentile(v[:, 1], 5):.3f}-{np.nanpercentile(v[:, 1], 95):.3f} "
              f"(plate {np.percentile(plate[:, 1], 5):.3f}-{np.percentile(plate[:, 1], 95):.3f})", flush=True)


def _renders(ws: Path) -> dict[int, str]:
    import sqlite3

    db = sqlite3.connect(ws / "doppel.db")
    try:
        return dict(db.execute("SELECT frame_idx, path FROM renders WHERE path IS NOT NULL").fetchall())
    finally:
        db.close()


def cmd_strip(args: argparse.Namespace) -> None:
    ws = Path(args.dir) / args.pair / args.label
    renders = _renders(ws)
    target = Path(args.dir) / args.pair / "target_frames"
    picks = np.linspace(20, TARGET_FRAMES - 20, args.count).astype(int)
    columns = []
    for i in picks:
        plate = cv2.imread(str(target / f"{i:05d}.png"))
        swap = cv2.imread(str(ws / renders[int(i)])) if int(i) in renders else plate
        if args.crop:
            x0, y0, x1, y1 = (int(v) for v in args.crop.split(","))
            plate, swap = plate[y0:y1, x0:x1], swap[y0:y1, x0:x1]
        columns.append(np.concatenate([plate, swap], 0))
    strip = np.concatenate(columns, 1)
    scale = args.width / strip.shape[1]
    strip = cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(args.out, strip)
    print(f"{args.out}: top row plate, bottom row swap, frames {', '.join(map(str, picks))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("prepare", "train", "score", "reference", "ceiling", "source-detail", "diagnose", "strip"):
        p = sub.add_parser(name)
        p.add_argument("pair", choices=sorted(PAIRS))
        p.add_argument("--dir", default="/tmp/doppel-quality")
        if name != "prepare":
            p.add_argument("--label", default="default")
    sub.choices["train"].add_argument("--minutes", type=float, nargs="+", default=[5, 10])
    sub.choices["train"].add_argument("--preset", default="cpu-64")
    sub.choices["train"].add_argument("--start", type=float, default=0.0, help="minutes already trained (resume)")
    sub.choices["train"].add_argument("--steps-per-minute", type=float, default=0.0,
                                      help="train to minutes x this many steps (the idle machine's rate) instead "
                                           "of by the clock, so a busy machine changes the time, not the figure")
    sub.choices["train"].add_argument("--nice", type=int, default=10,
                                      help="niceness of the training (0 to take the CPU ahead of niced jobs)")
    sub.choices["train"].add_argument("--train-args", nargs="*", default=[],
                                      help="more `doppel train` options, e.g. --train-args=--true-face-power=0.1")
    sub.choices["score"].add_argument("--set", nargs="*", default=[], help="merge settings KEY=VALUE")
    sub.choices["score"].add_argument("--only", nargs="*", default=[], help="score only these saved models")
    sub.choices["score"].add_argument("--tag", default="", help="suffix of the scores' key (settings variants)")
    sub.choices["ceiling"].add_argument("--preset", default="cpu-128", help="the model resolution to stand in for")
    sub.choices["diagnose"].add_argument("--model", default="main")
    sub.choices["source-detail"].add_argument("--model", default="main")
    sub.choices["source-detail"].add_argument("--apart", type=int, default=15,
                                              help="frames between the reference and the other source face")
    sub.choices["strip"].add_argument("--out", default="strip.png")
    sub.choices["strip"].add_argument("--count", type=int, default=5)
    sub.choices["strip"].add_argument("--width", type=int, default=1200)
    sub.choices["strip"].add_argument("--crop", help="x0,y0,x1,y1 of the frame to show (default: all)")
    args = parser.parse_args()
    {"prepare": cmd_prepare, "train": cmd_train, "score": cmd_score, "reference": cmd_reference, "ceiling": cmd_ceiling,
     "source-detail": cmd_source_detail, "diagnose": cmd_diagnose, "strip": cmd_strip}[args.cmd](args)


if __name__ == "__main__":
    main()
