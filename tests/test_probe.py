from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from doppel.errors import DoppelError
from doppel.media import MediaReader, probe
from tests.mediagen import coded_frame, make_video, read_code


def test_constant_rate_video_with_audio(tmp_path: Path) -> None:
    written = make_video(tmp_path / "cfr.mp4", frames=30, fps=25, audio=True)
    info = probe(tmp_path / "cfr.mp4")
    assert (info.kind, info.codec, info.width, info.height, info.pix_fmt) == ("video", "h264", 96, 64, "yuv420p")
    assert info.frame_count == 30
    assert info.fps == Fraction(25)
    assert [p * info.time_base for p in info.pts] == [Fraction(i, 25) for i in range(30)]
    assert not info.variable_frame_rate
    assert info.rotation == 0
    assert len(info.audio) == 1
    a = info.audio[0]
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 1)
    assert a.packets == len(written["audio_packets"])
    assert info.duration_s == pytest.approx(30 / 25)


def test_video_without_audio_has_no_audio_streams(tmp_path: Path) -> None:
    make_video(tmp_path / "silent.mp4", frames=5)
    assert probe(tmp_path / "silent.mp4").audio == ()


def test_variable_frame_rate_timestamps_survive(tmp_path: Path) -> None:
    times = [0, 40, 80, 200, 240, 400, 440, 700, 710, 1000]
    make_video(tmp_path / "vfr.mp4", pts_ms=times)
    info = probe(tmp_path / "vfr.mp4")
    assert info.frame_count == len(times)
    assert [(p - info.pts[0]) * info.time_base for p in info.pts] == [Fraction(t, 1000) for t in times]
    assert info.variable_frame_rate


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    make_video(tmp_path / "rot.mp4", frames=4, size=(96, 64), rotation=90)
    info = probe(tmp_path / "rot.mp4")
    assert info.rotation == 90
    assert (info.width, info.height) == (64, 96)
    with MediaReader(info) as reader:
        frame = reader[2]
    assert frame.shape == (96, 64, 3)
    # The red marker sat bottom-left of the stored frame; a 90 degree counter-clockwise turn puts it bottom-right.
    expected = np.rot90(coded_frame(2), 1)
    assert np.abs(frame.astype(int) - expected.astype(int)).mean() < 8
    assert frame[-8:, -8:, 0].mean() > 200 and frame[-8:, :8, 0].mean() < 120


def test_still_image(tmp_path: Path) -> None:
    Image.fromarray(coded_frame(5, 40, 30)).save(tmp_path / "still.png")
    info = probe(tmp_path / "still.png")
    assert (info.kind, info.width, info.height, info.frame_count) == ("image", 40, 30, 1)


def test_exif_orientation_of_a_photo(tmp_path: Path) -> None:
    img = Image.fromarray(coded_frame(1, 40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    img.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    info = probe(tmp_path / "phone.jpg")
    assert (info.width, info.height, info.rotation) == (30, 40, -90)
    with MediaReader(info) as reader:
        assert reader[0].shape == (40, 30, 3)


def test_image_sequence_is_naturally_ordered(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10, 9):
        Image.fromarray(coded_frame(i)).save(folder / f"frame{i}.png")
    (folder / "notes.txt").write_text("ignored")
    info = probe(folder, fps=Fraction(24000, 1001))
    assert info.kind == "sequence"
    assert info.files == ("frame1.png", "frame2.png", "frame9.png", "frame10.png")
    assert info.fps == Fraction(24000, 1001) and info.frame_count == 4
    with MediaReader(info) as reader:
        assert [read_code(f.image) for f in reader] == [1, 2, 9, 10]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: _write(d / "text.mp4", b"this is not a video\n" * 50), "not a video or image"),
        (lambda d: _write(d / "fake.png", b"not a png at all"), "not an image"),
        (lambda d: _truncated(d), "truncated or corrupt"),
        (lambda d: _zeroed(d), "no decodable video frames"),
        (lambda d: _audio_only(d), "no video stream"),
        (lambda d: _empty_dir(d), "holds no images"),
    ],
    ids=["missing", "text-as-mp4", "not-an-image", "truncated", "zero-decodable", "audio-only", "empty-folder"],
)
def test_bad_input_is_a_clear_error_naming_the_file(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(DoppelError) as err:
        probe(path)
    assert message in str(err.value)
    assert str(path.resolve()) in str(err.value)
    assert "\n" not in str(err.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(d: Path) -> Path:
    make_video(d / "full.mp4", frames=50, faststart=True)
    data = (d / "full.mp4").read_bytes()
    mdat = data.find(b"mdat")  # cut half-way through the frame data
    return _write(d / "cut.mp4", data[: mdat + (len(data) - mdat) // 2])


def _zeroed(d: Path) -> Path:
    make_video(d / "full.mp4", frames=10, faststart=True)
    data = bytearray((d / "full.mp4").read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    return _write(d / "zeroed.mp4", bytes(data))


def _audio_only(d: Path) -> Path:
    import av

    with av.open(str(d / "audio.m4a"), "w") as out:
        s = out.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for p in [*s.encode(frame), *s.encode(None)]:
            out.mux(p)
    return d / "audio.m4a"


def _empty_dir(d: Path) -> Path:
    (d / "empty").mkdir()
    return d / "empty"
