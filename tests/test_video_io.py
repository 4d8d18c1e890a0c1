from __future__ import annotations

import os
import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from doppel.errors import DoppelError
from doppel.media import MediaReader, VideoWriter, probe
from tests.mediagen import audio_payloads, coded_frame, make_video, read_code


def test_sequential_decode_yields_every_frame_in_order(tmp_path: Path) -> None:
    make_video(tmp_path / "v.mp4", frames=40)
    info = probe(tmp_path / "v.mp4")
    with MediaReader(info) as reader:
        frames = list(reader)
    assert [read_code(f.image) for f in frames] == list(range(40))
    assert [f.time_s for f in frames] == pytest.approx([i / 25 for i in range(40)])


@pytest.mark.parametrize("pts_ms", [None, [0, 33, 70, 100, 180, 181, 300, 333, 500, 520] * 1],
                         ids=["cfr-bframes", "vfr"])
def test_random_access_returns_the_exact_frame(tmp_path: Path, pts_ms: list[int] | None) -> None:
    if pts_ms is None:
        make_video(tmp_path / "v.mp4", frames=120)  # libx264 defaults: B-frames, keyframe every 250
    else:
        times = [t + 600 * k for k in range(12) for t in pts_ms]
        make_video(tmp_path / "v.mp4", pts_ms=times)
    info = probe(tmp_path / "v.mp4")
    order = list(range(info.frame_count))
    random.Random(7).shuffle(order)
    with MediaReader(info) as reader:
        got = {i: read_code(reader[i]) for i in order[:60] + [0, info.frame_count - 1, 5, 4, 3]}
    assert all(code == i for i, code in got.items()), {i: c for i, c in got.items() if c != i}


def test_roundtrip_keeps_frames_timestamps_and_audio(tmp_path: Path) -> None:
    times = [0, 40, 80, 120, 200, 240, 360, 400, 440, 480, 560, 600]
    written = make_video(tmp_path / "in.mp4", pts_ms=times, audio=True)
    info = probe(tmp_path / "in.mp4")
    with MediaReader(info) as reader, VideoWriter(
        tmp_path / "out.mp4", width=info.width, height=info.height, time_base=info.time_base, fps=info.fps,
        audio_from=tmp_path / "in.mp4",
    ) as writer:
        for frame in reader:
            writer.write(frame.image, frame.pts)
    again = probe(tmp_path / "out.mp4")
    assert again.frame_count == info.frame_count
    tick = float(info.time_base)
    got = [float((p - again.pts[0]) * again.time_base) for p in again.pts]
    assert np.allclose(got, [t / 1000 for t in times], atol=tick)
    assert audio_payloads(tmp_path / "out.mp4") == written["audio_packets"]
    with MediaReader(again) as reader:
        assert [read_code(f.image) for f in reader] == list(range(len(times)))


def test_ffv1_is_lossless(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(5)]
    with VideoWriter(tmp_path / "out.mkv", width=64, height=48, time_base=Fraction(1, 24), fps=Fraction(24),
                     codec="ffv1") as writer:
        for i, img in enumerate(images):
            writer.write(img, i)
    with MediaReader(probe(tmp_path / "out.mkv")) as reader:
        decoded = [f.image for f in reader]
    assert len(decoded) == 5
    assert all(np.array_equal(a, b) for a, b in zip(images, decoded, strict=True))


def test_png_sequence_output(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "seq", width=96, height=64, time_base=Fraction(1, 1000), fps=Fraction(25),
                     codec="png") as writer:
        for i in range(3):
            writer.write(coded_frame(i), i * 40)
    info = probe(tmp_path / "seq")
    assert info.files == ("000000.png", "000001.png", "000002.png")
    with MediaReader(info) as reader:
        assert [read_code(f.image) for f in reader] == [0, 1, 2]
        assert np.array_equal(reader[1], coded_frame(1))


def test_odd_sized_h264_is_padded_not_rejected(tmp_path: Path) -> None:
    tb = Fraction(1, 25)
    with VideoWriter(tmp_path / "odd.mp4", width=95, height=63, time_base=tb, fps=Fraction(25)) as w:
        for i in range(3):
            w.write(coded_frame(i, 95, 63), i)
    info = probe(tmp_path / "odd.mp4")
    assert (info.width, info.height, info.frame_count) == (96, 64, 3)


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(DoppelError, match="expected"), VideoWriter(
        tmp_path / "out.mp4", width=96, height=64, time_base=Fraction(1, 25), fps=Fraction(25)
    ) as writer:
        writer.write(coded_frame(0), 0)
        writer.write(np.zeros((10, 10, 3), np.uint8), 1)
    assert os.listdir(tmp_path) == []


def test_timestamps_must_increase(tmp_path: Path) -> None:
    with pytest.raises(DoppelError, match="increase"), VideoWriter(
        tmp_path / "out.mp4", width=96, height=64, time_base=Fraction(1, 25), fps=Fraction(25)
    ) as writer:
        writer.write(coded_frame(0), 3)
        writer.write(coded_frame(1), 3)
    assert not (tmp_path / "out.mp4").exists()
