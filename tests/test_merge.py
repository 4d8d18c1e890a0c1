"""Merge and export on tiny generated media: warp-back accuracy, overrides, the render cache, export."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from doppel.extract.align import align_matrix
from doppel.media import MediaReader, probe
from doppel.merge.plan import subject_faces
from doppel.merge.render import composite
from doppel.workspace import Workspace
from doppel.workspace.faces import Face
from doppel.workspace.settings import MergeSettings
from tests.helpers import run
from tests.mediagen import audio_payloads


@pytest.fixture
def trained(trained_pair: Path) -> Path:
    return trained_pair


@pytest.fixture
def ws(trained_pair: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(trained_pair, copy)
    return copy


def rendered(ws: Path) -> dict[int, str | None]:
    db = sqlite3.connect(ws / "doppel.db")
    return dict(db.execute("SELECT frame_idx, updated_at || cache_key FROM renders").fetchall())


def _plate_face(ws: Path, frame: int, res: int) -> tuple[Face, np.ndarray, np.ndarray, np.ndarray]:
    """The target's face on `frame`, the plate frame, its frame -> crop matrix at `res` and the plate's own
    aligned face (res x res x 3 float32 in [0, 1]): what a model that gave back the plate would make."""
    with Workspace.open(ws) as w:
        target = w.target()
        assert target is not None
        face = subject_faces(w, target.id)[frame]
        with MediaReader(target.info) as reader:
            plate = reader[frame]
    m = align_matrix(face.lm68_smooth, "whole_face", res)
    crop = cv2.warpAffine(plate, m, (res, res), flags=cv2.INTER_CUBIC).astype(np.float32) / 255
    return face, plate, m, crop


def test_warp_back_puts_the_face_exactly_where_it_was(trained: Path) -> None:
    """If the model gave back the plate's own face, compositing must give back the plate."""
    res = 128
    face, plate, m, crop = _plate_face(trained, 5, res)
    s = MergeSettings(mask="landmarks", erode=0.0, feather=0.0, color="none", grain=0.0)
    out, layer, (x0, y0) = composite(plate, crop, np.ones((res, res), np.float32), face, s, m, res, None, 0)
    inside = layer[..., 3] > 250
    region = plate[y0:y0 + layer.shape[0], x0:x0 + layer.shape[1]]
    err = np.abs(out[y0:y0 + layer.shape[0], x0:x0 + layer.shape[1]].astype(int) - region.astype(int))[inside]
    assert inside.sum() > 1000
    assert err.mean() < 4  # a half-pixel shift alone would give ~10 on this detailed face
    assert np.array_equal(out[:, : max(0, x0)], plate[:, : max(0, x0)])  # outside the face: untouched


def test_hair_the_generated_face_draws_above_the_brows_is_left_to_the_plate(trained: Path) -> None:
    """A source's hat band or fringe comes out of its decoder at the source's own hairline, inside the
    target's forehead. hair_cut (on by default) leaves what the generated face draws there in a colour far from
    its skin to the plate; the same colour below the brows (a beard, a moustache) stays the source's."""
    res = 128
    face, plate, m, generated = _plate_face(trained, 5, res)
    pts = face.lm68_smooth @ m[:, :2].T + m[:, 2]
    brow_top, mouth = int(pts[17:27, 1].min()), pts[48:60].mean(0).astype(int)
    yellow = np.array([0.85, 0.75, 0.2], np.float32)
    band = np.zeros((res, res), bool)
    band[brow_top - 16:brow_top - 8, int(pts[:, 0].min()):int(pts[:, 0].max())] = True
    beard = np.zeros((res, res), bool)
    beard[mouth[1] + 6:mouth[1] + 12, mouth[0] - 12:mouth[0] + 12] = True
    generated[band | beard] = yellow

    def shown(hair_cut: bool, where: np.ndarray) -> float:
        """Mean alpha of the composited face over `where` (a crop mask), eroded so the edges do not count."""
        s = MergeSettings(mask="landmarks", forehead=1.0, erode=0.0, feather=0.0, color="none", grain=0.0,
                          hair_cut=hair_cut)
        _, layer, (x0, y0) = composite(plate, generated, np.ones((res, res), np.float32), face, s, m, res, None, 0)
        back = cv2.invertAffineTransform(m)
        back[:, 2] -= (x0, y0)
        inner = cv2.erode(where.astype(np.uint8), np.ones((3, 3), np.uint8))
        in_frame = cv2.warpAffine(inner, back, (layer.shape[1], layer.shape[0]), flags=cv2.INTER_NEAREST) > 0
        assert in_frame.sum() > 10
        return float(layer[..., 3][in_frame].mean()) / 255

    assert shown(False, band) > 0.95 and shown(False, beard) > 0.95      # the polygon covers both
    assert shown(True, band) < 0.1                                         # the hat band: the plate's
    assert shown(True, beard) > 0.95                                       # below the brows: the source's
    assert MergeSettings().hair_cut


def test_a_new_render_version_renders_every_frame_again(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to compositing that no setting shows must not leave stale renders behind."""
    from doppel.merge import plan as merge_plan

    assert json.loads(run("merge", ws, "--json")[1])["rendered"] == 16
    assert json.loads(run("merge", ws, "--json")[1])["rendered"] == 0
    monkeypatch.setattr(merge_plan, "RENDER_VERSION", merge_plan.RENDER_VERSION + 1)
    assert json.loads(run("merge", ws, "--json")[1])["rendered"] == 16


def test_merge_renders_then_only_what_changed(ws: Path) -> None:
    code, out, err = run("merge", ws, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["rendered"] == 16 and first["passthrough"] == 0
    before = rendered(ws)
    code, out, _ = run("merge", ws, "--json")
    assert json.loads(out)["rendered"] == 0 and rendered(ws) == before
    # An override re-renders its frames only.
    assert run("merge", ws, "--set", "3-4", "erode=15", "--set", "10-11", "swap=false")[0] == 0
    after = rendered(ws)
    assert sorted(i for i in after if after[i] != before[i]) == [3, 4, 10, 11]
    db = sqlite3.connect(ws / "doppel.db")
    assert db.execute("SELECT path FROM renders WHERE frame_idx = 10").fetchone() == (None,)
    # A changed setting in doppel.toml re-renders everything that is swapped.
    toml = ws / "doppel.toml"
    toml.write_text(toml.read_text().replace('color = "rct"', 'color = "mkl"'))
    code, out, _ = run("merge", ws, "--json")
    assert json.loads(out)["rendered"] == 14
    # So does a newer model.
    assert run("train", ws, "--iterations", "1")[0] == 0
    code, out, _ = run("merge", ws, "--json")
    assert json.loads(out)["rendered"] == 14


def test_bad_overrides_and_merging_before_training(ws: Path, extracted_pair: Path, tmp_path: Path) -> None:
    code, _, err = run("merge", ws, "--set", "2-5", "eroded=3")
    assert code == 1 and "unknown setting [merge] eroded" in err
    code, _, err = run("merge", ws, "--set", "2-5", "erode=99")
    assert code == 1 and "out of range" in err
    code, _, err = run("merge", ws, "--set", "2-500", "erode=5")
    assert code == 1 and "outside the plate" in err
    code, _, err = run("merge", ws, "--set", "2-5", "color=sepia")
    assert code == 1 and "is not one of" in err
    assert run("merge", ws, "--list-overrides", "--json")[1].strip() == "[]"
    fresh = tmp_path / "fresh"
    shutil.copytree(extracted_pair, fresh)
    code, _, err = run("merge", fresh)
    assert code == 1 and "run `doppel train` first" in err
    # A model copied in from another workspace is refused.
    assert run("init", tmp_path / "other")[0] == 0
    assert run("add", tmp_path / "other", "--target", extracted_pair.parent / "hopper.mp4")[0] == 0
    shutil.copytree(ws / "models", tmp_path / "other" / "models")
    code, _, err = run("merge", tmp_path / "other")
    assert code == 1 and "trained for another workspace" in err


def test_export_keeps_timestamps_and_audio_and_labels_every_frame(ws: Path, tmp_path: Path) -> None:
    code, _, err = run("export", ws, tmp_path / "early.mp4")
    assert code == 1 and "run `doppel merge` first" in err and not (tmp_path / "early.mp4").exists()
    # (A 3-step model's learned mask is still empty: use the landmark mask so the layers hold a face.)
    assert run("merge", ws, "--set", "0-1", "swap=false", "--set", "0-15", "mask=landmarks")[0] == 0
    code, out, err = run("export", ws, tmp_path / "out.mp4", "--layers", tmp_path / "layers", "--json")
    assert code == 0, err
    with Workspace.open(ws) as w:
        target = w.target()
        assert target is not None
        plate = target.info
    info = probe(tmp_path / "out.mp4")
    assert info.frame_count == plate.frame_count
    assert [(p - info.pts[0]) * info.time_base for p in info.pts] == [
        (p - plate.pts[0]) * plate.time_base for p in plate.pts]
    assert audio_payloads(tmp_path / "out.mp4") == audio_payloads(Path(plate.path))
    with MediaReader(info) as out_reader, MediaReader(plate) as plate_reader:
        exported, original = out_reader[0], plate_reader[0]
    h, w = original.shape[:2]
    corner = np.abs(exported[int(h * 0.88):, int(w * 0.55):].astype(int) - original[int(h * 0.88):, int(w * 0.55):])
    assert corner.mean() > 20  # the badge
    top = np.abs(exported[: h // 3].astype(int) - original[: h // 3].astype(int))
    assert top.mean() < 4  # frame 0 is not swapped: only coding noise elsewhere
    layers = json.loads((tmp_path / "layers" / "transforms.json").read_text())
    assert len(layers["frames"]) == 16 and layers["frames"][0]["swapped"] is False and layers["frames"][5]["swapped"]
    rgba = cv2.imread(str(tmp_path / "layers" / "face" / "000005.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (h, w, 4) and rgba[..., 3].max() == 255 and rgba[0, 0, 3] == 0


def test_credits_disclosure_replaces_the_badge_with_title_cards(ws: Path, tmp_path: Path) -> None:
    assert run("merge", ws)[0] == 0
    code, _, err = run("export", ws, tmp_path / "film.mp4", "--disclosure", "credits")
    assert code == 0, err
    with MediaReader(probe(tmp_path / "film.mp4")) as reader:
        first, last = reader[0], reader[15]
    assert first.mean() < 40 and last.mean() < 40  # dark title cards at both ends (16 frames at 25 fps)


def test_forehead_setting_keeps_the_plates_forehead(ws: Path) -> None:
    """[merge] forehead = 0 (the default) stops the face at the mesh's hairline: the swap changes fewer pixels
    and none as high up the frame as forehead = 1, which swaps the whole_face crop's forehead too."""

    def changed(ws: Path) -> list[np.ndarray]:
        db = sqlite3.connect(ws / "doppel.db")
        rows = db.execute("SELECT frame_idx, path FROM renders WHERE path IS NOT NULL ORDER BY frame_idx").fetchall()
        with Workspace.open(ws) as opened, MediaReader(probe(opened.target().path)) as reader:
            return [np.abs(cv2.imread(str(ws / p)).astype(int)[..., ::-1] - reader[i].astype(int)).max(2) > 6
                    for i, p in rows]

    toml = ws / "doppel.toml"  # the landmark polygon alone: a 3-step model has not learned a mask yet
    toml.write_text(toml.read_text().replace('mask = "intersect"', 'mask = "landmarks"'))
    assert run("merge", ws)[0] == 0
    low = changed(ws)
    assert run("merge", ws, "--set", "0-15", "forehead=1")[0] == 0
    high = changed(ws)
    assert len(low) == len(high) >= 10
    tops = [(np.nonzero(a.any(1))[0].min(), np.nonzero(b.any(1))[0].min()) for a, b in zip(low, high, strict=True)
            if a.any() and b.any()]
    assert len(tops) >= 10 and all(t_low > t_high for t_low, t_high in tops), tops
    assert sum(a.sum() for a in low) < 0.95 * sum(b.sum() for b in high)
