"""Probe a video, a still image or a folder of images into a `MediaInfo` record.

Videos are decoded in full while probing: the frame count and the per-frame presentation timestamps are
what the decoder really delivers, not what the container claims, so truncated or corrupt files are caught
at ingest rather than half-way through a render.
"""

from __future__ import annotations

import hashlib
import re
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, cast

import av
import av.error
from PIL import Image, ImageOps, UnidentifiedImageError

from doppel.errors import DoppelError
from doppel.fsutil import resolve, sha256_file

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
MAX_PIXELS = 8192 * 8192
"""Largest picture doppel decodes (an 8K frame is 33 megapixels): bigger ones, or headers that claim to be
bigger, are refused before any pixel is decoded (decompression bombs)."""

MediaKind = Literal["video", "image", "sequence"]
Progress = Callable[[int, int], None]
"""Called as progress(done, total); total is 0 when unknown."""


@dataclass(frozen=True)
class AudioInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    packets: int
    duration_s: float


@dataclass(frozen=True)
class MediaInfo:
    """What doppel knows of one input.

    `width`/`height` are the upright size, after the rotation metadata is applied; `rotation` is the
    counter-clockwise rotation (degrees) the container asks for. `pts` are the presentation timestamps
    of every frame, in `time_base` units, in display order. For a folder of images, `files` lists them
    in natural order and `pts` counts frames at `fps`.
    """

    path: str
    kind: MediaKind
    sha256: str
    size_bytes: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    fps: Fraction
    time_base: Fraction
    pts: tuple[int, ...]
    rotation: int = 0
    audio: tuple[AudioInfo, ...] = ()
    files: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    @property
    def duration_s(self) -> float:
        if not self.pts:
            return 0.0
        last = float((self.pts[-1] - self.pts[0]) * self.time_base)
        return last + float(1 / self.fps) if self.fps else last

    @property
    def variable_frame_rate(self) -> bool:
        steps = {b - a for a, b in zip(self.pts, self.pts[1:], strict=False)}
        return len(steps) > 1 and max(steps) - min(steps) > 1

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        d["time_base"] = f"{self.time_base.numerator}/{self.time_base.denominator}"
        d["frame_count"] = self.frame_count
        d["duration_s"] = round(self.duration_s, 6)
        d["variable_frame_rate"] = self.variable_frame_rate
        del d["pts"], d["files"]
        return d


def probe(path: Path, *, fps: Fraction | None = None, progress: Progress | None = None,
          allow_damage: bool = False) -> MediaInfo:
    """Probe a video file, an image file or a folder of images. Raises DoppelError naming the file.

    A video in which the decoder concealed damage is refused unless `allow_damage` (for `verify`, which
    examines damaged and tampered files): then the damaged frames are listed in `extra["damaged_frames"]`."""
    path = resolve(path)
    if not path.exists():
        raise DoppelError("no such file or folder", path)
    if path.is_dir():
        return _probe_sequence(path, fps or Fraction(25), progress)
    check_regular_file(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _probe_image(path)
    return _probe_video(path, progress, allow_damage)


def stat_stamp(path: Path, files: tuple[str, ...] = ()) -> str:
    """Size and modification time (ns) of a file, or of every file of an image sequence, as one short string:
    a cheap test of whether the media may have changed since it was probed. OSError when a file is gone."""
    h = hashlib.sha256()
    for p in [path / f for f in files] if files else [path]:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:24]


def content_hash(path: Path, files: tuple[str, ...] = ()) -> str:
    """The SHA-256 that `probe` records: of the file, or for an image sequence of its files' names and hashes."""
    if not files:
        return sha256_file(path)
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + sha256_file(path / name).encode())
    return digest.hexdigest()


def check_regular_file(path: Path) -> None:
    """Refuse FIFOs, devices and sockets before opening them: reading one can block forever."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise DoppelError(f"cannot read ({exc.strerror})", path) from exc
    if not stat.S_ISREG(mode):
        raise DoppelError("not a regular file (a FIFO, device or socket); give a video or image file", path)


def check_pixels(width: int, height: int, path: Path) -> None:
    """Refuse pictures above MAX_PIXELS, and sizes that make no sense, before decoding them."""
    if width <= 0 or height <= 0:
        raise DoppelError(f"picture size {width}x{height} is not valid", path)
    if width * height > MAX_PIXELS:
        raise DoppelError(f"picture is {width}x{height} ({width * height / 1e6:.0f} megapixels); doppel reads "
                          f"pictures up to {MAX_PIXELS / 1e6:.0f} megapixels", path)


def check_rotation(rotation: float, path: Path) -> int:
    """The display rotation as a whole number of degrees; refused unless it is a multiple of 90."""
    degrees = round(float(rotation))
    if abs(float(rotation) - degrees) > 1e-3 or degrees % 90:
        raise DoppelError(f"display rotation of {float(rotation):g} degrees is not supported (only multiples "
                          "of 90); re-encode the video upright", path)
    return degrees


def _probe_video(path: Path, progress: Progress | None, allow_damage: bool = False) -> MediaInfo:
    stamp = stat_stamp(path)  # before reading: a change while probing then shows at the next check
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise DoppelError("not a video or image that can be read (corrupt, truncated or another format)",
                          path) from exc
    with container:
        if not container.streams.video:
            raise DoppelError("has no video stream", path)
        stream = container.streams.video[0]
        audio_streams = list(container.streams.audio)
        if stream.codec_context is None or any(s.codec_context is None for s in audio_streams):
            raise DoppelError("has a video or audio stream in a codec that cannot be decoded (corrupt or "
                              "unsupported)", path)
        check_pixels(stream.codec_context.width, stream.codec_context.height, path)
        stream.thread_type = "AUTO"
        expected = stream.frames or 0
        pts: list[int | None] = []
        rotation = 0
        pix_fmt = stream.codec_context.pix_fmt or ""
        audio_packets = {s.index: 0 for s in audio_streams}
        failure: Exception | None = None
        damaged: list[int | None] = []  # pts of frames the decoder had to conceal errors in
        try:
            for packet in container.demux(stream, *audio_streams):
                if packet.stream.type == "audio":
                    if packet.size:
                        audio_packets[packet.stream.index] += 1
                    continue
                for decoded in packet.decode():
                    frame = cast(av.VideoFrame, decoded)
                    if not pts:
                        rotation = check_rotation(frame.rotation or 0, path)
                        pix_fmt = frame.format.name
                    pts.append(frame.pts)
                    if frame.is_corrupt:
                        damaged.append(frame.pts if frame.pts is not None else len(pts) - 1)
                    if progress and len(pts) % 25 == 0:
                        progress(len(pts), expected)
        except av.error.FFmpegError as exc:
            failure = exc
        if not pts:
            raise DoppelError("no decodable video frames", path)
        if failure is not None or (expected and len(pts) < expected):
            raise DoppelError(
                f"truncated or corrupt: only {len(pts)} of {expected or 'the'} frames decode", path
            )
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1)
        fps = Fraction(stream.average_rate or stream.guessed_rate or 25)
        if any(p is None for p in pts):  # containers without timestamps: count frames at the nominal rate
            time_base = 1 / fps
            frame_pts = tuple(range(len(pts)))
        else:
            frame_pts = tuple(sorted(p for p in pts if p is not None))
        damaged_frames = _damaged_frames(damaged, frame_pts)
        if damaged_frames and not allow_damage:
            _refuse_damaged(path, damaged_frames, len(frame_pts))
        if len(set(frame_pts)) != len(frame_pts):
            raise DoppelError(f"damaged: {len(frame_pts) - len(set(frame_pts))} frames repeat another frame's "
                              "timestamp; repair or re-encode the file", path)
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation % 180:
            width, height = height, width
        audio = tuple(
            AudioInfo(
                index=s.index,
                codec=s.codec_context.name,
                sample_rate=int(s.codec_context.sample_rate or 0),
                channels=int(s.codec_context.channels or 0),
                packets=audio_packets[s.index],
                duration_s=float(s.duration * s.time_base) if s.duration and s.time_base else 0.0,
            )
            for s in audio_streams
        )
        if progress:
            progress(len(frame_pts), len(frame_pts))
        return MediaInfo(
            path=str(path), kind="video", sha256=sha256_file(path), size_bytes=path.stat().st_size,
            codec=stream.codec_context.name, width=width, height=height, pix_fmt=pix_fmt, fps=fps,
            time_base=time_base, pts=frame_pts, rotation=rotation, audio=audio,
            extra={"stat": stamp, **({"damaged_frames": damaged_frames} if damaged_frames else {})},
        )


def _damaged_frames(damaged: list[int | None], frame_pts: tuple[int, ...]) -> list[int]:
    """Display indices of the frames whose timestamps the decoder flagged as corrupt."""
    where = {p: i for i, p in enumerate(frame_pts)}
    return sorted({where.get(p, p) for p in damaged if p is not None})


def _refuse_damaged(path: Path, frames: list[int], total: int) -> None:
    """Refuse a video in which the decoder concealed errors (it flags those frames as corrupt).

    Any such frame is an error, not a warning: concealment fills the damaged area with guessed pixels, which
    would be extracted, rendered and exported as if they were the footage. Repairing or re-encoding the file
    first is the only way to know what is in it."""
    shown = ", ".join(map(str, frames[:8])) + (", ..." if len(frames) > 8 else "")
    raise DoppelError(f"damaged: the decoder concealed errors in {len(frames)} of {total} frames "
                      f"(frame {shown}); repair or re-encode the file", path)


def _read_image_header(path: Path) -> tuple[int, int, str, int]:
    """(upright width, upright height, mode, EXIF rotation) of an image, checking that it decodes."""
    try:
        with Image.open(path) as im:
            check_pixels(im.width, im.height, path)
            im.load()
            upright = ImageOps.exif_transpose(im)
            orientation = im.getexif().get(0x0112, 1)
            rotation = {3: 180, 6: -90, 8: 90}.get(orientation, 0)
            return upright.width, upright.height, im.mode, rotation
    except Image.DecompressionBombError as exc:
        raise DoppelError(f"picture is larger than doppel reads ({MAX_PIXELS / 1e6:.0f} megapixels at most): a "
                          "decompression bomb or a damaged header", path) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DoppelError("not an image that can be read (corrupt or another format)", path) from exc


def _probe_image(path: Path) -> MediaInfo:
    stamp = stat_stamp(path)
    width, height, mode, rotation = _read_image_header(path)
    return MediaInfo(
        path=str(path), kind="image", sha256=sha256_file(path), size_bytes=path.stat().st_size,
        codec=path.suffix.lower().lstrip("."), width=width, height=height, pix_fmt=mode,
        fps=Fraction(1), time_base=Fraction(1), pts=(0,), rotation=rotation, extra={"stat": stamp},
    )


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _probe_sequence(folder: Path, fps: Fraction, progress: Progress | None) -> MediaInfo:
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise DoppelError("folder holds no images (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")", folder)
    sizes = set()
    mode = ""
    names = tuple(f.name for f in files)
    stamp = stat_stamp(folder, names)
    for i, f in enumerate(files):
        width, height, mode, _ = _read_image_header(f)
        sizes.add((width, height))
        if progress and i % 25 == 0:
            progress(i, len(files))
    width, height = next(iter(sizes)) if len(sizes) == 1 else (0, 0)
    return MediaInfo(
        path=str(folder), kind="sequence", sha256=content_hash(folder, names),
        size_bytes=sum(f.stat().st_size for f in files), codec=files[0].suffix.lower().lstrip("."),
        width=width, height=height, pix_fmt=mode, fps=fps, time_base=1 / fps,
        pts=tuple(range(len(files))), files=tuple(f.name for f in files),
        extra={"mixed_sizes": len(sizes) > 1, "stat": stamp},
    )
