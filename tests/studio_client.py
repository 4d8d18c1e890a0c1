"""What the studio's tests and benchmark share: a minimal HTTP client (raw requests with exactly the headers a test
chooses), a studio server on a copy of a workspace, and the studio driven in Debian's Chromium through Playwright.

benchmarks/bench_studio.py imports this module too (through benchmarks/common.py's sys.path), so nothing here
needs pytest except `chromium_path`, which skips a test (or fails it with CI=true) where Chromium is missing."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from doppel.studio.server import StudioServer

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
"""Debian's Chromium, headless in a container, with no calls home (see shared/DEPENDENCIES.md)."""

READY = "window.studio && window.studio.ready && window.studio.firstFrameAt !== null"
"""The page has loaded its state and drawn its first frame."""

ALL_RENDERED = """async () => { const t = await (await fetch('/api/timeline')).json();
    return t.planned && !t.states.includes('stale'); }"""
"""In the page: the render plan exists and the background worker has re-rendered every stale frame."""


def request(url: str, method: str = "GET", path: str | None = None, headers: dict[str, str] | None = None,
            body: Any = None) -> tuple[int, dict[str, str], bytes]:
    """Send one request to the server of `url` (its path unless `path`); returns (status, headers, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    target = path if path is not None else parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request(method, target, body=data, headers=headers or {})
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def login(url: str) -> tuple[str, str]:
    """Exchange the token in `url` for the session cookie; returns (cookie header value, host header)."""
    status, headers, _ = request(url, headers={"Host": urlsplit(url).netloc})
    assert status == 303, status
    return headers["set-cookie"].split(";")[0], urlsplit(url).netloc


@contextmanager
def serve_copy(workspace: Path, copy: Path) -> Iterator[StudioServer]:
    """A studio server (started, on 127.0.0.1) on a copy of `workspace` made at `copy`; stopped on exit."""
    from doppel.studio.server import StudioServer

    shutil.copytree(workspace, copy)
    server = StudioServer(copy)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def ws_root(studio: StudioServer) -> Path:
    """The workspace folder a running studio serves."""
    return Path(studio.app.state.engine["engine"].backend.ws.root)


def db(studio: StudioServer) -> sqlite3.Connection:
    """A connection to the database of the workspace a running studio serves."""
    return sqlite3.connect(ws_root(studio) / "doppel.db")


def chromium_path() -> str:
    """Chromium's executable, for a test: skips it where Chromium or Playwright is missing (a missing Chromium
    fails it with CI=true)."""
    import pytest

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "no Chromium found (apt-get install -y chromium): browser tests of the studio skipped"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason.replace("skipped", "required with CI=true"))
        pytest.skip(reason)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    return found


@contextmanager
def chromium(executable: str, *extra_args: str) -> Iterator[Any]:
    """A headless Chromium (Playwright's Browser) at `executable`, with CHROMIUM_ARGS and `extra_args`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Any, width: int, height: int) -> Any:
    """A browser context (Playwright's BrowserContext) with a `width` x `height` viewport for the studio's page."""
    # bypass_csp: the studio forbids eval, which Playwright's string predicates use.
    return browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)


@contextmanager
def studio_page(browser: Any, url: str, width: int = 1280, height: int = 800) -> Iterator[Any]:
    """The studio at `url` in a new context of `browser`, loaded and showing its first frame (Playwright's Page)."""
    context = new_context(browser, width, height)
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(READY)
        yield page
    finally:
        context.close()


def go(page: Any, frame: int) -> None:
    """Jump to `frame` with the G key and wait until it is drawn."""
    page.keyboard.press("g")
    page.fill("#gotoInput", str(frame))
    page.keyboard.press("Enter")
    page.wait_for_function(f"window.studio.info && window.studio.info.frame === {frame} && "
                           f"window.studio.lastShown === {frame}")


def click_frame_point(page: Any, x: float, y: float) -> None:
    """Click the viewer where frame pixel (x, y) is shown (the box is the canvas as transformed by the zoom)."""
    box = page.locator("#screen").bounding_box()
    shot = page.evaluate("[window.studio.shot.width, window.studio.shot.height]")
    page.mouse.click(box["x"] + x / shot[0] * box["width"], box["y"] + y / shot[1] * box["height"])


def screenshot(page: Any, name: str, default: Path) -> Path:
    """Save the page as `name` in $DOPPEL_SCREENSHOTS (to look at after a run), else in `default`."""
    shots = Path(os.environ.get("DOPPEL_SCREENSHOTS", default))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / name))
    return shots / name
