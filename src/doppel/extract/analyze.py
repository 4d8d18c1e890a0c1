"""Everything extraction computes for one frame, as a pure function of the image and the settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from doppel.extract.align import FaceType, align_matrix, warp_face
from doppel.extract.boxes import area, box_of, intersection
from doppel.extract.detector import BlazeFaceDetector
from doppel.extract.identity import SFaceEmbedder
from doppel.extract.landmarks import FaceMesh, roi_from_detection, roi_from_landmarks
from doppel.extract.layout import inter_ocular, to_68
from doppel.extract.masks import face_polygon, rasterize
from doppel.extract.quality import head_pose, sharpness
from doppel.workspace.settings import ExtractSettings


@dataclass(frozen=True)
class AnalyzerConfig:
    face_type: FaceType = "whole_face"
    crop_size: int = 256
    detect_threshold: float = 0.3
    min_face_px: float = 24.0
    max_faces: int = 8
    min_presence: float = 0.5
    # The mesh's own face score drops on near-profiles although its points stay usable there; a confident
    # detection is trusted on its own.
    strong_detection: float = 0.5

    @classmethod
    def from_settings(cls, s: ExtractSettings) -> AnalyzerConfig:
        """The analyzer a workspace's [extract] settings ask for."""
        return cls(face_type=s.face_type, crop_size=s.crop_size, detect_threshold=s.detect_threshold,
                   min_face_px=s.min_face_px)


@dataclass
class FaceResult:
    """One face in one frame. Points are frame pixels; `crop` is the aligned crop (size x size x 3 uint8)."""

    face_idx: int
    box: np.ndarray          # (4,) float32 x0, y0, x1, y1
    score: float
    mesh: np.ndarray         # (468, 3) float32
    lm68: np.ndarray         # (68, 2) float32
    matrix: np.ndarray       # (2, 3) float64, frame -> crop
    polygon: np.ndarray      # (N, 2) float32, frame pixels
    embedding: np.ndarray    # (128,) float32, unit length
    yaw: float
    pitch: float
    roll: float
    sharpness: float
    size_px: float           # inter-ocular distance in frame pixels
    crop: np.ndarray


class FaceAnalyzer:
    """Holds the models (one set per process); `analyze(image)` returns the faces of one frame."""

    def __init__(self, config: AnalyzerConfig, threads: int = 1) -> None:
        self.config = config
        self.detector = BlazeFaceDetector(config.detect_threshold, config.min_face_px, threads)
        self.mesh = FaceMesh(threads)
        self.embedder = SFaceEmbedder()

    def analyze(self, image: np.ndarray) -> list[FaceResult]:
        """Faces in an HxWx3 uint8 RGB frame, largest first."""
        found: list[tuple[np.ndarray, float]] = []
        for det in self.detector.detect(image)[: self.config.max_faces]:
            points, _ = self.mesh.run(image, roi_from_detection(det))
            self._refine(image, points, det.score, found, [])
        found.sort(key=lambda f: -inter_ocular(to_68(f[0])))
        return self._finish(image, found, 0)

    def track(self, image: np.ndarray, previous: list[np.ndarray], present: list[np.ndarray],
              first_idx: int) -> list[FaceResult]:
        """Follow faces the detector missed: run the mesh where each of `previous` (468x3 meshes from a
        neighbouring frame) was, keep what the mesh confirms and is not one of `present` (68x2 landmarks of
        faces already found in this frame). New faces are numbered from `first_idx`."""
        found: list[tuple[np.ndarray, float]] = []
        for points in previous:
            self._refine(image, points, 0.0, found, present)
        return self._finish(image, found, first_idx)

    def _refine(self, image: np.ndarray, points: np.ndarray, score: float,
                found: list[tuple[np.ndarray, float]], present: list[np.ndarray]) -> None:
        # A second pass on the region the mesh itself outlines: steadier and rotation-correct.
        points, presence = self.mesh.run(image, roi_from_landmarks(points))
        if presence < self.config.min_presence and score < self.config.strong_detection:
            return
        lm68 = to_68(points)
        others = [to_68(p) for p, _ in found] + present
        if not any(_same_face(lm68, other) for other in others):
            found.append((points, score))

    def _finish(self, image: np.ndarray, found: list[tuple[np.ndarray, float]], first_idx: int) -> list[FaceResult]:
        cfg = self.config
        faces: list[FaceResult] = []
        crops = []
        for points, score in found:
            lm68 = to_68(points)
            if inter_ocular(lm68) * 2.5 < cfg.min_face_px:
                continue
            m = align_matrix(lm68, cfg.face_type, cfg.crop_size)
            crop = warp_face(image, m, cfg.crop_size)
            polygon = face_polygon(points, lm68, cfg.face_type)
            mask = rasterize(polygon, (cfg.crop_size, cfg.crop_size), m)
            yaw, pitch, roll = head_pose(points)
            faces.append(FaceResult(
                face_idx=first_idx + len(faces), box=box_of(points).astype(np.float32), score=score,
                mesh=points, lm68=lm68, matrix=m, polygon=polygon, embedding=np.zeros(0, np.float32), yaw=yaw,
                pitch=pitch, roll=roll, sharpness=sharpness(crop, mask), size_px=inter_ocular(lm68), crop=crop,
            ))
            crops.append(self.embedder.crop(image, lm68))
        for face, emb in zip(faces, self.embedder.embed_crops(crops), strict=True):
            face.embedding = emb
        return faces


def _same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Two landmark sets (68x2) of one face: found by two overlapping detections, or one found inside the
    other (a false detection on an eye or a cheek, which the mesh then fits a small face to)."""
    if float(np.linalg.norm(a - b, axis=1).mean()) < 0.25 * inter_ocular(a):
        return True
    box_a, box_b = box_of(a), box_of(b)
    inter = float(intersection(box_a, box_b))
    smaller = min(float(area(box_a)), float(area(box_b)))
    return smaller > 0 and inter / smaller > 0.5
