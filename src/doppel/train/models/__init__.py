"""Model registry: each architecture is a file registering a builder; `build_model` picks by name."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from doppel.errors import DoppelError
from doppel.train.config import ModelConfig

_REGISTRY: dict[str, Callable[[ModelConfig], nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[[ModelConfig], nn.Module]], Callable[[ModelConfig], nn.Module]]:
    def wrap(builder: Callable[[ModelConfig], nn.Module]) -> Callable[[ModelConfig], nn.Module]:
        _REGISTRY[name] = builder
        return builder

    return wrap


def build_model(config: ModelConfig) -> nn.Module:
    from doppel.train.models import df, liae  # noqa: F401 - registers the architectures

    if config.arch not in _REGISTRY:
        raise DoppelError(f"no model registered as {config.arch!r}")
    return _REGISTRY[config.arch](config)


def registered() -> list[str]:
    from doppel.train.models import df, liae  # noqa: F401

    return sorted(_REGISTRY)
