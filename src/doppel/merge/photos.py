"""Detail from the source person's own photographs (`[merge] source_detail`).

A model trained for minutes draws a soft face: the low frequencies (shape, light, where the eyes and mouth are)
come early, the fine structure of eyelids, nostrils and lip edges last. The source footage already holds that
structure. For each target face, the usable source face nearest in landmarks (pose and expression, compared
after a similarity fit) is warped triangle by triangle onto the target's landmarks, and its fine band (the
photograph less a Gaussian blur of it) is added to the model's face before colour transfer and compositing.
The model keeps what it is good at (the target's light, the face following the plate); the photograph gives
back the person's real detail. Where that photograph looks elsewhere than the target (foreman staring ahead
while akiyo reads her notes), the eyes come from a photograph whose expression coefficients match
(`doppel.extract.blendshapes`). Retrieving and warping the source's own frames is an old face-replacement
technique (Dale et al., "Video Face Replacement", 2011); here it only lends the band the model lacks.

Only faces that lie inside their frame are used: a photograph cut by the frame's edge has black where its face
should be.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from doppel.errors import DoppelError
from doppel.evaluate.expression import gaze
from doppel.extract import blendshapes
from doppel.extract.align import transform_points, umeyama
from doppel.extract.aligned import AlignedFace
from doppel.workspace import Workspace
from doppel.workspace.faces import Face
from doppel.workspace.records import Role

DETAIL_SIGMA = 4.0
"""Gaussian sigma (in pixels of a 128 px crop) below which a photograph's structure is lent: the band the model
lacks. Scaled with the model's resolution."""

EYE_WEIGHT = 0.5
"""Weight of the eye coefficients against the landmarks when the eyes' photograph is chosen, each distance in
units of its median over the photographs. At 1 the eyes followed the plate as well on akiyo but the swap lost
the identity test on 5 % of deadline's frames (10-minute cpu-128 model: 95.0 % against 97.0 % at 0.5)."""

GAZE_GAP = 0.8
"""The eyes get their own photograph only where the photograph chosen for the whole face looks elsewhere than
the target by more than this (look or lids, `evaluate.expression.gaze`): akiyo reading her notes (0.9-1.1
apart from foreman staring ahead, 182 of 300 frames), not deadline's milder squints (3 frames). Lending
deadline's squint on every frame (no gap) made the eyes follow the plate (look 0.73 against 0.15) but let the
target's own look through: the source won the identity test on 79 % of the 30-minute model's frames, against
97 %; with this gap, 96.7 %."""

GAZE_GAP_CODED = 0.3
"""GAZE_GAP for a model with the gaze in its expression code: it draws its eyes where the target looks, and a
photograph lent there that looks elsewhere puts them back (30-minute cpu-128 on deadline: look 0.24 at a gap of
0.8, 0.80 at 0.3)."""

IN_FRAME = 0.99
"""Share of a source face's landmark mask that must lie inside its frame for the face to lend detail."""


def _normalized(shapes: np.ndarray) -> np.ndarray:
    """(N, 68, 2) landmark sets moved to their centroid and scaled to unit size: (N, 68, 2)."""
    centred = shapes - shapes.mean(1, keepdims=True)
    return centred / np.linalg.norm(centred, axis=(1, 2), keepdims=True).clip(1e-9)


def _procrustes_distance(shape: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Distance of one normalised (68, 2) shape to each of the normalised pool (N, 68, 2) after the best
    rotation of each pool shape onto it (orthogonal Procrustes, scale already removed): (N,)."""
    cross = np.einsum("nki,kj->nij", pool, shape)  # (N, 2, 2)
    singular = np.linalg.svd(cross, compute_uv=False)
    det = np.linalg.det(cross)
    best = singular[:, 0] + np.where(det < 0, -singular[:, 1], singular[:, 1])  # no reflections
    return np.sqrt(np.clip(2.0 - 2.0 * best, 0.0, None))


def delaunay(points: np.ndarray, size: int) -> np.ndarray:
    """Triangles (T, 3) of indices into `points` ((N, 2) inside a size x size square), Delaunay."""
    subdiv = cv2.Subdiv2D((-size, -size, 3 * size, 3 * size))
    for p in points:
        subdiv.insert((float(p[0]), float(p[1])))
    tris = np.asarray(subdiv.getTriangleList()).reshape(-1, 3, 2)
    index = {tuple(np.round(p, 3)): i for i, p in enumerate(points.astype(np.float32).astype(np.float64))}
    out = []
    for tri in tris:
        ids = [index.get(tuple(np.round(v.astype(np.float64), 3))) for v in tri]
        if None not in ids:
            out.append(ids)
    return np.array(out, np.int32).reshape(-1, 3)


def piecewise_warp(image: np.ndarray, src: np.ndarray, dst: np.ndarray, size: int) -> np.ndarray:
    """`image` (HxWxC) warped so that its points `src` land on `dst` ((N, 2) each, dst inside the size x size
    output), one affine map per Delaunay triangle of `dst` (add points on the crop's border to cover it all; a pixel
    outside every triangle takes the map of the nearest one). Returns size x size x C float32."""
    tris = delaunay(dst, size)
    label = np.full((size, size), -1, np.int32)
    for t, tri in enumerate(tris):
        cv2.fillConvexPoly(label, np.round(dst[tri] * 16).astype(np.int32), t, cv2.LINE_8, 4)
    # Each triangle's map from output pixels back to the image, applied per pixel.
    maps = np.stack([cv2.getAffineTransform(dst[tri].astype(np.float32), src[tri].astype(np.float32))
                     for tri in tris]) if len(tris) else np.zeros((0, 2, 3))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    hole = label < 0
    if hole.any() and len(tris):  # pixels no triangle covers (rounding at the edges): the nearest triangle's map
        centroids = dst[tris].mean(1)
        hy, hx = np.nonzero(hole)
        label[hy, hx] = np.argmin(((np.stack([hx, hy], 1)[:, None] - centroids[None]) ** 2).sum(2), 1)
    m = maps[label]  # (size, size, 2, 3)
    map_x = (m[..., 0, 0] * xs + m[..., 0, 1] * ys + m[..., 0, 2]).astype(np.float32)
    map_y = (m[..., 1, 0] * xs + m[..., 1, 1] * ys + m[..., 1, 2]).astype(np.float32)
    out = cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(size, size, -1)


def warp_onto(photo: np.ndarray, photo_points: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """A photograph (HxWxC) whose 68 landmarks are `photo_points` warped triangle by triangle onto `points`
    (68 landmarks in a size x size crop); the crop's border follows the similarity that best fits the two sets
    of landmarks. Returns size x size x C float32."""
    fit = umeyama(points, photo_points)  # the crop -> the photograph
    border = np.array([(x, y) for x in (0, 0.5, 1) for y in (0, 0.5, 1) if (x, y) != (0.5, 0.5)]) * (size - 1)
    return piecewise_warp(photo, np.vstack([photo_points, transform_points(fit, border)]),
                          np.vstack([points, border]), size)


def fine_band(image: np.ndarray, sigma: float) -> np.ndarray:
    """An HxWxC float32 image less its Gaussian blur of `sigma` pixels: its fine structure, zero on average."""
    return image - cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def usable_photos(ws: Workspace, role: Role = "source") -> list[Face]:
    """The faces that can lend detail: the chosen person's usable faces of `role` lying inside their frame."""
    sizes = {m.id: (m.info.width, m.info.height) for m in ws.media()}
    kept = []
    for f in ws.faces.of_chosen(role, usable_only=True):
        aligned = AlignedFace.of(f)
        mask = aligned.crop_mask(64) > 0
        if f.media_id in sizes and mask.any() and (
                aligned.in_frame(64, sizes[f.media_id])[mask] > 0).mean() >= IN_FRAME:
            kept.append(f)
    return kept


def photos_digest(ws: Workspace) -> str:
    """What the lent detail depends on besides the target frame: the source faces and their landmarks (part of
    a render's key when `source_detail` is on, so new source footage renders those frames again)."""
    h = hashlib.sha256()
    for f in ws.faces.of_chosen("source", usable_only=True):
        h.update(f"{f.id}:{f.crop_path}:".encode())
        h.update(f.lm68.tobytes())
        h.update(f.matrix.tobytes())
    return h.hexdigest()[:16]


NO_PHOTOS = ("no source face lies wholly inside its frame, so none lends detail (source_detail): add source "
             "footage, or set [merge] source_detail = 0")


def nearest_shape(points: np.ndarray, pool: np.ndarray) -> int:
    """Index of the landmark set of `pool` ((N, 68, 2)) nearest to `points` ((68, 2)) once position, size and
    roll are taken out: what is left is pose and expression."""
    return int(np.argmin(_procrustes_distance(_normalized(points[None])[0], _normalized(pool))))


class SourcePhotos:
    """The source's real photographs, ready to lend their fine band to a generated face. `expressions` ((N, 52)
    blendshape coefficients of `faces`, `doppel.extract.blendshapes`) lets the eyes be lent from a photograph
    that looks where the target looks."""

    def __init__(self, ws: Workspace, faces: list[Face], expressions: np.ndarray | None = None) -> None:
        if not faces:
            raise DoppelError(NO_PHOTOS, ws.root)
        self.ws = ws
        self.faces = faces
        self.points = np.stack([transform_points(f.matrix, f.lm68) for f in faces])  # in each stored crop
        self.expressions = expressions
        self._crops: dict[int, np.ndarray] = {}

    @classmethod
    def load(cls, ws: Workspace) -> SourcePhotos | None:
        """The workspace's usable photographs with their expression coefficients, or None when there are none."""
        faces = usable_photos(ws)
        return cls(ws, faces, blendshapes.of_faces(ws, faces)) if faces else None

    def _crop(self, i: int) -> np.ndarray:
        if i not in self._crops:
            f = self.faces[i]
            image = cv2.imread(str(self.ws.inside(f.crop_path, "face crop")), cv2.IMREAD_COLOR)
            if image is None:
                raise DoppelError(f"the stored crop of source face #{f.id} cannot be read: run `doppel extract "
                                  f"--redo`", self.ws.root / f.crop_path)
            self._crops[i] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
        return self._crops[i]

    def nearest(self, points: np.ndarray) -> int:
        """Index of the photograph whose landmarks are nearest to `points` ((68, 2)) after a similarity fit."""
        return nearest_shape(points, self.points)

    def nearest_eyes(self, points: np.ndarray, expression: np.ndarray) -> int:
        """Index of the photograph whose eyes best match a target face with landmarks `points` ((68, 2)) and
        blendshape coefficients `expression` ((52,)): nearest in landmarks and in the 14 eye coefficients (where
        the eyes look, how far the lids close), each distance in units of its median over the photographs, the
        coefficients' weighed by EYE_WEIGHT. The landmarks alone pick foreman's wide-open eyes for akiyo reading
        her notes; the coefficients pick a photograph looking down."""
        if self.expressions is None:
            return self.nearest(points)
        shape = _procrustes_distance(_normalized(points[None])[0], _normalized(self.points))
        eyes = np.linalg.norm(self.expressions[:, blendshapes.EYES] - expression[list(blendshapes.EYES)], axis=1)
        cost = shape / max(float(np.median(shape)), 1e-9) + EYE_WEIGHT * eyes / max(float(np.median(eyes)), 1e-9)
        return int(np.argmin(cost))

    def looks_elsewhere(self, i: int, expression: np.ndarray, gap: float = GAZE_GAP) -> bool:
        """Whether photograph `i`'s eyes look elsewhere than a target face's with coefficients `expression`, or
        its lids close differently, by more than `gap` (`evaluate.expression.gaze`)."""
        if self.expressions is None:
            return False
        (look, lids), (target_look, target_lids) = gaze(self.expressions[i]), gaze(expression)
        return max(abs(look - target_look), abs(lids - target_lids)) > gap

    def warped(self, points: np.ndarray, size: int, index: int | None = None) -> np.ndarray:
        """The photograph `index` (default: the nearest) warped onto `points` ((68, 2) pixels of a size x size
        crop): size x size x 3 float32 RGB in [0, 1]."""
        i = self.nearest(points) if index is None else index
        return np.clip(warp_onto(self._crop(i), self.points[i], points, size), 0, 1)

    def lend(self, face: np.ndarray, points: np.ndarray, amount: float,
             expression: np.ndarray | None = None, gap: float = GAZE_GAP) -> np.ndarray:
        """`face` (RxRx3 float32 in [0, 1], the model's) with `amount` times the fine band of the nearest
        photograph warped onto `points` (the target's landmarks in that crop) added, inside the landmarks'
        hull (`lending_region`). Given the target's blendshape coefficients `expression`, where that photograph
        looks elsewhere (`looks_elsewhere`) the band around the eyes comes from the photograph whose eyes match
        (`nearest_eyes`), blended into the rest's below them (`eye_region`). `gap`: how far elsewhere
        (GAZE_GAP_CODED for a model that draws the gaze itself)."""
        size = face.shape[0]
        sigma = DETAIL_SIGMA * size / 128
        whole = self.nearest(points)
        band = fine_band(self.warped(points, size, whole), sigma)
        if expression is not None and self.looks_elsewhere(whole, expression, gap):
            eyes = self.nearest_eyes(points, expression)
            if eyes != whole:
                w = eye_region(points, size)[..., None]
                band = band * (1 - w) + fine_band(self.warped(points, size, eyes), sigma) * w
        return np.clip(face + amount * band * lending_region(points, size)[..., None], 0, 1).astype(np.float32)


def eye_region(points: np.ndarray, size: int) -> np.ndarray:
    """Weight of the eyes' photograph (size x size float32 in [0, 1]): 1 down to the lowest point of the eyes'
    landmarks, falling linearly to 0 at the tip of the nose (landmark 30), so the mouth, the nostrils and the
    jaw keep the photograph chosen for the whole face."""
    top = float(points[36:48, 1].max())
    bottom = max(float(points[30, 1]), top + 1.0)
    rows = np.clip((bottom - np.arange(size, dtype=np.float32)) / (bottom - top), 0.0, 1.0)
    return np.repeat(rows[:, None], size, axis=1)


def _hull(points: np.ndarray, size: int) -> np.ndarray:
    hull = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(hull, np.round(cv2.convexHull(points.astype(np.float32))[:, 0] * 16).astype(np.int32),
                       255, cv2.LINE_AA, 4)
    return hull


def lending_region(points: np.ndarray, size: int) -> np.ndarray:
    """Where a photograph lends detail (size x size float32 in [0, 1]): the convex hull of the 68 landmarks,
    grown by DETAIL_SIGMA at the cheeks and jaw but shrunk by it above the brows, its edge softened. Above the
    brows a source photograph holds the source's own hair or hat (foreman's hard-hat brim drew a hard line
    across akiyo's forehead when she looked down); the jaw's and the brows' outline is part of the person
    (shrinking the hull all round cost the identity test 8 % of deadline's frames)."""
    sigma = DETAIL_SIGMA * size / 128
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * round(sigma) + 1,) * 2)
    hull = _hull(points, size)
    above = np.arange(size)[:, None] < float(points[17:27, 1].min()) + sigma
    region = np.where(above, cv2.erode(hull, disc), cv2.dilate(hull, disc)).astype(np.float32) / 255
    return cv2.GaussianBlur(region, (0, 0), sigma / 2)
