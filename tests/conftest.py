from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import CLIPS, clip

if TYPE_CHECKING:
    from doppel.studio.backend import Backend


@pytest.fixture
def clips() -> Path:
    if not CLIPS.is_dir():
        pytest.skip("development footage (../shared/data) not present")
    return CLIPS


@pytest.fixture(scope="session")
def extracted_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with a short astronaut clip as source and Grace Hopper as target, extracted.

    Shared by the tests that need faces (training, merging); copy it before changing it."""
    from click.testing import CliRunner

    from doppel.cli import cli
    from doppel.demo import astronaut, grace_hopper

    root = tmp_path_factory.mktemp("pair")
    src = clip(root / "astro.mp4", astronaut(), 16, seed=1)
    dst = clip(root / "hopper.mp4", grace_hopper(), 16, seed=2, tone_hz=220.0)
    runner = CliRunner()
    ws = root / "ws"
    for args in (["init", ws], ["add", ws, "--source", src], ["add", ws, "--target", dst],
                 ["extract", ws, "--workers", "1"]):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    return ws


@pytest.fixture(scope="session")
def trained_pair(extracted_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`extracted_pair` with a tiny model trained for a few steps (enough to merge and export)."""
    import shutil

    from click.testing import CliRunner

    from doppel.cli import cli

    ws = tmp_path_factory.mktemp("trained") / "ws"
    shutil.copytree(extracted_pair, ws)
    result = CliRunner().invoke(cli, ["train", str(ws), "--preset", "tiny-64", "--iterations", "3"])
    assert result.exit_code == 0, result.output
    return ws


@pytest.fixture(scope="session")
def merged_pair(trained_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`trained_pair` merged (every frame rendered), for the studio's tests; copy it before changing it.
    The mask is the landmark polygon: a model trained for 3 steps has not learned a mask yet."""
    import shutil

    from click.testing import CliRunner

    from doppel.cli import cli

    ws = tmp_path_factory.mktemp("merged") / "ws"
    shutil.copytree(trained_pair, ws)
    toml = ws / "doppel.toml"
    toml.write_text(toml.read_text().replace('mask = "intersect"', 'mask = "landmarks"'))
    result = CliRunner().invoke(cli, ["merge", str(ws), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return ws


@pytest.fixture
def backend(merged_pair: Path, tmp_path: Path) -> Iterator[Backend]:
    """The studio's backend (no server) on a copy of `merged_pair`, its render plan computed."""
    import shutil

    from doppel.studio.backend import Backend

    ws = tmp_path / "ws"
    shutil.copytree(merged_pair, ws)
    b = Backend(ws)
    b.ensure_plan()
    yield b
    b.close()
