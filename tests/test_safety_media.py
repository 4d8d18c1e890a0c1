"""Hostile and damaged media: each is refused with one line, a non-zero exit and the workspace unchanged."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from doppel.demo import astronaut, moving_frames, write_clip
from doppel.media.video import load_image
from tests.mediagen import make_video
from tests.safety import one_line_error, run, tree_hash


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    assert run("init", tmp_path / "ws")[0] == 0
    return tmp_path / "ws"


def _cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real `doppel` in a subprocess, for inputs that could hang: a hang fails the test, never blocks it."""
    return subprocess.run([sys.executable, "-m", "doppel", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_a_fifo_named_mp4_is_refused_without_blocking(ws: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "plate.mp4"
    os.mkfifo(fifo)
    before = tree_hash(ws)
    for args in (("add", ws, "--target", fifo), ("add", ws, "--source", fifo), ("verify", fifo)):
        result = _cli(*args, timeout=60)
        assert result.returncode == 1, result.stderr
        assert one_line_error(result.stderr, str(fifo), "not a regular file"), result.stderr
    assert tree_hash(ws) == before


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A valid 8x8 PNG whose header then claims `width` x `height` (CRC fixed, so only the size is a lie)."""
    Image.new("RGB", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 12  # 8-byte signature, 4-byte length, then b"IHDR"
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    path.write_bytes(bytes(data))
    return path


def test_decompression_bombs_are_refused_before_decoding(ws: Path, tmp_path: Path) -> None:
    claim = _png_claiming(tmp_path / "claims_60000.png", 60000, 60000)
    big = tmp_path / "big_14000.png"
    Image.new("1", (14000, 14000)).save(big)  # a real 196-megapixel image, a few kB on disk
    before = tree_hash(ws)
    for image in (claim, big):
        code, _, err = run("add", ws, "--source", image)
        assert code == 1 and one_line_error(err, str(image), "megapixels"), err
        code, _, err = run("extract", ws, "--reference", image)
        assert code == 1 and one_line_error(err), err
    assert tree_hash(ws) == before


def test_symlink_loops_and_init_under_a_file_are_one_line_errors(ws: Path, tmp_path: Path) -> None:
    loop_a, loop_b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    before = tree_hash(ws)
    for args in (("add", ws, "--source", loop_a), ("verify", loop_a), ("init", loop_a), ("info", loop_a)):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "a.mp4"), (args, err)
    assert tree_hash(ws) == before
    (tmp_path / "file").write_text("not a folder")
    code, _, err = run("init", tmp_path / "file" / "ws")
    assert code == 1 and one_line_error(err, "cannot create the workspace here"), err
    assert (tmp_path / "file").read_text() == "not a folder"


def test_a_16_bit_png_loads_at_its_true_brightness(tmp_path: Path) -> None:
    grey8 = np.asarray(Image.fromarray(astronaut()).convert("L"))
    path16 = tmp_path / "grey16.png"
    Image.fromarray(grey8.astype(np.uint16) * 257).save(path16)
    assert Image.open(path16).mode.startswith("I")
    loaded = load_image(path16)
    assert loaded.shape == (*grey8.shape, 3) and loaded.dtype == np.uint8
    assert np.abs(loaded[..., 0].astype(int) - grey8).max() <= 1  # not clipped to white
    from doppel.extract.analyze import AnalyzerConfig, FaceAnalyzer

    assert len(FaceAnalyzer(AnalyzerConfig()).analyze(loaded)) == 1


def test_a_45_degree_display_matrix_is_refused(ws: Path, tmp_path: Path) -> None:
    make_video(tmp_path / "tilted.mp4", frames=5, rotation=45)
    make_video(tmp_path / "upright.mp4", frames=5, rotation=90)
    before = tree_hash(ws)
    code, _, err = run("add", ws, "--target", tmp_path / "tilted.mp4")
    assert code == 1 and one_line_error(err, "tilted.mp4", "display rotation of 45 degrees"), err
    assert tree_hash(ws) == before
    assert run("add", ws, "--target", tmp_path / "upright.mp4")[0] == 0


def test_an_mp4_with_damage_the_decoder_conceals_is_refused_naming_frames(ws: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", moving_frames(astronaut(), frames=30, size=(160, 160), seed=1),
                      tone_hz=None)
    damaged = tmp_path / "damaged.mp4"
    for seed in range(200):  # flipped bytes that FFmpeg conceals (every frame decodes, some flagged corrupt);
        # about 5 % of seeds do, and the clip's bytes differ from run to run (threaded x264): 40 missed at times
        data = bytearray(clip.read_bytes())
        rng = np.random.default_rng(seed)
        for i in rng.integers(int(len(data) * 0.3), int(len(data) * 0.7), 20):
            data[i] ^= 0xFF
        damaged.write_bytes(bytes(data))
        if _decodes_all_with_concealment(damaged, 30):
            break
    else:
        pytest.skip("no byte flips found that this FFmpeg conceals")
    before = tree_hash(ws)
    code, _, err = run("add", ws, "--source", damaged)
    assert code == 1 and one_line_error(err, "damaged.mp4", "decoder concealed errors in", "(frame "), err
    assert tree_hash(ws) == before


def _decodes_all_with_concealment(path: Path, frames: int) -> bool:
    import av
    import av.error

    corrupt, count = 0, 0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                count += 1
                corrupt += bool(frame.is_corrupt)
    except (av.error.FFmpegError, UnicodeDecodeError):
        return False
    return count == frames and corrupt > 0


def test_media_changed_or_moved_after_add_is_refused_before_any_stage(ws: Path, tmp_path: Path) -> None:
    plate = tmp_path / "plate.mp4"
    make_video(plate, frames=8)
    assert run("add", ws, "--target", plate)[0] == 0
    os.utime(plate, (1, 1))  # touched, same content: accepted, the new stamp remembered
    before = tree_hash(ws)
    make_video(plate, frames=9)  # overwritten with other content
    for args in (("extract", ws), ("merge", ws), ("export", ws, tmp_path / "out.mp4")):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err), (args, err)
    code, _, err = run("extract", ws)
    assert one_line_error(err, str(plate), "target media #1 changed after `doppel add`"), err
    plate.rename(tmp_path / "moved.mp4")
    code, _, err = run("extract", ws)
    assert code == 1 and one_line_error(err, str(plate), "is missing", "moved or deleted"), err
    assert tree_hash(ws) == before
    assert not (tmp_path / "out.mp4").exists()
