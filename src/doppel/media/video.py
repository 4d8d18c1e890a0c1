"""Upright frame access for every kind of media: sequential decode and random access by frame index.

Frames are identified by their presentation timestamp (from the probe), so random access is exact even
with B-frames and variable frame rates: seek to the keyframe at or before the wanted timestamp, then
decode forward until that timestamp comes out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from PIL import Image, ImageOps

from doppel.errors import DoppelError
from doppel.media.probe import MAX_PIXELS, MediaInfo, check_pixels

# Decoding forward this many frames is cheaper than a seek (a seek restarts at a keyframe anyway).
_FORWARD_WINDOW = 48


@dataclass(frozen=True)
class DecodedFrame:
    """One upright frame. `image` is HxWx3 uint8 RGB in [0, 255]."""

    index: int
    pts: int
    time_s: float
    image: np.ndarray


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a counter-clockwise display rotation (degrees, multiple of 90) to an HxWxC image."""
    k = (int(rotation) // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def to_rgb8(im: Image.Image) -> np.ndarray:
    """HxWx3 uint8 RGB of any Pillow image. 16-bit and 32-bit greyscale (16-bit PNG, TIFF) are scaled down to
    8 bits rather than clipped (Pillow's convert("RGB") clips them, leaving an almost white picture)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode == "F" and a.size and float(np.nanmax(a)) <= 1.0:
            a = a * 255.0
        elif im.mode.startswith("I;16") or (a.size and float(np.nanmax(a)) > 255):
            a = a / 257.0
        grey = np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    return np.asarray(im.convert("RGB"))


def load_image(path: Path) -> np.ndarray:
    """Read an image file upright (EXIF orientation applied) as HxWx3 uint8 RGB in [0, 255]."""
    try:
        with Image.open(path) as im:
            check_pixels(im.width, im.height, Path(path))
            return to_rgb8(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise DoppelError(f"picture is larger than doppel reads ({MAX_PIXELS / 1e6:.0f} megapixels at most): a "
                          "decompression bomb or a damaged header", path) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DoppelError("cannot read image", path) from exc


class MediaReader:
    """Read frames of a probed media item; use as a context manager.

    `len(reader)` is the frame count; `reader[i]` returns frame i; iterating yields every frame in order.
    """

    def __init__(self, info: MediaInfo) -> None:
        self.info = info
        self._pts = list(info.pts)
        self._index_of = {p: i for i, p in enumerate(self._pts)}
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._next_index = 0  # index of the frame the live decoder yields next

    def __len__(self) -> int:
        return len(self._pts)

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None

    def time_of(self, index: int) -> float:
        return float((self._pts[index] - self._pts[0]) * self.info.time_base)

    def __iter__(self) -> Iterator[DecodedFrame]:
        for i in range(len(self)):
            yield self._frame(i, self[i])

    def frames(self, indices: Sequence[int]) -> Iterator[DecodedFrame]:
        for i in indices:
            yield self._frame(i, self[i])

    def _frame(self, index: int, image: np.ndarray) -> DecodedFrame:
        return DecodedFrame(index, self._pts[index], self.time_of(index), image)

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range (0..{len(self) - 1})")
        if self.info.kind == "image":
            return load_image(Path(self.info.path))
        if self.info.kind == "sequence":
            return load_image(Path(self.info.path) / self.info.files[index])
        return self._video_frame(index)

    # -- video -------------------------------------------------------------------------------------------
    def _open(self) -> av.container.InputContainer:
        if self._container is None:
            try:
                self._container = av.open(self.info.path)
            except av.error.FFmpegError as exc:
                raise DoppelError("cannot open video", self.info.path) from exc
            self._container.streams.video[0].thread_type = "AUTO"
        return self._container

    def _restart_at(self, index: int) -> None:
        container = self._open()
        stream = container.streams.video[0]
        if index == 0:
            container.seek(0, stream=stream, backward=True, any_frame=False)
        else:
            container.seek(self._pts[index], stream=stream, backward=True, any_frame=False)
        self._frames = iter(container.decode(stream))
        self._next_index = -1  # unknown until a frame comes out

    def _video_frame(self, index: int) -> np.ndarray:
        target = self._pts[index]
        if self._frames is None or not (0 <= self._next_index <= index < self._next_index + _FORWARD_WINDOW):
            self._restart_at(index)
        back_off = 0
        while True:
            assert self._frames is not None
            try:
                frame = next(self._frames)
            except (StopIteration, av.error.FFmpegError) as exc:
                raise DoppelError(f"frame {index} could not be decoded", self.info.path) from exc
            pts = frame.pts if frame.pts is not None else target
            self._next_index = self._index_of.get(pts, self._next_index) + 1
            if pts == target:
                img = frame.to_ndarray(format="rgb24")
                return upright(img, int(frame.rotation or 0))
            if pts > target:
                # The seek landed after the wanted frame (open GOP, inexact index): go further back.
                back_off = back_off * 2 or 8
                self._restart_at(max(0, index - back_off))
                if back_off > len(self._pts):
                    raise DoppelError(f"frame {index} (pts {target}) never came out of the decoder",
                                      self.info.path)


def open_media(info: MediaInfo) -> MediaReader:
    return MediaReader(info)


def frame_times(info: MediaInfo) -> list[Fraction]:
    """Presentation time of every frame relative to the first, exact."""
    return [(p - info.pts[0]) * info.time_base for p in info.pts]
