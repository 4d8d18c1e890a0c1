"""Encode frames at given timestamps, copying the audio of another file through without re-encoding.

Codecs (all inside PyAV's bundled FFmpeg, checked at import by `available_codecs`):
- ``h264``: libx264, yuv420p, CRF quality, ``.mp4`` with faststart: the delivery format.
- ``ffv1``: FFV1 in RGB (bgr0), mathematically lossless, ``.mkv``: archival / VFX hand-off.
- ``prores``: ProRes 4444 (prores_ks, yuv444p10le), ``.mov``: the intermediate most compositors read.
- ``lossless``: PNG-coded frames in a QuickTime ``.mov``: bit-exact RGB that can carry a C2PA manifest.
- ``png``: a folder of numbered PNG files plus ``timestamps.json`` (for image-sequence pipelines).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import cast

import av
import av.error
import numpy as np
from PIL import Image

from doppel.errors import DoppelError
from doppel.fsutil import atomic_path, fsync_dir


@dataclass(frozen=True)
class CodecSpec:
    encoder: str
    suffix: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)
    even_size: bool = False


CODECS: dict[str, CodecSpec] = {
    "h264": CodecSpec("libx264", ".mp4", "yuv420p", {"preset": "medium"}, {"movflags": "+faststart"}, True),
    "ffv1": CodecSpec("ffv1", ".mkv", "bgr0", {"level": "3", "slicecrc": "1"}),
    "prores": CodecSpec("prores_ks", ".mov", "yuv444p10le", {"profile": "4"}),
    "lossless": CodecSpec("png", ".mov", "rgb24"),
    "png": CodecSpec("png", "", "rgb24"),
}


class VideoWriter:
    """Write HxWx3 uint8 RGB frames with explicit timestamps; a context manager.

    The file appears at `path` only when the writer closes without error (it is written to a temporary
    name beside it first). `audio_from` names a media file whose audio streams are copied packet for
    packet, interleaved with the video by time.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        time_base: Fraction,
        fps: Fraction,
        codec: str = "h264",
        crf: int = 18,
        audio_from: Path | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        if codec not in CODECS:
            raise DoppelError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
        self.path = Path(path)
        self.spec = CODECS[codec]
        self.width, self.height = width, height
        self.time_base = Fraction(time_base)
        self.frames_written = 0
        self._last_pts: int | None = None
        self._png_dir: Path | None = None
        self._png_times: list[float] = []
        self._audio_in: av.container.InputContainer | None = None
        self._audio_packets: Iterator[av.Packet] | None = None
        self._pending_audio: av.Packet | None = None
        if codec == "png" and self.path.suffix.lower() not in (".mov", ".mp4"):
            if os.path.lexists(self.path):  # replacing a folder is the caller's decision (export/outputs.py)
                raise DoppelError("already exists; the PNG frames go into a new folder", self.path)
            self._png_dir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part",
                                                  dir=self.path.parent))
            return
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        try:
            self._out = av.open(str(self._tmp), "w", options=self.spec.container_options)
            for key, value in (metadata or {}).items():
                self._out.metadata[key] = value
            self._video = cast(av.VideoStream,
                               self._out.add_stream(self.spec.encoder, rate=fps, options=self._options(crf)))
            self._video.width = width + (width % 2 if self.spec.even_size else 0)
            self._video.height = height + (height % 2 if self.spec.even_size else 0)
            self._video.pix_fmt = self.spec.pix_fmt
            # Both the stream and the codec keep the source's time base, or VFR timestamps get rounded.
            self._video.time_base = self.time_base
            self._video.codec_context.time_base = self.time_base
            if audio_from is not None:
                self._open_audio(Path(audio_from))
        except BaseException:
            self._abort()
            raise

    def _options(self, crf: int) -> dict[str, str]:
        opts = dict(self.spec.options)
        if self.spec.encoder == "libx264":
            opts["crf"] = str(crf)
        return opts

    def _open_audio(self, source: Path) -> None:
        self._audio_in = av.open(str(source))
        streams = list(self._audio_in.streams.audio)
        if not streams:
            return
        mapping = {s.index: self._out.add_stream_from_template(s) for s in streams}
        self._audio_map = mapping
        self._audio_packets = iter(self._audio_in.demux(*streams))

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Mux source audio packets whose time is before `seconds` (all of them when None)."""
        if self._audio_packets is None:
            return
        while True:
            packet = self._pending_audio or next(self._audio_packets, None)
            self._pending_audio = None
            if packet is None:
                self._audio_packets = None
                return
            if packet.dts is None or not packet.size:
                continue
            t = float(packet.dts * packet.time_base) if packet.time_base else 0.0
            if seconds is not None and t > seconds:
                self._pending_audio = packet
                return
            packet.stream = self._audio_map[packet.stream.index]
            self._out.mux(packet)

    def write(self, image: np.ndarray, pts: int) -> None:
        """Write one frame. `image` is HxWx3 uint8 RGB; `pts` is in `time_base` units and must increase."""
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise DoppelError(
                f"frame {self.frames_written} is {image.shape} {image.dtype}, "
                f"expected ({self.height}, {self.width}, 3) uint8"
            )
        if self._last_pts is not None and pts <= self._last_pts:
            raise DoppelError(f"timestamps must increase (got {pts} after {self._last_pts})")
        self._last_pts = pts
        if self._png_dir is not None:
            Image.fromarray(image).save(self._png_dir / f"{self.frames_written:06d}.png", compress_level=1)
            self._png_times.append(float(pts * self.time_base))
            self.frames_written += 1
            return
        if self._video.width != self.width or self._video.height != self.height:
            pad = ((0, self._video.height - self.height), (0, self._video.width - self.width), (0, 0))
            image = np.pad(image, pad, mode="edge")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = self.time_base
        self._mux(self._video.encode(frame))
        self.frames_written += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self._out.mux(packet)
            if packet.pts is not None and packet.time_base:
                self._mux_audio_until(float(packet.pts * packet.time_base))

    def close(self) -> None:
        """Flush, copy the rest of the audio, and move the finished file into place."""
        if self._png_dir is not None:
            (self._png_dir / "timestamps.json").write_text(json.dumps({"time_s": self._png_times}))
            os.rename(self._png_dir, self.path)
            fsync_dir(self.path.parent)
            self._png_dir = None
            return
        if self.frames_written == 0:
            self._abort()
            raise DoppelError("no frames were written", self.path)
        try:
            self._mux(self._video.encode(None))
            self._mux_audio_until(None)
            self._out.close()
            if self._audio_in is not None:
                self._audio_in.close()
        except BaseException as exc:
            self._abort(exc)
            raise
        self._atomic.__exit__(None, None, None)

    def _abort(self, exc: BaseException | None = None) -> None:
        if self._png_dir is not None:
            shutil.rmtree(self._png_dir, ignore_errors=True)
            self._png_dir = None
            return
        for c in (getattr(self, "_out", None), self._audio_in):
            if c is not None:
                with contextlib.suppress(av.error.FFmpegError, OSError):
                    c.close()
        error = exc or RuntimeError("aborted")
        with contextlib.suppress(OSError):
            self._atomic.__exit__(type(error), error, error.__traceback__)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if et is None:
            self.close()
        else:
            self._abort(ev)
