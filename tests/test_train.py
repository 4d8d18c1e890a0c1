"""Training: models, losses, data, exact resume, crash safety, rollback, distributed equivalence."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from doppel.errors import DoppelError
from doppel.train import checkpoint, losses
from doppel.train.config import PRESETS, ModelConfig, default_preset
from doppel.train.data import make_batch, source_as_trained
from doppel.train.loop import Budget, Trainer
from doppel.train.models import build_model, registered
from doppel.workspace import Workspace
from tests.helpers import run


@pytest.fixture
def ws(extracted_pair: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(extracted_pair, copy)
    return copy


def weights(ws: Path, name: str = "main", part: str = "model") -> dict[str, torch.Tensor]:
    pointer = json.loads((ws / "models" / name / "latest.json").read_text())
    return load_file(str(ws / "models" / name / "checkpoints" / pointer["checkpoint"] / f"{part}.safetensors"))


@pytest.mark.parametrize("arch", registered())
def test_every_registered_model_maps_faces_to_faces(arch: str) -> None:
    cfg = ModelConfig(arch, 64, encoder_dims=8, bottleneck_dims=16, inter_dims=16, decoder_dims=8, mask_dims=4)
    model = build_model(cfg)
    x = torch.rand(2, 3, 64, 64)
    out = model(x, x)
    assert set(out) == {"src", "src_mask", "dst", "dst_mask", "src_code", "dst_code"}
    assert out["src"].shape == (2, 3, 64, 64) and out["dst_mask"].shape == (2, 1, 64, 64)
    assert out["src_code"].shape == out["dst_code"].shape == (2, 16, 8, 8)  # what the swap decodes
    with torch.no_grad():
        face, mask = model.swap(x)
    assert face.shape == (2, 3, 64, 64) and float(face.min()) >= 0 and float(face.max()) <= 1


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds(name: str) -> None:
    with torch.device("meta"):
        model = build_model(PRESETS[name].model)
    assert sum(p.numel() for p in model.parameters()) > 10_000


def test_invalid_configs_are_rejected() -> None:
    with pytest.raises(DoppelError, match="multiple of 16"):
        ModelConfig(resolution=100)
    with pytest.raises(DoppelError, match="unknown architecture"):
        ModelConfig(arch="gan")


def test_ssim_is_one_for_equal_images_and_drops_with_noise() -> None:
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(losses.ssim(x, x), torch.ones(2), atol=1e-5)
    noisy = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert float(losses.ssim(x, noisy).mean()) < 0.8


def test_batches_are_a_function_of_the_step_and_warp_only_the_input(ws: Path) -> None:
    with Workspace.open(ws) as w:
        trainer = Trainer.open(w, preset="tiny-64")
        data = trainer.load_data()
    a_src, a_dst = make_batch(data, 4, seed=0, salt=0, step=7)
    b_src, b_dst = make_batch(data, 4, seed=0, salt=0, step=7)
    c_src, _ = make_batch(data, 4, seed=0, salt=0, step=8)
    assert all(torch.equal(a_src[k], b_src[k]) for k in a_src)
    assert not torch.equal(a_src["target"], c_src["target"])
    assert a_src["input"].shape == (4, 3, 64, 64) and a_src["mask"].shape == (4, 1, 64, 64)
    plain_src, _ = make_batch(data, 4, seed=0, salt=0, step=7, warp=False, color_match=False)
    assert torch.allclose(plain_src["input"], plain_src["target"], atol=1e-6)
    assert not torch.allclose(a_src["input"], a_src["target"], atol=1e-3)


def test_previews_and_validation_show_the_source_as_training_does(ws: Path) -> None:
    """With colour matching the model only ever sees the source in target faces' colours; the preview and the
    validation figure show it so (in its own colours the reconstruction looks softer than the model is)."""
    import numpy as np
    from PIL import Image

    from doppel.color import masked_stats, rgb_to_lab

    with Workspace.open(ws) as w:
        trainer = Trainer.open(w, preset="tiny-64")
        data = trainer.load_data()
        idx = torch.linspace(0, len(data.src) - 1, min(4, len(data.src), len(data.dst))).long()
        raw = data.src.images[idx].float() / 255
        assert torch.equal(source_as_trained(data.src, idx, data.dst, color_match=False), raw)
        shown = source_as_trained(data.src, idx, data.dst, color_match=True)
        assert torch.equal(shown, source_as_trained(data.src, idx, data.dst, color_match=True))  # steady
        ref = torch.linspace(0, len(data.dst) - 1, len(data.src)).round().long()[idx]
        mask_src, mask_ref = data.src.masks[idx].float() / 255, data.dst.masks[ref].float() / 255
        target_mean = masked_stats(rgb_to_lab(data.dst.images[ref].float() / 255), mask_ref)[0]
        before = (masked_stats(rgb_to_lab(raw), mask_src)[0] - target_mean).abs().mean()
        after = (masked_stats(rgb_to_lab(shown), mask_src)[0] - target_mean).abs().mean()
        assert float(after) < 0.25 * float(before), (float(before), float(after))
        path = trainer.write_preview()
    grid = np.asarray(Image.open(path)).astype(np.float32) / 255
    res = raw.shape[-1]
    first = torch.from_numpy(grid[14:14 + res, :res]).permute(2, 0, 1)  # under the 14 px header: source, row 1
    assert float((first - shown[0]).abs().max()) < 1 / 255 + 1e-6
    assert float((first - raw[0]).abs().mean()) > 4 * float((first - shown[0]).abs().mean())


def test_short_training_lowers_the_loss_and_saves_everything(ws: Path) -> None:
    with Workspace.open(ws) as w:
        trainer = Trainer.open(w, preset="tiny-64")
        first = [trainer.train_step()[0] for _ in range(5)]
        result = trainer.train(Budget(iterations=115, preview_minutes=1e9))
    assert result.step == 120 and result.rollbacks == 0
    log = [json.loads(line) for line in (ws / "models" / "main" / "losses.jsonl").read_text().splitlines()]
    last = sum(r["loss"] for r in log[-3:]) / 3
    assert last < 0.7 * (sum(first) / len(first))
    assert (ws / "models" / "main" / "preview.png").is_file()
    state = json.loads((result.checkpoint / "state.json").read_text())
    assert state["step"] == 120 and state["preset"] == "tiny-64" and 0 < state["validation"]["ssim_src"] <= 1


def test_exact_resume_after_kill_9(ws: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    shutil.copytree(ws, straight)
    total = 40
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "doppel", "train"]
    subprocess.run([*cmd, str(straight), "--preset", "tiny-64", "--iterations", str(total)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    proc = subprocess.Popen([*cmd, str(ws), "--preset", "tiny-64", "--iterations", str(total),
                             "--checkpoint-minutes", "0"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    pointer = ws / "models" / "main" / "latest.json"
    deadline = time.time() + 600  # (generous: on a loaded machine 20 steps can take minutes)
    while time.time() < deadline:
        if pointer.exists() and json.loads(pointer.read_text())["step"] >= total // 2:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads(pointer.read_text())["step"]
    assert total // 2 <= done < total
    subprocess.run([*cmd, str(ws), "--iterations", str(total - done)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a, b = weights(straight), weights(ws)
    assert json.loads(pointer.read_text())["step"] == total
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_write_killed_half_way_keeps_the_previous_one(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Workspace.open(ws) as w:
        trainer = Trainer.open(w, preset="tiny-64")
        trainer.train(Budget(iterations=3, preview_minutes=1e9))
        good = checkpoint.latest(trainer.folder)

        def dies(*args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(checkpoint, "save_file", dies)
        trainer.train_step()
        with pytest.raises(DoppelError, match="previous one is kept"):
            trainer.save()
    assert checkpoint.latest(ws / "models" / "main") == good
    assert checkpoint.load(good).state["step"] == 3
    assert not list((ws / "models" / "main" / "checkpoints").glob(".*"))


def test_non_finite_loss_rolls_back(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Workspace.open(ws) as w:
        trainer = Trainer.open(w, preset="tiny-64")
        real = trainer.train_step
        calls = {"n": 0}

        def flaky() -> tuple[float, dict[str, float]]:
            calls["n"] += 1
            loss, parts = real()
            if calls["n"] == 5:
                with torch.no_grad():
                    for p in trainer.model.parameters():
                        p.fill_(float("nan"))
                return float("nan"), parts
            return loss, parts

        monkeypatch.setattr(trainer, "train_step", flaky)
        result = trainer.train(Budget(iterations=10, preview_minutes=1e9))
    assert result.rollbacks == 1 and result.step == 10
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_bad_models_and_data_are_clear_errors(ws: Path, tmp_path: Path) -> None:
    assert run("train", ws, "--preset", "tiny-64", "--iterations", "2")[0] == 0
    code, _, err = run("train", ws, "--preset", "cpu-64", "--iterations", "1")
    assert code == 1 and "made with preset 'tiny-64'" in err
    code, _, err = run("train", ws, "--model", "other", "--preset", "cpu-64", "--iterations", "1",
                       "--init-from", ws)
    assert code == 1 and "cannot start" in err
    # A corrupted weights file.
    latest = checkpoint.latest(ws / "models" / "main")
    assert latest is not None
    data = (latest / "model.safetensors").read_bytes()
    (latest / "model.safetensors").write_bytes(data[: len(data) // 2])
    code, _, err = run("train", ws, "--iterations", "1")
    assert code == 1 and "corrupt or truncated" in err
    # A checkpoint of another resolution in the place of this one.
    state = json.loads((latest / "state.json").read_text())
    state["model"]["resolution"] = 128
    (latest / "model.safetensors").write_bytes(data)
    (latest / "state.json").write_text(json.dumps(state))
    code, _, err = run("train", ws, "--iterations", "1")
    assert code == 1 and "does not fit this model" in err
    # No faces at all.
    run("init", tmp_path / "empty")
    code, _, err = run("train", tmp_path / "empty", "--iterations", "1")
    assert code == 1 and "no usable source faces" in err


def test_init_from_another_workspace(ws: Path, tmp_path: Path) -> None:
    assert run("train", ws, "--preset", "tiny-64", "--iterations", "3")[0] == 0
    second = tmp_path / "second"
    shutil.copytree(ws, second)
    shutil.rmtree(second / "models")
    code, _, err = run("train", second, "--preset", "tiny-64", "--init-from", ws, "--iterations", "0")
    assert code == 0, err
    # the second model starts from the first's moving average: the weights the first renders with
    a, b = weights(ws, part="ema"), weights(second)
    assert all(torch.equal(a[k].to(b[k].dtype), b[k]) for k in a)
    assert not all(torch.equal(a[k], v) for k, v in weights(ws).items() if v.is_floating_point())
    # Without --preset the new model takes the preset of the one it starts from, whatever the run's length.
    third = tmp_path / "third"
    shutil.copytree(second, third)
    shutil.rmtree(third / "models")
    code, out, err = run("train", third, "--init-from", ws, "--minutes", "30", "--iterations", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["preset"] == "tiny-64"


def test_moving_average_is_saved_resumed_and_rendered(ws: Path) -> None:
    """The checkpoint keeps the weights' moving average beside the weights; merge renders with it; a resumed
    run continues it (it does not restart from the last weights)."""
    from doppel.merge.model import SwapModel
    from doppel.workspace import Workspace

    assert run("train", ws, "--preset", "tiny-64", "--iterations", "6")[0] == 0
    ema, own = weights(ws, part="ema"), weights(ws)
    moved = [k for k, v in own.items() if v.is_floating_point() and not torch.allclose(v, ema[k])]
    assert moved, "after 6 steps the average must differ from the last weights"
    with Workspace.open(ws) as opened:
        rendered = SwapModel(opened, "main", "cpu").model.state_dict()
    assert all(torch.equal(rendered[k], ema[k].to(rendered[k].dtype)) for k in ema)
    assert run("train", ws, "--iterations", "1")[0] == 0
    after, new = weights(ws, part="ema"), weights(ws)
    d = 8 / 17  # the ramped decay at step 7
    for k in moved:
        assert torch.allclose(after[k], d * ema[k] + (1 - d) * new[k], atol=1e-6)


@pytest.mark.parametrize("gaze", [False, True])
def test_two_process_ddp_matches_one_process(ws: Path, tmp_path: Path, gaze: bool) -> None:
    """Also with the gaze in the expression code, whose coefficients one process reads and stores for both."""
    single = tmp_path / "single"
    shutil.copytree(ws, single)
    args = ["train", "--preset", "tiny-64", "--iterations", "6", "--batch-size", "4", "--device", "cpu",
            *(["--gaze"] if gaze else [])]
    scratch = tmp_path / "tmp"  # torchrun leaves a folder in the temporary directory on every launch
    scratch.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)}
    subprocess.run([sys.executable, "-m", "doppel", args[0], str(single), *args[1:]], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "doppel", args[0], str(ws), *args[1:]], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = weights(single), weights(ws)
    assert json.loads((ws / "models" / "main" / "latest.json").read_text())["step"] == 6
    state = json.loads((ws / "models" / "main" / "checkpoints" / "step-00000006" / "state.json").read_text())
    assert state["model"]["expression_dims"] == (5 if gaze else 0)
    # Summation order differs between one process and two, and Adam's normalisation turns those last-bit
    # differences on near-zero gradients into full-size steps; so compare the whole update, not each element:
    # the two runs' weights must differ by under 5 % of how far training moved them. (A wrong split of the
    # global batch gives differences as large as the update itself.)
    start = load_file(str(ws / "models" / "main" / "checkpoints" / "step-00000000" / "model.safetensors"))
    diff = torch.sqrt(sum(((a[k] - b[k]) ** 2).sum() for k in a))
    moved = torch.sqrt(sum(((a[k] - start[k]) ** 2).sum() for k in a))
    assert float(diff / moved) < 0.05, float(diff / moved)


def test_patch_discriminator_learns_to_tell_sharp_faces_from_blurred() -> None:
    """The adversarial term's discriminator, trained on sharp textures (real) against their blurred copies
    (fake), scores held-out sharp patches higher than blurred ones: it sees the detail a soft face lacks."""
    import torch.nn.functional as F

    from doppel.train.gan import Adversary

    torch.manual_seed(0)
    adversary = Adversary(torch.device("cpu"), 2e-4, dims=16)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        sharp = (torch.rand(n, 1, 16, 16).repeat_interleave(4, 2).repeat_interleave(4, 3)
                 + 0.3 * torch.rand(n, 3, 64, 64)).clamp(0, 1) * 0.8
        return sharp, F.avg_pool2d(sharp, 5, 1, 2, count_include_pad=False)

    mask = torch.ones(8, 1, 64, 64)
    for _ in range(60):
        real, fake = batch(8)
        adversary.step(real, fake, mask)
    real, fake = batch(32)
    with torch.no_grad():
        assert adversary.net(real).mean() > adversary.net(fake).mean() + 0.2


def test_gan_power_trains_a_discriminator_kept_in_the_checkpoint(ws: Path) -> None:
    from doppel.merge.model import SwapModel
    from doppel.workspace import Workspace

    code, out, err = run("train", ws, "--preset", "tiny-64", "--iterations", "3", "--gan-power", "0.1", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert "gan" in report["losses"] and "discriminator" in report["losses"]
    first = weights(ws, part="gan")
    assert any(k.startswith("net.") for k in first) and any(k.startswith("opt.") for k in first)
    # resumed: the same discriminator continues (not a fresh one), and the setting is kept
    assert run("train", ws, "--iterations", "0")[0] == 0
    again = weights(ws, part="gan")
    assert all(torch.equal(first[k], again[k]) for k in first if k.startswith("net."))
    with Workspace.open(ws) as opened:  # merge needs only the model's own weights
        assert SwapModel(opened, "main", "cpu").step == 3
    code, _, err = run("train", ws, "--iterations", "1", "--gan-power", "11")
    assert code == 1 and "gan_power must be in [0, 10]" in err


def test_code_adversary_pulls_the_source_codes_towards_the_target_codes() -> None:
    """True face power's mechanism: source codes (a learnable offset on one cloud of bottleneck maps), trained
    only against the code discriminator, move over half-way towards the target's cloud (the two then wander
    around each other, as adversaries do)."""
    from doppel.train.gan import Adversary, CodeDiscriminator

    torch.manual_seed(0)
    adversary = Adversary(torch.device("cpu"), 1e-3, net=CodeDiscriminator(8, dims=16))
    offset = torch.zeros(1, 8, 4, 4, requires_grad=True)
    opt = torch.optim.Adam([offset], lr=2e-2)
    target_mean = torch.full((1, 8, 4, 4), 1.5)
    for _ in range(300):
        dst = target_mean + 0.3 * torch.randn(16, 8, 4, 4)
        src = offset + 0.3 * torch.randn(16, 8, 4, 4)
        loss = adversary.generator_loss(src)
        opt.zero_grad()
        loss.backward()
        opt.step()
        adversary.step(dst, src)
    assert float(offset.detach().mean()) > 0.75, float(offset.detach().mean())  # it started at 0


def test_true_face_power_trains_a_code_discriminator_kept_in_the_checkpoint(ws: Path) -> None:
    code, out, err = run("train", ws, "--preset", "tiny-64", "--iterations", "3", "--true-face-power", "0.1",
                         "--json")
    assert code == 0, err
    report = json.loads(out)
    assert "true_face" in report["losses"] and "code_discriminator" in report["losses"]
    first = weights(ws, part="code_gan")
    assert any(k.startswith("net.") for k in first) and any(k.startswith("opt.") for k in first)
    assert run("train", ws, "--iterations", "0")[0] == 0  # resumed: the same discriminator, the setting kept
    again = weights(ws, part="code_gan")
    assert all(torch.equal(first[k], again[k]) for k in first)
    code, _, err = run("train", ws, "--iterations", "1", "--true-face-power", "-1")
    assert code == 1 and "true_face_power must be in [0, 10]" in err


def test_random_warp_can_be_turned_off_for_a_last_phase_and_stays_off(ws: Path) -> None:
    def warp_setting() -> bool:
        latest = checkpoint.latest(ws / "models" / "main")
        assert latest is not None
        return bool(json.loads((latest / "state.json").read_text())["train"]["random_warp"])

    assert run("train", ws, "--preset", "tiny-64", "--iterations", "2")[0] == 0
    assert warp_setting()
    code, _, err = run("train", ws, "--iterations", "2", "--no-random-warp")
    assert code == 0, err
    assert not warp_setting()
    assert run("train", ws, "--iterations", "1")[0] == 0       # resumed: still off
    assert not warp_setting()
    assert run("train", ws, "--iterations", "1", "--random-warp")[0] == 0
    assert warp_setting()


def test_the_default_preset_follows_the_budget_and_a_long_run_gets_cpu_128(ws: Path, tmp_path: Path) -> None:
    assert [default_preset(m) for m in (None, 0.5, 9.9, 10, 600)] == ["cpu-128", "cpu-64", "cpu-64", "cpu-128",
                                                                       "cpu-128"]
    assert default_preset(iterations=1399) == "cpu-64" and default_preset(iterations=1400) == "cpu-128"
    assert default_preset(60, 100) == "cpu-64" and default_preset(5, 100_000) == "cpu-64"  # the first to end

    short = tmp_path / "short"
    shutil.copytree(ws, short)
    code, out, err = run("train", short, "--iterations", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["preset"] == "cpu-64"

    # A 30-minute run, stopped with Ctrl-C once it has made steps: a new model there is cpu-128.
    proc = subprocess.Popen([sys.executable, "-m", "doppel", "train", str(ws), "--minutes", "30", "--json"],
                            env={**os.environ, "OMP_NUM_THREADS": "2"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    losses_file = ws / "models" / "main" / "losses.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not losses_file.exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["preset"] == "cpu-128" and report["interrupted"] and report["step"] >= 1
    latest = checkpoint.latest(ws / "models" / "main")
    assert latest is not None and json.loads((latest / "state.json").read_text())["preset"] == "cpu-128"
    # Continuing it with a short run keeps its preset.
    code, out, err = run("train", ws, "--iterations", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["preset"] == "cpu-128"


def test_a_seed_picks_a_new_models_draw_and_stays_with_it(ws: Path, tmp_path: Path) -> None:
    """The same seed trains the same weights, another seed other weights; a model keeps the seed it was made
    with, so asking for another one later is an error, not a silent change of its batches."""
    runs = {}
    for label, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        copy = tmp_path / label
        shutil.copytree(ws, copy)
        code, _, err = run("train", copy, "--preset", "tiny-64", "--iterations", "2", "--seed", seed)
        assert code == 0, err
        runs[label] = weights(copy)
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
    latest = checkpoint.latest(tmp_path / "a" / "models" / "main")
    assert latest is not None and json.loads((latest / "state.json").read_text())["train"]["seed"] == 7
    assert run("train", tmp_path / "a", "--iterations", "1", "--seed", "7")[0] == 0  # its own seed: fine
    code, _, err = run("train", tmp_path / "a", "--iterations", "1", "--seed", "8")
    assert code == 1 and "made with seed 7, not 8" in err
    code, _, err = run("train", ws, "--preset", "tiny-64", "--iterations", "1", "--seed", "-1")
    assert code == 1 and "seed must be in" in err


def test_the_part_of_a_crop_beyond_the_frames_edge_is_not_learnt_as_face(ws: Path) -> None:
    """A face at the edge of the picture has a crop filled with black beyond it (foreman_cif's last faces, as
    the camera pans away). That black leaves the training mask and the eyes-and-mouth region, so the model is
    not taught a black half-face for that pose."""
    from doppel.extract.aligned import AlignedFace
    from doppel.train.data import load_faces

    with Workspace.open(ws) as w:
        faces = w.faces.of_chosen("source", usable_only=True)[:2]
        f, info = faces[0], w.media_by_id(faces[0].media_id).info
        plain = load_faces(w.root, faces, 64)
        whole = load_faces(w.root, faces, 64, frame_sizes={f.media_id: (info.width, info.height)})
        assert torch.equal(plain.masks, whole.masks)      # faces well inside the frame: nothing changes
        edge = int(f.lm68[:, 0].mean())                    # a frame that ends at the middle of the face
        cut = load_faces(w.root, faces, 64, frame_sizes={f.media_id: (edge, info.height)})
    beyond = torch.from_numpy(AlignedFace.of(f).in_frame(64, (edge, info.height)) == 0)
    assert plain.masks[0, 0][beyond].float().mean() > 0.2  # the face's mask did reach past that edge
    assert not cut.masks[0, 0][beyond].any() and not cut.eyes_mouth[0, 0][beyond].any()
    assert 0.2 < float(cut.masks[0].float().sum() / plain.masks[0].float().sum()) < 0.8
