"""Shared by the tests and the benchmarks (through benchmarks/common.py): the development footage, tiny clips
made from public-domain portraits, and running the CLI in this process or in a fresh one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from doppel.cli import cli
from doppel.demo import moving_frames, write_clip

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
"""The development footage (see its README); tests that need it skip when it is absent."""
CLIPS = DATA / "clips"


def run(*args: object) -> tuple[int, str, str]:
    """`doppel ARGS...` in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def doppel(*args: object) -> str:
    """`python -m doppel ARGS...` in a fresh process; its stdout (an error if it fails)."""
    return subprocess.run([sys.executable, "-m", "doppel", *map(str, args)], check=True, capture_output=True,
                          text=True).stdout


def clip(path: Path, portrait: np.ndarray, frames: int, *, seed: int = 1, size: tuple[int, int] = (192, 192),
         tone_hz: float | None = None) -> Path:
    """A short H.264 clip of a slow camera move over `portrait` (HxWx3 uint8), with a tone when `tone_hz`."""
    return write_clip(path, moving_frames(portrait, frames=frames, size=size, seed=seed), tone_hz=tone_hz)
