"""What people and platforms do to video, as edits of a list of frames: for the watermark's tests
(tests/test_watermark.py) and its benchmark (benchmarks/bench_provenance.py, through benchmarks/common.py).

Every frame is HxWx3 uint8 RGB; an `Edit` takes a list of frames and returns a new list (of other sizes, or
another length, where the edit says so). Test code, not library code: doppel itself never does these."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from doppel.provenance.frames import PacketSizes

Frames = list[np.ndarray]
Edit = Callable[[Frames], Frames]


class Decoded(list):  # type: ignore[type-arg]
    """Frames decoded from an encode, with the size in bytes of the packet that coded each one (`coded`), as
    `doppel verify` reads it from a file (provenance.frames). Any later edit returns a plain list."""

    coded: list[int | None]


def encode(frames: Frames, codec: str = "libx264", options: dict[str, str] | None = None,
           bit_rate: int | None = None, fps: int = 30) -> Frames:
    """Encode (x264 at its default preset, medium, or VP9) and decode again; odd sizes lose their last row or
    column (yuv420p). Returns `Decoded` frames."""
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("x.mp4" if codec == "libx264" else "x.webm")
        with av.open(str(path), "w") as out:
            s = out.add_stream(codec, rate=fps, options=options or {})
            s.width, s.height, s.pix_fmt = w // 2 * 2, h // 2 * 2, "yuv420p"
            if bit_rate:
                s.bit_rate = bit_rate
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: s.height, : s.width]), format="rgb24")
                vf.pts = i
                for p in s.encode(vf):
                    out.mux(p)
            for p in s.encode(None):
                out.mux(p)
        frames_out = Decoded()
        frames_out.coded = []
        sizes = PacketSizes()  # as `doppel verify` reads them
        with av.open(str(path)) as inp:
            for packet in inp.demux(video=0):
                sizes.note(packet)
                for f in packet.decode():
                    frames_out.append(f.to_ndarray(format="rgb24"))
                    frames_out.coded.append(sizes.take(f))
        return frames_out


def crf(q: int) -> Edit:
    """An H.264 re-encode at CRF `q`."""
    return lambda fr: encode(fr, options={"crf": str(q)})


def vp9(fr: Frames) -> Frames:
    """A VP9 re-encode at 500 kbit/s (realtime, fastest), as a web upload might be."""
    return encode(fr, "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}, 500_000)


def scale(sx: float, sy: float | None = None) -> Edit:
    """Resize by `sx` across and `sy` (default `sx`) down: area averaging to shrink, bicubic to enlarge."""
    def run(fr: Frames) -> Frames:
        h, w = fr[0].shape[:2]
        size = (max(2, round(w * sx)), max(2, round(h * (sy or sx))))
        interp = cv2.INTER_AREA if sx < 1 else cv2.INTER_CUBIC
        return [cv2.resize(f, size, interpolation=interp) for f in fr]
    return run


def rotate(degrees: float, interpolation: int = cv2.INTER_CUBIC) -> Edit:
    """Turn about the centre by `degrees` counter-clockwise (OpenCV's sense), keeping the frame's size."""
    def run(fr: Frames) -> Frames:
        h, w = fr[0].shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        return [cv2.warpAffine(f, m, (w, h), flags=interpolation) for f in fr]
    return run


def crop(top: float, left: float, right: float = 0.0, back: bool = False) -> Edit:
    """Cut `top` of the height off the top and `left` / `right` of the width off the sides (shares in [0, 1));
    with `back`, resize what is left back to the full size (bicubic)."""
    def run(fr: Frames) -> Frames:
        h, w = fr[0].shape[:2]
        out = [f[int(h * top):, int(w * left): w - int(w * right)] for f in fr]
        return [cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in out] if back else out
    return run


def chain(*edits: Edit) -> Edit:
    """The edits one after another."""
    def run(fr: Frames) -> Frames:
        for e in edits:
            fr = e(fr)
        return fr
    return run


def mirror(fr: Frames) -> Frames:
    """Flip left to right."""
    return [np.ascontiguousarray(f[:, ::-1]) for f in fr]


def blur(sigma: float) -> Edit:
    """A Gaussian blur of standard deviation `sigma` pixels."""
    return lambda fr: [cv2.GaussianBlur(f, (0, 0), sigma) for f in fr]


def tone(gamma: float = 1.0, gain: float = 1.0, offset: float = 0.0) -> Edit:
    """Grade every value v in [0, 255] to 255 * (v / 255) ** gamma * gain + offset, clipped and truncated."""
    lut = np.clip(255 * (np.arange(256) / 255.0) ** gamma * gain + offset, 0, 255).astype(np.uint8)
    return lambda fr: [cv2.LUT(f, lut) for f in fr]


def to_24fps(fr: Frames) -> Frames:
    """30 frames/s shown at 24: every fifth frame dropped."""
    return [fr[int(i * 30 / 24)] for i in range(len(fr) * 24 // 30)]


def duplicate(fr: Frames) -> Frames:
    """Every fourth frame shown twice (a frame-rate conversion that repeats frames)."""
    return [f for i, f in enumerate(fr) for _ in range(2 if i % 4 == 0 else 1)]
