"""Fuzz: hundreds of damaged inputs through add, info, extract, merge, export and verify.

Every run must end in exit code 0 (the input was fine after all), 1 with exactly one `error: ...` line
(never the CLI's "internal error" backstop), or 3 (`verify`: no marks); never a traceback or a hang (each run
is under an alarm); and after every failure the workspace must be byte-for-byte what it was. The damage is
drawn from a fixed seed (DOPPEL_FUZZ_SEED changes it) so that a failure can be replayed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from tests.mediagen import coded_frame, make_video
from tests.safety import copy_workspace, one_line_error, run, tree_hash

SEED = int(os.environ.get("DOPPEL_FUZZ_SEED", "20261127"))
TIMEOUT_S = 30


class Hang(Exception):
    pass


@contextlib.contextmanager
def alarm(seconds: int) -> Iterator[None]:
    def ring(signum: int, frame: Any) -> None:
        raise Hang(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class Campaign:
    """Runs commands and collects every breach of the rules instead of stopping at the first."""

    def __init__(self) -> None:
        self.runs = 0
        self.inputs = 0
        self.problems: list[str] = []

    def check(self, label: str, args: tuple[object, ...], ws: Path | None, allowed: tuple[int, ...] = (0, 1)
              ) -> int:
        before = tree_hash(ws) if ws is not None else None
        try:
            with alarm(TIMEOUT_S):
                code, _, err = run(*args)
        except Hang as exc:
            self.problems.append(f"{label}: {args[0]} hung ({exc})")
            return -1
        self.runs += 1
        if code not in allowed:
            self.problems.append(f"{label}: {args[0]} exit {code}: {err.strip()[:300]}")
        elif code == 1 and (not one_line_error(err) or "internal error" in err):
            self.problems.append(f"{label}: {args[0]} error is not one clear line: {err.strip()[:300]}")
        after = tree_hash(ws) if code != 0 and ws is not None else before
        if after != before:
            assert before is not None and after is not None
            changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            self.problems.append(f"{label}: {args[0]} failed (exit {code}: {err.strip()[:200]}) but changed "
                                 f"the workspace: {', '.join(changed[:5])}")
        return code


# -- damage ------------------------------------------------------------------------------------------------
def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(0, len(data))]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 24)):
        out[rng.randrange(len(out))] ^= rng.randrange(1, 256)
    return bytes(out)


def edit_header(data: bytes, rng: random.Random) -> bytes:
    """Overwrite a few bytes of the first 96 (MP4 box sizes and types, PNG IHDR, JPEG markers)."""
    out = bytearray(data)
    start = rng.randrange(0, min(96, len(out) - 4))
    size = rng.choice([1, 2, 4])
    out[start:start + size] = rng.choice([b"\xff" * size, b"\x00" * size, rng.randbytes(size)])
    return bytes(out)


def overwrite_chunk(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    n = max(1, len(out) // 10)
    start = rng.randrange(0, len(out) - n)
    out[start:start + n] = rng.randbytes(n)
    return bytes(out)


MEDIA_DAMAGE: list[Callable[[bytes, random.Random], bytes]] = [truncate, flip_bytes, edit_header, overwrite_chunk]


def originals(folder: Path) -> dict[str, bytes]:
    make_video(folder / "o.mp4", frames=8, size=(64, 48), audio=True)
    Image.fromarray(coded_frame(3, 64, 48)).save(folder / "o.png")
    Image.fromarray(coded_frame(5, 64, 48)).save(folder / "o.jpg", quality=90)
    return {s: (folder / f"o{s}").read_bytes() for s in (".mp4", ".png", ".jpg")}


TOML_VALUES = ["-8", "0", "-1", "1e309", "-1e309", "nan", "inf", "1000000000000", "3", "0.5", "2.0", "true",
               '"main"', '"../../x"', '"lossless"', '"nope"', "[1, 2]", "{ a = 1 }", '""', "40.0", "121"]
TOML_KEYS = [("ingest", "sequence_fps"), ("extract", "face_type"), ("extract", "crop_size"),
             ("extract", "min_face_px"), ("extract", "detect_threshold"), ("merge", "model"), ("merge", "swap"),
             ("merge", "mask"), ("merge", "erode"), ("merge", "feather"), ("merge", "color"),
             ("merge", "temporal_color"), ("merge", "blend"), ("merge", "sharpen"), ("merge", "grain"),
             ("merge", "source_detail"),
             ("export", "codec"), ("export", "crf"), ("nosuch", "key"), ("merge", "nosuch")]


def damage_toml(text: str, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.1:
        return text[:rng.randrange(len(text))]
    if kind < 0.15:
        return rng.randbytes(64).decode("latin-1")
    section, key = rng.choice(TOML_KEYS)
    value = rng.choice(TOML_VALUES)
    return text + f"\n[{section}]\n{key} = {value}\n" if f"[{section}]" not in text else text.replace(
        f"[{section}]\n", f"[{section}]\n{key} = {value}\n", 1)


DB_VALUES: list[Any] = [None, -1, 0, 2**62, 1e308, "garbage", b"\x00\xff\x10", "../../../etc/passwd", "/etc/passwd",
                        "{not json", "[]", "", 7]


def damage_db(ws: Path, rng: random.Random) -> str:
    """Damage the database at random: a cell, deleted rows, a dropped table, or bytes of the file."""
    kind = rng.random()
    path = ws / "doppel.db"
    if kind < 0.12:
        data = path.read_bytes()
        path.write_bytes(truncate(data, rng) if rng.random() < 0.5 else overwrite_chunk(data, rng))
        return "file bytes"
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        table = rng.choice(tables)
        if kind < 0.18:
            db.execute(f"DROP TABLE {table}")
            db.commit()
            return f"drop {table}"
        rows = [r[0] for r in db.execute(f"SELECT rowid FROM {table}")] if table != "frames" else []
        if kind < 0.3:
            db.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY random() LIMIT 3)"
                       if table != "frames" else "DELETE FROM frames WHERE idx = (SELECT MAX(idx) FROM frames)")
            db.commit()
            return f"delete from {table}"
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        for _ in range(20):
            column, value = rng.choice(columns), rng.choice(DB_VALUES)
            try:
                if table == "frames":
                    db.execute(f"UPDATE frames SET {column} = ? WHERE idx = ?", (value, rng.randrange(16)))
                elif rows:
                    db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, rng.choice(rows)))
                else:
                    continue
                db.commit()
                return f"{table}.{column} = {value!r}"
            except sqlite3.DatabaseError:
                db.rollback()
        return "nothing"
    finally:
        db.close()


# -- the campaign ------------------------------------------------------------------------------------------
def test_fuzz_damaged_inputs(merged_pair: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    c = Campaign()
    media = originals(tmp_path)
    ws = tmp_path / "media_ws"
    assert run("init", ws)[0] == 0

    # 1. Damaged MP4, PNG and JPEG files: add (as source, and the MP4s as target) and verify.
    accepted_targets: list[Path] = []
    for i in range(126):
        suffix = (".mp4", ".png", ".jpg")[i % 3]
        damage = MEDIA_DAMAGE[(i // 3) % len(MEDIA_DAMAGE)]
        path = tmp_path / f"fuzz{i:03d}{suffix}"
        path.write_bytes(damage(media[suffix], rng))
        c.inputs += 1
        label = f"media {path.name} ({damage.__name__})"
        c.check(label, ("add", ws, "--source", path), ws)
        c.check(label, ("verify", path), None, allowed=(0, 1, 3))
        if suffix == ".mp4" and not accepted_targets:
            target_ws = tmp_path / f"target_ws{i}"
            assert run("init", target_ws)[0] == 0
            if c.check(label, ("add", target_ws, "--target", path), target_ws) == 0:
                accepted_targets.append(target_ws)
    for target_ws in accepted_targets[:1]:  # a damaged plate that was accepted still extracts cleanly
        c.check("extract on an accepted plate", ("extract", target_ws, "--workers", "1"), None)

    # 2. Random doppel.toml values: every stage that reads settings.
    toml = (merged_pair / "doppel.toml").read_text()
    for i in range(50):
        case = copy_workspace(merged_pair, tmp_path / f"toml{i}")
        (case / "doppel.toml").write_text(damage_toml(toml, rng), encoding="latin-1")
        c.inputs += 1
        label = f"toml #{i}"
        code = c.check(label, ("info", case), case)
        commands: list[tuple[object, ...]] = [("export", case, tmp_path / f"toml{i}.mp4")]
        if code != 0:  # invalid settings: every stage must refuse before doing anything
            commands += [("extract", case, "--workers", "1"), ("merge", case), ("add", case, "--source",
                                                                                 tmp_path / "o.png")]
        for args in commands:
            c.check(label, args, case)
        shutil.rmtree(case)

    # 3. Random damage to doppel.db: rows, cells, tables, file bytes.
    for i in range(56):
        case = copy_workspace(merged_pair, tmp_path / f"db{i}")
        with contextlib.closing(sqlite3.connect(case / "doppel.db")) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        what = damage_db(case, rng)
        c.inputs += 1
        label = f"db #{i} ({what})"
        c.check(label, ("info", case), case)
        layers = ("--layers", tmp_path / f"db{i}_layers") if i % 3 == 1 else ()
        c.check(label, ("export", case, tmp_path / f"db{i}.mp4", *layers), case)
        c.check(label, ("merge", case) if i % 4 == 0 else ("faces", case, "--role", "target"), case)
        shutil.rmtree(case)

    assert c.inputs >= 200
    assert not c.problems, f"{len(c.problems)} problems in {c.runs} runs:\n" + "\n".join(c.problems[:40])
