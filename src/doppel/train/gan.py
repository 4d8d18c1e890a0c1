"""The adversarial terms. "GAN power" (DeepFaceLab's name): a small patch discriminator that judges whether
each patch of the source decoder's face looks like a real source face, which pushes the decoder towards the
fine structure that pixel and SSIM losses average away.

Least-squares GAN on patches (a 64 px face is judged as a grid of overlapping ~30 px patches), both images masked
to the face so the background plays no part. The discriminator and its optimizer live beside the model in the
checkpoint (`gan.safetensors`, plain optimizer values in state.json); the model file itself is unchanged, so
merge never needs them. Best turned on for a model that already reconstructs well (DeepFaceLab's advice too):
from scratch it fights the reconstruction losses before there is a face to sharpen.

"True face power" (DeepFaceLab's name too): a discriminator on the bottleneck codes learns to tell the source's
codes from the target's, and the encoder is pushed to make the source's codes look like the target's. The
source decoder, which only ever decodes source codes in training, then meets codes like the ones the swap feeds
it (the target's) and renders them as sharply as its own faces instead of as a blur.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from doppel.train.checkpoint import load_optimizer, optimizer_tensors


class PatchDiscriminator(nn.Module):
    """NCHW images in [0, 1] -> N x 1 x H/4 x W/4 scores, one per overlapping patch (receptive field 34 px)."""

    def __init__(self, dims: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, dims, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(dims, dims * 2, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(dims * 2, dims * 4, 3, 1, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(dims * 4, 1, 3, 1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


class CodeDiscriminator(nn.Module):
    """Bottleneck feature maps (N, C, r, r) -> N x 1 x r/2 x r/2 scores: does this code come from a target face?"""

    def __init__(self, channels: int, dims: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, dims, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(dims, dims, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(dims, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Adversary:
    """A discriminator (default: the patch discriminator on faces) with its own optimizer. `generator_loss` is
    added to the model's loss before its backward pass; `step` then updates the discriminator on the same batch."""

    def __init__(self, device: torch.device, learning_rate: float, dims: int = 32, net: nn.Module | None = None
                 ) -> None:
        self.net = (net if net is not None else PatchDiscriminator(dims)).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=learning_rate, betas=(0.5, 0.999))

    def generator_loss(self, fake: torch.Tensor, mask: torch.Tensor | float = 1.0) -> torch.Tensor:
        """Mean squared distance of the discriminator's scores for the masked fake (faces N x 3 x R x R float
        in [0, 1], or codes) from "real" (1). Gradients flow into the fake, not into the discriminator."""
        self.net.requires_grad_(False)
        try:
            return ((self.net(fake * mask) - 1) ** 2).mean()
        finally:
            self.net.requires_grad_(True)

    def step(self, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor | float = 1.0, world: int = 1
             ) -> float:
        """One discriminator update: real (detached) towards 1, fake (detached) towards 0. Returns its loss.
        Under torchrun (`world` > 1) the gradients are averaged over the processes, as the model's are."""
        loss = 0.5 * (((self.net(real.detach() * mask) - 1) ** 2).mean() + (self.net(fake.detach() * mask) ** 2).mean())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            for p in self.net.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        self.opt.step()
        return float(loss.detach())

    def tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Weights and optimizer state for the checkpoint: (tensors for safetensors, plain values for JSON)."""
        opt_tensors, plain = optimizer_tensors(self.opt)
        tensors = {f"net.{k}": v.detach().contiguous().cpu() for k, v in self.net.state_dict().items()}
        tensors.update({f"opt.{k}": v for k, v in opt_tensors.items()})
        return tensors, plain

    def restore(self, tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> None:
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        load_optimizer(self.opt, {k[4:]: v for k, v in tensors.items() if k.startswith("opt.")}, plain)
