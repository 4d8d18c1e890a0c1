"""LIAE: a shared encoder and decoder; inter_AB sees both identities, inter_B only the target.

A source face is decoded from [inter_AB, inter_AB]; a target face from [inter_B, inter_AB]; the swap is the
target's [inter_AB, inter_AB]. Because the decoder is shared, the swap keeps more of the target's lighting.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from doppel.train.config import ModelConfig
from doppel.train.models import register_model
from doppel.train.models.blocks import Decoder, Encoder, Inter, encoder_features


class LIAE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg.encoder_dims)
        self.inter_ab = Inter(encoder_features(cfg), cfg)
        self.inter_b = Inter(encoder_features(cfg), cfg)
        self.decoder = Decoder(2 * cfg.inter_dims, cfg)

    def forward(self, src: torch.Tensor, dst: torch.Tensor, src_expression: torch.Tensor | None = None,
                dst_expression: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        f_src, f_dst = self.encoder(src), self.encoder(dst)
        ab_src = self.inter_ab(f_src)
        z_src = torch.cat([ab_src, ab_src], 1)
        ab_dst = self.inter_ab(f_dst)
        z_dst = torch.cat([self.inter_b(f_dst), ab_dst], 1)
        src_face, src_mask = self.decoder(z_src, src_expression)
        dst_face, dst_mask = self.decoder(z_dst, dst_expression)
        # The codes the swap decodes: inter_AB's of both identities.
        return {"src": src_face, "src_mask": src_mask, "dst": dst_face, "dst_mask": dst_mask,
                "src_code": ab_src, "dst_code": ab_dst}

    def swap(self, dst: torch.Tensor, expression: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        ab = self.inter_ab(self.encoder(dst))
        return self.decoder(torch.cat([ab, ab], 1), expression)


@register_model("liae")
def build(cfg: ModelConfig) -> nn.Module:
    return LIAE(cfg)
