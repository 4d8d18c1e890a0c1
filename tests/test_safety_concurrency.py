"""One writer per stage, stale locks, workers that die with their parent, temporaries of killed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doppel.demo import astronaut, moving_frames, write_clip
from doppel.errors import DoppelError
from doppel.workspace.lock import stage_lock
from tests.safety import copy_workspace, one_line_error, run, tree_hash


@pytest.fixture
def ws(merged_pair: Path, tmp_path: Path) -> Path:
    return copy_workspace(merged_pair, tmp_path / "ws")


def _hold_lock(ws: Path, stage: str) -> subprocess.Popen[str]:
    code = ("import sys, time; from pathlib import Path; from doppel.workspace.lock import stage_lock\n"
            "with stage_lock(Path(sys.argv[1]), sys.argv[2]):\n    print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(ws), stage], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("stage", ["extract", "merge", "train", "export"])
def test_a_second_run_of_a_stage_is_busy_and_a_killed_owner_leaves_no_lock(ws: Path, tmp_path: Path,
                                                                          stage: str) -> None:
    command = {"extract": ("extract", ws, "--workers", "1"), "merge": ("merge", ws),
               "train": ("train", ws, "--iterations", "1"), "export": ("export", ws, tmp_path / "out.mp4")}[stage]
    holder = _hold_lock(ws, stage)
    try:
        before = tree_hash(ws)
        code, _, err = run(*command)
        assert code == 1 and one_line_error(err, f"busy: another `doppel {stage}` is running",
                                            f"pid {holder.pid}"), err
        assert tree_hash(ws) == before and not (tmp_path / "out.mp4").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The owner died without clearing the file: the lock is stale and the next run takes it over.
    assert (ws / "locks" / f"{stage}.lock").stat().st_size > 0
    with stage_lock(ws, stage) as stale:
        assert stale
    assert (ws / "locks" / f"{stage}.lock").stat().st_size == 0
    if stage in ("merge", "export"):
        code, _, err = run(*command)
        assert code == 0, err


def test_the_lock_is_per_stage(ws: Path) -> None:
    with stage_lock(ws, "merge"), stage_lock(ws, "export"), pytest.raises(DoppelError, match="busy"), \
            stage_lock(ws, "merge"):
        pass


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker processes")
def test_extract_workers_exit_with_their_parent_after_kill_9(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    clip = write_clip(tmp_path / "astro.mp4", moving_frames(astronaut(), frames=120, size=(192, 192), seed=1),
                      tone_hz=None)
    assert run("init", ws)[0] == 0 and run("add", ws, "--source", clip)[0] == 0
    parent = subprocess.Popen([sys.executable, "-m", "doppel", "extract", str(ws), "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = _children(parent.pid)
        assert len(workers) >= 2, "the worker processes did not start"
        time.sleep(2)  # let them load their models and take work
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers {left} outlived their killed parent by more than 5 s"
    # ... and the next run cleans up after it and finishes the job.
    code, _, err = run("extract", ws, "--workers", "1")
    assert code == 0, err
    assert not [p for p in (ws / "faces").rglob(".*") if ".part" in p.name]


def test_temporary_files_of_killed_runs_are_removed_by_the_next_run(ws: Path) -> None:
    leftovers = [ws / "renders" / ".000003.png.part", ws / "renders" / "layers" / ".000003_1_2.png.part",
                 ws / "models" / "main" / "checkpoints" / ".step-00000009.tmp" / "model.safetensors"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half-written")
    keep = ws / "renders" / "notes.part.txt"  # not hidden: not doppel's temporary naming
    keep.write_text("keep")
    code, _, err = run("merge", ws)
    assert code == 0, err
    assert not leftovers[0].exists() and not leftovers[1].exists() and keep.exists()
    code, _, err = run("train", ws, "--iterations", "1")
    assert code == 0, err
    assert not leftovers[2].parent.exists()
