"""The studio driven in headless Chromium (Debian's `chromium`, through Playwright): keys, edits that re-render,
keyframes, undo, review, notes, and the security rules as a browser meets them. One server for the module.

Without Chromium these tests skip (say why); with CI=true a missing browser fails instead."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from doppel.cli import cli
from doppel.studio.server import StudioServer, free_port
from tests.studio_client import (
    ALL_RENDERED,
    chromium,
    chromium_path,
    db,
    go,
    screenshot,
    serve_copy,
    studio_page,
    ws_root,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(chromium_path(), "--host-resolver-rules=MAP rebound.test 127.0.0.1") as b:
        yield b


@pytest.fixture(scope="module")
def studio(merged_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    with serve_copy(merged_pair, tmp_path_factory.mktemp("studio-ui") / "ws") as server:
        yield server


@pytest.fixture(scope="module")
def page(browser: Any, studio: StudioServer) -> Iterator[Any]:
    with studio_page(browser, studio.url, 1280, 800) as pg:
        yield pg


def frame_text(page: Any) -> tuple[str, str]:
    return page.inner_text("#frameno"), page.inner_text("#timecode")


def pixels(page: Any) -> list[int]:
    """The viewer canvas as a flat RGBA list."""
    return page.evaluate("() => { const c = document.getElementById('screen'); "
                         "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }")


def wait_rendered(page: Any) -> None:
    """Until the background worker has re-rendered every stale frame."""
    page.wait_for_function(ALL_RENDERED, polling=300, timeout=120_000)


def test_open_step_and_jump_by_keys(page: Any, studio: StudioServer) -> None:
    assert frame_text(page) == ("0", "00:00:00:00")
    assert page.inner_text("#framecount") == "15"
    page.keyboard.press("ArrowRight")
    assert frame_text(page) == ("1", "00:00:00:01")
    page.keyboard.press("Shift+ArrowRight")
    assert frame_text(page) == ("11", "00:00:00:11")
    page.keyboard.press("ArrowLeft")
    assert frame_text(page)[0] == "10"
    page.keyboard.press("End")
    assert frame_text(page) == ("15", "00:00:00:15")
    page.keyboard.press("Shift+ArrowLeft")
    assert frame_text(page)[0] == "5"
    page.keyboard.press("Home")
    assert frame_text(page)[0] == "0"
    go(page, 7)
    assert frame_text(page) == ("7", "00:00:00:07")
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")
    page.keyboard.press("l")  # play forwards, then stop: the playhead moved on
    page.wait_for_function("Number(document.getElementById('frameno').textContent) > 8")
    page.keyboard.press("k")
    assert page.evaluate("window.studio.playing") == 0


def test_erode_on_a_range_rerenders_and_merge_then_has_nothing_to_do(page: Any, studio: StudioServer,
                                                                     tmp_path: Path) -> None:
    go(page, 2)
    page.keyboard.press("[")
    go(page, 6)
    page.keyboard.press("]")
    go(page, 4)
    page.check("input[name=scope][value=range]")
    before = pixels(page)
    edits = page.evaluate("window.studio.edits || 0")
    page.fill("#set-erode", "25")
    page.press("#set-erode", "Enter")
    page.wait_for_function(f"(window.studio.edits || 0) > {edits} && window.studio.lastShown === 4")
    assert page.inner_text("#origin-erode").startswith("override")
    after = pixels(page)
    changed = sum(abs(a - b) > 8 for a, b in zip(before, after, strict=True))
    assert changed > 200, changed  # the face's edge moved in by a quarter of the crop
    rows = db(studio).execute("SELECT first_frame, last_frame, key, value_json FROM overrides").fetchall()
    assert rows == [(2, 6, "erode", "25.0")]
    screenshot(page, "studio-erode-range.png", tmp_path)
    wait_rendered(page)
    result = CliRunner().invoke(cli, ["merge", str(ws_root(studio)), "--json"])
    assert result.exit_code == 0, result.output
    assert '"rendered": 0' in result.output
    page.check("input[name=scope][value=frame]")


def test_keyframes_interpolate_and_undo_redo_restore(page: Any, studio: StudioServer) -> None:
    go(page, 8)
    page.fill("#set-feather", "2")
    page.press("#set-feather", "Enter")
    page.wait_for_function("document.getElementById('origin-feather').textContent.startsWith('override')")
    page.click("#key-feather")
    page.wait_for_function("document.getElementById('origin-feather').textContent === 'keyframe (on this frame)'")
    go(page, 12)
    page.fill("#set-feather", "10")
    page.press("#set-feather", "Enter")
    page.wait_for_function("document.getElementById('origin-feather').textContent === 'keyframe (on this frame)'")
    go(page, 10)
    assert page.input_value("#set-feather") == "6"
    assert page.inner_text("#origin-feather") == "keyframe (interpolated)"
    keys = db(studio).execute("SELECT frame, value_json FROM keyframes WHERE key='feather' ORDER BY frame").fetchall()
    assert keys == [(8, "2.0"), (12, "10.0")]
    page.keyboard.press("Control+z")  # the keyframe at 12 goes: the value holds at 2 after frame 8
    page.wait_for_function("document.getElementById('set-feather').value === '2'")
    assert db(studio).execute("SELECT COUNT(*) FROM keyframes").fetchone()[0] == 1
    page.keyboard.press("Control+Shift+z")
    page.wait_for_function("document.getElementById('set-feather').value === '6'")
    assert db(studio).execute("SELECT COUNT(*) FROM keyframes").fetchone()[0] == 2


def test_approve_a_range_survives_a_reload_and_notes_are_kept(page: Any, studio: StudioServer) -> None:
    go(page, 0)
    page.keyboard.press("[")
    go(page, 5)
    page.keyboard.press("]")
    go(page, 3)
    page.keyboard.press("a")
    page.wait_for_function("document.getElementById('reviewState').textContent === 'approved'")
    page.fill("#noteText", "chin edge flickers")
    page.click("#addNote")
    page.wait_for_function("document.getElementById('notes').textContent.includes('chin edge flickers')")
    page.reload()
    page.wait_for_function("window.studio && window.studio.ready")
    go(page, 3)
    assert page.inner_text("#reviewState") == "approved"
    assert "0–5: chin edge flickers" in page.inner_text("#notes")
    review = page.evaluate("async () => (await (await fetch('/api/timeline')).json()).review")
    assert review[:6] == ["approved"] * 6 and review[6] == ""
    assert "approved 37.5%" in page.inner_text("#summary")
    result = CliRunner().invoke(cli, ["review", str(ws_root(studio)), "--json"])
    assert result.exit_code == 0 and '"approved": 6' in result.output and "chin edge flickers" in result.output


def test_landmark_fix_by_interpolation_is_stored_and_rerenders(page: Any, studio: StudioServer) -> None:
    go(page, 9)
    page.click("#interpolate")
    page.wait_for_function("document.getElementById('landmarkState').textContent.startsWith('manual edit')")
    row = db(studio).execute("SELECT frame_idx, kind FROM landmark_edits").fetchall()
    assert row == [(9, "interpolate")]
    state = page.evaluate("async () => (await (await fetch('/api/timeline')).json()).states[9]")
    assert state == "rendered"  # re-rendered at once with the fixed landmarks


def test_security_from_the_pages_origin_and_from_others(browser: Any, page: Any, studio: StudioServer,
                                                        tmp_path: Path) -> None:
    port = studio.keys.port
    post = """async ([url, body]) => { try { const r = await fetch(url, {method: 'POST', credentials: 'include',
        headers: {'content-type': 'application/json'}, body: JSON.stringify(body)}); return r.status; }
        catch (e) { return 'blocked'; } }"""
    body = {"first": 14, "last": 15, "status": "needs_work", "frame": 14}
    count = "SELECT COUNT(*) FROM review_ranges WHERE status = 'needs_work'"
    # From the studio's own page: allowed with JSON; a form-like content type is refused.
    assert page.evaluate(post, ["/api/review", body]) == 200
    assert db(studio).execute(count).fetchone()[0] == 1
    text = page.evaluate("""async () => (await fetch('/api/review', {method: 'POST', headers: {'content-type':
        'text/plain'}, body: '{}'})).status""")
    assert text == 415
    # From another origin (a page on another local port): the cookie is SameSite=Strict, the Origin is foreign,
    # the CORS preflight is refused; nothing reaches the database, and images and data do not load.
    other_port = free_port()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", other_port), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        context = browser.new_context()
        evil = context.new_page()
        evil.goto(f"http://127.0.0.1:{other_port}/")
        assert evil.evaluate(post, [f"http://127.0.0.1:{port}/api/review", body]) == "blocked"
        no_cors = evil.evaluate("""async (url) => { await fetch(url, {method: 'POST', mode: 'no-cors',
            credentials: 'include', headers: {'content-type': 'text/plain'}, body: '{}'}); return 1; }""",
                                f"http://127.0.0.1:{port}/api/review")
        assert no_cors == 1
        loaded = evil.evaluate("""(url) => new Promise((ok) => { const i = new Image(); i.onload = () => ok(true);
            i.onerror = () => ok(false); i.src = url; })""", f"http://127.0.0.1:{port}/img/plate/0.jpg")
        assert loaded is False
        # DNS rebinding: a name that resolves to 127.0.0.1 reaches the port, but its Host header is refused.
        response = evil.goto(f"http://rebound.test:{port}/?token={studio.keys.token}")
        assert response is not None and response.status == 403
        # No token: a fresh browser without the URL's token gets nothing.
        response = evil.goto(f"http://127.0.0.1:{port}/")
        assert response is not None and response.status == 403
        context.close()
    finally:
        httpd.shutdown()
    assert db(studio).execute(count).fetchone()[0] == 1
