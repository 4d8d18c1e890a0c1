"""Where models run: device choice, bfloat16 support and torchrun's process group. Shared by train and merge."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist

from doppel.errors import DoppelError


def distributed() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run plainly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def pick_device(requested: str | None) -> torch.device:
    """`requested` (cpu, cuda, cuda:N) if it exists here; by default this process's GPU, else the CPU."""
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise DoppelError("--device cuda asked for, but no CUDA GPU is available")
        try:
            return torch.device(requested)
        except RuntimeError as exc:
            raise DoppelError(f"unknown device {requested!r}; use cpu, cuda or cuda:N") from exc
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` does bfloat16 arithmetic natively (emulated bf16 is slower than float32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def process_group(device: str | None) -> Iterator[None]:
    """Under torchrun, join the process group (NCCL on GPUs, gloo on CPUs) and leave it cleanly at the end:
    a process that exits without destroying it can abort in gloo's teardown ("terminate called ...")."""
    _, world = distributed()
    if world == 1:
        yield
        return
    dist.init_process_group("nccl" if device != "cpu" and torch.cuda.is_available() else "gloo")
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()
