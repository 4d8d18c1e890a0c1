"""Training figures (issue: training).

  throughput [PRESET ...] [--device D] [--steps N] [--batch-sizes 16 32 64]
      samples/s, achieved GFLOP/s and model FLOPs utilisation (MFU) against the matrix-multiply peak measured
      in the same run, in fp32 and with bf16 autocast; peak memory; at the preset's batch size or at each of
      --batch-sizes (how much of a large GPU a preset's batch leaves idle). Faces are synthetic (warped portraits), so
      this runs anywhere torch does, GPUs included, without the video stack.
  quality [--minutes 10 30]
      masked SSIM of source->source and target->target reconstructions on held-back frames of foreman_cif
      (source) and deadline_cif (target) after 10 and 30 minutes of the cpu-64 preset (runs the doppel CLI).

FLOPs are counted by torch's FlopCounterMode over one forward and backward pass (convolutions and matrix
products; the optimizer and element-wise work are not counted), so MFU is the share of the peak spent on
useful model arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from common import CLIPS, doppel
from doppel.train.config import PRESETS
from doppel.train.data import FaceTensors, TrainingData
from doppel.train.loop import optimization_step
from doppel.train.models import build_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """Best GFLOP/s of square matrix products over a few sizes."""
    best = 0.0
    sizes = (1024, 2048, 3072) if device.type == "cpu" else (4096, 8192)
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        reps = max(2, int(6 * (2048 / n) ** 3)) if device.type == "cpu" else 20
        sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def synthetic_faces(n: int, res: int, seed: int) -> FaceTensors:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:res, :res] / res
    images, masks = [], []
    for _ in range(n):
        base = rng.uniform(0.2, 0.8, 3)
        img = np.stack([base[c] + 0.2 * np.sin(6 * xx * rng.uniform(0.5, 2) + 4 * yy * rng.uniform(0.5, 2) + c)
                        for c in range(3)])
        images.append((np.clip(img, 0, 1) * 255).astype(np.uint8))
        masks.append((((xx - 0.5) ** 2 + (yy - 0.55) ** 2) < 0.12).astype(np.uint8)[None] * 255)
    m = torch.from_numpy(np.stack(masks))
    return FaceTensors(torch.from_numpy(np.stack(images)), m, (m // 3), torch.full((n,), 1.0 / n, dtype=torch.float64),
                       list(range(n)), torch.from_numpy(rng.uniform(-1, 1, (n, 3)).astype(np.float32)))


def throughput(preset: str, device: torch.device, steps: int, bf16: bool, peak: float,
               compile_model: bool = False, batch_size: int | None = None) -> dict[str, float]:
    p = PRESETS[preset]
    cfg = p.train.__class__(**{**p.train.__dict__, "bf16": bf16, "batch_size": batch_size or p.train.batch_size})
    res = p.model.resolution
    data = TrainingData(synthetic_faces(64, res, 0).to(device), synthetic_faces(64, res, 1).to(device), None, None)
    torch.manual_seed(0)
    model = build_model(p.model).to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.5, 0.999))
    with FlopCounterMode(display=False) as counter:
        optimization_step(model, opt, data, cfg, 0, 0)
    flops = counter.get_total_flops()
    net = torch.compile(model) if compile_model else model
    # How long building one batch (sampling, warps, colour transfer) takes on this device, alone.
    from doppel.train.data import make_batch

    for i in range(3):
        if i == 1:
            sync(device)
            t = time.perf_counter()
        make_batch(data, cfg.batch_size, 0, 0, i)
    sync(device)
    batch_ms = (time.perf_counter() - t) / 2 * 1000
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    warm = 3
    for i in range(warm + steps):
        if i == warm:
            sync(device)
            t = time.perf_counter()
        optimization_step(net, opt, data, cfg, 0, i)
    sync(device)
    seconds = (time.perf_counter() - t) / steps
    memory = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    gflops = flops / seconds / 1e9
    return {"samples_per_s": cfg.batch_size / seconds, "gflop_per_step": flops / 1e9, "gflops": gflops,
            "mfu": gflops / peak, "memory_gib": memory, "batch": cfg.batch_size, "batch_ms": batch_ms,
            "step_ms": seconds * 1000}


def cmd_throughput(args: argparse.Namespace) -> None:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    peaks = {"fp32": matmul_peak(device, torch.float32), "bf16": matmul_peak(device, torch.bfloat16)}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    print(f"device: {name}; matmul peak fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    presets = args.presets or [p for p in PRESETS if p.startswith("cpu" if device.type == "cpu" else "gpu")]
    results = {}
    runs = [(p, m, b) for p in presets for m in args.modes for b in args.batch_sizes or [None]]
    for preset, mode, batch in runs:
        r = throughput(preset, device, args.steps, mode == "bf16", peaks[mode], args.compile, batch)
        results[f"{preset}/{mode}" + (f"/{batch}" if batch else "")] = r
        print(f"{preset:14s} {mode}{' compiled' if args.compile else ''}: {r['samples_per_s']:7.1f} samples/s "
              f"(batch {r['batch']}, {r['step_ms']:.0f} ms/step, {r['batch_ms']:.1f} ms to build a batch), "
              f"{r['gflop_per_step']:.0f} GFLOP/step, {r['gflops']:8.0f} GFLOP/s = {100 * r['mfu']:.0f} % of the "
              f"{mode} matmul peak; peak memory {r['memory_gib']:.2f} GiB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "peaks": peaks, "results": results}, indent=1))


def cmd_quality(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = str(Path(tmp) / "ws")
        doppel("init", ws)
        doppel("add", ws, "--source", str(CLIPS / "foreman_cif.mp4"))
        doppel("add", ws, "--target", str(CLIPS / "deadline_cif.mp4"))
        doppel("extract", ws)
        done = 0.0
        for mark in args.minutes:
            out = json.loads(doppel("train", ws, "--preset", "cpu-64", "--minutes", str(mark - done), "--json"))
            done = mark
            v = out["validation"]
            print(f"cpu-64 after {mark:g} min (step {out['step']}, {out['samples_per_s']:.1f} samples/s): masked SSIM "
                  f"on held-back frames source->source {v['ssim_src']:.3f}, target->target {v['ssim_dst']:.3f}",
                  flush=True)
        if args.keep:
            os.system(f"cp -r {ws}/models/main/preview.png {args.keep}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("presets", nargs="*")
    t.add_argument("--device")
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--json")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--batch-sizes", type=int, nargs="*", default=[], help="faces per identity per step (default: "
                   "the preset's)")
    t.add_argument("--modes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    q = sub.add_parser("quality")
    q.add_argument("--minutes", type=float, nargs="+", default=[10, 30])
    q.add_argument("--keep", help="copy the final preview here")
    args = parser.parse_args()
    {"throughput": cmd_throughput, "quality": cmd_quality}[args.cmd](args)


if __name__ == "__main__":
    main()
