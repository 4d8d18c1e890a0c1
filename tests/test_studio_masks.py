"""The studio's mask editor in headless Chromium: an exclude polygon drawn with the keyboard (W) and clicks over
a generated occluder keeps the plate's pixels there in the export.

The target is a tiny clip of a portrait with a flat green card stuck on the cheek (it moves with the face, as
a hand held to it would). Without a label the swap paints over the card; with the label the export shows it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from doppel.demo import astronaut, grace_hopper, moving_frames, write_clip
from doppel.media import MediaReader
from doppel.occlusion import labels as lab
from doppel.provenance import watermark
from doppel.studio.server import StudioServer
from doppel.workspace import Workspace
from tests.helpers import run
from tests.studio_client import (
    chromium,
    chromium_path,
    click_frame_point,
    go,
    screenshot,
    serve_copy,
    studio_page,
    ws_root,
)

FRAMES = 8
CARD = (285, 235, 335, 275)
"""The occluder on the portrait (x0, y0, x1, y1 in portrait pixels): a flat green card on the cheek."""
GREEN = np.array([40, 210, 70])
LABELLED, UNLABELLED = 3, 5


def card_box(plate: np.ndarray) -> tuple[int, int, int, int]:
    """The card's box in a decoded plate frame (HxWx3 uint8 RGB): where the pixels are near its green."""
    near = np.abs(plate.astype(int) - GREEN).max(2) < 40
    ys, xs = np.nonzero(near)
    assert len(xs) > 100, "the card is not visible in the plate"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.fixture(scope="module")
def occluded_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("occluded")
    portrait = grace_hopper().copy()
    x0, y0, x1, y1 = CARD
    portrait[y0:y1, x0:x1] = GREEN
    src = write_clip(root / "astro.mp4", moving_frames(astronaut(), frames=FRAMES, size=(192, 192), seed=1),
                     tone_hz=None)
    dst = write_clip(root / "hopper.mp4", moving_frames(portrait, frames=FRAMES, size=(192, 192), seed=2),
                     tone_hz=None)
    ws = root / "ws"
    for args in (["init", ws], ["add", ws, "--source", src], ["add", ws, "--target", dst],
                 ["extract", ws, "--workers", "1"], ["train", ws, "--preset", "tiny-64", "--iterations", "3"]):
        code, out, err = run(*args)
        assert code == 0, out + err
    toml = ws / "doppel.toml"
    toml.write_text(toml.read_text().replace('mask = "intersect"', 'mask = "landmarks"'))
    code, out, err = run("merge", ws, "--device", "cpu")
    assert code == 0, out + err
    return ws


@pytest.fixture(scope="module")
def studio(occluded_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    with serve_copy(occluded_ws, tmp_path_factory.mktemp("studio-masks") / "ws") as server:
        yield server


@pytest.fixture(scope="module")
def page(studio: StudioServer) -> Iterator[Any]:
    with chromium(chromium_path()) as browser, studio_page(browser, studio.url, 1180, 800) as pg:
        yield pg


def plates(ws: Path) -> list[np.ndarray]:
    with Workspace.open(ws) as w:
        target = w.target()
        assert target is not None
        with MediaReader(target.info) as reader:
            return [reader[i] for i in range(FRAMES)]


def test_an_exclude_polygon_drawn_over_the_card_keeps_the_plates_pixels_in_the_export(
        page: Any, studio: StudioServer, tmp_path: Path) -> None:
    root = ws_root(studio)
    plate = plates(root)
    bx0, by0, bx1, by1 = card_box(plate[LABELLED])
    go(page, LABELLED)
    # Zoomed to the face (Z), as one would on a small face: clicks still land on the right frame pixels.
    width = page.locator("#screen").bounding_box()["width"]
    page.keyboard.press("z")
    page.wait_for_function("document.getElementById('screen').style.transform.includes('scale')")
    assert page.locator("#screen").bounding_box()["width"] > 1.5 * width
    # W, then the card's corners with a 3-pixel margin, a point taken back with Ctrl+Z, and Enter.
    page.keyboard.press("w")
    corners = [(bx0 - 3, by0 - 3), (bx1 + 3, by0 - 3), (bx1 + 3, by1 + 3), (bx0 - 3, by1 + 3)]
    for x, y in corners[:3]:
        click_frame_point(page, x, y)
    click_frame_point(page, bx1 + 9, by1 + 7)  # a slip of the hand...
    page.keyboard.press("Control+z")           # ...taken back: only the last point goes
    assert page.evaluate("window.studio.poly.points.length") == 3
    click_frame_point(page, *corners[3])
    edits = page.evaluate("window.studio.edits || 0")
    page.keyboard.press("Enter")
    page.wait_for_function(f"(window.studio.edits || 0) > {edits} && window.studio.info.mask.kind === 'drawn'")
    assert "drawn v1 · 1 shape" in page.inner_text("#maskState")
    db = sqlite3.connect(root / "doppel.db")
    rows = db.execute("SELECT kind, label_json FROM mask_labels").fetchall()
    assert len(rows) == 1 and rows[0][0] == "drawn"
    shape = json.loads(rows[0][1])["shapes"][0]
    assert shape["mode"] == "exclude" and np.abs(np.array(shape["points"]) - corners).max() < 1.0
    # Only the labelled frame was re-rendered (at once, as the edit's playhead frame).
    state = page.evaluate("async () => (await (await fetch('/api/timeline')).json())")
    assert state["states"] == ["rendered"] * FRAMES and state["labels"][LABELLED] == "drawn"
    assert state["labels"].count("") == FRAMES - 1
    # The overlay image is the label: black inside the polygon, white on the rest of the face.
    page.keyboard.press("o")
    overlay = page.evaluate("""async (f) => { const r = await fetch(`/img/occlusion/${f}.png`);
        return Array.from(new Uint8Array(await r.arrayBuffer())); }""", LABELLED)
    grey = cv2.imdecode(np.array(overlay, np.uint8), cv2.IMREAD_GRAYSCALE)
    cx, cy = (bx0 + bx1) // 2, (by0 + by1) // 2
    assert grey[cy, cx] == 0 and grey[cy, bx0 - 12] == 255
    screenshot(page, "studio-mask-label.png", tmp_path)

    code, out, err = run("export", root, tmp_path / "frames", "--codec", "png", "--json")
    assert code == 0, err
    exported = sorted((tmp_path / "frames").glob("*.png"))
    assert len(exported) >= FRAMES

    with Workspace.open(root) as w:
        tag = watermark.workspace_tag(w.id)

    def region_error(frame: int, dx: int = 0) -> float:
        """Mean absolute difference inside the card, 3 px in from its edge (RGB grey levels), or in the same box
        moved `dx` pixels sideways, to the plate carrying the export's invisible watermark (a change of std 2.5
        grey levels, the same in every export of the workspace: watermark.embed)."""
        img = cv2.cvtColor(cv2.imread(str(exported[frame])), cv2.COLOR_BGR2RGB).astype(int)
        x0, y0, x1, y1 = card_box(plate[frame])
        box = np.s_[y0 + 3:y1 - 2, x0 + 3 + dx:x1 - 2 + dx]
        return float(np.abs(img[box] - watermark.embed(plate[frame], tag)[box].astype(int)).mean())

    # Labelled: the plate's own card, as on the flag beside the head, where nothing is swapped.
    assert region_error(LABELLED, dx=-(bx0 - 2)) < 0.1
    assert region_error(LABELLED) < 0.5, region_error(LABELLED)
    # Not labelled: the swapped face is painted over the card (so the check above can fail).
    assert region_error(UNLABELLED) > 20.0, region_error(UNLABELLED)


BRUSHED = 1


def frame_to_screen(page: Any, x: float, y: float) -> tuple[float, float]:
    """Where frame pixel (x, y) is on the page (the viewer's box as transformed by the zoom)."""
    box = page.locator("#screen").bounding_box()
    shot = page.evaluate("[window.studio.shot.width, window.studio.shot.height]")
    return box["x"] + x / shot[0] * box["width"], box["y"] + y / shot[1] * box["height"]


def stored_label(root: Path, frame: int) -> tuple[int, list[dict[str, Any]]]:
    """How many label versions the subject's face on `frame` has, and the newest one's shapes."""
    with Workspace.open(root) as w:
        face = next(f for f in w.faces.of_role("target") if f.frame_idx == frame)
    db = sqlite3.connect(root / "doppel.db")
    rows = db.execute("SELECT label_json FROM mask_labels WHERE face_id = ? ORDER BY version", (face.id,)).fetchall()
    return len(rows), (json.loads(rows[-1][0])["shapes"] if rows else [])


def painted(shapes: list[dict[str, Any]], size: tuple[int, int]) -> np.ndarray:
    """The shapes painted in order on an empty frame: (H, W) bool, True where excluded."""
    out = np.zeros((size[1], size[0]), np.uint8)
    for s in shapes:
        cv2.fillPoly(out, [np.round(np.array(s["points"]) * 16).astype(np.int32)],
                     255 if s["mode"] == "exclude" else 0, cv2.LINE_8, 4)
    return out > 127


def test_a_brush_stroke_over_the_card_is_a_label_undone_by_ctrl_z_and_keeps_the_plate_in_the_export(
        page: Any, studio: StudioServer, tmp_path: Path) -> None:
    root = ws_root(studio)
    plate = plates(root)
    bx0, by0, bx1, by1 = card_box(plate[BRUSHED])
    size = (plate[BRUSHED].shape[1], plate[BRUSHED].shape[0])
    go(page, BRUSHED)
    assert stored_label(root, BRUSHED)[0] == 0
    # B, a radius that covers the card's height with a margin, and one drag along its middle.
    page.keyboard.press("b")
    assert page.evaluate("window.studio.brush.mode") == "exclude"
    radius = (by1 - by0) / 2 + 3
    page.fill("#brushRadius", str(radius))
    page.dispatch_event("#brushRadius", "change")
    page.locator("#screen").hover()
    cy = (by0 + by1) / 2
    page.mouse.move(*frame_to_screen(page, bx0, cy))
    page.mouse.down()
    page.mouse.move(*frame_to_screen(page, bx1, cy), steps=12)
    edits = page.evaluate("window.studio.edits || 0")
    page.mouse.up()
    page.wait_for_function(f"(window.studio.edits || 0) > {edits} && window.studio.info.mask.kind === 'drawn'")
    versions, shapes = stored_label(root, BRUSHED)
    assert versions == 1 and [s["mode"] for s in shapes] == ["exclude"]
    # Stored as the polygon outline of what the brush painted: a capsule round the drag that covers the card.
    excluded = painted(shapes, size)
    card = np.zeros_like(excluded)
    card[by0:by1 + 1, bx0:bx1 + 1] = True
    assert excluded[card].mean() > 0.99, excluded[card].mean()
    capsule = np.zeros(excluded.shape, np.uint8)
    cv2.line(capsule, (bx0 * 16, round(cy * 16)), (bx1 * 16, round(cy * 16)), 255, round(2 * radius), cv2.LINE_8, 4)
    assert lab.iou(excluded, capsule) > 0.9, lab.iou(excluded, capsule)
    # Ctrl+Z takes the stroke back (the face has no label), Ctrl+Shift+Z brings it again.
    page.keyboard.press("Control+z")
    page.wait_for_function("!window.studio.info.mask.kind")
    assert stored_label(root, BRUSHED)[0] == 0
    page.keyboard.press("Control+Shift+z")
    page.wait_for_function("window.studio.info.mask.kind === 'drawn'")
    assert stored_label(root, BRUSHED) == (versions, shapes)
    # Shift+B: an include stroke paints the card's left end back onto the face, as a second shape.
    page.keyboard.press("Shift+B")
    assert page.evaluate("window.studio.brush.mode") == "include"
    page.fill("#brushRadius", "3")
    page.dispatch_event("#brushRadius", "change")
    edits = page.evaluate("window.studio.edits || 0")
    page.mouse.move(*frame_to_screen(page, bx0 + 4, cy))
    page.mouse.down()
    page.mouse.up()
    page.wait_for_function(f"(window.studio.edits || 0) > {edits} && window.studio.info.mask.version === 2")
    _, two = stored_label(root, BRUSHED)
    assert [s["mode"] for s in two] == ["exclude", "include"]
    after = painted(two, size)
    assert not after[int(cy), bx0 + 4] and after[int(cy), bx1 - 4]
    screenshot(page, "studio-mask-brush.png", tmp_path)
    page.keyboard.press("Control+z")   # back to the single exclude stroke for the export
    page.wait_for_function("window.studio.info.mask.version === 1")
    page.keyboard.press("Escape")
    assert page.evaluate("window.studio.brush") is None

    code, out, err = run("export", root, tmp_path / "frames", "--codec", "png", "--json")
    assert code == 0, err
    exported = sorted((tmp_path / "frames").glob("*.png"))
    img = cv2.cvtColor(cv2.imread(str(exported[BRUSHED])), cv2.COLOR_BGR2RGB).astype(int)
    box = np.s_[by0 + 3:by1 - 2, bx0 + 3:bx1 - 2]
    # The plate's own card, changed only by the invisible watermark (see the polygon test above: < 3.5).
    assert np.abs(img[box] - plate[BRUSHED][box]).mean() < 3.5
