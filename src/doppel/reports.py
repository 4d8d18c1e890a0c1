"""What each step of the pipeline reports back: frozen dataclasses with one JSON convention.

Every report derives from `Report`, whose `to_json()` is the only way a report becomes JSON (the CLI's
`--json` prints exactly that). The conversion (`jsonable`) is shared: dataclasses become dicts of their fields
(minus fields marked `json=False`, plus the properties a class names in `json_properties`), paths become
strings, fractions "num/den", numpy values plain numbers, and objects with their own `to_json()` (records
such as `Face` or `Media`) are asked for it.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


def jsonable(obj: Any) -> Any:
    """`obj` as plain JSON types (dict, list, str, int, float, bool, None)."""
    if isinstance(obj, Report):
        return obj.to_json()
    if hasattr(obj, "to_json") and callable(obj.to_json):
        return obj.to_json()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.metadata.get("json", True)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Fraction):
        return f"{obj.numerator}/{obj.denominator}"
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclasses.dataclass(frozen=True)
class Report:
    """Base of every report. `json_properties` names computed properties that belong in the JSON too."""

    json_properties: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        d = {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
             if f.metadata.get("json", True)}
        d.update({name: jsonable(getattr(self, name)) for name in self.json_properties})
        return d

    def dumps(self) -> str:
        """`to_json()` as indented JSON text (what `doppel ... --json` prints)."""
        return json.dumps(self.to_json(), indent=2, default=str)


def internal(default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A report field left out of `to_json()` (bulky per-frame detail, kept for callers)."""
    return dataclasses.field(default=default, metadata={"json": False}, **kw)
