"""Tiny media made on the fly: every frame carries its own index as a pattern that survives compression."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 10
BLOCK = 8


def coded_frame(index: int, width: int = 96, height: int = 64) -> np.ndarray:
    """HxWx3 uint8 frame: the top row of 8x8 blocks spells `index` in binary; a white marker sits
    in the bottom-left corner so rotations can be told apart."""
    img = np.full((height, width, 3), 60, np.uint8)
    for bit in range(BITS):
        if index >> bit & 1:
            img[:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 235
    img[-16:, :16] = (250, 30, 30)
    return img


def read_code(image: np.ndarray) -> int:
    """Inverse of `coded_frame` on an upright decoded frame."""
    value = 0
    for bit in range(BITS):
        block = image[2:BLOCK - 2, bit * BLOCK + 2:(bit + 1) * BLOCK - 2]
        if block.mean() > 150:
            value |= 1 << bit
    return value


def make_video(
    path: Path,
    *,
    frames: int = 30,
    fps: int = 25,
    pts_ms: Sequence[int] | None = None,
    size: tuple[int, int] = (96, 64),
    rotation: int = 0,
    audio: bool = False,
    codec: str = "libx264",
    faststart: bool = False,
) -> dict[str, object]:
    """Write a test video; returns what was written (pts, time base, audio packet count and bytes)."""
    width, height = size
    time_base = Fraction(1, 1000) if pts_ms is not None else Fraction(1, fps)
    pts = list(pts_ms) if pts_ms is not None else list(range(frames))
    options = {"movflags": "+faststart"} if faststart else {}
    audio_packets: list[bytes] = []
    with av.open(str(path), "w", options=options) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = time_base
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        astream = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(coded_frame(i, width, height), format="rgb24")
            frame.pts, frame.time_base = p, time_base
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if astream is not None:
            duration = float(pts[-1] * time_base) + 0.1
            n = int(48000 * duration)
            tone = (0.2 * np.sin(np.arange(n) * 2 * np.pi * 440 / 48000)).astype(np.float32)
            for start in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[None, start:start + 1024]),
                                                format="fltp", layout="mono")
                af.sample_rate, af.pts = 48000, start
                for packet in astream.encode(af):
                    audio_packets.append(bytes(packet))
                    out.mux(packet)
            for packet in astream.encode(None):
                audio_packets.append(bytes(packet))
                out.mux(packet)
    return {"pts": pts, "time_base": time_base, "audio_packets": audio_packets}


def audio_payloads(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]
