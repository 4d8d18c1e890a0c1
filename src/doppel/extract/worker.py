"""Extraction work for one batch of frames, runnable in a pool process or in the caller's own process."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from doppel.extract.analyze import AnalyzerConfig, FaceAnalyzer, FaceResult
from doppel.media.images import write_jpeg
from doppel.workspace.paths import inside

# Per-process state of pool workers: each process builds its models once, in `init_worker`.
_analyzer: FaceAnalyzer | None = None


def init_worker(config: AnalyzerConfig, parent_pid: int | None = None) -> None:
    global _analyzer
    exit_with_parent(parent_pid or os.getppid())
    cv2.setNumThreads(1)
    _analyzer = FaceAnalyzer(config, threads=1)


def exit_with_parent(parent_pid: int, interval_s: float = 0.2) -> threading.Thread:
    """Watch the parent from a daemon thread and end this process as soon as it is gone (killed with -9, a
    pool's own clean-up never runs): a pool worker then outlives it by `interval_s`, not by a whole batch."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def write_crop(root: Path, rel: str, crop: np.ndarray) -> str:
    """Write an aligned crop (size x size x 3 uint8 RGB) as JPEG (quality 95), atomically; returns its SHA-256.
    The path must stay inside the workspace (a symlinked faces/ folder is refused)."""
    return hashlib.sha256(write_jpeg(inside(root, rel, "face crop path"), crop, durable=False)).hexdigest()


def to_records(root: Path, media_id: int, frame_idx: int, faces: list[FaceResult],
               config: AnalyzerConfig) -> list[dict[str, Any]]:
    """Plain records for the database; writes each face's aligned crop under `root`."""
    records = []
    for face in faces:
        rel = f"faces/m{media_id}/{frame_idx:06d}_{face.face_idx}.jpg"
        record = asdict(face)
        record.pop("crop")
        record.update(crop_path=rel, crop_sha256=write_crop(root, rel, face.crop),
                      face_type=config.face_type, crop_size=config.crop_size)
        records.append(record)
    return records


def analyze_batch(
    analyzer: FaceAnalyzer | None, root: Path, media_id: int, frames: list[tuple[int, np.ndarray]]
) -> list[tuple[int, list[dict[str, Any]]]]:
    """Faces of each (frame index, image); crops are written under `root`. Returns plain records."""
    analyzer = analyzer or _analyzer
    assert analyzer is not None, "init_worker was not called"
    return [(i, to_records(root, media_id, i, analyzer.analyze(image), analyzer.config)) for i, image in frames]
