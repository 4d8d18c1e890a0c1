"""Quality measures of `doppel eval`: expression openings and their correlation, detail that noise and grain
cannot raise, the seam at the mask edge, per-frame problem flags and the coverage report."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from doppel.evaluate import detail, expression
from doppel.evaluate.coverage import compare, features
from doppel.evaluate.flags import frame_ranges, problem_flags, worst_frames
from doppel.merge.blend import match_grain
from tests.faces import astro

# A 68-point face in a 200 px frame: eyes 60 px apart, lids and lips placed by hand.
_BASE = np.zeros((68, 2), np.float32)
_BASE[:17] = np.stack([np.linspace(40, 160, 17), 100 + 60 * np.sin(np.linspace(0, np.pi, 17))], 1)


def face(eye: float, mouth: float) -> np.ndarray:
    """68 points whose lid gap is `eye` and inner-lip gap `mouth` inter-ocular distances (IOD = 60 px)."""
    lm = _BASE.copy()
    for first, cx in ((36, 70.0), (42, 130.0)):
        xs = cx + np.array([-12, -4, 4, 12, 4, -4])
        ys = 80 + np.array([0, -0.5, -0.5, 0, 0.5, 0.5]) * eye * 60
        lm[first:first + 6] = np.stack([xs, ys], 1)
    lm[60:68] = np.stack([100 + np.array([-15, -5, 0, 5, 15, 5, 0, -5]),
                          140 + np.array([0, -0.5, -0.5, -0.5, 0, 0.5, 0.5, 0.5]) * mouth * 60], 1)
    return lm


def test_openings_are_in_inter_ocular_distances() -> None:
    lm = face(0.13, 0.25)
    assert expression.eye_opening(lm) == pytest.approx(0.13, abs=1e-5)
    assert expression.mouth_opening(lm) == pytest.approx(0.25, abs=1e-5)
    # The same face twice as big gives the same openings.
    assert expression.openings(lm * 2) == pytest.approx(expression.openings(lm), abs=1e-6)


def test_correlation_follows_and_ignores_missing_frames() -> None:
    t = np.arange(100)
    plate = 0.1 + 0.1 * np.sin(t / 5)
    assert expression.correlation(plate * 0.5 + 0.02, plate) == pytest.approx(1.0)
    assert expression.correlation(-plate, plate) == pytest.approx(-1.0)
    gappy = plate.copy()
    gappy[::3] = np.nan
    assert expression.correlation(gappy, plate) == pytest.approx(1.0)
    assert np.isnan(expression.correlation(np.full(100, 0.1), plate))  # a static mouth has no correlation
    assert np.isnan(expression.correlation(plate[:5], plate[:5]))


def _sequence(n: int = 8, noise: float = 3.0, seed: int = 0) -> list[np.ndarray]:
    """Plate frames: the astronaut's face drifting by sub-pixel steps, with fresh sensor noise in each."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(astro(), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32)
    frames = []
    for i in range(n):
        m = np.array([[1, 0, 0.4 * i], [0, 1, 0.3 * i]], np.float32)
        f = cv2.warpAffine(img, m, (256, 256), borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(f + rng.normal(0, noise, f.shape), 0, 255).astype(np.uint8))
    return frames


def _ratio(frames: list[np.ndarray], plates: list[np.ndarray], naive: bool = False) -> float:
    """The shot's detail of `frames` against `plates`, in an 80 px face (as on QCIF footage) brought to the
    128 px crop; `naive`: the plain band energy ratio instead (what noise fools)."""
    to_crop = np.array([[1.6, 0, -144], [0, 1.6, -64]], np.float64)
    mask = np.zeros((128, 128), bool)
    mask[16:112, 16:112] = True
    shared, plate_e = [], []
    for frame, plate in zip(frames, plates, strict=True):
        bm, bp = detail.aligned_band(frame, to_crop), detail.aligned_band(plate, to_crop)
        a, b = detail.plate_projection(bm, bp, mask)
        shared.append(float((bm * bm)[mask].sum()) if naive else a)
        plate_e.append(b)
    return detail.detail_ratio(np.array(shared), np.array(plate_e))


def test_detail_is_not_raised_by_noise_grain_or_a_fixed_pattern_but_is_by_true_detail() -> None:
    plates = _sequence()
    soft = [cv2.GaussianBlur(f, (0, 0), 2.0) for f in plates]
    rng = np.random.default_rng(1)
    noisy = [np.clip(f + rng.normal(0, 30, f.shape), 0, 255).astype(np.uint8) for f in soft]
    full = np.ones(plates[0].shape[:2], np.float32)
    grained = [(match_grain(f.astype(np.float32) / 255, p.astype(np.float32) / 255, full, 2.0, seed=i) * 255
                + 0.5).astype(np.uint8) for i, (f, p) in enumerate(zip(soft, plates, strict=True))]
    # An untrained decoder's steady checkerboard: the same in every frame, unrelated to the face.
    yy, xx = np.mgrid[:256, :256]
    checker = (12 * np.sign(np.sin(xx * np.pi / 3) * np.sin(yy * np.pi / 3)))[..., None]
    patterned = [np.clip(f + checker, 0, 255).astype(np.uint8) for f in soft]
    sharper = [cv2.GaussianBlur(f, (0, 0), 0.7) for f in plates]
    r_soft, r_noisy, r_grain, r_pattern, r_sharp = (
        _ratio(x, plates) for x in (soft, noisy, grained, patterned, sharper))
    assert _ratio(plates, plates) == pytest.approx(1.0)
    assert r_soft < 0.5
    for r in (r_noisy, r_grain, r_pattern):
        assert r <= r_soft + 0.02
    assert r_sharp > r_soft + 0.3
    # The naive band energy is fooled by noise and pattern alike: the test above has teeth.
    assert _ratio(noisy, plates, naive=True) > _ratio(soft, plates, naive=True) * 1.2
    assert _ratio(patterned, plates, naive=True) > _ratio(soft, plates, naive=True) * 1.2


def test_seam_sees_a_hard_edge_not_a_feathered_one() -> None:
    plate = cv2.resize(astro(), (256, 256), interpolation=cv2.INTER_AREA)
    mask = np.zeros((256, 256), bool)
    cv2.circle(mask.view(np.uint8), (128, 128), 70, 1, -1)
    darker = np.clip(plate.astype(np.float32) * 0.7, 0, 255)
    hard = np.where(mask[..., None], darker, plate).astype(np.uint8)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 12)[..., None]
    soft = (darker * alpha + plate * (1 - alpha)).astype(np.uint8)
    s_hard, s_soft = (detail.seam_strength(x, plate, mask, 10) for x in (hard, soft))
    assert detail.seam_strength(plate, plate, mask, 10) < 0.01
    assert s_hard > 2 * s_soft


def test_flags_mark_the_frames_with_problems() -> None:
    rows = [{"frame": i, "swapped": True, "eye_plate": 0.14, "mouth_plate": 0.2, "eye_out": 0.14,
             "mouth_out": 0.2, "identity_source": 0.6, "identity_target": 0.2, "detail": 0.8, "seam": 0.2,
             "flicker": 1.0, "expression_error": 0.0} for i in range(20)]
    rows[5]["mouth_out"] = 0.05
    rows[6].update(identity_source=0.1, eye_out=0.05, expression_error=0.05)
    rows[7] = {"frame": 7, "swapped": True, "eye_plate": 0.14, "mouth_plate": 0.2}  # face not found again
    rows[8]["detail"] = 0.2
    for r in rows:
        r.update(look_plate=0.8, blink_plate=0.7, look_out=0.7, blink_out=0.6)  # reading her notes, followed
    rows[9].update(look_out=-0.3, blink_out=0.02)  # the swap stares ahead where the plate looks down
    rows[10].update(blink_out=0.1)  # looks down, but with the lids wide open
    flags = problem_flags(rows)
    assert {k: list(np.flatnonzero(v)) for k, v in flags.items()} == {
        "lost": [7], "identity": [6], "eyes": [6], "gaze": [9, 10], "mouth": [5], "soft": [8], "flicker": [],
        "seam": []}
    assert worst_frames(rows, 2) == [6, 5]
    assert frame_ranges(np.array([0, 1, 1, 0, 0, 0, 0, 1, 0, 1], bool)) == [(1, 2), (7, 9)]


def test_coverage_names_the_target_frames_the_source_never_shows() -> None:
    rng = np.random.default_rng(0)
    # Source: 200 faces, mouth opening 0.05-0.12 (never closed, never wide), eyes always open, frontal.
    src_lm = [face(rng.uniform(0.12, 0.15), rng.uniform(0.05, 0.12)) for _ in range(200)]
    source = features(list(range(200)), src_lm, list(rng.uniform(-10, 10, 200)), list(rng.uniform(-5, 5, 200)))
    # Target: talking normally, but frames 120-180 wide open, and blinks at 40-42.
    mouth = np.where((np.arange(300) >= 120) & (np.arange(300) <= 180), 0.3, rng.uniform(0.06, 0.11, 300))
    eyes = np.where((np.arange(300) >= 40) & (np.arange(300) <= 42), 0.02, rng.uniform(0.125, 0.145, 300))
    target = features(list(range(300)), [face(e, m) for e, m in zip(eyes, mouth, strict=True)],
                      list(rng.uniform(-8, 8, 300)), list(rng.uniform(-4, 4, 300)))
    cov = compare(source, target)
    found = {(g.attribute, g.side, g.first, g.last) for g in cov.gaps}
    assert found == {("mouth", "high", 120, 180), ("eyes", "low", 40, 42)}
    mouth_gap = next(g for g in cov.gaps if g.attribute == "mouth")
    assert mouth_gap.message().startswith("frames 120-180: mouth wide open")
    assert mouth_gap.source_bound == pytest.approx(source.values["mouth"].max())
    assert cov.to_json()["uncovered_frames"]["mouth"] == list(range(120, 181))
    # A source that shows it all covers the same target.
    assert compare(target, target).gaps == []


def test_coverage_sees_a_downcast_look_the_landmarks_call_open_eyes() -> None:
    """The target reads her notes at frames 100-160 (looking down, lids lowered; the lid landmarks as far apart
    as ever); the source always looks ahead. Only the blendshape attributes find it."""
    from doppel.extract.blendshapes import NAMES

    rng = np.random.default_rng(1)

    def coefficients(n: int, down: np.ndarray) -> np.ndarray:
        c = rng.uniform(0.0, 0.05, (n, len(NAMES))).astype(np.float32)
        for name in ("eyeLookDownLeft", "eyeLookDownRight"):
            c[:, NAMES.index(name)] = down
        for name in ("eyeBlinkLeft", "eyeBlinkRight"):
            c[:, NAMES.index(name)] = 0.8 * down
        return c

    src_lm = [face(0.135, 0.1) for _ in range(100)]
    source = features(list(range(100)), src_lm, [0.0] * 100, [0.0] * 100,
                      coefficients(100, rng.uniform(0.0, 0.2, 100)))
    frames = np.arange(300)
    down = np.where((frames >= 100) & (frames <= 160), 0.85, rng.uniform(0.0, 0.2, 300))
    target = features(list(frames), [face(0.135, 0.1) for _ in frames], [0.0] * 300, [0.0] * 300,
                      coefficients(300, down))
    cov = compare(source, target)
    found = {(g.attribute, g.side, g.first, g.last) for g in cov.gaps}
    assert found == {("look", "high", 100, 160), ("lids", "high", 100, 160)}
    look = next(g for g in cov.gaps if g.attribute == "look")
    assert look.message().startswith("frames 100-160: eyes looking down (look 0.8")
    # Without coefficients the same faces show no gap at all: the lid landmarks never move.
    plain = compare(features(list(range(100)), src_lm, [0.0] * 100, [0.0] * 100),
                    features(list(frames), [face(0.135, 0.1) for _ in frames], [0.0] * 300, [0.0] * 300))
    assert plain.gaps == [] and "look" not in plain.to_json()["ranges"]


def test_faces_and_extract_report_coverage_of_the_target(extracted_pair: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from click.testing import CliRunner

    from doppel.cli import cli

    ws = tmp_path / "ws"
    shutil.copytree(extracted_pair, ws)
    runner = CliRunner()
    listing = json.loads(runner.invoke(cli, ["faces", str(ws), "--role", "target", "--limit", "0", "--json"]).output)
    source = json.loads(runner.invoke(cli, ["faces", str(ws), "--role", "source", "--limit", "0", "--json"]).output)
    assert source["coverage"] is None  # only the target's listing carries it
    cover = listing["coverage"]
    usable = [f for f in listing["listed"] if not f["excluded"]]
    assert cover["ranges"]["yaw"]["target"] == pytest.approx(
        np.percentile([f["yaw"] for f in usable], [5, 95]), abs=0.02)
    assert (ws / "coverage" / "coverage.png").stat().st_size > 1000
    assert {"look", "lids"} <= set(cover["ranges"])  # from the faces' blendshape coefficients
    extracted = runner.invoke(cli, ["extract", str(ws), "--json"])
    assert extracted.exit_code == 0, extracted.output
    assert json.loads(extracted.output)["coverage"] == cover
