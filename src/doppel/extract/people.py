"""Tracks and people: faces linked across frames by position and identity, tracks grouped by identity.

Recomputed from the stored faces after every extraction run, deterministically, so a resumed run ends in
the same state as an uninterrupted one. Also chooses whose face is swapped (and whose face the source
footage is of), flags wrong-identity faces, and smooths the landmarks of every track over time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from doppel.extract.boxes import iou
from doppel.extract.identity import cosine
from doppel.extract.layout import inter_ocular
from doppel.extract.smoothing import smooth_offline
from doppel.workspace.faces import Face

MAX_GAP_FRAMES = 15        # a face may vanish this long and still continue its track
SAME_PERSON = 0.40         # cosine between mean track embeddings above which tracks are one person
WRONG_IDENTITY = 0.30      # a face whose cosine to its person is below this is flagged


@dataclass
class Track:
    id: int
    faces: list[Face] = field(default_factory=list)

    @property
    def embedding(self) -> np.ndarray:
        mean = np.mean([f.embedding for f in self.faces], axis=0)
        return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-9), np.float32)


@dataclass
class Person:
    id: int
    tracks: list[Track]

    @property
    def faces(self) -> list[Face]:
        return [f for t in self.tracks for f in t.faces]

    @property
    def embedding(self) -> np.ndarray:
        mean = np.mean([f.embedding for f in self.faces], axis=0)
        return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-9), np.float32)

    @property
    def median_size(self) -> float:
        return float(np.median([f.size_px for f in self.faces]))


def link_tracks(faces: list[Face], first_id: int = 1) -> list[Track]:
    """Greedy frame-to-frame linking of one media item's faces (sorted by frame) into tracks."""
    tracks: list[Track] = []
    by_frame: dict[int, list[Face]] = {}
    for f in faces:
        by_frame.setdefault(f.frame_idx, []).append(f)
    for frame_idx in sorted(by_frame):
        live = [t for t in tracks if frame_idx - t.faces[-1].frame_idx <= MAX_GAP_FRAMES]
        pairs = []
        for f in by_frame[frame_idx]:
            for t in live:
                last = t.faces[-1]
                overlap = float(iou(f.box, last.box))
                similar = float(f.embedding @ last.embedding)
                if overlap > 0.2 or similar > 0.5:
                    pairs.append((overlap + 0.5 * similar, f.id, t.id, f, t))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        used_faces: set[int] = set()
        used_tracks: set[int] = set()
        for _, _, _, f, t in pairs:
            if f.id in used_faces or t.id in used_tracks:
                continue
            t.faces.append(f)
            used_faces.add(f.id)
            used_tracks.add(t.id)
        for f in by_frame[frame_idx]:
            if f.id not in used_faces:
                tracks.append(Track(first_id + len(tracks), [f]))
    return tracks


def group_people(tracks: list[Track], first_id: int = 1) -> list[Person]:
    """Tracks joined into people by identity, biggest tracks first."""
    people: list[Person] = []
    for t in sorted(tracks, key=lambda t: (-len(t.faces), t.id)):
        best, best_sim = None, SAME_PERSON
        for p in people:
            sim = float(t.embedding @ p.embedding)
            if sim > best_sim:
                best, best_sim = p, sim
        if best is None:
            people.append(Person(first_id + len(people), [t]))
        else:
            best.tracks.append(t)
    return people


def choose_person(people: list[Person], reference: np.ndarray | None, role: str) -> Person | None:
    """The reference's person when a reference embedding is given; otherwise for the target the person with
    the biggest faces (among those seen on at least 10 % as many frames as the most seen), for sources the
    person with the most faces."""
    if not people:
        return None
    if reference is not None:
        sims = [float(cosine(p.embedding, reference)) for p in people]
        return people[int(np.argmax(sims))]
    if role == "source":
        return max(people, key=lambda p: (len(p.faces), -p.id))
    most = max(len(p.faces) for p in people)
    frequent = [p for p in people if len(p.faces) >= 0.1 * most]
    return max(frequent, key=lambda p: (p.median_size, -p.id))


def smooth_track(track: Track, times: dict[int, float]) -> list[np.ndarray]:
    """One-Euro-filtered 68-point landmarks for each face of a track (frame pixels)."""
    t = [times[f.frame_idx] for f in track.faces]
    pts = np.stack([f.lm68 for f in track.faces])
    scale = [inter_ocular(f.lm68) for f in track.faces]
    return list(smooth_offline(t, pts, scale=scale).astype(np.float32))
