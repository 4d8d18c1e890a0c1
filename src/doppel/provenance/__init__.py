"""Provenance: every exported video is labelled as synthetic media, three ways.

- visible: a legible "AI-generated" badge on every frame, or title cards for declared artistic works;
- invisible: a robust watermark in every frame carrying doppel's mark and a workspace tag (watermark.py);
- machine-readable: container metadata, and a signed C2PA manifest in MP4/MOV files (manifest.py).

Export calls `mark_frame` for every frame; there is no path around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from doppel import __version__

DisclosureMode = Literal["badge", "credits"]
DISCLOSURES: tuple[DisclosureMode, ...] = get_args(DisclosureMode)


@dataclass(frozen=True)
class Disclosure:
    """The visible label of an export. There is no mode without one: anything but `badge` or `credits`, an
    empty text or a card shorter than a frame is refused when the object is made (and again by export)."""

    mode: DisclosureMode = "badge"
    """`badge`: a small label on every frame. `credits`: a title card at the start and the end instead (for
    declared artistic, satirical or fictional works)."""
    text: str = "AI-generated"
    card_seconds: float = 2.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise DoppelError unless this disclosure shows a visible label."""
        from doppel.errors import DoppelError

        if self.mode not in DISCLOSURES:
            raise DoppelError(f"disclosure mode must be one of {', '.join(DISCLOSURES)}, not {self.mode!r}: "
                              "every export carries a visible disclosure")
        if not isinstance(self.text, str) or not self.text.strip():
            raise DoppelError("the disclosure text must not be empty: every export carries a visible disclosure")
        if not isinstance(self.card_seconds, int | float) or not 0.5 <= self.card_seconds <= 60:
            raise DoppelError(f"disclosure cards last 0.5 to 60 seconds, not {self.card_seconds!r}")


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def badge(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of an HxWx3 uint8 frame with a legible label in its bottom-right corner."""
    h, w = image.shape[:2]
    size = max(10, round(h * 0.04))
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil, "RGBA")
    font = _font(size)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    pad = max(3, size // 3)
    bw, bh = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    left, top = w - bw - pad, h - bh - pad
    draw.rounded_rectangle((left, top, left + bw, top + bh), radius=pad, fill=(0, 0, 0, 170))
    draw.text((left + pad - x0, top + pad - y0), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(pil)


def title_card(width: int, height: int, text: str) -> np.ndarray:
    """A dark card stating the disclosure, for the start and the end of a declared artistic work."""
    pil = Image.new("RGB", (width, height), (16, 16, 16))
    draw = ImageDraw.Draw(pil)
    lines = [f"This video contains {text.lower()} faces.", "Made with doppel: synthetic media."]
    size = max(10, round(height * 0.05))
    font = _font(size)
    y = height // 2 - len(lines) * size
    for line in lines:
        x0, _, x1, _ = draw.textbbox((0, 0), line, font=font)
        draw.text(((width - (x1 - x0)) // 2, y), line, font=font, fill=(235, 235, 235))
        y += int(size * 1.6)
    return np.asarray(pil)


def mark_frame(image: np.ndarray, disclosure: Disclosure, tag: int) -> np.ndarray:
    """The per-frame provenance marks, always applied by export: the badge (in badge mode), then the watermark
    carrying `tag` (see watermark.workspace_tag)."""
    from doppel.provenance import watermark

    disclosure.check()
    if disclosure.mode == "badge":
        image = badge(image, disclosure.text)
    return watermark.embed(image, tag)


def container_metadata(disclosure: Disclosure, workspace_id: str) -> dict[str, str]:
    return {
        "comment": f"{disclosure.text}: synthetic media made with doppel {__version__} (workspace {workspace_id})",
        "title": "synthetic media (doppel)",
        "synthetic": "true",
    }
