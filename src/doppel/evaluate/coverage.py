"""Coverage: which target frames ask for a head pose, eye opening, mouth opening or look that the source never
shows.

A model cannot make an expression it has never seen: where the target opens its mouth wide and every source face
has a closed mouth, the swap keeps a closed mouth. After extraction this compares, attribute by attribute, each
target face with the source faces; a target value is uncovered when fewer than `min_source` source faces lie
within the attribute's tolerance of it. Runs of uncovered target frames become findings such as
"frames 120-180: mouth wide open (up to 0.28 IOD); the source has none beyond 0.12".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from doppel.evaluate.expression import eye_opening, gaze, mouth_opening
from doppel.evaluate.flags import frame_ranges
from doppel.fsutil import write_text_atomic

if TYPE_CHECKING:
    from doppel.workspace import Workspace


@dataclass(frozen=True)
class Attribute:
    name: str
    unit: str
    tolerance: float
    """How far a source value may be from a target value and still cover it."""
    high: str
    """What a target value above everything the source shows looks like."""
    low: str


ATTRIBUTES: dict[str, Attribute] = {a.name: a for a in (
    Attribute("yaw", "deg", 6.0, "head turned further to the image's right", "head turned further to the image's left"),
    Attribute("pitch", "deg", 6.0, "head tilted further up", "head tilted further down"),
    Attribute("eyes", "IOD", 0.02, "eyes wide open", "eyes closed or nearly (blink)"),
    Attribute("mouth", "IOD", 0.04, "mouth wide open", "mouth closed"),
    Attribute("look", "", 0.1, "eyes looking down", "eyes looking up"),
    Attribute("lids", "", 0.1, "lids lowered or closed", "lids wide open"),
)}
"""`look` and `lids` come from blendshape coefficients (`evaluate.expression.gaze`); the lid landmarks behind
`eyes` do not see a downcast look."""


@dataclass(frozen=True)
class FaceFeatures:
    """Per-face attributes of one face set, in frame order: frames (N,) int; each attribute (N,) float."""

    frames: np.ndarray
    values: dict[str, np.ndarray]


def features(frames: list[int], lm68: list[np.ndarray], yaw: list[float], pitch: list[float],
             coefficients: np.ndarray | None = None) -> FaceFeatures:
    """Attributes of faces given their frame numbers, (68, 2) landmarks, head angles in degrees and, when given,
    their (N, 52) blendshape coefficients (for `look` and `lids`)."""
    values = {
        "yaw": np.asarray(yaw, np.float64), "pitch": np.asarray(pitch, np.float64),
        "eyes": np.array([eye_opening(p) for p in lm68], np.float64),
        "mouth": np.array([mouth_opening(p) for p in lm68], np.float64),
    }
    if coefficients is not None:
        look = np.array([gaze(c) for c in coefficients], np.float64).reshape(-1, 2)
        values.update(look=look[:, 0], lids=look[:, 1])
    return FaceFeatures(np.asarray(frames, int), values)


@dataclass(frozen=True)
class Gap:
    attribute: str
    side: str          # "high" or "low"
    first: int
    last: int
    frames: int        # uncovered target faces in the run
    extreme: float     # the most extreme target value in the run
    source_bound: float  # the source's furthest value on that side

    def message(self) -> str:
        a = ATTRIBUTES[self.attribute]
        what = a.high if self.side == "high" else a.low
        span = f"frames {self.first}-{self.last}" if self.last > self.first else f"frame {self.first}"
        edge = "beyond" if self.side == "high" else "below"
        unit = f" {a.unit}" if a.unit else ""
        return (f"{span}: {what} ({self.attribute} {self.extreme:.3g}{unit}); the source has none "
                f"{edge} {self.source_bound:.3g}")

    def to_json(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "side": self.side, "first": self.first, "last": self.last,
                "frames": self.frames, "extreme": round(self.extreme, 4),
                "source_bound": round(self.source_bound, 4), "message": self.message()}


@dataclass(frozen=True)
class Coverage:
    source: FaceFeatures
    target: FaceFeatures
    uncovered: dict[str, np.ndarray]
    """Attribute -> (N_target,) int8: +1 above, -1 below what the source covers, 0 covered."""
    gaps: list[Gap]

    def ranges(self) -> dict[str, dict[str, list[float]]]:
        """Per attribute, the 5th and 95th percentiles of the source and of the target."""
        def pct(v: np.ndarray) -> list[float]:
            return [round(float(x), 4) for x in np.percentile(v, [5, 95])] if len(v) else []
        return {name: {"source": pct(self.source.values[name]), "target": pct(self.target.values[name])}
                for name in self.attributes()}

    def attributes(self) -> list[str]:
        """The attributes both face sets have, in `ATTRIBUTES`' order."""
        return [n for n in ATTRIBUTES if n in self.source.values and n in self.target.values]

    def to_json(self) -> dict[str, Any]:
        return {"ranges": self.ranges(), "gaps": [g.to_json() for g in self.gaps],
                "uncovered_frames": {name: [int(f) for f in self.target.frames[v != 0]]
                                     for name, v in self.uncovered.items()}}


def _uncovered(source: np.ndarray, target: np.ndarray, tolerance: float, min_source: int) -> np.ndarray:
    """+1 / -1 / 0 per target value: too few source values within `tolerance`, and on which side of the
    source's median it lies."""
    s = np.sort(source)
    near = np.searchsorted(s, target + tolerance, "right") - np.searchsorted(s, target - tolerance, "left")
    side = np.where(target >= (np.median(s) if len(s) else 0.0), 1, -1)
    return np.where(near < min_source, side, 0).astype(np.int8)


def compare(source: FaceFeatures, target: FaceFeatures, *, min_source: int = 3, min_run: int = 3,
            join_gap: int = 5) -> Coverage:
    """Which target faces the source does not cover, attribute by attribute, as runs of at least `min_run`
    uncovered frames (runs closer than `join_gap` frames are joined)."""
    uncovered: dict[str, np.ndarray] = {}
    gaps: list[Gap] = []
    for name, attr in ATTRIBUTES.items():
        if name not in source.values or name not in target.values:
            continue
        sv, tv = source.values[name], target.values[name]
        flags = _uncovered(sv, tv, attr.tolerance, min_source)
        uncovered[name] = flags
        lo, hi = (float(sv.min()), float(sv.max())) if len(sv) else (float("nan"), float("nan"))
        for side, sign in (("high", 1), ("low", -1)):
            marks = flags == sign
            for first, last in frame_ranges(marks, list(target.frames), join_gap):
                inside = marks & (target.frames >= first) & (target.frames <= last)
                if inside.sum() < min_run:
                    continue
                vals = tv[inside]
                gaps.append(Gap(name, side, first, last, int(inside.sum()),
                                float(vals.max() if sign > 0 else vals.min()), hi if sign > 0 else lo))
    gaps.sort(key=lambda g: (g.first, g.attribute))
    return Coverage(source, target, uncovered, gaps)


def plot(coverage: Coverage, path: Path) -> None:
    """coverage.png: per attribute, the source's and the target's distributions, and the target over frames
    with the uncovered frames marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = coverage.attributes()
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 2.2 * len(names)), dpi=90,
                             gridspec_kw={"width_ratios": [1, 2.5]}, squeeze=False)
    for row, name in enumerate(names):
        attr = ATTRIBUTES[name]
        sv, tv = coverage.source.values[name], coverage.target.values[name]
        both = np.concatenate([sv, tv])
        bins = np.linspace(both.min(), both.max() + 1e-9, 30) if len(both) else 10
        axes[row, 0].hist(sv, bins=bins, alpha=0.6, label="source", density=True)
        axes[row, 0].hist(tv, bins=bins, alpha=0.6, label="target", density=True)
        axes[row, 0].set_ylabel(f"{name} ({attr.unit})" if attr.unit else name, fontsize=8)
        axes[row, 0].legend(fontsize=7)
        ax = axes[row, 1]
        ax.plot(coverage.target.frames, tv, lw=1, label="target")
        bad = coverage.uncovered[name] != 0
        ax.scatter(coverage.target.frames[bad], tv[bad], s=6, c="red", label="source has none")
        if len(sv):
            ax.axhspan(sv.min(), sv.max(), alpha=0.15, color="green", label="source range")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 1].set_xlabel("target frame")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.part")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)


def workspace_coverage(ws: Workspace) -> Coverage | None:
    """Coverage of the chosen target person's usable faces by the chosen source person's; None until both
    have faces. The target's frame numbers are those of its first video."""
    from doppel.extract import blendshapes
    from doppel.extract.curate import face_set

    sets = {}
    for role in ("source", "target"):
        faces = face_set(ws, role, excluded=False)
        if not faces:
            return None
        if role == "target":
            faces = sorted(faces, key=lambda f: (f.media_id, f.frame_idx))
        sets[role] = features([f.frame_idx for f in faces], [f.lm68 for f in faces], [f.yaw for f in faces],
                              [f.pitch for f in faces], blendshapes.of_faces(ws, faces))
    return compare(sets["source"], sets["target"])


def write_coverage(ws: Workspace, coverage: Coverage) -> Path:
    """WS/coverage/coverage.json and coverage.png; returns the folder."""
    folder = ws.subdir("coverage")
    write_text_atomic(folder / "coverage.json", json.dumps(coverage.to_json(), indent=1))
    plot(coverage, folder / "coverage.png")
    return folder
