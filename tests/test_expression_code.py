"""Expression codes (issue 14): numbers from the landmarks that drive the swapped face's eyes and mouth."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from doppel.errors import DoppelError
from doppel.extract import blendshapes
from doppel.extract.aligned import AlignedFace
from doppel.media import MediaReader
from doppel.merge.model import SwapModel
from doppel.merge.plan import plan
from doppel.merge.render import hidden_region
from doppel.train import expression
from doppel.train.config import PRESETS, ModelConfig, TrainConfig
from doppel.train.data import FaceTensors, TrainingData, hide_regions
from doppel.train.loop import Budget, Trainer, optimization_step
from doppel.train.models import build_model, registered
from doppel.workspace import Workspace
from tests.helpers import run


def face_points(eye: float = 0.13, mouth: float = 0.0, width: float = 1.0) -> np.ndarray:
    """68 landmarks of a frontal face (inter-ocular distance 1) with the given eye, mouth opening and width."""
    p = np.zeros((68, 2))
    for first, cx in ((36, -0.5), (42, 0.5)):  # eyes: corners, upper lid 1-2, corner, lower lid 4-5
        p[first:first + 6] = [(cx - 0.15, 0), (cx - 0.05, -eye / 2), (cx + 0.05, -eye / 2), (cx + 0.15, 0),
                              (cx + 0.05, eye / 2), (cx - 0.05, eye / 2)]
    p[48], p[54] = (-width / 2, 1.0), (width / 2, 1.0)
    p[60:68] = [(-0.3, 1.0), (-0.1, 1 - mouth / 2), (0, 1 - mouth / 2), (0.1, 1 - mouth / 2), (0.3, 1.0),
                (0.1, 1 + mouth / 2), (0, 1 + mouth / 2), (-0.1, 1 + mouth / 2)]
    return p


def test_codes_measure_openings_against_the_persons_own_face() -> None:
    usual = [face_points(0.14, 0.02, 1.0)] * 9
    blink, talk, smile = face_points(0.0, 0.02), face_points(0.14, 0.3), face_points(0.14, 0.02, 1.15)
    c = expression.codes([*usual, blink, talk, smile])
    assert c.shape == (12, expression.DIMS) and c.dtype == np.float32
    assert c[0] == pytest.approx([0.0, 0.02 / expression.MOUTH_SCALE, 0.0], abs=1e-5)
    assert c[9, 0] == pytest.approx(-1.0, abs=1e-5)       # closed eyes: -1 whatever the person's usual opening
    assert c[10, 1] == pytest.approx(1.0, abs=1e-5)       # wide-open mouth: 1
    assert c[11, 2] == pytest.approx(1.5, abs=1e-5)       # 0.15 inter-ocular distances wider
    # a person with narrower eyes: the same relative blink gives the same code
    narrow = expression.codes([face_points(0.07)] * 5 + [face_points(0.0)])
    assert narrow[-1, 0] == pytest.approx(-1.0, abs=1e-5) and narrow[0, 0] == pytest.approx(0.0, abs=1e-5)
    # a reference from the person's other faces is used as given
    assert expression.codes([face_points(0.07)], (0.14, 1.0))[0, 0] == pytest.approx(-0.5, abs=1e-5)


def coefficients(down: float = 0.0, up: float = 0.0, blink: float = 0.0) -> np.ndarray:
    """52 blendshape coefficients with both eyes looking down / up and blinking by the given amounts."""
    c = np.zeros(len(blendshapes.NAMES), np.float32)
    for side in ("Left", "Right"):
        c[blendshapes.NAMES.index(f"eyeLookDown{side}")] = down
        c[blendshapes.NAMES.index(f"eyeLookUp{side}")] = up
        c[blendshapes.NAMES.index(f"eyeBlink{side}")] = blink
    return c


def test_gaze_codes_add_the_look_and_the_lids_from_the_coefficients() -> None:
    """The 68 landmarks cannot tell a downcast look from an ordinary one; with coefficients the code can. The
    first three numbers are the landmarks' as before, and the gaze is absolute (not the person's median)."""
    lms = [face_points(0.14, 0.02)] * 4
    plain = expression.codes(lms)
    looks = np.stack([coefficients(), coefficients(down=0.8, blink=0.5), coefficients(up=0.4),
                      coefficients(down=1.0, blink=1.0)])
    c = expression.codes(lms, coefficients=looks)
    assert c.shape == (4, expression.DIMS + expression.GAZE_DIMS) and c.dtype == np.float32
    assert np.array_equal(c[:, :expression.DIMS], plain)
    assert c[0, 3:] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert c[1, 3:] == pytest.approx([0.8 / expression.GAZE_SCALE, 0.5 / expression.GAZE_SCALE], abs=1e-5)
    assert c[2, 3] == pytest.approx(-0.4 / expression.GAZE_SCALE, abs=1e-5)      # looking up: negative
    assert c[3, 3:] == pytest.approx([2.0, 2.0], abs=1e-6)                        # clipped like the rest
    # the same look on one face among many ordinary ones keeps its value: nothing is relative to the median
    many = expression.codes([face_points()] * 9, coefficients=np.stack([coefficients(down=0.8)] * 9))
    assert many[:, 3] == pytest.approx(np.full(9, 1.6), abs=1e-5)
    assert expression.codes([], coefficients=np.zeros((0, 52))).shape == (0, 5)
    with pytest.raises(ValueError, match="coefficients"):
        expression.codes(lms, coefficients=looks[:3])


def test_hiding_blurs_only_the_region_of_the_chosen_faces() -> None:
    img = torch.rand(2, 3, 32, 32)
    region = torch.zeros(2, 1, 32, 32)
    region[:, :, 8:16, 8:24] = 1
    out = hide_regions(img, region, torch.tensor([True, False]))
    assert torch.equal(out[1], img[1])
    assert torch.equal(out[0][:, 20:], img[0][:, 20:])
    assert float(out[0][:, 8:16, 8:24].std()) < 0.5 * float(img[0][:, 8:16, 8:24].std())
    # an empty region changes nothing even where chosen (the swap hides this way for every face of a batch)
    assert torch.equal(hide_regions(img, torch.zeros_like(region), torch.tensor([True, True])), img)


def test_configs_without_a_code_still_load_and_bad_sizes_are_rejected() -> None:
    assert ModelConfig().expression_dims == 0  # models saved before the code existed
    assert ModelConfig(expression_dims=5).expression_dims == 5   # with the gaze
    for wrong in (2, 4, 6):
        with pytest.raises(DoppelError, match="expression_dims"):
            ModelConfig(expression_dims=wrong)
    with pytest.raises(DoppelError, match="hide_expression"):
        TrainConfig(hide_expression=1.5)


@pytest.mark.parametrize("dims", [3, 5])
@pytest.mark.parametrize("arch", registered())
def test_every_model_takes_codes(arch: str, dims: int) -> None:
    cfg = ModelConfig(arch, 64, encoder_dims=4, bottleneck_dims=8, inter_dims=8, decoder_dims=4, mask_dims=4,
                      expression_dims=dims)
    model = build_model(cfg)
    x, code = torch.rand(2, 3, 64, 64), torch.zeros(2, dims)
    code[:, dims - 1] = torch.tensor([-1.0, 1.0])   # the last number: the mouth's width, or the lids
    out = model(x, x, code, code)
    assert out["src"].shape == (2, 3, 64, 64)
    with torch.no_grad():
        a, _ = model.swap(x[:1].expand(2, -1, -1, -1), code)
        plain, _ = model.swap(x, None)   # no code: an ordinary face (zeros)
    assert not torch.equal(a[0], a[1]) and plain.shape == a.shape


def test_a_decoder_learns_the_mouth_from_the_code_when_the_face_hides_it() -> None:
    """Faces whose 'mouth' (a dark bar) has a height given by the code; the bar is always hidden in the input,
    so only the code can tell the decoder how tall to draw it. After training, the swap draws a taller bar for
    a larger code."""
    arch = "df"
    torch.manual_seed(0)
    res, n = 64, 32
    rng = np.random.default_rng(0)
    heights = rng.uniform(0, 1, n)
    images = np.full((n, 3, res, res), 180, np.uint8)
    for i, h in enumerate(heights):
        images[i, :, 40:40 + 2 + int(round(h * 14)), 20:44] = 40
    region = np.zeros((n, 1, res, res), np.uint8)
    region[:, :, 36:60, 16:48] = 255
    code = np.zeros((n, 3), np.float32)
    code[:, 1] = heights * 2 - 1
    faces = FaceTensors(torch.from_numpy(images), torch.full((n, 1, res, res), 255, dtype=torch.uint8),
                        torch.from_numpy(region), torch.full((n,), 1.0 / n, dtype=torch.float64), list(range(n)),
                        torch.from_numpy(code))
    cfg = ModelConfig(arch, res, encoder_dims=8, bottleneck_dims=16, inter_dims=16, decoder_dims=8, mask_dims=4,
                      expression_dims=3)
    train = replace(PRESETS["tiny-64"].train, batch_size=4, learning_rate=2e-3, random_warp=False,
                    color_match=False, lr_warmup_steps=0)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=train.learning_rate, betas=(0.5, 0.999))
    data = TrainingData(faces, faces, None, None)
    for step in range(100):
        optimization_step(model, opt, data, train, 0, step, hide=1.0)
    model.eval()
    x = torch.from_numpy(images[:1]).float() / 255
    x = hide_regions(x, torch.from_numpy(region[:1]).float() / 255, torch.tensor([True]))
    dark = []
    with torch.no_grad():
        for value in (-1.0, 1.0):
            face, _ = model.swap(x, torch.tensor([[0.0, value, 0.0]]))
            dark.append(float((face[0, :, 36:60, 20:44].mean(0) < 0.43).float().sum()))
    assert dark[1] > dark[0] + 150, dark  # a 16-row bar against a 2-row one: 24 columns x 14 rows more


def test_merge_feeds_the_targets_codes_and_can_take_the_expression_from_the_landmarks(
        trained_pair: Path, tmp_path: Path) -> None:
    """A model with a code renders with the plate's codes. With `expression = "landmarks"` (the default) its
    input has the eyes and mouth blurred out; `expression = "face"` set on frames 0-5 re-renders only those
    frames, with the face as it is."""
    ws = tmp_path / "ws"
    shutil.copytree(trained_pair, ws)
    preset = PRESETS["tiny-64"]
    with Workspace.open(ws) as opened:
        model_cfg = replace(preset.model, face_type=opened.settings.extract.face_type, expression_dims=3)
        trainer = Trainer(opened, opened.models.folder("coded"), preset.name, model_cfg, preset.train,
                          torch.device("cpu"))
        trainer.train(Budget(iterations=3, preview_minutes=1e9))
    toml = ws / "doppel.toml"
    toml.write_text(toml.read_text().replace('model = "main"', 'model = "coded"'))
    code, out, err = run("merge", ws, "--json")
    assert code == 0, err
    first = renders(ws)
    assert len(first) >= 10
    code, out, err = run("merge", ws, "--set", "0-5", "expression=face", "--json")
    assert code == 0, err
    second = renders(ws)
    again = {i for i in first if first[i] != second[i]}   # (updated_at, key) changed: rendered again
    assert again and again <= set(range(6)) and json.loads(out)["rendered"] == len(again), again
    with Workspace.open(ws) as opened:
        model = SwapModel(opened, "coded", "cpu")
        assert model.expression_dims == 3
        plans = {p.index: p for p in plan(opened, model.id) if not p.passthrough}
        target = opened.target()
        assert target is not None
        with MediaReader(target.info) as reader:
            for i in (min(again), max(plans)):
                p = plans[i]
                assert p.face is not None
                m = AlignedFace.of(p.face).alignment(64, model_cfg.face_type)
                crop = cv2.warpAffine(reader[i], m, (64, 64), flags=cv2.INTER_AREA)
                region = hidden_region(p, 64)
                assert p.settings.expression == ("face" if i in again else "landmarks")
                assert (not region.any()) == (p.settings.expression == "face")
                if region.any():
                    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
                    hidden = hide_regions(x, torch.from_numpy(region)[None, None].float() / 255, torch.tensor([True]))
                    changed = (hidden - x).abs()[0].amax(0) > 0
                    assert 0.03 < float(changed.float().mean()) < 0.6   # the eyes and mouth, not the whole crop
                faces, _ = model.swap(np.stack([crop, crop]), expression.codes(
                    [p.face.lm68, p.face.lm68 * 0 + face_points(0.0, 0.4)], (0.13, 1.0)), np.stack([region, region]))
                assert faces.shape == (2, 64, 64, 3)
    code, _, err = run("merge", ws, "--set", "0-5", "expression=mouth")
    assert code != 0 and "expression" in err


def renders(ws: Path) -> dict[int, tuple[str, str]]:
    db = sqlite3.connect(ws / "doppel.db")
    try:
        return {i: (at, key) for i, at, key in db.execute(
            "SELECT frame_idx, updated_at, cache_key FROM renders WHERE path IS NOT NULL")}
    finally:
        db.close()


def test_a_model_with_the_gaze_trains_and_merges_on_the_faces_coefficients(trained_pair: Path,
                                                                          tmp_path: Path) -> None:
    """`doppel train --gaze` makes a model with `expression_dims` 5: training reads each face's blendshape
    coefficients into its code (computed once and kept in the workspace), and the merge gives the model the
    plate's. The choice is made with the model: continuing it with --no-gaze is a clear error."""
    ws = tmp_path / "ws"
    shutil.copytree(trained_pair, ws)
    code, out, err = run("train", ws, "--model", "gaze", "--gaze", "--preset", "tiny-64", "--iterations", "1")
    assert code == 0, err
    code, out, err = run("train", ws, "--model", "gaze", "--no-gaze", "--iterations", "1")
    assert code != 0 and "made with the gaze" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = run("train", ws, "--no-gaze", "--iterations", "1")   # main: made without it, agrees
    assert code == 0, err
    with Workspace.open(ws) as opened:
        trainer = Trainer.open(opened, name="gaze", device="cpu", gaze=True)
        assert trainer.model_cfg.expression_dims == 5 and trainer.step == 1
        data = trainer.load_data()
        assert data.src.expression.shape[1] == data.dst.expression.shape[1] == 5
        faces = {f.id: f for f in opened.faces.of_chosen("source", usable_only=True)}
        train_faces = [faces[i] for i in data.src.face_ids]
        looks = blendshapes.of_faces(opened, train_faces)   # now read back from the database
        expected = np.clip(np.array([expression.gaze(c) for c in looks]) / expression.GAZE_SCALE, -2, 2)
        assert np.allclose(data.src.expression[:, 3:].numpy(), expected, atol=1e-5)
        stored = opened.expressions.get(list(faces))
        assert set(stored) == set(faces)             # every usable source face, held-out ones included
        trainer.train(Budget(iterations=2, preview_minutes=1e9))
    toml = ws / "doppel.toml"
    text = toml.read_text().replace('model = "main"', 'model = "gaze"')
    assert "source_detail = 1.0" in text
    toml.write_text(text.replace("source_detail = 1.0", "source_detail = 0.0"))   # nothing else reads them
    db = sqlite3.connect(ws / "doppel.db")
    with db:
        db.execute("DELETE FROM face_expressions")
    db.close()
    code, out, err = run("merge", ws, "--json")
    assert code == 0, err
    assert json.loads(out)["rendered"] >= 10
    with Workspace.open(ws) as opened:
        assert SwapModel(opened, "gaze", "cpu").expression_dims == 5
        target = [f.id for f in opened.faces.of_chosen("target", usable_only=True)]
        assert set(opened.expressions.get(target)) == set(target)   # the merge read the plate's gaze


def test_a_model_started_from_a_gaze_model_keeps_the_gaze(trained_pair: Path, tmp_path: Path) -> None:
    """`--init-from` takes the other model's gaze choice with its preset; asking for the other choice is a clear
    one-line error that names the gaze."""
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(trained_pair, first)
    shutil.copytree(trained_pair, second)
    code, out, err = run("train", first, "--model", "eyes", "--gaze", "--preset", "tiny-64", "--iterations", "1")
    assert code == 0, err
    code, out, err = run("train", second, "--model", "eyes", "--no-gaze", "--init-from", first, "--iterations", "1")
    assert code != 0 and "gaze" in err and len(err.strip().splitlines()) == 1, err
    assert not (second / "models" / "eyes" / "latest.json").exists()
    code, out, err = run("train", second, "--model", "eyes", "--init-from", first, "--iterations", "1")
    assert code == 0, err
    with Workspace.open(second) as opened:
        assert SwapModel(opened, "eyes", "cpu").expression_dims == 5
