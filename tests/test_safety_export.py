"""Export never deletes or overwrites what doppel did not create, and never writes into the workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.safety import copy_workspace, one_line_error, run, sql, tree_hash


@pytest.fixture
def ws(merged_pair: Path, tmp_path: Path) -> Path:
    return copy_workspace(merged_pair, tmp_path / "ws")


def _foreign_folder(path: Path) -> dict[str, str]:
    path.mkdir()
    (path / "000001.png").write_bytes(b"someone else's frame")
    (path / "notes.txt").write_text("precious")
    return tree_hash(path)


def test_png_export_and_layers_refuse_a_foreign_folder_and_keep_it(ws: Path, tmp_path: Path) -> None:
    mine = _foreign_folder(tmp_path / "frames")
    before = tree_hash(ws)
    code, _, err = run("export", ws, tmp_path / "frames", "--codec", "png")
    assert code == 1 and one_line_error(err, "holds files doppel did not write"), err
    layers = _foreign_folder(tmp_path / "layers")
    code, _, err = run("export", ws, tmp_path / "shot.mp4", "--layers", tmp_path / "layers")
    assert code == 1 and one_line_error(err, "layers folder", "holds files doppel did not write"), err
    assert tree_hash(tmp_path / "frames") == mine and tree_hash(tmp_path / "layers") == layers
    assert tree_hash(ws) == before and not (tmp_path / "shot.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "layers", "ws"]  # no temporaries left


def test_png_export_and_layers_replace_their_own_earlier_output(ws: Path, tmp_path: Path) -> None:
    out, layers = tmp_path / "frames", tmp_path / "layers"
    for _ in range(2):
        code, _, err = run("export", ws, out, "--codec", "png", "--layers", layers)
        assert code == 0, err
    assert len(list(out.glob("*.png"))) == 16 and (out / "timestamps.json").is_file()
    assert len(list((layers / "face").glob("*.png"))) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "layers", "ws"]


@pytest.mark.parametrize("where", ["workspace", "inside", "plate", "source", "renders"])
def test_outputs_into_the_workspace_or_over_registered_media_are_refused(ws: Path, tmp_path: Path,
                                                                        where: str) -> None:
    plate, source = (Path(p) for p in (sql(ws, "SELECT path FROM media WHERE role = ?", (r,))[0][0]
                                       for r in ("target", "source")))
    output = {"workspace": ws, "inside": ws / "out.mp4", "plate": plate, "source": source,
              "renders": ws / "renders"}[where]
    ws_before, plate_before = tree_hash(ws), (plate.read_bytes(), source.read_bytes())
    codec = "png" if where in ("workspace", "renders") else "h264"
    code, _, err = run("export", ws, output, "--codec", codec)
    assert code == 1 and one_line_error(err), err
    assert ("into the workspace" in err) if where in ("workspace", "inside", "renders") else (
        "would overwrite registered media" in err), err
    code, _, err = run("export", ws, tmp_path / "ok.mp4", "--layers", output)
    assert code == 1 and one_line_error(err, "layers folder"), err
    assert tree_hash(ws) == ws_before and (plate.read_bytes(), source.read_bytes()) == plate_before


def test_a_symlink_to_the_plate_is_refused_too(ws: Path, tmp_path: Path) -> None:
    plate = Path(sql(ws, "SELECT path FROM media WHERE role = 'target'")[0][0])
    (tmp_path / "innocent.mp4").symlink_to(plate)
    before = plate.read_bytes()
    code, _, err = run("export", ws, tmp_path / "innocent.mp4")
    assert code == 1 and one_line_error(err, "would overwrite registered media"), err
    assert plate.read_bytes() == before


def test_an_existing_folder_named_like_a_video_is_refused_before_encoding(ws: Path, tmp_path: Path) -> None:
    (tmp_path / "x.mp4").mkdir()
    (tmp_path / "x.mp4" / "keep.txt").write_text("keep")
    code, _, err = run("export", ws, tmp_path / "x.mp4")
    assert code == 1 and one_line_error(err, "x.mp4", "exists and is a folder"), err
    assert (tmp_path / "x.mp4" / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws", "x.mp4"]


def test_missing_keys_are_refused_with_the_fix_named(ws: Path, tmp_path: Path) -> None:
    shutil.rmtree(ws / "keys")
    before = tree_hash(ws)
    code, _, err = run("export", ws, tmp_path / "out.mp4")
    assert code == 1 and one_line_error(err, "signing identity", "restore keys/", "--cert and --key",
                                        "--new-identity"), err
    assert tree_hash(ws) == before and not (tmp_path / "out.mp4").exists()
    code, out, err = run("export", ws, tmp_path / "out.mp4", "--new-identity", "--json")
    assert code == 0, err
    assert (ws / "keys" / "signer.key").is_file()
    code, out, _ = run("verify", tmp_path / "out.mp4", "--json")
    assert code == 0 and '"valid": true' in out


def test_a_signing_failure_names_the_output_not_a_temporary_file(ws: Path, tmp_path: Path) -> None:
    (ws / "keys" / "signer.key").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    code, _, err = run("export", ws, tmp_path / "out.mp4")
    assert code == 1 and one_line_error(err, f"{tmp_path / 'out.mp4'}: "), err
    assert ".part" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]


def test_a_killed_exports_temporaries_are_removed_by_the_next_export_and_nothing_else(ws: Path,
                                                                                       tmp_path: Path) -> None:
    left = [tmp_path / ".shot.0123456789ab.part.mp4", tmp_path / "..shot.0123456789ab.part.0123456789ab.part.mp4",
            tmp_path / ".layers.abcdef012345.part", tmp_path / ".layers.abcdef012345.old.tmp"]
    left[0].write_bytes(b"half an mp4")
    left[1].write_bytes(b"half an mp4")
    (left[2] / "face").mkdir(parents=True)
    left[3].mkdir()
    keep = [tmp_path / ".shot.notes", tmp_path / ".shot.mp4.part", tmp_path / "shot.0123456789ab.part.mp4"]
    for path in keep:
        path.write_text("not doppel's")
    code, _, err = run("export", ws, tmp_path / "shot.mp4", "--layers", tmp_path / "layers")
    assert code == 0, err
    assert not any(p.exists() for p in left) and all(p.read_text() == "not doppel's" for p in keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ws", "shot.mp4", "layers", *(p.name for p in keep)])
