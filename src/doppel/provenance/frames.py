"""Reading whatever frames a (possibly damaged) file still holds, for `verify`.

`doppel verify` must look at the frames that decode even when a file is cut short or has damaged bytes, so it
does not use the strict probe (which refuses such files). Frames come from PyAV, packet by packet, skipping
packets that fail to decode. When the container itself cannot be opened (a damaged or missing `moov`), the
raw H.264 stream is recovered from the bytes: the parameter sets from an `avcC` record and the
length-prefixed NAL units from `mdat`, fed to the decoder as an Annex B stream (timing is then unknown and
frames are counted at an assumed rate).

Every frame comes with the size in bytes of the packet that coded it (None when unknown): the detector weighs
frames by it (detect.Detector.add).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.error
import numpy as np

ASSUMED_FPS = 30.0


@dataclass
class DecodeLog:
    """What reading the file was like."""

    method: str = "container"
    """`container` (PyAV demuxing), `raw-h264` (stream recovered from the bytes) or `none`."""
    frames: int = 0
    errors: int = 0
    """Packets or units that failed to decode (skipped)."""
    duration_s: float | None = None
    """The duration the container states, when it states one."""
    frames_stated: int = 0
    """Frames the container says it holds (0: unknown)."""
    width: int = 0
    height: int = 0
    notes: list[str] = field(default_factory=list)


def container_duration(path: Path) -> float | None:
    """The duration a video file states, in seconds, or None when it cannot be opened or states none."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            s = c.streams.video[0]
            if s.duration and s.time_base:
                return float(s.duration * s.time_base)
            return float(c.duration) / 1e6 if c.duration else None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        return None


Frame = tuple[float, np.ndarray, "int | None"]
"""(time in seconds, HxW uint8 luma, bytes of the packet that coded the frame or None)."""


class PacketSizes:
    """Each packet's bytes, noted by its pts as it is demuxed and taken back for the frame the decoder hands out
    with that pts (frames come out reordered, and later than their packets)."""

    def __init__(self) -> None:
        self._bytes: dict[int, int] = {}

    def note(self, packet: av.Packet) -> None:
        if packet.pts is not None and packet.size:
            self._bytes[packet.pts] = packet.size

    def take(self, frame: av.VideoFrame) -> int | None:
        return self._bytes.pop(frame.pts, None) if frame.pts is not None else None


def gray_frames(path: Path, log: DecodeLog, want: Callable[[float], bool] | None = None) -> Iterator[Frame]:
    """Yield (time in seconds from the first frame, HxW uint8 luma, coded bytes) for every frame of `path` that
    decodes, in order (only those at times `want` accepts; the others are decoded and counted, not converted)."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        log.notes.append(f"the container cannot be opened ({type(exc).__name__}): recovering the raw stream")
        yield from _raw_h264(path, log)
        return
    with container:
        if not container.streams.video:
            log.method = "none"
            log.notes.append("no video stream")
            return
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        log.frames_stated = int(stream.frames or 0)
        first: float | None = None
        index = 0
        sizes = PacketSizes()
        try:
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError:
                    log.errors += 1
                    log.notes.append("demuxing stopped at a damaged or missing part of the file")
                    break
                sizes.note(packet)
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    log.errors += 1
                    continue
                for frame in decoded:
                    t = frame.time if frame.time is not None else index / ASSUMED_FPS
                    first = t if first is None else first
                    index += 1
                    log.frames += 1
                    log.width, log.height = frame.width, frame.height
                    size = sizes.take(frame)
                    if want is None or want(t - first):
                        yield t - first, frame.to_ndarray(format="gray"), size
        except av.error.FFmpegError:
            log.errors += 1
    if log.frames == 0:
        log.notes.append("no frame decoded from the container: recovering the raw stream")
        log.method = "raw-h264"
        yield from _raw_h264(path, log)


def gray_frames_at(path: Path, starts: list[float], length: float, log: DecodeLog) -> Iterator[Frame]:
    """Yield (time in seconds from the stream's start, HxW uint8 luma, coded bytes) for the frames in
    [start, start + length) of each of `starts`, seeking to each (for long files, instead of decoding all of
    them)."""
    log.method = "container, sampled by seeking"
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        return
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        log.frames_stated = int(stream.frames or 0)
        base = stream.time_base or 1
        origin = float(stream.start_time * base) if stream.start_time is not None else 0.0
        for start in starts:
            sizes = PacketSizes()
            try:
                container.seek(int((start + origin) / base), stream=stream, backward=True, any_frame=False)
                for frame in _decoded(container, stream, sizes):
                    if frame.time is None:
                        continue
                    t = frame.time - origin
                    if t >= start + length:
                        break
                    if t >= start:
                        log.frames += 1
                        log.width, log.height = frame.width, frame.height
                        yield t, frame.to_ndarray(format="gray"), sizes.take(frame)
            except av.error.FFmpegError:
                log.errors += 1


def _decoded(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
             sizes: PacketSizes) -> Iterator[av.VideoFrame]:
    """Decode `stream` from where the container stands, noting each packet's bytes in `sizes`."""
    for packet in container.demux(stream):
        sizes.note(packet)
        yield from packet.decode()


def _parameter_sets(data: bytes) -> list[bytes]:
    """SPS and PPS NAL units from the first `avcC` record in `data` (empty when none is intact)."""
    at = data.find(b"avcC")
    if at < 0 or at + 10 > len(data):
        return []
    p = at + 4 + 5
    units = []
    try:
        count = data[p] & 0x1F
        p += 1
        for _ in range(count):
            (n,) = struct.unpack(">H", data[p:p + 2])
            units.append(data[p + 2:p + 2 + n])
            p += 2 + n
        count = data[p]
        p += 1
        for _ in range(count):
            (n,) = struct.unpack(">H", data[p:p + 2])
            units.append(data[p + 2:p + 2 + n])
            p += 2 + n
    except (IndexError, struct.error):
        return []
    return [u for u in units if u]


def _nal_units(data: bytes) -> Iterator[bytes]:
    """Length-prefixed (4-byte) NAL units from the payload of the first `mdat` box, until one is implausible."""
    at = data.find(b"mdat")
    if at < 4:
        return
    p = at + 4
    while p + 4 <= len(data):
        (n,) = struct.unpack(">I", data[p:p + 4])
        if n == 0 or n > len(data) - p - 4 or data[p + 4] & 0x80:  # forbidden_zero_bit set: not a NAL unit
            return
        yield data[p + 4:p + 4 + n]
        p += 4 + n


def _raw_h264(path: Path, log: DecodeLog) -> Iterator[Frame]:
    log.method = "raw-h264"
    data = Path(path).read_bytes()
    sets = _parameter_sets(data)
    if not sets:
        log.method = "none"
        log.notes.append("no intact H.264 parameter sets (avcC) in the file: its frames cannot be decoded")
        return
    codec = av.CodecContext.create("h264", "r")
    start = b"\x00\x00\x00\x01"
    stream = b"".join(start + u for u in sets)
    index = 0
    sizes = PacketSizes()  # packets numbered in decoding order: the decoder hands the number to the frame
    numbered = 0
    chunks = [stream] + [start + u for u in _nal_units(data)] + [b""]
    for chunk in chunks:
        try:
            packets = codec.parse(chunk) if chunk else [None]
        except av.error.FFmpegError:
            log.errors += 1
            continue
        for packet in packets:
            if packet is not None:
                packet.pts = numbered
                numbered += 1
                sizes.note(packet)
            try:
                frames = codec.decode(packet)
            except av.error.FFmpegError:
                log.errors += 1
                continue
            for frame in frames:
                img = frame.to_ndarray(format="gray")
                log.height, log.width = img.shape[:2]
                log.frames += 1
                yield index / ASSUMED_FPS, img, sizes.take(frame)
                index += 1
    if log.frames:
        log.notes.append(f"timing unknown without the container: frames counted at {ASSUMED_FPS:g} per second")
