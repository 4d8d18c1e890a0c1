"""Quality of a GPU preset after minutes of training on a lent GPU machine (issue 14's GPU curves).

A lent machine runs one command over a copy of the repository, with no media libraries, and gives back at most
64 MiB of files: too little for a 256 px model's weights (about 300 MB). So the swaps are rendered there and
composited and scored here, with the exact model inputs that `doppel merge` would feed:

  record PAIR --dir D --label L --preset gpu-256-df --pack DIR
        here: a copy of bench_quality's base workspace D/PAIR/base as D/PAIR/L, and in DIR (folders the
        device call carries) that workspace for training plus the crops, expression codes and hidden regions
        that `doppel merge` gives the model for each target frame (gathered by a merge with a recording model)
  device DIR --minutes 7 --snapshots 2 4.5 --out OUT
        on the GPU machine: `doppel train DIR/ws --preset P --minutes M` (wall-clock, compile included), the
        weights' moving average kept at each snapshot minute, and each snapshot's swaps of the recorded inputs
        written to OUT (faces as JPEG quality 97 4:4:4, masks as PNG) with the training figures
  score PAIR --dir D --label L --swaps OUT
        here: for each snapshot, `doppel merge` with a model that returns the GPU's swaps for the same inputs,
        then `doppel eval`; figures into D/PAIR/L/scores.json as for bench_quality
  check PAIR --dir D --label L --model main-m30
        here: the same record -> replay -> score path with a CPU-trained model of bench_quality, against that
        model's own merge: what the round trip (and the JPEG) changes in the figures
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

KEYS = ("source_wins", "eye_corr", "mouth_corr", "detail_ratio", "flicker_ratio", "expression_error", "seam")
SETTINGS = {"expression": "landmarks", "forehead": 0.0, "sharpen": 0.0, "grain": 0.0}
"""Merge settings of every scored run: bench_quality's defaults of the seventh session, grain off."""
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 97, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]


def _key(crop: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(crop).tobytes()).hexdigest()


def _pack_images(images: list[np.ndarray], params: list[int], ext: str) -> tuple[np.ndarray, np.ndarray]:
    """Encoded images as one byte array and their end offsets (no pickle in npz files)."""
    blobs = [cv2.imencode(ext, img, params)[1].ravel() for img in images]
    return np.concatenate(blobs), np.cumsum([len(b) for b in blobs])


def _unpack_images(data: np.ndarray, ends: np.ndarray, flags: int) -> list[np.ndarray]:
    starts = np.concatenate([[0], ends[:-1]])
    return [cv2.imdecode(data[s:e], flags) for s, e in zip(starts, ends, strict=True)]


class _StandIn:
    """What a merge reads of a SwapModel besides `swap`: its config, id, step and expression code width."""

    def __init__(self, config: object, model_id: str) -> None:
        self.config, self.id, self.step = config, model_id, 0

    @property
    def expression_dims(self) -> int:
        return int(self.config.expression_dims)  # type: ignore[attr-defined]


class _Recorder(_StandIn):
    """Stands in for SwapModel in a merge: keeps each batch's inputs, returns a blank face."""

    def __init__(self, config: object) -> None:
        super().__init__(config, "record")
        self.crops: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.hidden: list[np.ndarray] = []

    def swap(self, crops: np.ndarray, expression: np.ndarray | None = None, hide: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        n, r = crops.shape[:2]
        self.crops += list(crops)
        if expression is not None:
            self.codes += list(expression)
        if hide is not None:
            self.hidden += list(hide)
        return np.zeros((n, r, r, 3), np.float32), np.zeros((n, r, r), np.float32)


class _Replay(_StandIn):
    """Stands in for SwapModel in a merge: returns the swaps rendered elsewhere for the same input crops."""

    def __init__(self, config: object, swaps: dict[str, tuple[np.ndarray, np.ndarray]], name: str) -> None:
        super().__init__(config, f"replay:{name}")
        self.swaps = swaps

    def swap(self, crops: np.ndarray, expression: np.ndarray | None = None, hide: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        found = [self.swaps[_key(c)] for c in crops]
        return (np.stack([f for f, _ in found]).astype(np.float32) / 255,
                np.stack([m for _, m in found]).astype(np.float32) / 255)


def _workspace(args: argparse.Namespace) -> Path:
    root = Path(args.dir) / args.pair
    ws = root / args.label
    if not ws.exists():
        shutil.copytree(root / "base", ws, ignore=shutil.ignore_patterns("models", "renders", "eval"))
    from bench_quality import _set_merge

    _set_merge(ws, **SETTINGS)
    return ws


def _record(ws: Path, config: object) -> _Recorder:
    from doppel.merge.render import merge
    from doppel.workspace import Workspace

    recorder = _Recorder(config)
    with Workspace.open(ws) as w:
        merge(w, model=recorder, force=True)  # type: ignore[arg-type]
    return recorder


def _save_inputs(recorder: _Recorder, path: Path) -> None:
    crops, ends = _pack_images([c[..., ::-1] for c in recorder.crops], [cv2.IMWRITE_PNG_COMPRESSION, 9], ".png")
    hidden, hends = _pack_images(recorder.hidden or [np.zeros(recorder.crops[0].shape[:2], np.uint8)],
                                 [cv2.IMWRITE_PNG_COMPRESSION, 9], ".png")
    np.savez(path, crops=crops, crop_ends=ends, hidden=hidden, hidden_ends=hends,
             codes=np.asarray(recorder.codes, np.float32),
             keys=np.array([_key(c) for c in recorder.crops]))


def cmd_record(args: argparse.Namespace) -> None:
    from doppel.train.config import PRESETS

    ws = _workspace(args)
    pack = Path(args.pack)
    recorder = _record(ws, PRESETS[args.preset].model)
    pack.mkdir(parents=True, exist_ok=True)
    _save_inputs(recorder, pack / "inputs.npz")
    if (pack / "ws").exists():
        shutil.rmtree(pack / "ws")
    shutil.copytree(Path(args.dir) / args.pair / "base", pack / "ws",
                    ignore=shutil.ignore_patterns("models", "renders", "eval", "previews"))
    (pack / "preset.txt").write_text(args.preset)
    size = sum(f.stat().st_size for f in pack.rglob("*") if f.is_file())
    print(f"{len(recorder.crops)} crops recorded; {pack} holds {size / 2**20:.1f} MiB", flush=True)


def _render(snapshot: Path, inputs: Path, out: Path, device: str) -> dict[str, float]:
    """The snapshot's swaps of the recorded inputs, as SwapModel renders them, packed into `out`."""
    import torch
    from safetensors.torch import load_file

    from doppel.device import bf16_supported, pick_device
    from doppel.merge.model import SwapModel
    from doppel.train.config import ModelConfig, from_dict
    from doppel.train.models import build_model

    state = json.loads((snapshot / "state.json").read_text())
    model = SwapModel.__new__(SwapModel)
    model.config = from_dict(ModelConfig, state["model"])
    model.device = pick_device(device)
    model.model = build_model(model.config)
    model.model.load_state_dict(load_file(str(snapshot / "ema.safetensors")))
    model.model.to(model.device).eval()
    model.bf16 = bool(state["train"].get("bf16")) and bf16_supported(model.device)
    data = np.load(inputs)
    crops = [c[..., ::-1] for c in _unpack_images(data["crops"], data["crop_ends"], cv2.IMREAD_COLOR)]
    hidden = _unpack_images(data["hidden"], data["hidden_ends"], cv2.IMREAD_GRAYSCALE)
    codes = data["codes"] if len(data["codes"]) else None
    faces, masks = [], []
    start = time.perf_counter()
    for b in range(0, len(crops), 16):
        f, m = model.swap(np.stack(crops[b:b + 16]), None if codes is None else codes[b:b + 16],
                          np.stack(hidden[b:b + 16]) if len(hidden) == len(crops) else None)
        faces += [np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)[..., ::-1] for x in f]
        masks += [np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8) for x in m]
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    mdata, mends = _pack_images(masks, [cv2.IMWRITE_PNG_COMPRESSION, 9], ".png")
    for quality in (97, 95, 92, 90):  # the lent machine gives back files of up to 16 MiB
        fdata, fends = _pack_images(faces, [*JPEG[:1], quality, *JPEG[2:]], ".jpg")
        if fdata.nbytes + mdata.nbytes < 15 * 2**20:
            break
    np.savez(out, faces=fdata, face_ends=fends, masks=mdata, mask_ends=mends, keys=data["keys"],
             step=np.int64(state["step"]))
    return {"step": int(state["step"]), "jpeg_quality": quality, "elapsed_s": float(state.get("elapsed_s", 0.0)),
            "render_s": seconds, "bytes": out.stat().st_size, "model": state["model"]}


def cmd_device(args: argparse.Namespace) -> None:
    pack, out = Path(args.pack), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # a fresh folder each call: a warm machine keeps /tmp between calls, and an old snapshot must not pass for new
    snaps = Path(tempfile.mkdtemp(prefix="doppel-snapshots-"))
    ws = pack / "ws"
    preset = (pack / "preset.txt").read_text().strip()
    marks = sorted([*args.snapshots, args.minutes])
    kept: dict[float, Path] = {}
    start = time.monotonic()
    done = threading.Event()

    def keep() -> None:  # hard-link the newest checkpoint's render weights at each mark
        ckpts = ws / "models" / "main" / "checkpoints"
        pending = list(marks[:-1])
        while pending and not done.wait(1.0):
            if (time.monotonic() - start) / 60 < pending[0]:
                continue
            latest = ws / "models" / "main" / "latest.json"
            if not latest.exists():
                continue
            path = ckpts / json.loads(latest.read_text())["checkpoint"].split("/")[-1]
            mark = pending.pop(0)
            dest = snaps / f"m{mark:g}"
            dest.mkdir(exist_ok=True)
            for name in ("state.json", "ema.safetensors"):
                with contextlib.suppress(FileExistsError):
                    os.link(path / name, dest / name)
            kept[mark] = dest

    watcher = threading.Thread(target=keep, daemon=True)
    watcher.start()
    cmd = [sys.executable, "-m", "doppel", "train", str(ws), "--preset", preset, "--minutes", str(args.minutes),
           "--checkpoint-minutes", str(args.checkpoint_minutes), "--preview-minutes", "1000", "--json"]
    with open(out / "train.log", "w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        if proc.returncode and (time.monotonic() - start) < 120:  # a compile failure: again without compiling
            print(f"train failed (exit {proc.returncode}); again with TORCH_COMPILE_DISABLE=1", flush=True)
            shutil.rmtree(ws / "models", ignore_errors=True)
            minutes = args.minutes - (time.monotonic() - start) / 60
            cmd[cmd.index("--minutes") + 1] = f"{minutes:.2f}"
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                                  env={**os.environ, "TORCH_COMPILE_DISABLE": "1"})
    done.set()
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"train failed:\n{(out / 'train.log').read_text()[-4000:]}")
    result = json.loads(proc.stdout)
    latest = json.loads((ws / "models" / "main" / "latest.json").read_text())
    kept[args.minutes] = ws / "models" / "main" / "checkpoints" / latest["checkpoint"].split("/")[-1]
    figures = {"train": result, "snapshots": {}}
    for mark, path in sorted(kept.items()):
        try:
            figures["snapshots"][f"m{mark:g}"] = _render(path, pack / "inputs.npz",
                                                         out / f"swaps-m{mark:g}.npz", args.device)
        except Exception as exc:  # keep the other snapshots' swaps
            print(f"m{mark:g}: render failed: {exc!r}", flush=True)
            continue
        print(f"m{mark:g}: {figures['snapshots'][f'm{mark:g}']}", flush=True)
        (out / "figures.json").write_text(json.dumps(figures, indent=1))
    if (ws / "models" / "main" / "losses.jsonl").exists():
        shutil.copy(ws / "models" / "main" / "losses.jsonl", out / "losses.jsonl")
    (out / "figures.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(result), flush=True)


def _load_swaps(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    data = np.load(path)
    faces = [f[..., ::-1] for f in _unpack_images(data["faces"], data["face_ends"], cv2.IMREAD_COLOR)]
    masks = _unpack_images(data["masks"], data["mask_ends"], cv2.IMREAD_GRAYSCALE)
    return {str(k): (f, m) for k, f, m in zip(data["keys"], faces, masks, strict=True)}


def _score(ws: Path, config: object, swaps: dict[str, tuple[np.ndarray, np.ndarray]], name: str) -> dict:
    import dataclasses

    from doppel import api
    from doppel.merge.render import merge
    from doppel.workspace import Workspace

    with Workspace.open(ws) as w:
        merge(w, model=_Replay(config, swaps, name), force=True)  # type: ignore[arg-type]
    with api.open_project(ws) as project:
        report = project.evaluate()
    shutil.copy(ws / "eval" / "report.png", ws / f"report-{name}.png")
    return {k: float(v) for k, v in dataclasses.asdict(report).items() if isinstance(v, int | float)}


def _print(pair: str, label: str, name: str, s: dict) -> None:
    print(f"{pair} {label} {name}: " + ", ".join(f"{k} {s.get(k, float('nan')):.3f}" for k in KEYS), flush=True)


def cmd_score(args: argparse.Namespace) -> None:
    from doppel.train.config import ModelConfig, from_dict

    ws = _workspace(args)
    figures = json.loads((Path(args.swaps) / "figures.json").read_text())
    scores = json.loads((ws / "scores.json").read_text()) if (ws / "scores.json").exists() else {}
    for path in sorted(Path(args.swaps).glob("swaps-m*.npz"), key=lambda p: float(p.stem.split("-m")[1])):
        name = "main-" + path.stem.split("-")[1]
        snapshot = figures["snapshots"][path.stem.split("-")[1]]
        config = from_dict(ModelConfig, snapshot["model"])
        scores[name] = _score(ws, config, _load_swaps(path), name)
        scores[name].update(step=snapshot["step"], elapsed_s=snapshot["elapsed_s"])
        _print(args.pair, args.label, name, scores[name])
    (ws / "scores.json").write_text(json.dumps(scores, indent=1))


def cmd_check(args: argparse.Namespace) -> None:
    """Round trip with a CPU model: its inputs recorded, rendered as the device would, replayed and scored."""
    from doppel.train import checkpoint
    from doppel.workspace import Workspace

    source = Path(args.dir) / args.pair / args.source_label
    ws = _workspace(args)
    if (ws / "models").exists():
        shutil.rmtree(ws / "models")
    shutil.copytree(source / "models" / args.model, ws / "models" / "main")
    with Workspace.open(ws) as w:
        found = checkpoint.identity(w, "main")
    with tempfile.TemporaryDirectory() as tmp:
        recorder = _record(ws, found.config)
        _save_inputs(recorder, Path(tmp) / "inputs.npz")
        _render(found.path, Path(tmp) / "inputs.npz", Path(tmp) / "swaps.npz", "cpu")
        scores = {"replay": _score(ws, found.config, _load_swaps(Path(tmp) / "swaps.npz"), "replay")}
    _print(args.pair, args.label, "replay", scores["replay"])
    from bench_quality import _set_merge
    from doppel import api

    _set_merge(ws, model="main")
    with api.open_project(ws) as project:
        project.merge(force=True)
        import dataclasses

        report = project.evaluate()
    scores["merge"] = {k: float(v) for k, v in dataclasses.asdict(report).items() if isinstance(v, int | float)}
    _print(args.pair, args.label, "merge", scores["merge"])
    (ws / "scores.json").write_text(json.dumps(scores, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("record", "score", "check"):
        p = sub.add_parser(name)
        p.add_argument("pair")
        p.add_argument("--dir", default="/tmp/doppel-quality")
        p.add_argument("--label", default="gpu256")
    sub.choices["record"].add_argument("--preset", default="gpu-256-df")
    sub.choices["record"].add_argument("--pack", required=True)
    sub.choices["score"].add_argument("--swaps", required=True)
    sub.choices["check"].add_argument("--source-label", default="c128")
    sub.choices["check"].add_argument("--model", default="main-m30")
    dev = sub.add_parser("device")
    dev.add_argument("pack")
    dev.add_argument("--minutes", type=float, default=7.0)
    dev.add_argument("--snapshots", type=float, nargs="*", default=[2.0, 4.5])
    dev.add_argument("--checkpoint-minutes", type=float, default=0.5)
    dev.add_argument("--out", default=os.environ.get("OUT", "gpu-out"))
    dev.add_argument("--device", default=None)
    args = parser.parse_args()
    globals()[f"cmd_{args.cmd}"](SimpleNamespace(**vars(args)))


if __name__ == "__main__":
    main()
