"""Provenance: every exported video is labelled as synthetic media, three ways.

- visible: a legible "AI-generated" badge on every frame (scaled to the frame; the wording cannot be emptied),
  or title cards for declared artistic works;
- invisible: a robust watermark in every frame carrying doppel's mark and a workspace tag (watermark.py,
  found by detect.py; verify.py reads it back from excerpts over the whole file, frames.py from damaged files);
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
MAX_DISCLOSURE_CHARS = 40
"""Longest disclosure wording: at most two lines of 20 characters, legible on a 176x144 frame."""
BADGE_HEIGHT_SHARE = 0.03
"""The badge's letters are 3 % of the frame's height (about 32 px at 1080p, 65 px at 4K) ..."""
MIN_FONT_PX = 9
"""... and never smaller than this (QCIF and smaller frames)."""


@dataclass(frozen=True)
class Disclosure:
    """The visible label of an export. There is no mode without one: anything but `badge` or `credits`, an
    empty text or a card shorter than a frame is refused when the object is made (and again by export)."""

    mode: DisclosureMode = "badge"
    """`badge`: a small label on every frame. `credits`: a title card at the start and the end instead (for
    declared artistic, satirical or fictional works)."""
    text: str = "AI-generated"
    """The wording: 1..MAX_DISCLOSURE_CHARS printable characters, not only spaces."""
    card_seconds: float = 2.0

    def __post_init__(self) -> None:
        self.check()
        object.__setattr__(self, "text", " ".join(self.text.split()))  # one line, single spaces

    def check(self) -> None:
        """Raise DoppelError unless this disclosure shows a visible, legible label."""
        from doppel.errors import DoppelError

        if self.mode not in DISCLOSURES:
            raise DoppelError(f"disclosure mode must be one of {', '.join(DISCLOSURES)}, not {self.mode!r}: "
                              "every export carries a visible disclosure")
        if not isinstance(self.text, str) or not self.text.strip():
            raise DoppelError("the disclosure text must not be empty: every export carries a visible disclosure")
        text = " ".join(self.text.split())
        if len(text) > MAX_DISCLOSURE_CHARS:
            raise DoppelError(f"the disclosure text is {len(text)} characters; at most {MAX_DISCLOSURE_CHARS} keep "
                              "the badge legible")
        if not text.isprintable():
            raise DoppelError("the disclosure text must be printable characters")
        if not isinstance(self.card_seconds, int | float) or not 0.5 <= self.card_seconds <= 60:
            raise DoppelError(f"disclosure cards last 0.5 to 60 seconds, not {self.card_seconds!r}")


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _lines(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float) -> list[str]:
    """`text` on one line, or split at the space nearest its middle when one line is wider than max_width."""
    if font.getlength(text) <= max_width or " " not in text:
        return [text]
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return [text[:cut], text[cut + 1:]]


def badge_layout(width: int, height: int, text: str) -> tuple[int, list[str]]:
    """Font size (px) and lines for the badge on a width x height frame: BADGE_HEIGHT_SHARE of the height, at
    least MIN_FONT_PX; wrapped onto two lines when wider than half the frame, and shrunk (not below
    MIN_FONT_PX) until it fits in 90 % of the width."""
    size = max(MIN_FONT_PX, round(height * BADGE_HEIGHT_SHARE))
    while True:
        font = _font(size)
        lines = _lines(text, font, 0.5 * width)
        if max(font.getlength(line) for line in lines) <= 0.9 * width - size or size <= MIN_FONT_PX:
            return size, lines
        size -= 1


def badge(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of an HxWx3 uint8 RGB frame with a legible label in its bottom-right corner (see badge_layout)."""
    h, w = image.shape[:2]
    size, lines = badge_layout(w, h, text)
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil, "RGBA")
    font = _font(size)
    boxes = [draw.textbbox((0, 0), line, font=font) for line in lines]
    ascent, descent = font.getmetrics() if isinstance(font, ImageFont.FreeTypeFont) else (size, 0)
    line_h = ascent + descent
    pad = max(2, size // 3)
    bw = max(b[2] for b in boxes) + 2 * pad
    bh = line_h * len(lines) + 2 * pad - descent // 2
    left, top = w - bw - pad, h - bh - pad
    draw.rounded_rectangle((left, top, left + bw, top + bh), radius=pad, fill=(0, 0, 0, 170))
    for i, line in enumerate(lines):
        draw.text((left + pad, top + pad + i * line_h), line, font=font, fill=(255, 255, 255, 255))
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
