"""`doppel verify`: what a video says about itself: C2PA manifest, watermark, container metadata.

The watermark is looked for in 3-second excerpts spread over the whole file (every excerpt with `thorough`),
each searched on its own, plus all the excerpts read pooled together. The threshold counts every excerpt
checked (and every family of tests, watermark.FAMILIES), so the chance that an unmarked file is reported as
marked stays below watermark.FALSE_POSITIVE_BOUND.
A damaged file is checked on the frames that still decode (see frames.py), and the report says how many.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.error
import numpy as np

from doppel.errors import DoppelError
from doppel.fsutil import resolve
from doppel.media import IMAGE_SUFFIXES, MediaReader, probe
from doppel.media.probe import check_regular_file
from doppel.provenance import watermark
from doppel.provenance.detect import Detection, Detector
from doppel.provenance.frames import DecodeLog, Frame, container_duration, gray_frames, gray_frames_at
from doppel.provenance.manifest import ManifestReport, read_manifest
from doppel.reports import Report

EXCERPT_S = 3.0
SAMPLED_EXCERPTS = 8
"""Excerpts checked without `thorough`, spread evenly over the file."""
SEEK_AFTER_S = 120.0
"""Files longer than this are sampled by seeking to each excerpt; shorter ones are decoded from end to end."""


@dataclass(frozen=True)
class Excerpt:
    start_s: float
    end_s: float
    frames: int
    score: float
    found: bool
    threshold: float = 0.0
    """The threshold of the family of tests `score` belongs to (watermark.FAMILIES)."""


@dataclass(frozen=True)
class VerifyReport(Report):
    json_properties = ("marked", "tampered")
    path: str
    manifest: ManifestReport
    watermark_found: bool
    watermark_score: float
    watermark_threshold: float
    """The threshold of the family of tests that `watermark_score` belongs to."""
    watermark_false_positive_rate: float
    """The bound on the chance of this verdict for an unmarked file, over every excerpt and hypothesis searched."""
    watermark_tag: str | None
    watermark_frames: int
    """Frames the watermark search read."""
    metadata_says_synthetic: bool
    watermark_ranges: list[tuple[float, float]] = field(default_factory=list)
    """Time ranges (seconds from the first frame) of the excerpts in which the mark was found."""
    excerpts: list[Excerpt] = field(default_factory=list)
    frames_decoded: int = 0
    frames_stated: int = 0
    """Frames the container says it holds (0: unknown); more than frames_decoded when the file is damaged."""
    decode_errors: int = 0
    decode_method: str = "container"
    decode_notes: list[str] = field(default_factory=list)
    thorough: bool = False
    watermark_family: str = "any"
    """watermark.FAMILIES: `plain` (upright whole frame, mirrored or not), `zoom` (upright crop) or `any`."""

    @property
    def marked(self) -> bool:
        return self.manifest.present or self.watermark_found

    @property
    def tampered(self) -> bool:
        return self.manifest.present and not self.manifest.valid


def _metadata(path: Path) -> bool:
    if path.is_dir():
        return False
    try:
        with av.open(str(path)) as c:
            text = " ".join(str(v) for v in c.metadata.values())
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        return False
    return "synthetic" in text.lower()


def _manifest(path: Path) -> ManifestReport:
    try:
        return read_manifest(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file must still get a report
        return ManifestReport(present=True, valid=False, state="Unreadable", problems=[str(exc)])


def _chosen(duration: float | None, thorough: bool, count: int) -> set[int] | None:
    """Indices of the EXCERPT_S windows to read; None: all of them."""
    if thorough or duration is None:
        return None
    n = max(1, math.ceil(duration / EXCERPT_S))
    if n <= count:
        return None
    return {round(i * (n - 1) / (count - 1)) for i in range(count)}


def _image_frames(path: Path, log: DecodeLog) -> list[Frame]:
    info = probe(path)
    fps = float(info.fps) if info.kind != "image" else 1.0
    with MediaReader(info) as reader:
        out: list[Frame] = [(i / fps, frame.image, None) for i, frame in enumerate(reader)]
    log.method, log.frames = info.kind, len(out)
    return out


def _collect(source: Iterator[Frame],
             chosen: set[int] | None) -> tuple[dict[int, Detector], dict[int, list[float]], float]:
    """Frames -> a detector per EXCERPT_S window (those in `chosen`, or all), each window's first and last frame
    time, and the frame interval."""
    windows: dict[int, Detector] = {}
    spans: dict[int, list[float]] = {}
    steps: list[float] = []
    last: float | None = None
    for t, image, coded in source:
        if last is not None and t > last and len(steps) < 100:
            steps.append(t - last)
        last = t
        w = int(t // EXCERPT_S)
        if chosen is not None and w not in chosen:
            continue
        windows.setdefault(w, Detector()).add(image, coded)
        spans.setdefault(w, [t, t])[1] = t
    return windows, spans, float(np.median(steps)) if steps else 1 / 30


def verify(path: Path, *, thorough: bool = False, excerpts: int = SAMPLED_EXCERPTS,
           seek_after_s: float = SEEK_AFTER_S) -> VerifyReport:
    """Read the manifest (MP4/MOV/PNG) and look for the watermark in excerpts across the whole file."""
    path = resolve(path)  # a symlink loop is a one-line error
    if not path.exists():
        raise DoppelError("no such file", path)
    if not path.is_dir():
        check_regular_file(path)  # a FIFO would block the reads below forever
    log = DecodeLog()
    chosen: set[int] | None = None
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
        if not files:
            raise DoppelError("no images in the folder", path)
        manifest = _manifest(files[0])  # an image sequence: each frame carries the manifest; read the first
        windows, spans, frame_s = _collect(iter(_image_frames(path, log)), None)
    else:
        manifest = _manifest(path)
        duration = container_duration(path)
        chosen = _chosen(duration, thorough, excerpts)
        windows = {}
        if chosen is not None and duration is not None and duration > seek_after_s:
            starts = [w * EXCERPT_S for w in sorted(chosen)]
            windows, spans, frame_s = _collect(gray_frames_at(path, starts, EXCERPT_S, log), chosen)
        if not windows:  # short files, thorough checks, or seeking failed (a damaged index): end to end
            log = DecodeLog()
            wanted = chosen
            want = None if wanted is None else (lambda t: int(t // EXCERPT_S) in wanted)
            windows, spans, frame_s = _collect(gray_frames(path, log, want), chosen)
    if not windows:
        raise DoppelError("no video frame could be decoded: " + "; ".join(log.notes or ["unknown format"]), path)
    checks = len(windows) + (1 if len(windows) > 1 else 0)
    thresholds = watermark.thresholds(checks)
    results: list[tuple[int, Detection]] = []
    prior = None
    for w in sorted(windows):
        found = windows[w].result(thresholds, exhaustive=False, prior=prior)
        if found.found:
            prior = (found.mirrored, found.rotation, *found.scale)
        results.append((w, found))
    best = max((r for _, r in results), key=lambda r: r.score - r.threshold)
    if len(windows) > 1:
        pooled = Detector()
        for d in windows.values():
            pooled.merge(d)
        whole = pooled.result(thresholds, exhaustive=False, prior=prior)
        if whole.score - whole.threshold > best.score - best.threshold:
            best = whole
    found_ranges: list[tuple[float, float]] = []
    for w, r in results:
        if not r.found:
            continue
        start, end = spans[w][0], spans[w][1] + frame_s
        if found_ranges and start - found_ranges[-1][1] < 2 * frame_s:
            found_ranges[-1] = (found_ranges[-1][0], end)
        else:
            found_ranges.append((start, end))
    found_any = any(r.found for _, r in results) or best.found
    tag = next((r.tag for _, r in results if r.found and r.tag is not None), best.tag if best.found else None)
    return VerifyReport(
        path=str(path), manifest=manifest, watermark_found=found_any, watermark_score=round(best.score, 2),
        watermark_threshold=round(best.threshold, 2),
        watermark_false_positive_rate=watermark.false_positive_rate(thresholds, checks),
        watermark_tag=f"{tag:03x}" if tag is not None else None,
        watermark_frames=sum(d.frames for d in windows.values()), metadata_says_synthetic=_metadata(path),
        watermark_ranges=[(round(a, 2), round(b, 2)) for a, b in found_ranges],
        excerpts=[Excerpt(round(spans[w][0], 2), round(spans[w][1] + frame_s, 2), r.frames, round(r.score, 2),
                          r.found, round(r.threshold, 2)) for w, r in results],
        frames_decoded=log.frames, frames_stated=log.frames_stated, decode_errors=log.errors,
        decode_method=log.method, decode_notes=log.notes,
        thorough=thorough, watermark_family=best.family,
    )
