"""The scriptable front door: `doppel.create` / `doppel.open` give a `Project`, whose methods run each step.

A `Project` is a workspace opened through the API; every method returns a frozen report (see
`doppel.reports`) and takes an optional `progress(stage, done, total, message)` callback. The CLI is a thin
layer over this module, so everything the CLI can do a script can do. Strings that name a mode (roles,
codecs, disclosures, sort keys) are checked here and a wrong one is a `DoppelError` naming the choices.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from doppel.api_mask import MaskMethods
from doppel.errors import DoppelError
from doppel.progress import ProgressCallback, bind
from doppel.reports import Report
from doppel.workspace import Media, Workspace
from doppel.workspace.faces import Face
from doppel.workspace.overrides import Override
from doppel.workspace.records import Role
from doppel.workspace.settings import ExportCodec

if TYPE_CHECKING:
    from doppel.demo import DemoReport
    from doppel.evaluate.coverage import Coverage
    from doppel.evaluate.metrics import EvalReport
    from doppel.export.video import ExportReport
    from doppel.extract.run import ExtractReport
    from doppel.merge.render import MergeReport
    from doppel.provenance import Disclosure, DisclosureMode
    from doppel.provenance.verify import VerifyReport
    from doppel.train.loop import TrainReport

PathLike = str | os.PathLike[str]
SortKey = Literal["frame", "sharpness", "yaw", "pitch", "size", "identity"]
Codec = ExportCodec


def choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """`value` if it is one of `allowed`; otherwise a DoppelError listing them."""
    if value not in allowed:
        raise DoppelError(f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")
    return value


@dataclass(frozen=True)
class AddReport(Report):
    """The media `add` put into the workspace."""

    media: tuple[Media, ...]


@dataclass(frozen=True)
class InfoReport(Report):
    """A workspace at a glance: its media (with face counts), frames, faces, models and renders."""

    workspace: str
    id: str
    schema_version: int
    media: tuple[dict[str, Any], ...]
    frames: dict[str, int]
    faces: int
    models: dict[str, dict[str, Any]]
    merged_frames: int
    swapped_frames: int


@dataclass(frozen=True)
class FaceSetReport(Report):
    """A face set: how many faces, how many usable (not excluded), and the listed ones in order."""

    role: Role
    person: str
    faces: int
    usable: int
    listed: tuple[Face, ...]
    coverage: Coverage | None = None
    """For the target: which target frames ask for a pose or expression the source never shows."""


@dataclass(frozen=True)
class CurateReport(Report):
    """What a curation call changed: faces excluded, included again, and kept by `keep_best`."""

    excluded: int = 0
    included: int = 0
    kept: int = 0


@dataclass(frozen=True)
class PresetInfo(Report):
    name: str
    description: str
    arch: str
    resolution: int
    batch_size: int


def _paths(value: PathLike | Sequence[PathLike] | None) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [Path(value)]
    return [Path(v) for v in value]


def _fps(value: str | float | Fraction | None) -> Fraction | None:
    if value is None:
        return None
    try:
        rate = Fraction(value) if not isinstance(value, float) else Fraction(value).limit_denominator(1001)
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        raise DoppelError(f"fps {value!r} is not a number or fraction") from exc
    if rate <= 0:
        raise DoppelError(f"fps must be positive, not {value!r}")
    return rate


class Project(MaskMethods):
    """A doppel workspace opened for scripting. Close it when done (or use `with`).

    The steps, in order: `add`, `extract` (then optionally `faces` / `exclude` / `include` / `keep_best`),
    `train`, `merge` (with `set_override` for frame ranges), `export`, `evaluate`; `info` at any time.
    Occlusion masks (doppel.api_mask): `add_mask_label`, `propagate_mask`, `confirm_mask_labels`, `train_mask`...
    `workspace` is the underlying storage object, for the library's own stages.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def root(self) -> Path:
        return self.workspace.root

    @property
    def id(self) -> str:
        return self.workspace.id

    def close(self) -> None:
        self.workspace.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<doppel.Project {self.root}>"

    # -- ingest -------------------------------------------------------------------------------------------
    def add(self, *, source: PathLike | Sequence[PathLike] | None = None, target: PathLike | None = None,
            fps: str | float | Fraction | None = None, progress: ProgressCallback | None = None) -> AddReport:
        """Probe and add source footage (videos, images or folders of images; one or several) or the target
        plate (one video or folder of frames). All or nothing: on any error nothing is added. `fps` is the
        frame rate of image sequences (default from doppel.toml)."""
        from doppel.ingest import add_media

        sources, targets = _paths(source), _paths(target)
        if bool(sources) == bool(targets):
            raise DoppelError("give either source=PATH(s) or target=PATH")
        role: Role = "target" if targets else "source"
        ids = add_media(self.workspace, targets or sources, role, fps=_fps(fps),
                        progress_for=lambda p: bind(progress, "probe", p.name))
        return AddReport(tuple(self.workspace.media_by_id(i) for i in ids))

    def info(self) -> InfoReport:
        """The workspace's summary (what `doppel info` shows)."""
        s = self.workspace.summary()
        return InfoReport(s["workspace"], s["id"], s["schema_version"], tuple(s["media"]), s["frames"],
                          s["faces"], s["models"], s["merged_frames"], s["swapped_frames"])

    # -- extract and curate -------------------------------------------------------------------------------
    def extract(self, *, reference: PathLike | None = None, source_reference: PathLike | None = None,
                workers: int | None = None, redo: bool = False, debug: bool = False,
                progress: ProgressCallback | None = None) -> ExtractReport:
        """Detect, landmark, align, mask and embed every face; link tracks and people. Resumes an interrupted
        run. `reference`: an image of the target person to swap; `source_reference`: of the source identity.
        `debug` also writes overlays to WS/debug/."""
        from doppel.extract.debug import write_overlays
        from doppel.extract.run import extract

        if workers is not None and workers < 1:
            raise DoppelError(f"workers must be at least 1, not {workers}")
        report = extract(self.workspace, workers=workers, reference=Path(reference) if reference else None,
                         source_reference=Path(source_reference) if source_reference else None, redo=redo,
                         progress_for=lambda m: bind(progress, "extract", m.name))
        if debug:
            folder = write_overlays(self.workspace, progress_for=lambda m: bind(progress, "overlays", m.name))
            report = replace(report, overlays=folder)
        return replace(report, coverage=self.coverage())

    def coverage(self) -> Coverage | None:
        """Which target frames ask for a head pose, eye or mouth opening the source never shows (None until
        both people have faces); also written to WS/coverage/coverage.{json,png}."""
        from doppel.evaluate.coverage import workspace_coverage, write_coverage

        cover = workspace_coverage(self.workspace)
        if cover is not None:
            write_coverage(self.workspace, cover)
        return cover

    def faces(self, *, role: Role = "source", person: str | int = "chosen", sort: SortKey = "frame",
              limit: int | None = None) -> FaceSetReport:
        """A face set: of the chosen person ("chosen"), everyone ("all") or person id N, in `sort` order
        (sharpness and size best first, identity nearest to the chosen person first), the first `limit`."""
        from doppel.extract import curate

        choice("role", role, get_args(Role))
        choice("sort", sort, get_args(SortKey))
        chosen = self.workspace.people.chosen(role)
        listed = curate.sort_faces(curate.face_set(self.workspace, role, person=str(person)), sort,
                                   chosen.embedding if chosen else None)
        usable = sum(not f.excluded for f in listed)
        return FaceSetReport(role, str(person), len(listed), usable, tuple(listed[:limit] if limit else listed),
                             self.coverage() if role == "target" else None)

    def exclude(self, ids: Sequence[int] | str, reason: str = "excluded by hand") -> CurateReport:
        """Exclude faces by id (a list, or text such as "12,40-45") from training; nothing is deleted."""
        from doppel.extract import curate

        ids = curate.parse_ids(ids) if isinstance(ids, str) else list(ids)
        return CurateReport(excluded=curate.set_excluded(self.workspace, ids, True, reason))

    def include(self, ids: Sequence[int] | str) -> CurateReport:
        """Include faces again by id."""
        from doppel.extract import curate

        ids = curate.parse_ids(ids) if isinstance(ids, str) else list(ids)
        return CurateReport(included=curate.set_excluded(self.workspace, ids, False, ""))

    def keep_best(self, n: int, *, role: Role = "source") -> CurateReport:
        """Keep the best `n` usable faces of the chosen person spread over head poses; exclude the rest."""
        from doppel.extract import curate

        choice("role", role, get_args(Role))
        if n < 1:
            raise DoppelError(f"keep at least 1 face, not {n}")
        kept, dropped = curate.keep_best(self.workspace, role, n)
        return CurateReport(excluded=dropped, kept=kept)

    # -- train --------------------------------------------------------------------------------------------
    def train(self, *, minutes: float | None = None, iterations: int | None = None, preset: str | None = None,
              model: str = "main", init_from: PathLike | None = None, batch_size: int | None = None,
              learning_rate: float | None = None, bf16: bool | None = None, gan_power: float | None = None,
              true_face_power: float | None = None, random_warp: bool | None = None, seed: int | None = None,
              gaze: bool | None = None, device: str | None = None, preview_minutes: float = 2.0,
              checkpoint_minutes: float = 5.0, progress: ProgressCallback | None = None) -> TrainReport:
        """Train (or continue) model `model` for `minutes` and/or `iterations` more steps; Ctrl-C saves and
        stops. A new model uses `preset` (see `doppel.presets()`); without one, cpu-128 for a run of 10 minutes
        or 1400 steps or more and cpu-64 for a shorter one (`train.config.default_preset`). Under torchrun, every
        process calls this and the processes share the batch. `random_warp=False` trains on unwarped inputs
        from here on (DeepFaceLab's last phase, for a model that already swaps well); like the other options
        it is kept for later runs. `seed` picks a new model's starting weights and batches (the same seed and
        data train the same model); a model keeps the seed it was made with. `gaze=True` makes a new model whose
        expression code also says where the target's eyes look and how far its lids close (read by the face
        mesh's blendshapes): its eyes follow the plate's glances, at some cost to the identity test on a target
        that glances often (benchmarks/RESULTS.md, fourteenth session); chosen when a model is made."""
        from doppel.device import process_group
        from doppel.train.config import default_preset
        from doppel.train.loop import Budget, Trainer

        if iterations is None and minutes is None:
            raise DoppelError("give iterations=N or minutes=M")
        if (iterations is not None and iterations < 0) or (minutes is not None and minutes < 0):
            raise DoppelError("iterations and minutes must not be negative")
        overrides = {k: v for k, v in (("batch_size", batch_size), ("learning_rate", learning_rate),
                                       ("bf16", bf16), ("gan_power", gan_power),
                                       ("true_face_power", true_face_power), ("random_warp", random_warp),
                                       ("seed", seed))
                     if v is not None}
        with process_group(device):
            trainer = Trainer.open(self.workspace, name=model, preset=preset, device=device,
                                   init_from=Path(init_from) if init_from else None, overrides=overrides,
                                   default=default_preset(minutes, iterations), gaze=gaze)
            m = trainer.model_cfg
            step = bind(progress, "train", f"{model} ({trainer.preset}: {m.arch} {m.resolution}px, from step "
                                           f"{trainer.step}, on {trainer.device})")
            first, start = trainer.step, time.monotonic()

            def report(done: int, last: int | None, figures: dict[str, float]) -> None:
                if step is None or trainer.rank != 0:
                    return
                if last is not None:
                    step(done - first, last - first)
                else:
                    step(int(time.monotonic() - start), int((minutes or 0) * 60))

            return trainer.train(Budget(iterations, minutes, preview_minutes, checkpoint_minutes), report)

    # -- merge --------------------------------------------------------------------------------------------
    def set_override(self, frames: str | int | tuple[int, int], key: str, value: Any) -> Override:
        """Override one [merge] setting for a frame range ("120-180", 42 or (120, 180), inclusive)."""
        from doppel.merge import overrides as ov

        target = self.workspace.target()
        if target is None:
            raise DoppelError("the workspace has no target; add one first", self.root)
        if isinstance(frames, tuple):
            frames = f"{frames[0]}-{frames[1]}"
        first, last = ov.parse_range(str(frames), target.info.frame_count)
        return ov.add_override(self.workspace, first, last, key, value)

    def overrides(self) -> tuple[Override, ...]:
        """The frame-range overrides, oldest first (later ones win)."""
        return tuple(self.workspace.overrides.all())

    def remove_overrides(self, ids: Sequence[int] | None = None) -> int:
        """Remove the overrides with these ids (all of them when `ids` is None); returns how many."""
        with self.workspace.transaction():
            return self.workspace.overrides.remove(list(ids) if ids is not None else None)

    def merge(self, *, force: bool = False, device: str | None = None,
              progress: ProgressCallback | None = None) -> MergeReport:
        """Render the swapped face onto every target frame whose inputs changed (all of them with `force`)."""
        from doppel.merge.render import merge

        if self.workspace.target() is None:
            raise DoppelError("the workspace has no target; add one first", self.root)
        return merge(self.workspace, device=device, force=force, progress=bind(progress, "merge"))

    # -- export and evaluate ------------------------------------------------------------------------------
    def export(self, path: PathLike, *, codec: Codec | None = None, crf: int | None = None,
               layers: PathLike | None = None, disclosure: DisclosureMode | Disclosure = "badge",
               disclosure_text: str = "AI-generated", author: str | None = None, purpose: str | None = None,
               consent: str | None = None, cert: PathLike | None = None, key: PathLike | None = None,
               progress: ProgressCallback | None = None, new_identity: bool = False) -> ExportReport:
        """Encode the finished shot at the plate's timestamps with its audio. Every export carries the visible
        disclosure (`badge` on every frame, or `credits` cards at the start and end), the invisible
        watermark and a signed C2PA manifest; no argument removes them. `codec`: h264 (.mp4), prores or
        lossless (.mov), png (a folder); default from doppel.toml. `layers`: also write face RGBA / mask
        PNGs and transforms.json there. `cert` and `key`: your own signing identity (PEM). When the workspace's
        own identity (keys/) is missing, export refuses unless `new_identity` asks for a new one."""
        from doppel.export.video import export
        from doppel.provenance import Disclosure
        from doppel.provenance.keys import load_identity

        if codec is not None:
            choice("codec", codec, get_args(Codec))
        if isinstance(disclosure, str):
            disclosure = Disclosure(disclosure, disclosure_text)  # the mode is checked there
        if (cert is None) != (key is None):
            raise DoppelError("give both cert and key, or neither")
        identity = load_identity(Path(cert), Path(key)) if cert is not None and key is not None else None
        return export(self.workspace, Path(path), codec=codec, crf=crf, layers=Path(layers) if layers else None,
                      disclosure=disclosure, identity=identity, author=author, purpose=purpose, consent=consent,
                      progress=bind(progress, "export"), new_identity=new_identity)

    def evaluate(self, *, progress: ProgressCallback | None = None) -> EvalReport:
        """Identity, expression and flicker figures for the merged shot; also writes WS/eval/report.{json,txt,
        png} (the report's `folder`)."""
        from doppel.evaluate.metrics import evaluate, write_report

        report = evaluate(self.workspace, progress=bind(progress, "eval"))
        return replace(report, folder=write_report(self.workspace, report))


def create(path: PathLike) -> Project:
    """Create a new workspace folder (default settings in its doppel.toml, a signing identity in keys/)."""
    from doppel.provenance.keys import ensure_workspace_identity

    ws = Workspace.create(Path(path))
    ensure_workspace_identity(ws.root, ws.id)
    return Project(ws)


def open_project(path: PathLike) -> Project:
    """Open an existing workspace (migrating its database forward if it is from an older doppel)."""
    return Project(Workspace.open(Path(path)))


def verify(path: PathLike, *, thorough: bool = False) -> VerifyReport:
    """What a file says about itself: its C2PA manifest (valid? tampered? signer), doppel's watermark (found
    after re-encoding, resizing, cropping, mirroring or small rotations; searched in 3-second excerpts over the
    whole file, every one with `thorough`; `report.watermark_ranges` says where) and its container metadata.
    `report.marked` is the verdict."""
    from doppel.provenance.verify import verify as run_verify

    return run_verify(Path(path), thorough=thorough)


def presets() -> tuple[PresetInfo, ...]:
    """The model presets `train(preset=...)` accepts."""
    from doppel.train.config import PRESETS

    return tuple(PresetInfo(p.name, p.description, p.model.arch, p.model.resolution, p.train.batch_size)
                 for p in PRESETS.values())


def demo_clips(folder: PathLike, *, frames: int = 75, size: tuple[int, int] = (320, 320)) -> tuple[Path, Path]:
    """Write two short moving clips made from public-domain portraits into `folder`: `source.mp4` (the
    astronaut Eileen Collins) and `target.mp4` (Grace Hopper). Returns their paths."""
    from doppel.demo import make_demo_clips

    return make_demo_clips(Path(folder), frames=frames, size=size)


def run_demo(folder: PathLike, *, source: PathLike | None = None, target: PathLike | None = None,
         minutes: float = 8.0, preset: str = "cpu-64", progress: ProgressCallback | None = None) -> DemoReport:
    """The whole job on the bundled clips (or `source` and `target`): add, extract, train for `minutes`,
    merge, export (labelled) and evaluate, all under `folder`. Steps are reported as stage "demo"."""
    from doppel import demo

    return demo.run_demo(Path(folder), source=Path(source) if source else None,
                    target=Path(target) if target else None, minutes=minutes, preset=preset, progress=progress)


def _database_errors_as_doppel_errors(cls: type) -> type:
    """Wrap every public method of `cls` so that damage SQLite finds only when a page is read (mid-call, long
    after the workspace opened) reaches the caller as a one-line DoppelError naming the database, as the CLI
    reports it, never as a raw SQLite error with the damaged row's bytes in it."""
    import functools

    from doppel.workspace.db import RESTORE, DatabaseError

    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        def call(self: Project, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except DatabaseError as exc:
                detail = " ".join(str(exc).split()).encode("ascii", "replace").decode()[:200]
                raise DoppelError(f"workspace database is damaged or unreadable ({detail}); {RESTORE}",
                                  self.root / "doppel.db") from exc

        return call

    for name in dir(cls):
        value = getattr(cls, name)
        if not name.startswith("_") and callable(value) and not isinstance(value, type):
            setattr(cls, name, wrap(value))
    return cls


_database_errors_as_doppel_errors(Project)
