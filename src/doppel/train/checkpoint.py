"""Checkpoints: weights and optimizer state in safetensors, everything else in JSON, written crash-safely;
and a workspace's model identity (which checkpoint is current, and is it this workspace's), used by both
training and merge.

Layout under WS/models/<name>/:
  checkpoints/step-00001200/{model.safetensors, optimizer.safetensors, state.json[, ema.safetensors]}
                      ema.safetensors: the exponential moving average of the weights, which merge renders with
                      (absent in checkpoints made before it existed, or with ema_decay 0)
  latest.json         which checkpoint is current (replaced atomically after the checkpoint is complete); the
                      workspace database's `models` table records it too (see `current`)
A checkpoint folder is built under a temporary name, fsynced, then renamed: a write killed half-way leaves
the previous checkpoint current and loadable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from doppel.errors import DoppelError
from doppel.fsutil import fsync_dir, write_text_atomic
from doppel.train.config import ModelConfig, from_dict
from doppel.workspace.paths import inside

if TYPE_CHECKING:
    from doppel.workspace import Workspace

FORMAT = 1
KEEP_LAST = 3
OPTIONAL_PARTS = ("ema", "gan", "code_gan")
"""Checkpoint files that only some models have (the moving average, the adversaries)."""


@dataclass
class Checkpoint:
    path: Path
    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None = None
    gan: dict[str, torch.Tensor] | None = None
    """The adversarial term's discriminator and its optimizer tensors (see train/gan.py), where trained."""
    code_gan: dict[str, torch.Tensor] | None = None
    """The same for the bottleneck-code adversary ("true face power"), where trained."""

    @property
    def render_weights(self) -> dict[str, torch.Tensor]:
        """The weights to render with: the moving average where the checkpoint has one."""
        return self.ema if self.ema is not None else self.model


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors (for safetensors) and plain values (for JSON)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {"param_groups": sd["param_groups"], "scalars": {}}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().contiguous().cpu()
            else:
                plain["scalars"][f"{pid}.{key}"] = value
    return tensors, plain


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for name, value in plain["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save(folder: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any],
         *, backup: bool = False, ema: dict[str, torch.Tensor] | None = None,
         gan: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None,
         code_gan: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None) -> Path:
    """Write checkpoint `step` and make it current; prune old ones (backups are kept). Returns its folder."""
    ckpts = folder / "checkpoints"
    ckpts.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    final = ckpts / name
    tmp = ckpts / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        opt_tensors, opt_plain = optimizer_tensors(opt)
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": str(FORMAT)})
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"), metadata={"format": str(FORMAT)})
        if ema is not None:
            save_file({k: v.detach().contiguous().cpu() for k, v in ema.items()}, str(tmp / "ema.safetensors"),
                      metadata={"format": str(FORMAT)})
        full_state = {**state, "format": FORMAT, "step": step, "backup": backup, "optimizer": opt_plain}
        for part, adversary in (("gan", gan), ("code_gan", code_gan)):
            if adversary is not None:
                save_file(adversary[0], str(tmp / f"{part}.safetensors"), metadata={"format": str(FORMAT)})
                full_state[f"{part}_optimizer"] = adversary[1]
        (tmp / "state.json").write_text(json.dumps(full_state, indent=1))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(ckpts)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DoppelError(f"could not write checkpoint ({exc.strerror}); the previous one is kept", final) from exc
    write_text_atomic(folder / "latest.json", json.dumps({"checkpoint": name, "step": step}))
    _prune(ckpts, keep=name)
    return final


def _prune(ckpts: Path, keep: str) -> None:
    regular = []
    for d in sorted(ckpts.glob("step-*")):
        try:
            if json.loads((d / "state.json").read_text()).get("backup"):
                continue
        except (OSError, ValueError):
            pass
        regular.append(d)
    for d in regular[:-KEEP_LAST]:
        if d.name != keep:
            shutil.rmtree(d, ignore_errors=True)


def latest(folder: Path) -> Path | None:
    pointer = folder / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text())["checkpoint"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise DoppelError("model pointer is unreadable", pointer) from exc
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise DoppelError(f"model pointer names {name!r}, not a checkpoint in this folder", pointer)
    return inside(folder, f"checkpoints/{name}", "checkpoint")


def load_state(path: Path) -> dict[str, Any]:
    """A checkpoint folder's state (config, preset, step) without its weights; a clear error if it is missing,
    corrupt or from another format."""
    try:
        state: dict[str, Any] = json.loads((path / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise DoppelError("checkpoint state is missing or unreadable", path / "state.json") from exc
    if state.get("format") != FORMAT:
        raise DoppelError(f"checkpoint format {state.get('format')} is not {FORMAT} (another doppel version)", path)
    return state


def load(path: Path) -> Checkpoint:
    """Read a checkpoint folder; a clear error if any part is missing, corrupt or from another format."""
    state = load_state(path)
    parts = {}
    for part in ("model", "optimizer", *OPTIONAL_PARTS):
        file = path / f"{part}.safetensors"
        if part in OPTIONAL_PARTS and not file.exists():
            continue
        try:
            parts[part] = load_file(str(file))
        except (SafetensorError, OSError, ValueError) as exc:
            raise DoppelError(f"checkpoint file is corrupt or truncated ({exc})", file) from exc
    return Checkpoint(path, state, parts["model"], parts["optimizer"], parts.get("ema"), parts.get("gan"),
                      parts.get("code_gan"))


def render_file(path: Path) -> Path:
    """The weights file merge renders with in checkpoint folder `path` (the moving average where present)."""
    ema = path / "ema.safetensors"
    return ema if ema.exists() else path / "model.safetensors"


@dataclass(frozen=True)
class ModelIdentity:
    """A workspace's current model, without its weights loaded. `id` names the model, its step and its
    weights' hash (it keys merge's render cache)."""

    id: str
    name: str
    path: Path
    state: dict[str, Any]
    config: ModelConfig


def check_owner(state: dict[str, Any], workspace_id: str, path: Path) -> None:
    """A model trained for another workspace is refused (its faces and people are not this one's)."""
    if state.get("workspace_id") != workspace_id:
        raise DoppelError("this model was trained for another workspace", path)


def current(ws: Workspace, name: str) -> Path | None:
    """The current checkpoint folder of model `name`: as recorded in the workspace database, or (a save
    interrupted before it was recorded, or a model folder copied in) as the model folder's pointer says."""
    record = ws.models.get(name)
    return ws.models.path(record) if record is not None else latest(ws.models.folder(name))


def identity(ws: Workspace, name: str = "main") -> ModelIdentity:
    """The workspace's model `name`, checked to belong to this workspace; its weights are hashed, not loaded."""
    path = current(ws, name)
    if path is None:
        raise DoppelError(f"no trained model {name!r} in this workspace: run `doppel train` first", ws.root)
    try:
        state = json.loads((path / "state.json").read_text())
        digest = hashlib.sha256(render_file(path).read_bytes()).hexdigest()
    except (OSError, ValueError) as exc:
        raise DoppelError("checkpoint is missing or unreadable", path) from exc
    check_owner(state, ws.id, path)
    return ModelIdentity(f"{name}@{state['step']}:{digest[:16]}", name, path, state,
                         from_dict(ModelConfig, state["model"]))
