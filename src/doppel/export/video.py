"""`doppel export`: encode the merged shot, and optionally the layers a compositor needs."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.fsutil import atomic_path, write_text_atomic
from doppel.media.encode import CODECS, VideoWriter
from doppel.media.images import write_png
from doppel.media.probe import Progress
from doppel.media.video import MediaReader
from doppel.merge.plan import stale_frames
from doppel.provenance import Disclosure, container_metadata, mark_frame, title_card
from doppel.provenance.keys import SigningIdentity, ensure_workspace_identity
from doppel.provenance.manifest import MIME_TYPES, Ingredient, ManifestInfo, sign_file
from doppel.provenance.watermark import max_export_crf, workspace_tag
from doppel.reports import Report
from doppel.train import checkpoint
from doppel.workspace import Workspace

EXPORT_CODECS = ("h264", "prores", "lossless", "png")
"""Every export format carries a C2PA manifest: MP4/MOV files embed one; a PNG sequence has one per frame."""
_CONTAINERS = {"h264": (".mp4", ".mov", ".m4v"), "prores": (".mov",), "lossless": (".mov",)}


@dataclass(frozen=True)
class ExportReport(Report):
    """`export`'s result. Every export is watermarked, carries the visible disclosure and a C2PA manifest."""

    path: Path
    frames: int
    seconds: float
    codec: str
    audio_streams: int
    layers: Path | None
    c2pa: bool = False
    self_signed: bool = True


def _read_png(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise DoppelError("render is missing or unreadable; run `doppel merge`", path)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def export(ws: Workspace, output: Path, *, codec: str | None = None, crf: int | None = None,
           disclosure: Disclosure | None = None, layers: Path | None = None,
           identity: SigningIdentity | None = None, author: str | None = None, purpose: str | None = None,
           consent: str | None = None, progress: Progress | None = None) -> ExportReport:
    """Encode every target frame (rendered where swapped, the plate elsewhere) with provenance marks: the
    visible disclosure and the watermark on every frame, and for MP4/MOV a signed C2PA manifest."""
    start = time.perf_counter()
    disclosure = disclosure or Disclosure()
    if not isinstance(disclosure, Disclosure):
        raise DoppelError(f"disclosure must be a Disclosure, not {type(disclosure).__name__}")
    disclosure.check()
    codec = codec or ws.settings.export.codec
    if codec not in EXPORT_CODECS or codec not in CODECS:
        raise DoppelError(f"unknown export codec {codec!r}; choose one of {', '.join(EXPORT_CODECS)}")
    if codec in _CONTAINERS and Path(output).suffix.lower() not in _CONTAINERS[codec]:
        raise DoppelError(f"{codec} exports go into {' or '.join(_CONTAINERS[codec])} files", output)
    crf = crf if crf is not None else ws.settings.export.crf
    target = ws.target()
    if target is None:
        raise DoppelError("the workspace has no target", ws.root)
    highest = max_export_crf(target.info.height)
    if codec == "h264" and not 0 <= crf <= highest:
        raise DoppelError(f"--crf {crf} is out of range: on {target.info.height}-line frames the watermark is only "
                          f"guaranteed to survive CRF 0 to {highest} (lower is better quality)")
    model = checkpoint.identity(ws, ws.settings.merge.model)
    model_config = model.config
    stale = stale_frames(ws, model.id)
    if stale:
        raise DoppelError(f"{len(stale)} frame(s) are not rendered or out of date (first: {stale[0]}); "
                          "run `doppel merge` first", ws.root)
    renders = ws.renders.all()
    info = target.info
    output = Path(output).expanduser().resolve()
    signable = MIME_TYPES.get(output.suffix.lower()) if codec != "png" else None
    identity = identity or ensure_workspace_identity(ws.root, ws.id)
    tag = workspace_tag(ws.id)
    encode_to = output.with_name(f".{output.stem}.unsigned{output.suffix}") if signable else output
    audio = Path(info.path) if info.kind == "video" and info.audio else None
    layer_tmp = None
    if layers is not None:
        layers = Path(layers).expanduser().resolve()
        layer_tmp = layers.with_name(f".{layers.name}.part")
        shutil.rmtree(layer_tmp, ignore_errors=True)
        (layer_tmp / "face").mkdir(parents=True)
        (layer_tmp / "mask").mkdir()
    card_frames = 0
    if disclosure.mode == "credits":
        card_frames = max(1, round(disclosure.card_seconds * float(info.fps)))
    try:
        with MediaReader(info) as reader, VideoWriter(
            encode_to, width=info.width, height=info.height, time_base=info.time_base, fps=info.fps, codec=codec,
            crf=crf, audio_from=audio,
            metadata=container_metadata(disclosure, ws.id),
        ) as writer:
            transforms = []
            n = info.frame_count
            for i in range(n):
                render = renders.get(i)
                image = _read_png(ws.root / render.path) if render and render.path else reader[i]
                if card_frames and (i < card_frames or i >= n - card_frames):
                    image = title_card(info.width, info.height, disclosure.text)
                image = mark_frame(image, disclosure, tag)
                writer.write(np.ascontiguousarray(image), info.pts[i])
                if layer_tmp is not None:
                    rgba = np.zeros((info.height, info.width, 4), np.uint8)
                    if render and render.layer_path:
                        part = _read_png(ws.root / render.layer_path, cv2.IMREAD_UNCHANGED)
                        x, y = render.layer_x, render.layer_y
                        rgba[y:y + part.shape[0], x:x + part.shape[1]] = part
                    write_png(layer_tmp / "face" / f"{i:06d}.png", rgba)
                    write_png(layer_tmp / "mask" / f"{i:06d}.png", rgba[..., 3])
                    transforms.append({"frame": i, "time_s": float((info.pts[i] - info.pts[0]) * info.time_base),
                                       "swapped": bool(render and render.swapped),
                                       "frame_to_crop": render.matrix.tolist() if render and render.matrix is not None
                                       else None})
                if progress and i % 10 == 0:
                    progress(i + 1, n)
        ingredients = [Ingredient(m.path, m.name, MIME_TYPES.get(m.path.suffix.lower(), "video/mp4"),
                                  "parentOf" if m.role == "target" else "inputTo", m.info.sha256)
                       for m in ws.media() if m.path.is_file() and m.path.suffix.lower() in MIME_TYPES]
        manifest = ManifestInfo(title=output.name, workspace_id=ws.id, disclosure_text=disclosure.text,
                                ingredients=ingredients, author=author, purpose=purpose, consent=consent)
        if signable:
            with atomic_path(output) as tmp:
                sign_file(encode_to, tmp, manifest, identity, signable)
            encode_to.unlink()
        else:  # a PNG sequence: every frame carries the manifest (ingredients by hash, not re-embedded)
            per_frame = replace(manifest, embed_ingredients=False)
            for frame in sorted(output.glob("*.png")):
                with atomic_path(frame) as tmp:
                    sign_file(frame, tmp, per_frame, identity, "image/png")
        if layer_tmp is not None and layers is not None:
            write_text_atomic(layer_tmp / "transforms.json", json.dumps({
                "frames": transforms, "width": info.width, "height": info.height,
                "fps": f"{Fraction(info.fps).numerator}/{Fraction(info.fps).denominator}",
                "model_resolution": model_config.resolution, "face_type": model_config.face_type,
                "about": "frame_to_crop maps frame pixels to the model's aligned crop; face/ is the recoloured "
                         "face in frame space with its alpha, mask/ the alpha alone"}, indent=1))
            if layers.exists():
                shutil.rmtree(layers)
            layer_tmp.rename(layers)
    except BaseException:
        if encode_to != output:
            encode_to.unlink(missing_ok=True)
        if layer_tmp is not None:
            shutil.rmtree(layer_tmp, ignore_errors=True)
        raise
    return ExportReport(output, info.frame_count, time.perf_counter() - start, codec,
                        len(info.audio) if audio and codec != "png" else 0, layers, True, identity.self_signed)
