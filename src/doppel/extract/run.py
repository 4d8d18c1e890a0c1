"""`doppel extract`: every frame of every source and of the target, in parallel, resumable."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from doppel.errors import DoppelError
from doppel.extract import people as ppl
from doppel.extract.analyze import AnalyzerConfig, FaceAnalyzer
from doppel.extract.boxes import box_of, iou
from doppel.extract.layout import to_68
from doppel.extract.worker import analyze_batch, init_worker, to_records
from doppel.media.probe import Progress
from doppel.media.video import MediaReader, load_image
from doppel.reports import Report
from doppel.workspace import Media, Workspace
from doppel.workspace.people import Person
from doppel.workspace.records import now

BATCH = 8

if TYPE_CHECKING:
    from doppel.evaluate.coverage import Coverage


@dataclass(frozen=True)
class MediaReport(Report):
    """What extraction did to one media item."""

    json_properties = ("fps",)
    id: int
    name: str
    role: str
    frames: int
    processed: int = 0
    failed: int = 0
    faces: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        """Frames processed per second of this run."""
        return self.processed / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class ExtractReport(Report):
    """`extract`'s result: per media item, warnings, and per role the people found and the chosen one."""

    media: tuple[MediaReport, ...] = ()
    warnings: tuple[str, ...] = ()
    people: dict[str, Any] = field(default_factory=dict)
    overlays: Path | None = None
    """The debug overlays' folder, when they were asked for."""
    coverage: Coverage | None = None
    """Which target frames ask for a pose or expression the source never shows (`doppel.evaluate.coverage`)."""


def reference_embedding(path: Path, config: AnalyzerConfig) -> np.ndarray:
    """Identity of the largest face in a reference image; a clear error if unreadable or faceless."""
    image = load_image(Path(path))
    faces = FaceAnalyzer(config).analyze(image)
    if not faces:
        raise DoppelError("no face found in the reference image", path)
    return faces[0].embedding


def extract(
    ws: Workspace,
    *,
    workers: int | None = None,
    reference: Path | None = None,
    source_reference: Path | None = None,
    redo: bool = False,
    progress_for: Callable[[Media], Progress | None] | None = None,
) -> ExtractReport:
    """Extract faces from every pending frame of every media item, then link tracks and people."""
    config = AnalyzerConfig.from_settings(ws.settings.extract)
    media = ws.media("source") + ws.media("target")
    if not media:
        raise DoppelError("the workspace has no media; add some with `doppel add`", ws.root)
    # Check the references before any work, so a bad one costs nothing.
    refs = {}
    for key, path in (("target_reference", reference), ("source_reference", source_reference)):
        if path is not None:
            refs[key] = {"path": str(Path(path).resolve()), "embedding": reference_embedding(path, config).tolist()}
    with ws.transaction():
        for key, value in refs.items():
            ws.set_meta(key, value)
        if redo:
            ws.faces.delete_all()
            ws.frames.reset()
    reports: list[MediaReport] = []
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_worker, initargs=(config,))
    local = FaceAnalyzer(config) if pool is None else None
    try:
        for m in media:
            reports.append(_extract_media(ws, m, pool, workers, local,
                                               progress_for(m) if progress_for else None))
        if pool is not None:
            pool.shutdown()
            pool = None
        local = local or FaceAnalyzer(config)
        for m in media:
            _fill_gaps(ws, m, local)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    people = postprocess(ws)
    warnings: list[str] = []
    for i, r in enumerate(reports):
        total = ws.faces.count(r.id)
        reports[i] = r = replace(r, faces=total)
        if total == 0:
            warnings.append(f"no face found in {r.name} ({r.frames} frames)")
        if r.failed:
            warnings.append(f"{r.failed} frame(s) of {r.name} could not be decoded (recorded as failed)")
    return ExtractReport(tuple(reports), tuple(warnings), people)


def _frames(reader: MediaReader, indices: list[int]) -> Iterator[tuple[int, np.ndarray | str]]:
    for i in indices:
        try:
            yield i, reader[i]
        except DoppelError as exc:
            yield i, exc.message


def _extract_media(ws: Workspace, m: Media, pool: ProcessPoolExecutor | None, workers: int,
                   local: FaceAnalyzer | None, progress: Progress | None) -> MediaReport:
    counts = {"processed": 0, "failed": 0}
    pending = ws.frames.pending(m.id)
    done_before = m.info.frame_count - len(pending)
    start = time.perf_counter()
    in_flight: dict[Future[Any], list[tuple[int, str]]] = {}
    limit = 4 * workers  # batches in flight: enough to keep every worker busy, bounded memory

    def commit(results: list[tuple[int, list[dict[str, Any]]]], failures: list[tuple[int, str]]) -> None:
        with ws.transaction():
            for frame_idx, records in results:
                for rec in records:
                    ws.faces.insert(m.id, frame_idx, rec)
            ws.frames.mark_done(m.id, [frame_idx for frame_idx, _ in results])
            ws.frames.mark_failed(m.id, failures)
        counts["processed"] += len(results) + len(failures)
        counts["failed"] += len(failures)
        if progress:
            progress(done_before + counts["processed"], m.info.frame_count)

    def drain(block_until: int) -> None:
        while len(in_flight) > block_until:
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for fut in finished:
                commit(fut.result(), in_flight.pop(fut))

    with MediaReader(m.info) as reader:
        frames = _frames(reader, pending)
        while batch := list(itertools.islice(frames, BATCH)):
            good = [(i, img) for i, img in batch if not isinstance(img, str)]
            failures = [(i, img) for i, img in batch if isinstance(img, str)]
            if pool is None:
                commit(analyze_batch(local, ws.root, m.id, good), failures)
                continue
            in_flight[pool.submit(analyze_batch, None, ws.root, m.id, good)] = failures
            drain(limit)
        drain(0)
    return MediaReport(m.id, m.name, m.role, m.info.frame_count, counts["processed"], counts["failed"],
                       seconds=time.perf_counter() - start)


def _fill_gaps(ws: Workspace, m: Media, analyzer: FaceAnalyzer) -> int:
    """Follow faces through frames where the detector missed them (profiles, motion blur), forwards then
    backwards, with the mesh on the region where the face was in the neighbouring frame. Deterministic, so a
    re-run adds nothing new. Returns the number of faces added."""
    meshes = ws.faces.meshes(m.id)
    usable = set(ws.frames.done(m.id))
    added = 0
    if m.info.kind == "image" or not meshes:
        return 0
    with MediaReader(m.info) as reader:
        for order in (range(1, len(reader)), range(len(reader) - 2, -1, -1)):
            for f in order:
                prev = f - 1 if order.step == 1 else f + 1
                if f not in usable or not meshes.get(prev):
                    continue
                present = meshes.get(f, [])
                if len(present) >= len(meshes[prev]) and all(_near(p, present) for p in meshes[prev]):
                    continue
                missing = [p for p in meshes[prev] if not _near(p, present)]
                faces = analyzer.track(reader[f], missing, [to_68(p) for p in present], len(present))
                if not faces:
                    continue
                records = to_records(ws.root, m.id, f, faces, analyzer.config)
                with ws.transaction():
                    for rec in records:
                        ws.faces.insert(m.id, f, rec)
                meshes.setdefault(f, []).extend(face.mesh for face in faces)
                added += len(faces)
    return added


def _near(mesh: np.ndarray, others: list[np.ndarray]) -> bool:
    """Whether a face (mesh) from a neighbouring frame is one of `others` here (boxes overlap well)."""
    if not others:
        return False
    return bool((iou(box_of(mesh), np.stack([box_of(o) for o in others])) > 0.3).any())


def postprocess(ws: Workspace) -> dict[str, Any]:
    """Link tracks, group people, choose the source and target persons, flag and smooth. Deterministic."""
    summary: dict[str, Any] = {}
    updates: list[tuple[int, int, str, int]] = []
    smooth: list[tuple[np.ndarray | None, int]] = []
    people: list[Person] = []
    next_track, next_person = 1, 1
    for role in ("source", "target"):
        tracks: list[ppl.Track] = []
        for m in ws.media(role):
            media_tracks = ppl.link_tracks(ws.faces.of_media(m.id), next_track)
            next_track += len(media_tracks)
            tracks += media_tracks
            times = {i: m.info.pts[i] * float(m.info.time_base) for i in range(m.info.frame_count)}
            for t in media_tracks:
                lms = ppl.smooth_track(t, times) if role == "target" else [None] * len(t.faces)
                smooth += [(lm, f.id) for f, lm in zip(t.faces, lms, strict=True)]
        grouped = ppl.group_people(tracks, next_person)
        next_person += len(grouped)
        stored = ws.get_meta(f"{role}_reference")
        ref = np.array(stored["embedding"], np.float32) if stored else None
        chosen = ppl.choose_person(grouped, ref, role)
        for p in grouped:
            mean = p.embedding
            people.append(Person(p.id, role, mean, len(p.faces), p.median_size, p is chosen))
            for t in p.tracks:
                for f in t.faces:
                    reason = ""
                    if p is not chosen:
                        reason = "other person"
                    elif float(f.embedding @ mean) < ppl.WRONG_IDENTITY:
                        reason = "identity"
                    updates.append((f.id, t.id, reason, p.id))
        summary[role] = {"people": len(grouped), "chosen": chosen.id if chosen else None,
                         "chosen_faces": len(chosen.faces) if chosen else 0}
    with ws.transaction():
        ws.people.replace_all(people)
        for face_id, track_id, reason, person_id in updates:
            ws.faces.assign(face_id, track_id, person_id, reason)
        ws.faces.set_smoothed(smooth)
        ws.set_meta("extracted_at", now())
    return summary
