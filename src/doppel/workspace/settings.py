"""`doppel.toml`: human-editable settings, written out in full with their defaults and explanations.

Each section is a frozen dataclass; a field's `help` metadata becomes the comment above it in the file.
Unknown sections or keys and wrongly typed values are errors, so a typo never passes silently.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from doppel.errors import DoppelError
from doppel.facetype import FACE_TYPE_NAMES, FaceType

MaskMode = Literal["landmarks", "learned", "intersect", "union", "occlusion", "landmarks+occlusion",
                   "learned+occlusion", "intersect+occlusion"]
ColorMode = Literal["none", "rct", "lct", "mkl", "idt", "sot"]
BlendMode = Literal["alpha", "seamless"]
ExpressionSource = Literal["face", "landmarks"]
ExportCodec = Literal["h264", "prores", "lossless", "png"]
COLOR_MODES: tuple[ColorMode, ...] = get_args(ColorMode)


def _f(default: Any, help: str, choices: tuple[Any, ...] | None = None,
       bounds: tuple[float, float] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "bounds": bounds})


@dataclass(frozen=True)
class IngestSettings:
    sequence_fps: float = _f(25.0, "Frame rate given to folders of images (image sequences).",
                             bounds=(0.01, 1000.0))


@dataclass(frozen=True)
class ExtractSettings:
    face_type: FaceType = _f("whole_face", "Aligned crop type.", FACE_TYPE_NAMES)
    crop_size: int = _f(256, "Side of the aligned face crops in pixels.", bounds=(32, 2048))
    min_face_px: int = _f(24, "Faces narrower than this (pixels in the frame) are ignored.", bounds=(1, 8192))
    detect_threshold: float = _f(0.3, "Face detector confidence threshold (0-1); the mesh then confirms each face.",
                                 bounds=(0.0, 1.0))


@dataclass(frozen=True)
class MergeSettings:
    model: str = _f("main", "Which trained model of the workspace renders the face.")
    swap: bool = _f(True, "Replace the face at all (an override can turn it off for a range of frames).")
    mask: MaskMode = _f("intersect", "Compositing mask: the landmark polygon, the model's learned mask, or both; "
                        "the *occlusion modes also cut out what the occlusion network (`doppel mask`) finds in "
                        "front of the face.", get_args(MaskMode))
    forehead: float = _f(0.0, "Share (0-1) of the crop type's reach over the forehead that the landmark polygon "
                         "keeps: 0 stops the face at the mesh's hairline, so the target's own forehead and hair "
                         "stay and the source's hair (or hat) is not pasted over them; 1 swaps the whole "
                         "forehead the crop type covers.", bounds=(0.0, 1.0))
    hair_cut: bool = _f(True, "Leave to the plate what the generated face draws above the brows in a colour far "
                        "from its skin: the source's hair or hat, which its model draws at the source's own "
                        "hairline, inside a higher forehead of the target's.")
    erode: float = _f(2.0, "Shrink (>0) or grow (<0) the mask, in percent of the face crop.", bounds=(-20.0, 40.0))
    feather: float = _f(6.0, "Soften the mask's edge over this percent of the face crop.", bounds=(0.0, 40.0))
    expression: ExpressionSource = _f("landmarks", "Where a model with an expression code reads the target's "
                                      "eyes and mouth: the landmarks alone (eyes and mouth blurred out of the "
                                      "model's input, so a hand at the mouth cannot mislead it; the default, it "
                                      "follows the plate's mouth more closely) or the face (its pixels and "
                                      "landmarks).", get_args(ExpressionSource))
    color: ColorMode = _f("rct", "Colour transfer from the plate to the generated face.", COLOR_MODES)
    temporal_color: int = _f(7, "Frames over which the plate's colour statistics are averaged (1: off).",
                             bounds=(1, 121))
    blend: BlendMode = _f("alpha", "Alpha blending, or seamless (Poisson) cloning.", get_args(BlendMode))
    hist_match: bool = _f(False, "Also match each colour channel's histogram to the plate's.")
    sharpen: float = _f(0.0, "Sharpen (>0) or soften (<0) the generated face, -1 to 1.", bounds=(-1.0, 1.0))
    source_detail: float = _f(1.0, "Lend the generated face this much (0-2) of the fine structure of the source's "
                              "own nearest real photograph, warped onto the target's landmarks: the eyelids, "
                              "nostrils and lip edges a model trained for minutes has not learnt yet (0: off; "
                              "merge/photos.py).", bounds=(0.0, 2.0))
    plate_detail: float = _f(0.0, "Keep this share (0-1) of the plate's detail finer than the model's pixels "
                             "(skin texture the model cannot make; it is the target's own).", bounds=(0.0, 1.0))
    grain: float = _f(0.0, "Add grain shaped like the plate's own until the face's fine detail matches this share "
                      "of the plate's (0: off; grain is not detail, see doppel eval's detail figure).",
                      bounds=(0.0, 2.0))


@dataclass(frozen=True)
class ExportSettings:
    codec: ExportCodec = _f("h264", "Video codec of `doppel export` (lossless: PNG-coded frames in a .mov).",
                            get_args(ExportCodec))
    crf: int = _f(18, "H.264 quality (lower is better, 0 is lossless).", bounds=(0, 51))


@dataclass(frozen=True)
class Settings:
    ingest: IngestSettings = field(default_factory=IngestSettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    merge: MergeSettings = field(default_factory=MergeSettings)
    export: ExportSettings = field(default_factory=ExportSettings)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def default_toml() -> str:
    lines = [
        "# doppel workspace settings. Edit freely: every key is shown with its default.",
        "# Frame-range overrides live in the workspace database (doppel merge --help).",
    ]
    defaults = Settings()
    for section in fields(Settings):
        lines += ["", f"[{section.name}]"]
        obj = getattr(defaults, section.name)
        for f in fields(obj):
            comment = f.metadata["help"]
            if f.metadata["choices"]:
                comment += " One of: " + ", ".join(map(str, f.metadata["choices"])) + "."
            if f.metadata["bounds"]:
                comment += " Range: {} to {}.".format(*f.metadata["bounds"])
            lines += [f"# {comment}", f"{f.name} = {_toml_value(getattr(obj, f.name))}"]
    return "\n".join(lines) + "\n"


def _check(section: str, obj: Any, key: str, value: Any, path: Path) -> Any:
    spec = {f.name: f for f in fields(obj)}
    if key not in spec:
        raise DoppelError(f"unknown setting [{section}] {key} (known: {', '.join(spec)})", path)
    default = getattr(obj, key)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(default):
        raise DoppelError(f"[{section}] {key} must be {type(default).__name__}, got {value!r}", path)
    choices = spec[key].metadata["choices"]
    if choices and value not in choices:
        raise DoppelError(f"[{section}] {key} = {value!r} is not one of {', '.join(map(str, choices))}", path)
    bounds = spec[key].metadata["bounds"]
    if bounds and not bounds[0] <= value <= bounds[1]:  # also refuses nan
        raise DoppelError(f"[{section}] {key} = {value!r} is out of range ({bounds[0]} to {bounds[1]})", path)
    return value


def check_value(section: str, key: str, value: Any, path: Path) -> Any:
    """Validate one setting of `section` (for overrides): unknown keys, wrong types, choices, bounds."""
    return _check(section, getattr(Settings(), section), key, value, path)


def parse_settings(data: dict[str, Any], path: Path) -> Settings:
    settings = Settings()
    known = {f.name for f in fields(Settings)}
    for section, values in data.items():
        if section not in known or not isinstance(values, dict):
            raise DoppelError(f"unknown settings section [{section}] (known: {', '.join(sorted(known))})", path)
        obj = getattr(settings, section)
        checked = {k: _check(section, obj, k, v, path) for k, v in values.items()}
        settings = replace(settings, **{section: replace(obj, **checked)})
    return settings


def load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DoppelError("settings file missing", path) from exc
    except OSError as exc:
        raise DoppelError(f"settings file cannot be read ({exc.strerror})", path) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DoppelError(f"settings file is not valid TOML ({exc})", path) from exc
    return parse_settings(data, path)
