"""A hostile workspace must not make doppel read or write outside it (stored paths, links, names)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doppel.errors import DoppelError
from doppel.workspace.paths import inside, subdir
from tests.safety import copy_workspace, one_line_error, run, sql, tree_hash


def test_inside_refuses_every_way_out(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "faces").mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(b"outside")
    (root / "faces" / "link.png").symlink_to(tmp_path / "secret.png")
    (root / "out").symlink_to(tmp_path)
    assert inside(root, "faces/a.png") == (root / "faces" / "a.png").resolve()
    for stored in ("../secret.png", str(tmp_path / "secret.png"), "faces/../../secret.png", "faces/link.png",
                   "out/secret.png", "out", ""):
        with pytest.raises(DoppelError):
            inside(root, stored)
    with pytest.raises(DoppelError, match="leads outside the workspace"):
        subdir(root, "out")


@pytest.fixture
def ws(merged_pair: Path, tmp_path: Path) -> Path:
    return copy_workspace(merged_pair, tmp_path / "ws")


@pytest.mark.parametrize("stored", ["../outside.png", "ABSOLUTE"])
def test_render_paths_outside_the_workspace_are_never_read(ws: Path, tmp_path: Path, stored: str) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"not yours")
    stored = str(outside) if stored == "ABSOLUTE" else stored
    frame = sql(ws, "SELECT frame_idx FROM renders WHERE path IS NOT NULL LIMIT 1")[0][0]
    sql(ws, "UPDATE renders SET path = ? WHERE frame_idx = ?", (stored, frame))
    before = tree_hash(ws)
    for args in (("export", ws, tmp_path / "out.mp4"), ("merge", ws), ("eval", ws)):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "render path", "leads outside the workspace"), (args, err)
    assert tree_hash(ws) == before and not (tmp_path / "out.mp4").exists()


def test_model_names_and_pointers_leading_outside_are_refused(ws: Path, tmp_path: Path) -> None:
    toml = (ws / "doppel.toml").read_text().replace('model = "main"', 'model = "../../elsewhere"')
    (ws / "doppel.toml").write_text(toml)
    code, _, err = run("merge", ws)
    assert code == 1 and one_line_error(err, "a model name is", "'../../elsewhere'"), err
    (ws / "doppel.toml").write_text(toml.replace('model = "../../elsewhere"', 'model = "main"'))
    # The model's current checkpoint as recorded in the database, then as its folder's pointer says.
    sql(ws, "UPDATE models SET checkpoint = ?", ("../" + tmp_path.name,))
    before = tree_hash(ws)
    for args in (("merge", ws), ("export", ws, tmp_path / "out.mp4")):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "checkpoint path", "leads outside the workspace"), (args, err)
    assert tree_hash(ws) == before
    sql(ws, "DELETE FROM models")
    pointer = ws / "models" / "main" / "latest.json"
    data = json.loads(pointer.read_text())
    data["checkpoint"] = "../../../../" + str(tmp_path)
    pointer.write_text(json.dumps(data))
    before = tree_hash(ws)
    for args in (("merge", ws), ("export", ws, tmp_path / "out.mp4"), ("train", ws, "--iterations", "1")):
        code, _, err = run(*args)
        assert code == 1 and one_line_error(err, "latest.json", "not a checkpoint in this folder"), (args, err)
    assert tree_hash(ws) == before


def test_face_crop_paths_outside_are_never_loaded_for_training(ws: Path, tmp_path: Path) -> None:
    sql(ws, "UPDATE faces SET crop_path = '../../../etc/hostname' WHERE id = 1")
    before = tree_hash(ws)
    code, _, err = run("train", ws, "--iterations", "1")
    assert code == 1 and one_line_error(err, "face crop path", "leads outside the workspace"), err
    assert tree_hash(ws) == before


@pytest.mark.parametrize("folder", ["faces", "renders", "models", "eval"])
def test_symlinked_workspace_folders_are_never_written_through(ws: Path, tmp_path: Path, folder: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if (ws / folder).exists():
        (ws / folder).rename(elsewhere / folder)
    else:
        (elsewhere / folder).mkdir()
    (ws / folder).symlink_to(elsewhere / folder)
    outside_before = tree_hash(elsewhere)
    command = {"faces": ("extract", ws, "--redo"), "renders": ("merge", ws, "--force"),
               "models": ("train", ws, "--iterations", "1"), "eval": ("eval", ws)}[folder]
    code, _, err = run(*command)
    assert code == 1 and one_line_error(err, "leads outside the workspace"), err
    assert tree_hash(elsewhere) == outside_before
