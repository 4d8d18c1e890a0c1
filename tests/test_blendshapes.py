"""Expression coefficients (doppel.extract.blendshapes): where the eyes look, read from a face's crop, stored once."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from doppel.demo import astronaut
from doppel.errors import DoppelError
from doppel.extract import blendshapes
from doppel.extract.analyze import AnalyzerConfig, FaceAnalyzer
from doppel.extract.blendshapes import NAMES, Blendshapes
from doppel.media import MediaReader, probe
from doppel.workspace import Workspace


def _coefficients(model: Blendshapes, analyzer: FaceAnalyzer, image: np.ndarray) -> dict[str, float]:
    faces = analyzer.analyze(image)
    assert len(faces) == 1
    return dict(zip(NAMES, model.run(image, faces[0].lm68).tolist(), strict=True))


def test_a_smile_is_seen_and_mirroring_keeps_it() -> None:
    """The astronaut smiles with her mouth closed: both smile coefficients high, the jaw shut, her mirror image
    the same."""
    model, analyzer = Blendshapes(), FaceAnalyzer(AnalyzerConfig())
    image = astronaut()
    for picture in (image, np.ascontiguousarray(image[:, ::-1])):
        c = _coefficients(model, analyzer, picture)
        assert all(0.0 <= v <= 1.0 for v in c.values())
        assert c["mouthSmileLeft"] > 0.6 and c["mouthSmileRight"] > 0.6, c
        assert c["jawOpen"] < 0.2 and c["eyeBlinkLeft"] < 0.2 and c["eyeBlinkRight"] < 0.2, c


def test_eyes_looking_down_are_seen_where_the_landmarks_see_open_eyes(clips: Path) -> None:
    """akiyo reads her notes at frames 106 and 193 and looks into the camera at frame 20: the lid landmarks are
    as far apart at all three, the coefficients tell them apart."""
    from doppel.evaluate.expression import eye_opening

    model, analyzer = Blendshapes(), FaceAnalyzer(AnalyzerConfig())
    with MediaReader(probe(clips / "akiyo_cif.mp4")) as reader:
        frames = {i: reader[i] for i in (20, 106, 193)}
    found = {i: analyzer.analyze(image)[0] for i, image in frames.items()}
    down = {i: float(np.mean([c for n, c in zip(NAMES, model.run(frames[i], f.lm68), strict=True)
                              if n.startswith("eyeLookDown")])) for i, f in found.items()}
    opening = {i: eye_opening(f.lm68) for i, f in found.items()}
    assert down[106] > 0.6 and down[193] > 0.6 and down[20] < 0.2, down
    assert min(opening[106], opening[193]) > 0.8 * opening[20], opening  # what the landmarks alone say


def test_stored_once_and_read_again_when_the_crop_changes(extracted_pair: Path, tmp_path: Path) -> None:
    ws_dir = tmp_path / "ws"
    shutil.copytree(extracted_pair, ws_dir)
    with Workspace.open(ws_dir) as ws:
        faces = ws.faces.of_chosen("source", usable_only=True)
        first = blendshapes.of_faces(ws, faces)
        assert first.shape == (len(faces), len(NAMES)) and first[:, 1:].max() > 0
        assert len(ws.expressions.get([f.id for f in faces])) == len(faces)
        # A stored row is what is returned (not recomputed): plant a value and read it back.
        planted = np.full(len(NAMES), 0.5, np.float32)
        with ws.transaction():
            ws.expressions.put([(faces[0].id, blendshapes.crop_key(faces[0]), planted)])
        assert np.array_equal(blendshapes.of_faces(ws, faces[:1])[0], planted)
        # Another crop (a different key) is read again from the image.
        with ws.transaction():
            ws.expressions.put([(faces[0].id, "another crop", planted)])
        assert np.allclose(blendshapes.of_faces(ws, faces[:1])[0], first[0], atol=1e-6)
        # A face whose crop is gone and has no row: one clear error naming the cure.
        gone = faces[1]
        (ws_dir / gone.crop_path).unlink()
        with ws.transaction():
            ws.db.execute("DELETE FROM face_expressions WHERE face_id = ?", (gone.id,))
        with pytest.raises(DoppelError, match="cannot be read: run `doppel extract --redo`"):
            blendshapes.of_faces(ws, [gone])
    # Rows go with their faces.
    db = sqlite3.connect(ws_dir / "doppel.db")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("DELETE FROM faces")
    db.commit()
    assert db.execute("SELECT COUNT(*) FROM face_expressions").fetchone()[0] == 0


def test_the_window_holds_the_whole_face() -> None:
    points = np.array([[100.0, 120.0], [160.0, 120.0], [130.0, 200.0]])
    m = blendshapes.mesh_window(points)
    corners = np.array([[0, 0, 1], [256, 256, 1]], np.float64) @ m.T
    assert corners[0, 0] < 100 and corners[1, 0] > 160 and corners[0, 1] < 120 - 10 and corners[1, 1] > 200
    assert cv2.norm(corners[1] - corners[0]) == pytest.approx(np.hypot(120, 120), rel=1e-6)


def test_a_damaged_model_bundle_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A truncated face_landmarker.task (a broken install): one error naming the cure, and the file left as it
    was."""
    broken = tmp_path / "face_landmarker.task"
    broken.write_bytes(b"PK\x03\x04 not a whole zip")
    monkeypatch.setattr(blendshapes, "package_file", lambda *parts: broken)
    with pytest.raises(DoppelError, match=r"face landmarker bundle cannot be read .*run `make setup` again"):
        Blendshapes()
    assert broken.read_bytes() == b"PK\x03\x04 not a whole zip"
