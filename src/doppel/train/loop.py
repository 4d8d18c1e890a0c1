"""The training loop: resumable, crash-safe, distributed when launched with torchrun.

`Trainer.open` finds or creates the model of a workspace; `Trainer.train` runs steps until a budget (steps or
minutes) is spent or the user presses Ctrl-C, saving checkpoints, previews and a loss log as it goes.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from doppel import __version__
from doppel.device import bf16_supported, distributed, pick_device
from doppel.errors import DoppelError
from doppel.extract import blendshapes
from doppel.fsutil import remove_temporaries
from doppel.reports import Report
from doppel.train import checkpoint, expression
from doppel.train.config import PRESETS, ModelConfig, Preset, TrainConfig, from_dict, to_dict
from doppel.train.data import TrainingData, load_training_data, make_batch, source_as_trained
from doppel.train.gan import Adversary, CodeDiscriminator
from doppel.train.losses import masked_ssim, total_loss
from doppel.train.models import build_model
from doppel.train.preview import preview_grid, save_png
from doppel.workspace.lock import stage_lock

if TYPE_CHECKING:  # the training step itself needs no workspace (nor its video I/O)
    from doppel.workspace import Workspace

StepReport = Callable[[int, int | None, dict[str, float]], None]
"""Called as report(step, last_step or None, figures) after each step."""


@dataclass(frozen=True)
class Budget:
    iterations: int | None = None
    minutes: float | None = None
    preview_minutes: float = 2.0
    checkpoint_minutes: float = 5.0
    backup_minutes: float = 60.0
    log_every: int = 10


@dataclass(frozen=True)
class TrainReport(Report):
    """`train`'s result: where the model stands, what this run did, the last losses and validation SSIM."""

    step: int
    steps_run: int
    seconds: float
    samples_per_s: float
    interrupted: bool
    rollbacks: int
    losses: dict[str, float]
    validation: dict[str, float]
    checkpoint: Path
    preview: Path | None
    model: str = "main"
    preset: str = ""
    device: str = ""
    rank: int = 0
    """This process's rank under torchrun (only rank 0 writes checkpoints and previews)."""
    world: int = 1


@contextlib.contextmanager
def stop_requests() -> Iterator[list[bool]]:
    """Ctrl-C / SIGTERM set a flag the loop checks between steps, so a step is never cut in half."""
    flag = [False]

    def handler(signum: int, frame: object) -> None:
        flag[0] = True

    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: no signal handling
        yield flag
        return
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Trainer:
    def __init__(self, ws: Workspace, folder: Path, preset: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
                 device: torch.device, step: int = 0, salt: int = 0, elapsed: float = 0.0) -> None:
        self.ws, self.folder, self.preset = ws, folder, preset
        if train_cfg.bf16 and not bf16_supported(device):
            train_cfg = replace(train_cfg, bf16=False)
        self.model_cfg, self.cfg, self.device = model_cfg, train_cfg, device
        self.rank, self.world = distributed()
        self.step, self.salt, self.elapsed = step, salt, elapsed
        torch.manual_seed(train_cfg.seed)
        # channels-last convolutions run about twice as fast on CPUs (oneDNN) and use tensor cores on GPUs.
        self.model = build_model(model_cfg).to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.opt = torch.optim.Adam(self.model.parameters(), lr=train_cfg.learning_rate, betas=(0.5, 0.999))
        self.net: torch.nn.Module = self.model
        self.data: TrainingData | None = None
        self.adversary = Adversary(device, train_cfg.learning_rate) if train_cfg.gan_power > 0 else None
        self.code_adversary = (Adversary(device, train_cfg.learning_rate, net=CodeDiscriminator(model_cfg.inter_dims))
                               if train_cfg.true_face_power > 0 else None)
        self.ema: dict[str, torch.Tensor] | None = None
        if train_cfg.ema_decay > 0:
            self.ema = {k: v.detach().float().clone() for k, v in self.model.state_dict().items()}

    # -- opening ------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, ws: Workspace, *, name: str = "main", preset: str | None = None, device: str | None = None,
             init_from: Path | None = None, overrides: dict[str, Any] | None = None,
             default: str = "cpu-64", gaze: bool | None = None) -> Trainer:
        """Continue the workspace's model `name`, or start one from `preset` (`default` when None; a
        continued model keeps its own, and naming another is an error). `gaze`: a new model's expression code
        holds the gaze too (`ModelConfig.expression_dims` 5); like the seed it is chosen when a model is made."""
        folder = ws.models.folder(name)
        current = checkpoint.latest(folder)
        dev = pick_device(device)
        if current is not None:
            ckpt = checkpoint.load(current)
            state = ckpt.state
            checkpoint.check_owner(state, ws.id, current)
            if preset is not None and preset != state["preset"]:
                raise DoppelError(f"the model here was made with preset {state['preset']!r}, not {preset!r}; "
                                  "use --model NAME for a second model", folder)
            model_cfg = from_dict(ModelConfig, state["model"])
            if gaze is not None and gaze != (model_cfg.expression_dims > expression.DIMS):
                raise DoppelError(f"the model here was made {'without' if gaze else 'with'} the gaze in its "
                                  "expression code; that is chosen when a model is made (use --model NAME for a "
                                  "second one)", folder)
            seed, made = (overrides or {}).get("seed"), state["train"].get("seed", 0)
            if seed is not None and seed != made:
                raise DoppelError(f"the model here was made with seed {made}, not {seed}; "
                                  "a seed is chosen when a model is made (use --model NAME for a second one)", folder)
            train_cfg = replace(from_dict(TrainConfig, state["train"]), **(overrides or {}))
            trainer = cls(ws, folder, state["preset"], model_cfg, train_cfg, dev, state["step"],
                          state.get("salt", 0), state.get("elapsed_s", 0.0))
            trainer._restore(ckpt)
            return trainer
        if init_from is not None:  # the preset and the gaze of the model it starts from, unless given
            theirs = checkpoint.load_state(_init_source(Path(init_from), name))
            preset = preset if preset is not None else str(theirs["preset"])
            if gaze is None:
                gaze = from_dict(ModelConfig, theirs["model"]).expression_dims > expression.DIMS
        chosen = _preset(preset or default)
        model_cfg = replace(chosen.model, face_type=ws.settings.extract.face_type)
        if gaze:
            model_cfg = replace(model_cfg, expression_dims=expression.DIMS + expression.GAZE_DIMS)
        train_cfg = replace(chosen.train, **(overrides or {}))
        trainer = cls(ws, folder, chosen.name, model_cfg, train_cfg, dev)
        if init_from is not None:
            trainer._init_from(Path(init_from), name)
        return trainer

    def _restore(self, ckpt: checkpoint.Checkpoint) -> None:
        try:
            self.model.load_state_dict(ckpt.model)
        except RuntimeError as exc:
            raise DoppelError("checkpoint does not fit this model (another architecture or resolution)",
                              ckpt.path) from exc
        checkpoint.load_optimizer(self.opt, ckpt.optimizer, ckpt.state["optimizer"])
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.learning_rate
        if self.adversary is not None and ckpt.gan is not None:  # else a fresh discriminator (GAN just turned on)
            self.adversary.restore(ckpt.gan, ckpt.state.get("gan_optimizer", {}))
        if self.code_adversary is not None and ckpt.code_gan is not None:
            self.code_adversary.restore(ckpt.code_gan, ckpt.state.get("code_gan_optimizer", {}))
        if self.cfg.ema_decay > 0:  # a checkpoint from before the average existed starts it from its weights
            source = ckpt.ema if ckpt.ema is not None else ckpt.model
            self.ema = {k: v.float().to(self.device).clone() for k, v in source.items()}

    def _init_from(self, other: Path, name: str) -> None:
        """Start from another workspace's trained weights (the optimizer starts fresh)."""
        path = _init_source(other, name)
        ckpt = checkpoint.load(path)
        theirs = from_dict(ModelConfig, ckpt.state["model"])
        if theirs != self.model_cfg and theirs == replace(self.model_cfg, expression_dims=theirs.expression_dims):
            made = "with" if theirs.expression_dims > expression.DIMS else "without"
            raise DoppelError(f"the model in {other} was made {made} the gaze in its expression code; it cannot "
                              f"start one {'without' if made == 'with' else 'with'} it", path)
        if theirs != self.model_cfg:
            raise DoppelError(f"the model in {other} is {theirs.arch} {theirs.resolution}px {theirs.face_type}; "
                              f"it cannot start a {self.model_cfg.arch} {self.model_cfg.resolution}px "
                              f"{self.model_cfg.face_type} model", path)
        self.model.load_state_dict(ckpt.render_weights)
        if self.ema is not None:
            self.ema = {k: v.detach().float().clone() for k, v in self.model.state_dict().items()}

    # -- saving -------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"doppel": __version__, "workspace_id": self.ws.id, "preset": self.preset,
                "model": to_dict(self.model_cfg), "train": to_dict(self.cfg), "salt": self.salt,
                "elapsed_s": self.elapsed, "torch": torch.__version__}

    def save(self, *, backup: bool = False, extra: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint (rank 0 only) and record it as the model's current one in the workspace."""
        if self.rank != 0:
            return self.folder
        path = checkpoint.save(self.folder, self.step, self.model, self.opt, {**self.state(), **(extra or {})},
                               backup=backup, ema=self.ema,
                               gan=self.adversary.tensors() if self.adversary is not None else None,
                               code_gan=self.code_adversary.tensors() if self.code_adversary is not None else None)
        with self.ws.transaction():
            self.ws.models.record(self.folder.name, path, self.step, self.preset, to_dict(self.model_cfg))
        return path

    def rollback(self) -> None:
        """Back to the last saved checkpoint, with a fresh data order (the bad batch is not replayed)."""
        path = checkpoint.latest(self.folder)
        if self.world > 1:
            dist.barrier()
        assert path is not None
        ckpt = checkpoint.load(path)
        self._restore(ckpt)
        self.step = ckpt.state["step"]
        self.salt = ckpt.state.get("salt", 0) + 1

    # -- training -----------------------------------------------------------------------------------------
    def load_data(self) -> TrainingData:
        if self.data is None:
            gaze = self.model_cfg.expression_dims > expression.DIMS
            if gaze and self.world > 1:  # one process reads the coefficients the others will find stored
                if self.rank == 0:
                    for role in ("source", "target"):
                        blendshapes.of_faces(self.ws, self.ws.faces.of_chosen(role, usable_only=True))
                dist.barrier()
            data = load_training_data(self.ws, self.model_cfg.resolution, self.model_cfg.face_type,
                                      self.cfg.holdout, self.cfg.balance_expressions, gaze=gaze)
            if self.device.type != "cpu":
                data = TrainingData(data.src.to(self.device), data.dst.to(self.device),
                                    data.src_val.to(self.device) if data.src_val else None,
                                    data.dst_val.to(self.device) if data.dst_val else None)
            self.data = data
        return self.data

    def train_step(self) -> tuple[float, dict[str, float]]:
        if self.cfg.lr_warmup_steps:
            for group in self.opt.param_groups:
                group["lr"] = self.cfg.learning_rate * min(1.0, (self.step + 1) / self.cfg.lr_warmup_steps)
        loss, parts = optimization_step(self.net, self.opt, self.load_data(), self.cfg, self.salt, self.step,
                                        self.rank, self.world, self.adversary,
                                        self.cfg.hide_expression if self.model_cfg.expression_dims else 0.0,
                                        self.code_adversary)
        value = loss.detach()
        if self.world > 1:
            dist.all_reduce(value)
            value /= self.world
        self.step += 1
        if self.ema is not None:
            update_ema(self.ema, self.model, self.cfg.ema_decay, self.step)
        return float(value), parts

    @contextlib.contextmanager
    def rendering_weights(self) -> Iterator[None]:
        """The model holds the moving average (what merge renders with) inside the block, its own weights after."""
        if self.ema is None:
            yield
            return
        own = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.ema)
        try:
            yield
        finally:
            self.model.load_state_dict(own)

    @torch.no_grad()
    def validate(self, limit: int = 64) -> dict[str, float]:
        """Masked SSIM of source->source and target->target on held-out faces (training faces if none); the
        source in target faces' colours where training matches colours (`source_as_trained`)."""
        data = self.load_data()
        self.model.eval()
        with self.rendering_weights():
            return self._validate(data, limit)

    def _validate(self, data: TrainingData, limit: int) -> dict[str, float]:
        result = {}
        for key, held, train in (("src", data.src_val, data.src), ("dst", data.dst_val, data.dst)):
            faces = held if held is not None and len(held) else train
            n = min(limit, len(faces))
            idx = torch.linspace(0, len(faces) - 1, n).long()
            img = (source_as_trained(faces, idx, data.dst, self.cfg.color_match) if key == "src"
                   else faces.images[idx].float() / 255).to(self.device)
            mask = (faces.masks[idx].float() / 255).to(self.device)
            code = faces.expression[idx].to(self.device)
            out = self.model(img, img, code, code)
            result[f"ssim_{key}"] = float(masked_ssim(out[key].float(), img, mask).mean())
        result["held_out"] = float(data.src_val is not None and data.dst_val is not None)
        return result

    def write_preview(self) -> Path:
        data = self.load_data()
        self.model.eval()
        n = min(4, len(data.src), len(data.dst))
        src_idx, dst_idx = (torch.linspace(0, len(f) - 1, n).long() for f in (data.src, data.dst))
        with self.rendering_weights():
            grid = preview_grid(self.model, source_as_trained(data.src, src_idx, data.dst, self.cfg.color_match)
                                .to(self.device),
                                (data.dst.images[dst_idx].float() / 255).to(self.device),
                                data.src.expression[src_idx].to(self.device),
                                data.dst.expression[dst_idx].to(self.device))
        path = self.folder / "previews" / f"step-{self.step:08d}.png"
        save_png(path, grid)
        save_png(self.folder / "preview.png", grid)
        return path

    def train(self, budget: Budget, report: StepReport | None = None) -> TrainReport:
        """Train within `budget`. One `doppel train` per workspace at a time: rank 0 holds the workspace's
        train lock (a second run gets a "busy" error) and first removes a killed run's temporary files."""
        with contextlib.ExitStack() as stack:
            if self.rank == 0:
                stack.enter_context(stage_lock(self.ws.root, "train"))
                # checkpoints/ too must not lead outside the workspace (model_folder checked the rest)
                self.ws.inside(f"{self.folder.relative_to(self.ws.root)}/checkpoints", "checkpoint folder")
                remove_temporaries(self.folder)
            return self._train(budget, report)

    def _train(self, budget: Budget, report: StepReport | None = None) -> TrainReport:
        if budget.iterations is None and budget.minutes is None:
            raise DoppelError("give --iterations N or --minutes M")
        self.load_data()
        if self.net is self.model:
            if self.world > 1:
                self.net = torch.nn.parallel.DistributedDataParallel(
                    self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.cfg.compile and self.device.type == "cuda":
                self.net = torch.compile(self.net)  # type: ignore[assignment]
        if checkpoint.latest(self.folder) is None:
            self.save()  # the rollback target for the very first steps
        last_step = self.step + budget.iterations if budget.iterations is not None else None
        deadline = time.monotonic() + budget.minutes * 60 if budget.minutes is not None else math.inf
        start = time.monotonic()
        marks = {"preview": start, "checkpoint": start, "backup": start}
        history: list[float] = []
        parts: dict[str, float] = {}
        steps_run = rollbacks = 0
        preview: Path | None = None
        log = self.folder / "losses.jsonl"
        with stop_requests() as stop:
            while (last_step is None or self.step < last_step) and time.monotonic() < deadline and not stop[0]:
                t0 = time.monotonic()
                loss, parts = self.train_step()
                steps_run += 1
                median = sorted(history[-50:])[len(history[-50:]) // 2] if len(history) >= 20 else math.inf
                if not math.isfinite(loss) or loss > 10 * median:
                    rollbacks += 1
                    if rollbacks > 5:
                        raise DoppelError("training keeps diverging (non-finite or exploding loss) after 5 "
                                          "rollbacks; lower the learning rate", self.folder)
                    self.rollback()
                    history.clear()
                    continue
                history.append(loss)
                now = time.monotonic()
                self.elapsed += now - t0
                figures = {"loss": loss, **parts, "samples_per_s": self.cfg.batch_size / max(now - t0, 1e-9)}
                if self.rank == 0 and self.step % budget.log_every == 0:
                    with open(log, "a") as fh:
                        fh.write(json.dumps({"step": self.step, "time": round(self.elapsed, 2), **figures}) + "\n")
                if report:
                    report(self.step, last_step, figures)
                if self.rank == 0 and now - marks["preview"] >= budget.preview_minutes * 60:
                    preview = self.write_preview()
                    marks["preview"] = now
                if now - marks["checkpoint"] >= budget.checkpoint_minutes * 60:
                    backup = now - marks["backup"] >= budget.backup_minutes * 60
                    self.save(backup=backup)
                    marks["checkpoint"] = now
                    if backup:
                        marks["backup"] = now
        seconds = time.monotonic() - start
        validation = self.validate() if self.rank == 0 else {}
        path = self.save(extra={"validation": validation, "losses": parts})
        if self.rank == 0:
            preview = self.write_preview()
        return TrainReport(self.step, steps_run, seconds, steps_run * self.cfg.batch_size / max(seconds, 1e-9),
                           bool(stop[0]), rollbacks, parts, validation, path, preview, self.folder.name,
                           self.preset, str(self.device), self.rank, self.world)


def optimization_step(net: torch.nn.Module, opt: torch.optim.Optimizer, data: TrainingData, cfg: TrainConfig,
                      salt: int, step: int, rank: int = 0, world: int = 1, adversary: Adversary | None = None,
                      hide: float = 0.0, code_adversary: Adversary | None = None
                      ) -> tuple[torch.Tensor, dict[str, float]]:
    """One step: the batch for `step` (this process's share), forward, weighted losses, backward, update;
    with an adversary, its term joins the loss and the discriminator takes a step on the same batch (the
    code adversary likewise, on the bottleneck codes). `hide`: share of inputs whose eyes and mouth are
    blurred away (a model with an expression code)."""
    src, dst = make_batch(data, cfg.batch_size, cfg.seed, salt, step, warp=cfg.random_warp, flip=cfg.random_flip,
                          color_match=cfg.color_match, rank=rank, world=world,
                          hide=hide)
    src, dst = _channels_last(src), _channels_last(dst)
    net.train()
    with torch.autocast(src["input"].device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        out = net(src["input"], dst["input"], src["expression"], dst["expression"])
    loss, parts = total_loss(out, src, dst, cfg)
    if adversary is not None:
        fake = out["src"].float()
        adversarial = adversary.generator_loss(fake, src["mask"])
        loss = loss + cfg.gan_power * adversarial
        parts["gan"] = float(adversarial.detach())
    if code_adversary is not None:  # the source's codes should pass for the target's
        true_face = code_adversary.generator_loss(out["src_code"].float())
        loss = loss + cfg.true_face_power * true_face
        parts["true_face"] = float(true_face.detach())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if adversary is not None:
        parts["discriminator"] = adversary.step(src["target"], fake, src["mask"], world)
    if code_adversary is not None:
        parts["code_discriminator"] = code_adversary.step(out["dst_code"].float(), out["src_code"].float(),
                                                          world=world)
    return loss, parts


def _channels_last(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch's images in channels-last memory order (faster convolutions); other tensors as they are."""
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}


@torch.no_grad()
def update_ema(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float, step: int) -> None:
    """ema <- d * ema + (1 - d) * weights, with d ramped up as min(decay, (1 + step) / (10 + step)) so the
    average is not dominated by the random initial weights; integer buffers are copied."""
    d = min(decay, (1 + step) / (10 + step))
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            ema[key].mul_(d).add_(value.detach().float(), alpha=1 - d)
        else:
            ema[key].copy_(value)


def _init_source(other: Path, name: str) -> Path:
    """The checkpoint a new model `name` starts from with --init-from `other`: that workspace's model of the same
    name, else its main model."""
    from doppel.workspace import Workspace

    with Workspace.open(other) as ows:
        path = checkpoint.current(ows, name) or checkpoint.current(ows, "main")
    if path is None:
        raise DoppelError(f"no trained model {name!r} to start from", other)
    return path


def _preset(name: str) -> Preset:
    if name not in PRESETS:
        raise DoppelError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
