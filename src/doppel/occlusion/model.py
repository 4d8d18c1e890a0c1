"""The occlusion segmenter: a small U-Net on the aligned crop that says, per pixel, "the face's own skin".

Input: the crop (RGB) and the face's mesh polygon as a fourth channel. The polygon is known for every face at
apply time, so the network need not rediscover the face's outline from scratch: it learns where the polygon is
wrong (a hand, a microphone, hair over the forehead) and how a drawn label departs from it. That prior is what
makes the mask usable with zero labels. Sized for CPUs: about 0.16 GFLOP per 128 px face.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from doppel.errors import DoppelError

CHANNELS = 5  # RGB, the mesh polygon, the distance from the face's own skin colour


@dataclass(frozen=True)
class MaskNetConfig:
    resolution: int = 128
    """Side of the crops the network sees, in pixels (a multiple of 16, 64 to 512)."""
    width: int = 16
    """Channels of the first level (x2, x4, x6 at the coarser levels)."""

    def __post_init__(self) -> None:
        if not (64 <= self.resolution <= 512 and self.resolution % 16 == 0):
            raise DoppelError(f"mask resolution must be a multiple of 16 from 64 to 512, not {self.resolution}")
        if not 4 <= self.width <= 64:
            raise DoppelError(f"mask network width must be 4 to 64, not {self.width}")


class ConvBN(nn.Sequential):
    """3x3 convolution and ReLU. No normalisation layer: the network is shallow, and batch norm's running
    statistics lag the weights early in training, so a network trained for a few minutes did worse in eval
    mode than in training (measured: below the polygon's own IoU after 60 steps)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
                         nn.ReLU(inplace=True))


class MaskNet(nn.Module):
    """(N, 5, R, R) float in [0, 1] (RGB, polygon, skin distance: see doppel.occlusion.synth.features)
    -> (N, 1, R, R) logits of "visible face"."""

    def __init__(self, cfg: MaskNetConfig) -> None:
        super().__init__()
        w = cfg.width
        self.enc0 = ConvBN(CHANNELS, w, 2)                                          # R/2
        self.enc1 = nn.Sequential(ConvBN(w, 2 * w, 2), ConvBN(2 * w, 2 * w))       # R/4
        self.enc2 = nn.Sequential(ConvBN(2 * w, 4 * w, 2), ConvBN(4 * w, 4 * w))   # R/8
        # The coarsest level sees the whole face (dilated): context to tell a hand from a cheek.
        self.enc3 = nn.Sequential(ConvBN(4 * w, 6 * w, 2), ConvBN(6 * w, 6 * w, dilation=2))  # R/16
        self.dec2 = ConvBN(10 * w, 2 * w)
        self.dec1 = ConvBN(4 * w, w)
        self.dec0 = ConvBN(2 * w, w)
        # One convolution at full resolution, on the upsampled features and the input itself, so that the
        # network's corrections to the polygon land on the pixels (a single output channel costs little).
        self.head = nn.Conv2d(w + CHANNELS, 1, 3, padding=1)
        # The polygon, as logits, is added to the output: an untrained network already gives the polygon's
        # mask, and training only has to learn where the polygon is wrong.
        self.prior = nn.Parameter(torch.tensor(4.0))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        up = lambda t, ref: F.interpolate(t, size=ref.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
        d2 = self.dec2(torch.cat([up(e3, e2), e2], 1))
        d1 = self.dec1(torch.cat([up(d2, e1), e1], 1))
        d0 = self.dec0(torch.cat([up(d1, e0), e0], 1))
        out: torch.Tensor = self.head(torch.cat([up(d0, x), x], 1)) + self.prior * (2 * x[:, 3:4] - 1)
        return out


def build(cfg: MaskNetConfig) -> MaskNet:
    return MaskNet(cfg)
