"""DF: one encoder and one inter shared by both identities, one decoder per identity.

The swap is the target face encoded and decoded by the source's decoder.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from doppel.train.config import ModelConfig
from doppel.train.models import register_model
from doppel.train.models.blocks import Decoder, Encoder, Inter, encoder_features


class DF(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg.encoder_dims)
        self.inter = Inter(encoder_features(cfg), cfg)
        self.decoder_src = Decoder(cfg.inter_dims, cfg)
        self.decoder_dst = Decoder(cfg.inter_dims, cfg)

    def forward(self, src: torch.Tensor, dst: torch.Tensor, src_expression: torch.Tensor | None = None,
                dst_expression: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """src, dst: (N, 3, R, R) in [0, 1]; their expression codes (N, dims) where the model has them.
        Returns reconstructions and masks of both, and their bottleneck codes (N, inter, R/8, R/8)."""
        z_src = self.inter(self.encoder(src))
        z_dst = self.inter(self.encoder(dst))
        src_face, src_mask = self.decoder_src(z_src, src_expression)
        dst_face, dst_mask = self.decoder_dst(z_dst, dst_expression)
        return {"src": src_face, "src_mask": src_mask, "dst": dst_face, "dst_mask": dst_mask,
                "src_code": z_src, "dst_code": z_dst}

    def swap(self, dst: torch.Tensor, expression: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Target faces rendered as the source identity, with the target's expression codes: (face, mask)."""
        return self.decoder_src(self.inter(self.encoder(dst)), expression)


@register_model("df")
def build(cfg: ModelConfig) -> nn.Module:
    return DF(cfg)
