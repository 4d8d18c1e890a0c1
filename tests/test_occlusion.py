"""Occlusion masks: labels, self-supervised training, propagation, temporal smoothing and merging."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from doppel.cli import cli
from doppel.errors import DoppelError
from doppel.extract.masks import rasterize
from doppel.merge.masks import combine
from doppel.merge.plan import subject_faces
from doppel.occlusion import labels as lab
from doppel.occlusion.apply import (
    LABEL_WEIGHT,
    SMOOTH_RADIUS,
    MaskPredictor,
    apply_masks,
    drop_own_motion,
    load_mask,
    motion_cue,
    smooth_in_time,
)
from doppel.occlusion.model import MaskNetConfig, build
from doppel.occlusion.propagate import carry, propagate
from doppel.occlusion.synth import MaskData, make_batch
from doppel.occlusion.train import MaskTrainer, load_mask_data
from doppel.workspace import Workspace


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def ws(extracted_pair: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(extracted_pair, copy)
    return copy


def _target_faces(w: Workspace) -> dict:
    target = w.target()
    assert target is not None
    return subject_faces(w, target.id)


def _square(cx: float, cy: float, r: float) -> np.ndarray:
    return np.array([[cx - r, cy - r], [cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r]], np.float64)


# -- labels ------------------------------------------------------------------------------------------------
def test_labels_are_versioned_undoable_and_painted_over_the_polygon(ws: Path) -> None:
    with Workspace.open(ws) as w:
        face = _target_faces(w)[3]
        centre = face.polygon.mean(0)
        hole = lab.parse_label({"shapes": [{"mode": "exclude", "points": _square(*centre, 12).tolist()}]})
        with w.transaction():
            first = lab.add_label(w.occlusion, face.id, hole)
            second = lab.add_label(w.occlusion, face.id, lab.Label("empty", ()))
        assert (first.version, second.version) == (1, 2)
        assert lab.current(w.occlusion, face.id).label.base == "empty"  # type: ignore[union-attr]
        with w.transaction():
            back = lab.undo(w.occlusion, face.id)
        assert back is not None and back.version == 1
        m = lab.crop_matrix(face, 256)
        painted = lab.label_mask(back.label, face, 256, m)
        polygon = rasterize(face.polygon, (256, 256), m)
        cx, cy = (centre @ m[:, :2].T + m[:, 2]).round().astype(int)
        assert painted[cy, cx] == 0 and polygon[cy, cx] == 255           # the hole is cut out of the face
        assert (painted > 127).sum() < (polygon > 127).sum()
        assert lab.iou(painted, polygon) > 0.85                           # and nothing else changed


def _area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def test_a_brush_stroke_is_stored_as_the_outline_of_what_it_painted() -> None:
    """A stroke ({mode, points, radius}) becomes polygons: a dot is a disc of the radius, a drag a capsule
    around its path; a stroke that closes on itself fills what it encloses; the stored JSON has polygons only."""
    dot = lab.parse_label({"shapes": [{"mode": "exclude", "points": [[40.0, 30.0]], "radius": 5}]})
    (disc,) = dot.shapes
    assert disc.mode == "exclude" and _area(disc.points) == pytest.approx(np.pi * 25, rel=0.06)
    assert np.abs(disc.points.mean(0) - [40, 30]).max() < 0.3
    assert np.hypot(*(disc.points - [40, 30]).T).max() < 5.3
    drag = lab.parse_label({"shapes": [{"mode": "include", "points": [[10, 50], [60, 50], [90, 80]], "radius": 4}]})
    (capsule,) = drag.shapes
    length = 50 + np.hypot(30, 30)
    assert _area(capsule.points) == pytest.approx(np.pi * 16 + 8 * length, rel=0.08)
    painted = rasterize(capsule.points, (120, 120)) > 127
    assert painted[50, 10] and painted[50, 35] and painted[80, 90] and painted[53, 35] and not painted[56, 35]
    assert not painted[60, 40]   # inside the bend, beyond the brush's reach
    ring = [[60 + 30 * np.cos(t), 60 + 30 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 60)]
    (closed,) = lab.parse_label({"shapes": [{"mode": "exclude", "points": ring, "radius": 2}]}).shapes
    assert rasterize(closed.points, (120, 120))[60, 60] == 255 and _area(closed.points) == pytest.approx(
        np.pi * 32 ** 2, rel=0.05)
    stored = json.loads(json.dumps(drag.to_json()))
    assert set(stored["shapes"][0]) == {"mode", "points"}
    assert np.abs(lab.parse_label(stored).shapes[0].points - capsule.points).max() < 1e-3   # read back as stored
    apart = lab.parse_label({"shapes": [{"mode": "exclude", "points": [[10, 10], [10, 11], [50, 50]], "radius": 2}]})
    assert len(apart.shapes) == 1    # one continuous stroke, even with a long jump between points


@pytest.mark.parametrize("bad, message", [
    ({"shapes": [{"mode": "erase", "points": [[0, 0], [1, 0], [1, 1]]}]}, "mode must be"),
    ({"shapes": [{"mode": "include", "points": [[0, 0], [1, 0]]}]}, "at least 3"),
    ({"shapes": [{"mode": "include", "points": [], "radius": 3}]}, "at least 1"),
    ({"shapes": [{"mode": "include", "points": [[0, 0]], "radius": 0}]}, "brush radius"),
    ({"shapes": [{"mode": "include", "points": [[0, 0]], "radius": "big"}]}, "brush radius"),
    ({"shapes": [{"mode": "include", "points": [[0, 0], [9000, 0]], "radius": 3}]}, "spans more than"),
    ({"shapes": [{"mode": "include", "points": [[0, 0], [1, 0], [1, 1]], "width": 3}]}, "unknown fields"),
    ({"base": "hair", "shapes": []}, "base must be"),
    ([1, 2], "JSON object"),
])
def test_malformed_labels_are_refused(bad: object, message: str) -> None:
    with pytest.raises(DoppelError, match=message):
        lab.parse_label(bad)


def test_cli_adds_confirms_and_undoes_labels(ws: Path, tmp_path: Path) -> None:
    with Workspace.open(ws) as w:
        face = _target_faces(w)[5]
    good = tmp_path / "label.json"
    good.write_text(json.dumps({"shapes": [{"mode": "exclude", "points": _square(*face.polygon.mean(0), 8).tolist()}]}))
    code, out, _ = run("mask", "label", ws, "--frame", 5, "--add", good)
    assert code == 0 and "version 1" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run("mask", "label", ws, "--frame", 5, "--add", bad)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = run("mask", "label", ws, "--frame", 5, "--confirm")
    assert code == 1 and "no suggested label" in err
    code, out, _ = run("mask", "label", ws, "--frame", 5)
    assert code == 0 and [v["kind"] for v in json.loads(out)] == ["drawn"]
    code, out, _ = run("mask", "label", ws, "--frame", 5, "--undo")
    assert code == 0 and "no label left" in out


# -- training ----------------------------------------------------------------------------------------------
def test_a_few_steps_on_generated_occluders_beat_the_polygon_alone(ws: Path) -> None:
    """With zero labels the mask learns, from the footage and pasted occluders, to cut occluders out: on held
    out generated examples its IoU beats the mesh polygon's (which keeps every occluder). Flat-coloured
    occluders, so that 90 steps are enough (the footage's own textures take thousands: benchmarks/)."""
    with Workspace.open(ws) as w:
        trainer = MaskTrainer.open(w, resolution=64, overrides={"batch_size": 12, "learning_rate": 3e-3,
                                                                "fill": "flat"})
        untrained = trainer.validate()
        result = trainer.train(iterations=90)
    v = result.validation
    assert untrained["iou_synthetic"] == pytest.approx(v["iou_polygon_only"])  # it starts from the polygon
    assert v["iou_polygon_only"] < 0.9                 # the validation batch does have occluders
    assert v["iou_synthetic"] > v["iou_polygon_only"] + 0.01, v


def test_training_resumes_exactly(ws: Path) -> None:
    """Two steps, save, reopen, two more steps == four steps in one go (batches are a function of the step)."""
    def weights(w: Workspace, splits: list[int]) -> dict[str, torch.Tensor]:
        for n in splits:
            t = MaskTrainer.open(w, resolution=64, overrides={"batch_size": 4})
            t.train(iterations=n)
        return {k: v.clone() for k, v in t.model.state_dict().items()}

    other = ws.parent / "ws2"
    shutil.copytree(ws, other)
    with Workspace.open(ws) as a, Workspace.open(other) as b:
        once, twice = weights(a, [4]), weights(b, [2, 2])
    assert all(torch.equal(once[k], twice[k]) for k in once)


def test_batches_are_a_pure_function_of_the_step_and_labels_are_used(ws: Path) -> None:
    with Workspace.open(ws) as w:
        data = load_mask_data(w, 64)
    x1, y1 = make_batch(data, 6, 0, 0, 7)
    x2, y2 = make_batch(data, 6, 0, 0, 7)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert x1.shape == (6, 5, 64, 64) and y1.shape == (6, 1, 64, 64) and x1.min() >= 0 and x1.max() <= 1
    # A face whose label is empty: every batch example drawn from the label has an empty target.
    only = MaskData(data.crops[:1], data.polygons[:1], {0: np.zeros((64, 64), np.uint8)})
    _, y = make_batch(only, 4, 0, 0, 0, label_share=1.0)
    assert y.max() == 0


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_network_keeps_the_crop_size(resolution: int) -> None:
    net = build(MaskNetConfig(resolution=resolution)).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 5, resolution, resolution)).shape == (2, 1, resolution, resolution)


# -- propagation -------------------------------------------------------------------------------------------
def _textured(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32), (size, size),
                       interpolation=cv2.INTER_CUBIC)
    return np.clip(noise, 0, 255).astype(np.uint8)


def test_propagation_follows_the_face_and_a_moving_occluder() -> None:
    """Frames where the face moves by a known translation (the landmarks' matrices say so) and a textured patch
    slides over it by 2 px per frame: a polygon on the face keeps its place on the face, and a polygon around
    the patch follows the patch."""
    size, steps = 128, 6
    face = _textured(400, 1)
    patch = _textured(40, 2)
    frames, matrices = [], []
    for k in range(steps + 1):
        shift = np.array([3.0 * k, -1.5 * k])             # face motion in the frame
        frame = np.roll(face, (int(shift[1]), int(shift[0])), (0, 1)).copy()
        px, py = 150 + int(shift[0]) + 2 * k, 150 + int(shift[1])  # the patch moves 2 px/frame on the face
        frame[py:py + 40, px:px + 40] = patch
        frames.append(frame)
        m = np.array([[1.0, 0, -100 - shift[0]], [0, 1.0, -100 - shift[1]]])  # frame -> crop
        matrices.append(m)
    crops = [cv2.warpAffine(f, m, (size, size)) for f, m in zip(frames, matrices, strict=True)]
    on_face = _square(210, 230, 10)   # a spot of the face away from the patch
    around = np.array([[150, 150], [190, 150], [190, 190], [150, 190]], np.float64)
    label = lab.Label("empty", (lab.Shape("include", on_face), lab.Shape("include", around)))
    carried = carry(label, matrices, crops)
    for k, c in enumerate(carried, start=1):
        shift = np.array([3.0 * k, -1.5 * k])
        assert np.abs(c.shapes[0].points - (on_face + shift)).max() < 0.75
        # Left behind with the face, the outline would be 2k px off; it follows the patch to within a third.
        followed = np.abs(c.shapes[1].points - (around + shift + [2.0 * k, 0])).mean()
        assert followed < 0.35 * 2.0 * k + 0.5


def test_propagate_stores_suggestions_until_the_next_drawn_label(ws: Path) -> None:
    with Workspace.open(ws) as w:
        faces = _target_faces(w)
        spot = lab.Label("landmarks", (lab.Shape("exclude", _square(*faces[4].polygon.mean(0), 6)),))
        with w.transaction():
            drawn = lab.add_label(w.occlusion, faces[4].id, spot)
            lab.add_label(w.occlusion, faces[8].id, spot)
        report = propagate(w, faces[4].id, frames=15)
        newest = lab.current_labels(w.occlusion, ("suggested",))
        suggested = {fid for fid, s in newest.items() if s.origin_id == drawn.id}
        assert suggested == {faces[i].id for i in (0, 1, 2, 3, 5, 6, 7)} == set(report.suggested)
        assert report.stopped_at_labels == [faces[8].id]
        with w.transaction():
            confirmed = lab.confirm(w.occlusion, faces[5].id)
        assert confirmed.kind == "confirmed" and faces[5].id in lab.current_labels(w.occlusion, lab.TRAINABLE)
        # The carried hole stays on the same spot of the face (these clips are a slow camera move).
        m5 = lab.crop_matrix(faces[5], 256)
        hole5 = lab.label_mask(confirmed.label, faces[5], 256, m5) < 128
        expected = rasterize(_square(*faces[4].polygon.mean(0), 6), (256, 256), lab.crop_matrix(faces[4], 256)) > 127
        assert lab.iou(hole5 & (rasterize(faces[5].polygon, (256, 256), m5) > 127), expected) > 0.7


# -- apply, smoothing, merge -------------------------------------------------------------------------------
def test_temporal_smoothing_calms_noise_but_does_not_ghost_a_moving_occluder() -> None:
    rng = np.random.default_rng(0)
    n, size = 7, 64
    crop = _textured(size, 3)
    crops = np.stack([crop] * n)
    matrices = np.stack([np.array([[1.0, 0, 0], [0, 1.0, 0]])] * n)
    truth = np.zeros((size, size), np.float32)
    truth[16:48, 16:48] = 1
    probs = np.clip(truth + rng.normal(0, 0.25, (n, size, size)), 0, 1).astype(np.float32)
    smooth = smooth_in_time(probs, crops, matrices, list(range(n)))
    assert np.abs(np.diff(smooth, axis=0)).mean() < 0.5 * np.abs(np.diff(probs, axis=0)).mean()
    # An occluder present in frame 3 only changes the picture there: its mask hole must stay.
    crops[3, 20:30, 20:30] = 0
    probs[3, 20:30, 20:30] = 0
    smooth = smooth_in_time(probs, crops, matrices, list(range(n)))
    assert smooth[3, 22:28, 22:28].max() < 0.25


def test_a_label_outweighs_the_network_guesses_of_its_neighbours() -> None:
    """Three frames of a still picture: the middle one carries the artist's label (a hole), the network's
    guesses beside it see no hole. Trusted as a label, the hole carries into its neighbours; as one more
    guess it would be outvoted."""
    n, size = 3, 32
    crops = np.stack([_textured(size, 5)] * n)
    matrices = np.stack([np.array([[1.0, 0, 0], [0, 1.0, 0]])] * n)
    probs = np.ones((n, size, size), np.float32)
    probs[1, 8:24, 8:24] = 0                               # the label
    trusted = smooth_in_time(probs, crops, matrices, [0, 1, 2], trust=np.array([1, LABEL_WEIGHT, 1], np.float32))
    plain = smooth_in_time(probs, crops, matrices, [0, 1, 2])
    assert trusted[0, 10:22, 10:22].max() < 0.5 < plain[0, 10:22, 10:22].min()
    assert trusted[0, :4].min() == 1.0                     # outside the hole nothing changes


def test_a_new_label_recomputes_and_shapes_its_neighbours_masks(ws: Path) -> None:
    with Workspace.open(ws) as w:
        MaskTrainer.open(w, resolution=64, overrides={"batch_size": 4}).train(iterations=2)
        faces = _target_faces(w)
        before = apply_masks(w)
        masks = w.occlusion.masks()
        old = {i: masks[faces[i].id] for i in (7, 10)}
        f7 = faces[7]
        was = load_mask(w, old[7].path)                     # the same file is rewritten in place
        hole = _square(*faces[6].polygon.mean(0), 14)
        with w.transaction():
            lab.add_label(w.occlusion, faces[6].id, lab.Label("landmarks", (lab.Shape("exclude", hole),)))
        after = apply_masks(w)
        masks = w.occlusion.masks()
        assert before.computed == before.faces and after.computed == 5    # the labelled face and 2 either side
        assert masks[faces[10].id].sha256 == old[10].sha256                # 4 frames away: untouched
        spot = rasterize(hole, (f7.crop_size,) * 2, lab.crop_matrix(f7, f7.crop_size)) > 200
        now = load_mask(w, masks[f7.id].path)
        assert now[spot].mean() < was[spot].mean() - 0.2, (was[spot].mean(), now[spot].mean())
        assert np.abs(now - was)[~spot].mean() < 0.02                      # the rest of its mask stays


def _rows_outside(size: int, first: int, stop: int) -> np.ndarray:
    """(size, size) bool: every row of the crop except rows first..stop-1 (a band round a moving occluder)."""
    out = np.ones((size, size), bool)
    out[first:stop, :] = False
    return out


def test_motion_cue_finds_what_moves_over_a_still_face() -> None:
    n, size = 40, 64
    face = _textured(size, 4)
    crops = np.stack([face] * n)
    for k in range(n):
        x = 4 + k
        crops[k, 30:42, x:x + 10] = (40, 40, 40)    # a dark bar sliding across
    cue = motion_cue(crops, list(range(n)))
    k = 20
    assert cue[k, 33:39, 7 + k:11 + k].mean() > 0.8
    assert cue[:, _rows_outside(size, 26, 46)].mean() < 0.01
    # The safety margin: the cue reaches `grow` pixels further round the bar, and still not beyond.
    grown = motion_cue(crops, list(range(n)), grow=3)
    assert grown[k, 25, 7 + k:11 + k].mean() > cue[k, 25, 7 + k:11 + k].mean() + 0.3
    assert grown[k, 30:42, 4 + k:14 + k].mean() > 0.9 and grown[:, _rows_outside(size, 22, 50)].mean() < 0.01


def test_motion_cue_sees_a_skin_toned_patch_by_its_colour_not_a_shading_change() -> None:
    """A face that brightens and darkens (as a turning, talking face's shading does) is not an occluder; a patch
    of the same lightness but another skin tone sliding over it is."""
    n, size = 40, 64
    face = np.full((size, size, 3), (200, 150, 120), np.uint8)
    crops = np.stack([np.clip(face.astype(int) + 12 * np.sin(k / 3), 0, 255).astype(np.uint8) for k in range(n)])
    for k in range(n):
        crops[k, 24:40, 4 + k:18 + k] = (172, 158, 150)   # about the same lightness, a greyer tone
    cue = motion_cue(crops, list(range(n)))
    k = 20
    assert cue[k, 28:36, 8 + k:14 + k].mean() > 0.8
    assert cue[:, _rows_outside(size, 18, 46)].mean() < 0.01


def test_a_cut_inside_the_eyes_is_the_face_moving_but_one_reaching_in_from_outside_is_an_occluder() -> None:
    """A blink the window's median did not cover lights the cue inside an eye only: it is dropped. A hand
    covering the same eye reaches beyond it: it stays, the part over the eye included."""
    eye = np.zeros((64, 64), bool)
    eye[20:28, 14:30] = True
    blink = np.zeros((64, 64), np.float32)
    blink[21:27, 16:28] = 0.9
    assert drop_own_motion(blink, eye).max() == 0
    hand = blink.copy()
    hand[24:50, 20:34] = 1.0
    kept = drop_own_motion(hand, eye)
    assert np.array_equal(kept, hand)
    both = np.maximum(blink, 0)
    both[40:50, 50:60] = 0.7            # an unrelated occluder far away is untouched, and does not save the blink
    out = drop_own_motion(both, eye, reach=4)
    assert out[21:27, 16:28].max() == 0 and out[40:50, 50:60].min() == pytest.approx(0.7)
    # A hand over the eye whose inside the cue misses: its edge lights up just beside the eye, and the eye's own
    # blob (hand over eye) is a separate region. Within `reach` of the edge, the blob stays.
    edge = blink.copy()
    edge[30:34, 14:30] = 0.8
    assert np.array_equal(drop_own_motion(edge, eye, reach=4), edge)


def test_the_cue_margin_is_only_for_a_network_that_has_learnt_no_labels(ws: Path) -> None:
    with Workspace.open(ws) as w:
        MaskTrainer.open(w, resolution=64, overrides={"batch_size": 4}).train(iterations=2)
        faces = _target_faces(w)
        assert not MaskPredictor(w).learnt_labels
        apply_masks(w)
        assert all(m.origin.endswith("/t7m1") for m in w.occlusion.masks().values())   # 2/128 of 64 px
        with w.transaction():
            lab.add_label(w.occlusion, faces[6].id, lab.Label("landmarks", ()))
        report = MaskTrainer.open(w).train(iterations=1)
        assert report.labels == 1 and MaskPredictor(w).learnt_labels
        apply_masks(w)
        origins = [m.origin for m in w.occlusion.masks().values()]
    assert "label:" in " ".join(origins) and not any("/t7m1" in o for o in origins)
    assert sum(o.split("/")[-1].startswith("t7m") for o in origins) == len(origins) - 1


def test_mask_modes_combine_the_occlusion_mask() -> None:
    a = np.ones((8, 8), np.float32)
    b = np.full((8, 8), 0.5, np.float32)
    occ = np.zeros((8, 8), np.float32)
    occ[:4] = 1
    assert combine(a, b, "intersect+occlusion", occ)[:4].max() == 0.5
    assert combine(a, b, "landmarks+occlusion", occ)[4:].max() == 0
    with pytest.raises(ValueError, match="needs the occlusion mask"):
        combine(a, b, "occlusion")


def test_merge_with_an_exclude_label_keeps_the_plate_under_the_occluder(trained_pair: Path, tmp_path: Path) -> None:
    """An exclude polygon drawn over a spot of the face: with an occlusion mask mode the merged frame has the
    plate's own pixels there; only the labelled frame and the two either side of it (whose masks borrow the
    label in the temporal smoothing) are rendered again."""
    ws = tmp_path / "ws"
    shutil.copytree(trained_pair, ws)
    with Workspace.open(ws) as w:
        MaskTrainer.open(w, resolution=64, overrides={"batch_size": 4}).train(iterations=2)
    toml = ws / "doppel.toml"
    toml.write_text(toml.read_text().replace('mask = "intersect"', 'mask = "landmarks+occlusion"'))
    code, out, err = run("merge", ws, "--json")
    assert code == 0, err
    with Workspace.open(ws) as w:
        face = _target_faces(w)[6]
        hole = _square(*face.polygon.mean(0), 14)
        with w.transaction():
            lab.add_label(w.occlusion, face.id, lab.Label("landmarks", (lab.Shape("exclude", hole),)))
        target = w.target()
        assert target is not None
        from doppel.media import MediaReader

        with MediaReader(target.info) as reader:
            plate = reader[6]
    code, out, err = run("merge", ws, "--json")
    assert code == 0, err
    assert json.loads(out)["rendered"] == 1 + 2 * SMOOTH_RADIUS
    merged = cv2.cvtColor(cv2.imread(str(ws / "renders" / "000006.png")), cv2.COLOR_BGR2RGB)
    size = (plate.shape[1], plate.shape[0])
    covered = rasterize(hole, size) > 127               # every pixel the occluder covers, to its very edge
    ring = (rasterize(face.polygon, size) > 0) & ~(rasterize(_square(*face.polygon.mean(0), 17), size) > 0)
    assert np.abs(merged.astype(int) - plate)[covered].max() <= 1
    assert np.abs(merged.astype(int) - plate)[ring].mean() > 3    # the face around it was swapped


def test_settings_accept_the_new_modes_and_reject_others(tmp_path: Path) -> None:
    from doppel.workspace.settings import MergeSettings, check_value

    assert check_value("merge", "mask", "intersect+occlusion", tmp_path) == "intersect+occlusion"
    with pytest.raises(DoppelError, match="not one of"):
        check_value("merge", "mask", "occlusion+everything", tmp_path)
    assert replace(MergeSettings(), mask="occlusion").mask == "occlusion"


def test_face_training_masks_leave_out_the_occluder(ws: Path) -> None:
    """With a stored occlusion mask the face model's training mask is the polygon minus the occluder."""
    from doppel.train.data import load_faces

    with Workspace.open(ws) as w:
        face = _target_faces(w)[2]
    occ = np.full((face.crop_size, face.crop_size), 255, np.uint8)
    occ[:, : face.crop_size // 2] = 0                      # the left half of the crop is covered
    rel = "masks/occlusion/test.png"
    (ws / rel).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(ws / rel), occ)
    plain, covered = load_faces(ws, [face], 64), load_faces(ws, [face], 64, occlusion={face.id: rel})
    assert plain.masks[0, 0, :, :30].max() == 255 and covered.masks[0, 0, :, :30].max() == 0
    assert torch.equal(plain.masks[0, 0, :, 34:], covered.masks[0, 0, :, 34:])
    # The eye-and-mouth loss region (weighted separately) leaves the occluder out too.
    assert plain.eyes_mouth[0, 0, :, :30].max() == 255 and covered.eyes_mouth[0, 0, :, :30].max() == 0
    assert torch.equal(plain.eyes_mouth[0, 0, :, 34:], covered.eyes_mouth[0, 0, :, 34:])


def test_cli_trains_applies_and_resumes(ws: Path) -> None:
    code, out, err = run("mask", "train", ws, "--iterations", 2, "--resolution", 64, "--json")
    assert code == 0, err
    assert json.loads(out)["step"] == 2
    code, out, err = run("mask", "train", ws, "--iterations", 1, "--json")
    assert code == 0 and json.loads(out)["step"] == 3, err
    code, out, err = run("mask", "apply", ws, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["computed"] == report["faces"] > 0
    code, out, _ = run("mask", "apply", ws, "--json")
    assert json.loads(out)["computed"] == 0                 # up to date: nothing recomputed
    code, _, err = run("mask", "train", ws, "--iterations", 1, "--resolution", 128)
    assert code == 1 and "works at 64 px" in err
