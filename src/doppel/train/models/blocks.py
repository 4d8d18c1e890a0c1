"""Building blocks shared by the face-swap autoencoders. Tensors are NCHW float in [0, 1] at the ends."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from doppel.train.config import ModelConfig


class Down(nn.Module):
    """Halve the resolution: 5x5 convolution, stride 2, leaky ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 5, stride=2, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x), 0.1)


class Up(nn.Module):
    """Double the resolution: 3x3 convolution to 4x the channels, leaky ReLU, pixel shuffle (no checkerboard)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.leaky_relu(self.conv(x), 0.1), 2)


class Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.leaky_relu(self.conv1(x), 0.2))
        return F.leaky_relu(x + y, 0.2)


class Encoder(nn.Module):
    """Four halvings: (N, 3, R, R) -> (N, 8e * (R/16)^2) features."""

    def __init__(self, e: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(Down(3, e), Down(e, 2 * e), Down(2 * e, 4 * e), Down(4 * e, 8 * e))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.layers(x), 1)


class Inter(nn.Module):
    """Dense bottleneck, then back to a (N, inter, R/8, R/8) map for the decoder."""

    def __init__(self, in_features: int, cfg: ModelConfig, out_ch: int | None = None) -> None:
        super().__init__()
        self.low = cfg.resolution // 16
        self.out_ch = out_ch or cfg.inter_dims
        self.dense1 = nn.Linear(in_features, cfg.bottleneck_dims)
        self.dense2 = nn.Linear(cfg.bottleneck_dims, self.low * self.low * self.out_ch)
        self.up = Up(self.out_ch, self.out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense2(self.dense1(x))
        x = x.view(-1, self.out_ch, self.low, self.low)
        return self.up(x)


EXPRESSION_CHANNELS = 32
"""Feature maps the expression code is expanded to before it joins the decoder's input."""


class Decoder(nn.Module):
    """(N, C, R/8, R/8) -> face (N, 3, R, R) and mask (N, 1, R, R), both in [0, 1]. With an expression code
    (cfg.expression_dims > 0), the code (N, dims) is expanded to feature maps that join the face decoder's input."""

    def __init__(self, cin: int, cfg: ModelConfig) -> None:
        super().__init__()
        d, m = cfg.decoder_dims, cfg.mask_dims
        self.expression_dims = cfg.expression_dims
        extra = EXPRESSION_CHANNELS if cfg.expression_dims else 0
        if cfg.expression_dims:
            self.expression = nn.Sequential(nn.Linear(cfg.expression_dims, 64), nn.LeakyReLU(0.1),
                                            nn.Linear(64, EXPRESSION_CHANNELS))
        self.face = nn.Sequential(Up(cin + extra, 8 * d), Residual(8 * d), Up(8 * d, 4 * d), Residual(4 * d),
                                  Up(4 * d, 2 * d), Residual(2 * d))
        self.face_out = nn.Conv2d(2 * d, 3, 1)
        self.mask = nn.Sequential(Up(cin, 8 * m), Up(8 * m, 4 * m), Up(4 * m, 2 * m))
        self.mask_out = nn.Conv2d(2 * m, 1, 1)

    def forward(self, z: torch.Tensor, expression: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (N, C, R/8, R/8); expression: (N, dims) codes (train/expression.py), zeros (an ordinary face) if
        None; ignored by a decoder without one."""
        x = z
        if self.expression_dims:
            if expression is None:
                expression = z.new_zeros(z.shape[0], self.expression_dims)
            e = self.expression(expression.to(z.dtype))
            x = torch.cat([z, e[:, :, None, None].expand(-1, -1, z.shape[2], z.shape[3])], 1)
        face = torch.sigmoid(self.face_out(self.face(x)))
        mask = torch.sigmoid(self.mask_out(self.mask(z)))
        return face, mask


def encoder_features(cfg: ModelConfig) -> int:
    return 8 * cfg.encoder_dims * (cfg.resolution // 16) ** 2
