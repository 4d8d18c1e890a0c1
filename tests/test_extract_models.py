"""The extraction models and geometry on public-domain portraits and their variants."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest

from doppel.extract.align import FACE_TYPES, align_matrix, canonical_points, invert, transform_points, warp_face
from doppel.extract.analyze import AnalyzerConfig, FaceAnalyzer, FaceResult
from doppel.extract.layout import MIRROR_68, inter_ocular
from doppel.extract.masks import face_polygon, lower_forehead, rasterize
from doppel.extract.smoothing import one_euro, smooth_offline
from tests.faces import astro, hopper, mirrored, rotated, scaled, two_people


@functools.cache
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(AnalyzerConfig())


def only_face(image: np.ndarray) -> FaceResult:
    faces = analyzer().analyze(image)
    assert len(faces) == 1
    return faces[0]


def test_astronaut_face_is_where_it_is() -> None:
    face = only_face(astro())
    # Eileen Collins' face spans roughly x 175-285, y 60-180 in the 512x512 portrait.
    cx, cy = face.lm68[30]  # nose tip
    assert 205 < cx < 250 and 105 < cy < 145
    assert 40 < face.size_px < 70
    right_eye, left_eye = face.lm68[36:42].mean(0), face.lm68[42:48].mean(0)
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left
    assert abs(face.yaw) < 12 and abs(face.pitch) < 12 and abs(face.roll) < 8


@pytest.mark.parametrize("variant", ["rotated", "scaled", "mirrored"])
def test_landmarks_follow_the_image(variant: str) -> None:
    original = only_face(astro())
    image, m = {"rotated": lambda: rotated(astro(), 30), "scaled": lambda: scaled(astro(), 0.25),
                "mirrored": lambda: mirrored(astro())}[variant]()
    face = only_face(image)
    back = transform_points(invert(m), face.lm68)
    if variant == "mirrored":
        back = back[MIRROR_68]
    error = np.linalg.norm(back - original.lm68, axis=1).mean() / inter_ocular(original.lm68)
    assert error < {"rotated": 0.06, "scaled": 0.10, "mirrored": 0.06}[variant]


def test_pose_responds_to_rotation_and_mirroring() -> None:
    base = only_face(astro())
    turned = only_face(rotated(astro(), 30)[0])
    assert turned.roll - base.roll == pytest.approx(-30, abs=5)
    flipped = only_face(mirrored(astro())[0])
    assert flipped.roll == pytest.approx(-base.roll, abs=3)


def test_identity_separates_people() -> None:
    a = only_face(astro()).embedding
    assert float(a @ only_face(mirrored(astro())[0]).embedding) > 0.8
    assert float(a @ only_face(rotated(astro(), 30)[0]).embedding) > 0.8
    assert float(a @ only_face(hopper()).embedding) < 0.35
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)


def test_two_people_are_both_found() -> None:
    faces = analyzer().analyze(two_people())
    assert len(faces) == 2
    xs = sorted(float(f.lm68[30, 0]) for f in faces)
    assert xs[0] < 300 < xs[1]


def test_no_face_in_a_plain_picture() -> None:
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (9, 9), 3)
    assert analyzer().analyze(noise) == []


@pytest.mark.parametrize("face_type", list(FACE_TYPES))
def test_crop_round_trips_to_the_frame(face_type: str) -> None:
    image = astro().copy()
    face = only_face(image)
    m = align_matrix(face.lm68, face_type, 256)  # type: ignore[arg-type]
    # Points: frame -> crop -> frame.
    there = transform_points(m, face.lm68)
    assert np.abs(transform_points(invert(m), there) - face.lm68).max() < 1e-6
    # The landmarks land on the canonical face (that is what alignment means).
    fit = np.linalg.norm(there[17:] - canonical_points(face_type, 256)[17:], axis=1).mean()  # type: ignore[arg-type]
    assert fit < 0.05 * 256
    # Pixels: a bright dot in the frame appears in the crop where the matrix says, and warping the crop
    # back with the inverse puts it back where it was, within half a pixel.
    dot = np.array([230.0, 120.0])
    marked = np.zeros_like(image)
    cv2.circle(marked, (int(dot[0] * 16), int(dot[1] * 16)), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)
    crop = warp_face(marked, m, 256)
    assert np.abs(_centroid(crop) - transform_points(m, dot[None])[0]).max() < 0.5
    back = cv2.warpAffine(crop, invert(m), (512, 512), flags=cv2.INTER_CUBIC)
    assert np.abs(_centroid(back) - dot).max() < 0.5


def _centroid(image: np.ndarray) -> np.ndarray:
    w = image[..., 0].astype(np.float64)
    ys, xs = np.mgrid[: w.shape[0], : w.shape[1]]
    return np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])


def test_masks_cover_the_face_and_grow_with_the_face_type() -> None:
    face = only_face(astro())
    areas = {}
    for face_type in ("full", "whole_face", "head"):
        polygon = face_polygon(face.mesh, face.lm68, face_type)  # type: ignore[arg-type]
        mask = rasterize(polygon, (512, 512))
        x, y = face.lm68[30].round().astype(int)
        assert mask[y, x] == 255 and mask[0, 0] == 0 and mask[500, 256] == 0
        areas[face_type] = int((mask > 127).sum())
        crop_mask = rasterize(polygon, (128, 128), align_matrix(face.lm68, "whole_face", 128))
        assert crop_mask.shape == (128, 128) and crop_mask[64, 64] == 255
    assert areas["full"] < areas["whole_face"] < areas["head"]


def test_lowering_the_forehead_undoes_the_crop_types_lift() -> None:
    """keep=1 leaves a whole_face polygon as it is; keep=0 brings it back to the mesh oval (the `full` polygon);
    in between the mask's top lies between the two and the chin does not move."""
    face = only_face(astro())
    whole = face_polygon(face.mesh, face.lm68, "whole_face")
    full = face_polygon(face.mesh, face.lm68, "full")
    assert np.array_equal(lower_forehead(whole, face.lm68, "whole_face", 1.0), whole)
    assert np.abs(lower_forehead(whole, face.lm68, "whole_face", 0.0) - full).max() < 0.5  # pixels
    half = lower_forehead(whole, face.lm68, "whole_face", 0.5)
    assert full[:, 1].min() > half[:, 1].min() > whole[:, 1].min()
    assert half[:, 1].max() == whole[:, 1].max()


def test_one_euro_removes_jitter_and_offline_follows_fast_motion() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(120) / 30
    still = 100 + rng.normal(0, 0.5, (120, 5, 2))
    smoothed = one_euro(t, still, scale=[40.0] * 120)
    assert np.abs(np.diff(smoothed[30:], axis=0)).mean() < 0.5 * np.abs(np.diff(still[30:], axis=0)).mean()
    ramp = (np.linspace(0, 400, 120)[:, None, None] + np.zeros((120, 5, 2))) + rng.normal(0, 0.3, (120, 5, 2))
    assert np.abs(smooth_offline(t, ramp, scale=[40.0] * 120) - ramp)[5:-5].mean() < 0.02 * 40
