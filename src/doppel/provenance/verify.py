"""`doppel verify`: what a video says about itself: C2PA manifest, watermark, container metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import av.error

from doppel.errors import DoppelError
from doppel.media.probe import probe
from doppel.media.video import MediaReader
from doppel.provenance import watermark
from doppel.provenance.manifest import ManifestReport, read_manifest
from doppel.reports import Report


@dataclass(frozen=True)
class VerifyReport(Report):
    json_properties = ("marked", "tampered")
    path: str
    manifest: ManifestReport
    watermark_found: bool
    watermark_score: float
    watermark_threshold: float
    watermark_false_positive_rate: float
    watermark_tag: str | None
    watermark_frames: int
    metadata_says_synthetic: bool

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
    except av.error.FFmpegError:
        return False
    return "synthetic" in text.lower()


def verify(path: Path, seconds: float = 10.0) -> VerifyReport:
    """Read the manifest (MP4/MOV) and look for the watermark in the first `seconds` of frames."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DoppelError("no such file", path)
    info = probe(path)
    # An image sequence: each frame carries the manifest; read the first.
    manifest = read_manifest(path / info.files[0] if path.is_dir() else path)
    detector = watermark.Detector()
    limit = max(1, int(seconds * float(info.fps))) if info.kind != "image" else 1
    with MediaReader(info) as reader:
        for frame in reader.frames(range(min(limit, len(reader)))):
            detector.add(frame.image)
    found = detector.result()
    return VerifyReport(
        path=str(path), manifest=manifest, watermark_found=found.found, watermark_score=round(found.score, 2),
        watermark_threshold=watermark.THRESHOLD, watermark_false_positive_rate=watermark.false_positive_rate(),
        watermark_tag=f"{found.tag:03x}" if found.found and found.tag is not None else None,
        watermark_frames=found.frames, metadata_says_synthetic=_metadata(path),
    )
