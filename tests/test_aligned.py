"""One object per face: `AlignedFace` gives back the extraction's own crop and derives any other size/type."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from doppel.extract.aligned import AlignedFace
from doppel.facetype import FACE_TYPE_NAMES
from doppel.media import MediaReader
from doppel.workspace import Workspace


def test_aligned_face_reproduces_the_stored_crop_and_scales(extracted_pair: Path) -> None:
    with Workspace.open(extracted_pair) as ws:
        target = ws.target()
        assert target is not None
        face = ws.faces.of_chosen("target", media_id=target.id)[6]
        with MediaReader(target.info) as reader:
            frame = reader[6]
        stored = cv2.cvtColor(cv2.imread(str(ws.root / face.crop_path)), cv2.COLOR_BGR2RGB)
    aligned = AlignedFace.of(face)
    # The extraction's matrix is the raw landmarks' alignment: the same crop comes back (JPEG noise only).
    assert np.allclose(aligned.alignment(face.crop_size, steady=False), face.matrix, atol=1e-6)
    again = aligned.crop(frame, face.crop_size, steady=False)
    assert np.abs(again.astype(int) - stored.astype(int)).mean() < 3
    # Any size: the alignment scales, the mask and landmarks follow it.
    assert np.allclose(aligned.alignment(128), aligned.alignment(64) * 2, atol=1e-6)
    small, big = aligned.crop_mask(64), aligned.crop_mask(256)
    assert small.shape == (64, 64) and big.shape == (256, 256)
    shrunk = cv2.resize(big, (64, 64), interpolation=cv2.INTER_AREA)
    assert abs(small.mean() / shrunk.mean() - 1) < 0.06  # (anti-aliased edges weigh more at 64 px)
    assert ((small > 127) == (shrunk > 127)).mean() > 0.97
    inside = aligned.crop_landmarks(64).round().astype(int)
    assert (small[inside[17:, 1].clip(0, 63), inside[17:, 0].clip(0, 63)] > 0).mean() > 0.9
    # Bigger face types show more around the face: the same face is smaller in a `head` crop.
    sizes = [np.ptp(aligned.alignment(256, t)[:, :2] @ aligned.landmarks.T, axis=1).mean() for t in FACE_TYPE_NAMES]
    assert sizes[0] > sizes[1] > sizes[2]  # full > whole_face > head
    assert aligned.frame_mask(frame.shape[1], frame.shape[0]).any()
    assert aligned.steady_landmarks is (aligned.smoothed if aligned.smoothed is not None else aligned.landmarks)
