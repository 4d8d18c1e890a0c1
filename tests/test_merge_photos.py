"""`source_detail`: the source's own photographs lend the generated face their fine band."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from doppel.extract.align import transform_points
from doppel.merge.photos import SourcePhotos, fine_band, nearest_shape, piecewise_warp, usable_photos
from doppel.merge.plan import subject_faces
from doppel.workspace import Workspace
from tests.helpers import run


@pytest.fixture
def ws(trained_pair: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(trained_pair, copy)
    return copy


def _border(size: int) -> np.ndarray:
    return np.array([(x, y) for x in (0, 0.5, 1) for y in (0, 0.5, 1) if (x, y) != (0.5, 0.5)]) * (size - 1)


def test_piecewise_warp_puts_each_point_where_it_is_asked_to_go() -> None:
    rng = np.random.default_rng(3)
    size = 96
    src = rng.uniform(20, 76, (12, 2))
    dst = src + rng.uniform(-6, 6, src.shape)
    image = np.zeros((size, size, 1), np.float32)
    for x, y in np.round(src).astype(int):
        cv2.circle(image, (int(x), int(y)), 1, 1.0, -1)
    out = piecewise_warp(image, np.vstack([src, _border(size)]), np.vstack([dst, _border(size)]), size)[..., 0]
    for (x, y), (sx, sy) in zip(np.round(dst).astype(int), np.round(src).astype(int), strict=True):
        assert out[y, x] > 0.5  # each dot arrives at its destination
        if abs(sx - x) + abs(sy - y) > 3 and out[sy, sx] > 0.5:  # and has left where it was, unless another
            assert any(np.hypot(*(d - (sx, sy))) < 3 for d in dst)  # dot landed there
    assert out.shape == (size, size)


def test_the_nearest_photograph_is_found_whatever_its_place_size_and_roll() -> None:
    rng = np.random.default_rng(5)
    base = rng.uniform(0, 100, (68, 2))
    pool = np.stack([base + rng.normal(0, 4, base.shape) for _ in range(20)])  # 20 expressions of one face
    for k in (0, 7, 19):
        angle, scale, shift = np.radians(25), 1.7, np.array([40.0, -15.0])
        rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        query = (pool[k] + rng.normal(0, 0.3, base.shape)) @ rot.T + shift
        assert nearest_shape(query, pool) == k


def test_fine_band_is_unmoved_by_flat_light() -> None:
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (64, 64, 3)).astype(np.float32)
    assert np.allclose(fine_band(image + 0.2, 4.0), fine_band(image, 4.0), atol=1e-5)
    assert abs(float(fine_band(image, 4.0).mean())) < 0.01


def _crop_band(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA).astype(np.float32) / 255
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return cv2.GaussianBlur(gray, (0, 0), 1.0) - cv2.GaussianBlur(gray, (0, 0), 4.0)


def test_merged_faces_carry_the_source_persons_own_detail(ws: Path) -> None:
    """A model trained for three steps draws an almost flat face. With source_detail on, the merged frame's
    face carries the fine structure of the source's real photograph warped onto the target's landmarks; off,
    it does not. Changing the setting renders every swapped frame again; an unchanged merge renders none."""
    toml = ws / "doppel.toml"
    toml.write_text(toml.read_text().replace('mask = "intersect"', 'mask = "landmarks"')
                    .replace("source_detail = 1.0", "source_detail = 0.0"))
    frame, size = 5, 128

    def face_band() -> tuple[np.ndarray, np.ndarray]:
        """The merged frame's band in the face's crop, and the band of the photograph lent to it."""
        with Workspace.open(ws) as w:
            target = w.target()
            assert target is not None
            face = subject_faces(w, target.id)[frame]
            render = w.renders.all()[frame]
            photos = SourcePhotos.load(w)
            assert photos is not None and len(photos.faces) == len(usable_photos(w)) > 0
        assert render.path is not None
        m = face.matrix * (size / face.crop_size)
        frame_bgr = cv2.imread(str(ws / render.path))
        assert frame_bgr is not None
        image = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        gray = cv2.cvtColor(photos.warped(transform_points(m, face.lm68), size), cv2.COLOR_RGB2GRAY)
        reference = cv2.GaussianBlur(gray, (0, 0), 1.0) - cv2.GaussianBlur(gray, (0, 0), 4.0)
        return _crop_band(image, m, size), reference

    def correlation(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
        a, b = a[where] - a[where].mean(), b[where] - b[where].mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    code, out, err = run("merge", ws, "--json")
    assert code == 0, err
    assert json.loads(out)["rendered"] == 16
    band_off, reference = face_band()
    centre = np.zeros((size, size), bool)
    centre[40:100, 34:94] = True  # eyes to mouth of a whole-face crop
    toml.write_text(toml.read_text().replace("source_detail = 0.0", "source_detail = 1.0"))
    code, out, err = run("merge", ws, "--json")
    assert code == 0, err
    assert json.loads(out)["rendered"] == 16  # the setting is part of every swapped frame's key
    band_on, _ = face_band()
    off, on = correlation(band_off, reference, centre), correlation(band_on, reference, centre)
    assert on > 0.5 and on > off + 0.3, (off, on)
    code, out, _ = run("merge", ws, "--json")
    assert json.loads(out)["rendered"] == 0
    before = dict(sqlite3.connect(ws / "doppel.db").execute("SELECT frame_idx, cache_key FROM renders"))
    assert len(set(before.values())) == 16


def test_no_usable_source_photograph_is_a_warning_not_a_failure(ws: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    """When no source face lies wholly inside its frame (here: a bar no face can clear) there is nothing to
    lend: merge says so, and renders the model's face as it is."""
    import doppel.merge.photos as photos

    monkeypatch.setattr(photos, "IN_FRAME", 1.01)
    with Workspace.open(ws) as w:
        assert not usable_photos(w) and SourcePhotos.load(w) is None
    code, out, err = run("merge", ws, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["rendered"] == 16
    assert any("source_detail" in warning for warning in report["warnings"])


def _face_points(size: int) -> np.ndarray:
    """68 landmarks of a frontal face with a closed mouth in a size x size crop (iBUG layout)."""
    s = size / 128
    jaw = np.stack([np.linspace(30, 98, 17), 64 + 40 * np.sin(np.linspace(0, np.pi, 17))], 1)
    brows = np.stack([np.r_[np.linspace(36, 58, 5), np.linspace(70, 92, 5)], np.full(10, 44.0)], 1)
    nose = np.stack([np.r_[np.full(4, 64.0), np.linspace(56, 72, 5)],
                     np.r_[np.linspace(52, 70, 4), np.full(5, 74.0)]], 1)
    eye = np.array([[-8, 0], [-4, -3], [4, -3], [8, 0], [4, 3], [-4, 3]], np.float64)
    eyes = np.r_[eye + (46, 56), eye + (82, 56)]
    outer = np.array([[-14, 0], [-9, -5], [-3, -6], [0, -5], [3, -6], [9, -5], [14, 0], [9, 6], [3, 8], [0, 8],
                      [-3, 8], [-9, 6]], np.float64)
    inner = np.array([[-10, 0], [-4, 0], [0, 0], [4, 0], [10, 0], [4, 0],
                      [0, 0], [-4, 0]], np.float64)
    mouth = np.r_[outer + (64, 90), inner + (64, 90)]
    return np.r_[jaw, brows, nose, eyes, mouth] * s


def test_photographs_lend_nothing_above_the_brows_nor_beyond_the_jaw() -> None:
    from doppel.merge.photos import DETAIL_SIGMA, lending_region

    size = 128
    points = _face_points(size)
    region = lending_region(points, size)
    assert region[75, 64] > 0.95 and region[90, 64] > 0.95  # the cheeks, nose and mouth get the detail
    assert region[: int(points[17:27, 1].min()) - 2].max() < 0.05  # nothing above the brows: hair, a hat
    assert region[int(points[8, 1] + 3 * DETAIL_SIGMA):].max() < 0.05  # nor far below the chin
    assert region[int(points[8, 1]), 64] > 0.5  # but the chin's own outline


def test_an_unreadable_source_crop_is_a_clear_error_and_loses_no_render(ws: Path) -> None:
    """A source crop damaged on disk: merge stops with a one-line error naming the face, exit 1; the renders
    already on disk are kept."""
    assert run("merge", ws, "--set", "0-7", "source_detail=0")[0] == 0  # half the shot rendered without it
    before = dict(sqlite3.connect(ws / "doppel.db").execute("SELECT frame_idx, path FROM renders"))
    kept = {i: (ws / p).read_bytes() for i, p in before.items() if p}
    with Workspace.open(ws) as w:
        photos = usable_photos(w)
    for f in photos:
        (ws / f.crop_path).write_bytes(b"not a png")
    code, _, err = run("merge", ws, "--set", "8-15", "source_detail=0.8")  # frames that need a photograph
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot be read" in errors[0] and "doppel extract --redo" in errors[0]
    for i, data in kept.items():
        assert (ws / before[i]).read_bytes() == data


def test_the_eyes_come_from_the_photograph_that_looks_where_the_target_looks(ws: Path) -> None:
    """Given the target's expression coefficients, the photograph lending the eyes is the one whose eye
    coefficients match (not the nearest in landmarks), and its band is lent above the nose; below, the band of
    the photograph nearest in landmarks."""
    from doppel.extract import blendshapes
    from doppel.merge.photos import DETAIL_SIGMA, GAZE_GAP_CODED, eye_region, lending_region

    size = 128
    with Workspace.open(ws) as w:
        photos = SourcePhotos.load(w)
        target = w.target()
        assert photos is not None and photos.expressions is not None and target is not None
        face = subject_faces(w, target.id)[3]
    points = transform_points(face.matrix * (size / face.crop_size), face.lm68)
    whole = photos.nearest(points)
    eyes = (whole + len(photos.faces) // 2) % len(photos.faces)
    assert eyes != whole
    looking_down = np.zeros(len(blendshapes.NAMES), np.float32)
    for name in ("eyeLookDownLeft", "eyeLookDownRight", "eyeBlinkLeft", "eyeBlinkRight"):
        looking_down[blendshapes.NAMES.index(name)] = 0.95
    photos.expressions = np.zeros_like(photos.expressions)
    photos.expressions[eyes] = looking_down
    assert photos.nearest_eyes(points, looking_down) == eyes
    assert photos.nearest_eyes(points, np.zeros_like(looking_down)) != eyes
    # Two photographs told apart by their texture: what each lends can be recognised in the result.
    rng = np.random.default_rng(0)
    for i in (whole, eyes):
        photos._crops[i] = rng.uniform(0, 1, photos._crop(i).shape).astype(np.float32)
    flat = np.full((size, size, 3), 0.5, np.float32)
    lent = photos.lend(flat, points, 1.0, looking_down) - flat
    sigma = DETAIL_SIGMA * size / 128
    band = {i: fine_band(photos.warped(points, size, i), sigma) for i in (whole, eyes)}
    inside = lending_region(points, size) > 0.9
    weight = eye_region(points, size)

    def share(where: np.ndarray, i: int) -> float:
        a, b = lent[where].ravel(), band[i][where].ravel()
        return float(a @ b / np.sqrt((a @ a) * (b @ b)))

    upper, lower = inside & (weight > 0.99), inside & (weight < 0.01)
    assert upper.sum() > 200 and lower.sum() > 200
    assert share(upper, eyes) > 0.9 and abs(share(upper, whole)) < 0.2
    assert share(lower, whole) > 0.9 and abs(share(lower, eyes)) < 0.2
    # A target whose look is near the whole face's photograph's (here 0.5 apart) keeps that photograph's eyes.
    # The eyes' photograph also squints; so does this target, which looks down only half as far (eye coefficients
    # that gaze ignores, so that the choice of photograph does not hang on near-equal landmark distances).
    squint = [blendshapes.NAMES.index(n) for n in ("eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight")]
    photos.expressions[eyes, squint] = 0.95
    glancing = looking_down * (0.5 / 0.95)
    glancing[squint] = 0.95
    assert photos.nearest_eyes(points, glancing) == eyes and not photos.looks_elsewhere(whole, glancing)
    near = photos.lend(flat, points, 1.0, glancing) - flat
    a, b = near[upper].ravel(), band[whole][upper].ravel()
    assert float(a @ b / np.sqrt((a @ a) * (b @ b))) > 0.9
    # For a model that draws the gaze itself the gap is smaller (GAZE_GAP_CODED): the same glance gets the eyes'
    # photograph, which looks where the model's eyes do.
    assert photos.looks_elsewhere(whole, glancing, GAZE_GAP_CODED)
    coded = photos.lend(flat, points, 1.0, glancing, GAZE_GAP_CODED) - flat
    assert share(upper, eyes) > 0.9 and float(np.abs(coded - lent).max()) < 1e-6
    # Without coefficients everything comes from the nearest in landmarks, as before.
    plain = photos.lend(flat, points, 1.0) - flat
    a, b = plain[upper].ravel(), band[whole][upper].ravel()
    assert float(a @ b / np.sqrt((a @ a) * (b @ b))) > 0.9
