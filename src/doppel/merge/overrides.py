"""Frame-range overrides of the merge settings, stored in the workspace database.

An override sets one [merge] key for frames first..last (inclusive). Later overrides win over earlier ones.
Keys and values are checked like doppel.toml's, so a typo or an out-of-range value is an error.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from doppel.errors import DoppelError
from doppel.workspace import Workspace
from doppel.workspace.overrides import Override
from doppel.workspace.settings import MergeSettings, check_value

__all__ = ["Override", "add_override", "parse_assignment", "parse_range", "settings_for"]


def parse_assignment(text: str) -> tuple[str, Any]:
    """'erode=15' -> ('erode', 15); values are read as JSON where they can be (true, 1.5, "x"), else text."""
    if "=" not in text:
        raise DoppelError(f"an override looks like key=value, not {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def parse_range(text: str, frame_count: int) -> tuple[int, int]:
    """'120-180' or '42' -> inclusive frame range, checked against the plate."""
    try:
        first, last = (int(p) for p in text.split("-", 1)) if "-" in text else (int(text), int(text))
    except ValueError as exc:
        raise DoppelError(f"a frame range looks like 120-180, not {text!r}") from exc
    if not 0 <= first <= last < frame_count:
        raise DoppelError(f"frames {first}-{last} are outside the plate (0-{frame_count - 1})")
    return first, last


def add_override(ws: Workspace, first: int, last: int, key: str, value: Any) -> Override:
    """Check `key = value` like doppel.toml's [merge] and store it for frames first..last."""
    value = check_value("merge", key, value, ws.root / "doppel.db")
    with ws.transaction():
        return ws.overrides.add(first, last, key, value)


def settings_for(base: MergeSettings, overrides: list[Override], frame: int) -> MergeSettings:
    """The merge settings in force at `frame`."""
    changes = {o.key: o.value for o in overrides if o.first <= frame <= o.last}
    return replace(base, **changes) if changes else base
