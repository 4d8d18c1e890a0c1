"""The studio's numbers (issue 12) on a merged workspace, measured through `doppel studio` and headless Chromium.

- first frame on screen: seconds from starting `doppel studio WS --no-browser` to the first frame drawn in the
  page (the browser is launched beforehand, as a user's browser is already running); cold (no cached proxies)
  and warm (proxies cached in the workspace by an earlier session);
- step to a cached frame: server time per image request (HTTP round trip on 127.0.0.1, an upper bound), and the
  in-page time from the key press to the frame drawn;
- playback: frames shown and dropped at the shot's rate, counted in the page by the studio's own frame clock;
- a setting change on one frame: from the change to the new render drawn in the page (`lastEditMs`);
- the server's peak RSS.

Usage (the workspace must be merged; see benchmarks/RESULTS.md for how the deadline_cif one was built):
    nice -n 10 .venv/bin/python benchmarks/bench_studio.py /path/to/workspace [--screenshot docs/studio.png]
    ... bench_studio.py WS --mask-screenshot docs/studio-masks.png --frame 22 --exclude "x,y;x,y;..."  (mask editor)
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import studio_client


class Studio:
    """`doppel studio` as a subprocess, with its URL and a sampler of its RSS."""

    def __init__(self, ws: Path) -> None:
        self.t0 = time.perf_counter()
        doppel = Path(sys.executable).with_name("doppel")
        self.proc = subprocess.Popen([str(doppel), "studio", str(ws), "--no-browser"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.split(": ", 1)[1].strip()
        self.peak_rss = 0
        self._stop = False
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop:
            try:
                status = Path(f"/proc/{self.proc.pid}/status").read_text()
                rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1]) * 1024
                self.peak_rss = max(self.peak_rss, rss)
            except (OSError, StopIteration):
                pass
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop = True
        self.proc.terminate()
        self.proc.wait(timeout=30)


def open_page(browser: Any, studio: Studio) -> tuple[Any, float]:
    context = studio_client.new_context(browser, 1400, 900)
    page = context.new_page()
    for _ in range(200):  # the server may still be binding its port
        try:
            page.goto(studio.url)
            break
        except Exception:
            time.sleep(0.01)
    page.wait_for_function("window.studio && window.studio.firstFrameAt !== null", polling=10, timeout=60_000)
    return page, time.perf_counter() - studio.t0


def wait_idle(page: Any, ws: Path, frames: int, timeout: float = 900) -> None:
    """Until no frame is stale and every plate and merged proxy is cached (the studio warms them when idle)."""
    start = time.perf_counter()
    page.wait_for_function(studio_client.ALL_RENDERED, polling=1000, timeout=timeout * 1000)
    while time.perf_counter() - start < timeout:
        counts = [len(list((ws / "studio" / "proxies" / k).glob("*.jpg"))) for k in ("plate", "merged")]
        if min(counts) >= frames:
            return
        time.sleep(1)


def server_steps(url: str, cookie: str, frames: int, n: int = 200) -> list[float]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    times = []
    rng = random.Random(0)
    for _ in range(n):
        i = rng.randrange(frames)
        t = time.perf_counter()
        conn.request("GET", f"/img/merged/{i}.jpg", headers={"Cookie": cookie, "Host": parts.netloc})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        times.append(1000 * (time.perf_counter() - t))
    return times


def page_steps(page: Any, n: int = 40) -> list[float]:
    return page.evaluate("""async (n) => { const S = window.studio, out = [];
        for (let k = 0; k < n; k++) { const want = S.frame + 1, t = performance.now();
          document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}));
          while (S.lastShown !== want) await new Promise((r) => setTimeout(r, 1));
          out.push(performance.now() - t); }
        return out; }""", n)


def playback(page: Any, seconds: float) -> dict[str, Any]:
    page.keyboard.press("Home")
    page.wait_for_function("window.studio.lastShown === 0")
    page.keyboard.press("Space")
    time.sleep(seconds)
    page.keyboard.press("k")
    return page.evaluate("({shown: window.studio.playStats.shown, dropped: window.studio.playStats.dropped, "
                         "late: window.studio.playStats.late.slice(0, 20), frame: window.studio.frame})")


def setting_changes(page: Any, frames: list[int]) -> list[float]:
    out = []
    for f in frames:
        studio_client.go(page, f)
        edits = page.evaluate("window.studio.edits || 0")
        current = float(page.input_value("#set-erode"))
        page.fill("#set-erode", str((current + 3) % 20))  # always a new value
        page.press("#set-erode", "Enter")
        page.wait_for_function(f"(window.studio.edits || 0) > {edits}", timeout=60_000)
        out.append(page.evaluate("window.studio.lastEditMs"))
    return out


def screenshot(page: Any, frames: int, path: Path) -> None:
    """The README's picture: a range approved, a note, the A/B wipe; saved as a small palette PNG."""
    from PIL import Image

    page.set_viewport_size({"width": 1180, "height": 700})
    a, b, here = frames * 2 // 5, frames * 3 // 5, frames // 2
    studio_client.go(page, a)
    page.keyboard.press("[")
    studio_client.go(page, b)
    page.keyboard.press("]")
    page.keyboard.press("a")
    page.fill("#noteText", "glasses: check the reflection")
    page.click("#addNote")
    page.wait_for_function("document.getElementById('notes').textContent.includes('reflection')")
    studio_client.go(page, here)
    page.keyboard.press("3")
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


def mask_screenshot(page: Any, frame: int, points: list[tuple[float, float]], path: Path) -> None:
    """The README's picture of the mask editor: on `frame`, zoomed on the face, an exclude polygon (W) through
    `points` (frame pixels) committed with Enter, then the occlusion mask shown as an overlay (O)."""
    from PIL import Image

    page.set_viewport_size({"width": 1180, "height": 700})
    studio_client.go(page, frame)
    page.keyboard.press("z")
    page.wait_for_function("document.getElementById('screen').style.transform.includes('scale')")
    page.keyboard.press("w")
    for x, y in points:
        studio_client.click_frame_point(page, x, y)
    edits = page.evaluate("window.studio.edits || 0")
    page.keyboard.press("Enter")
    page.wait_for_function(f"(window.studio.edits || 0) > {edits} && window.studio.info.mask.kind === 'drawn'",
                           timeout=120_000)
    page.keyboard.press("o")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


def parse_points(text: str) -> list[tuple[float, float]]:
    """"x,y;x,y;..." (frame pixels) -> [(x, y), ...]."""
    return [(float(x), float(y)) for x, y in (p.split(",") for p in text.split(";") if p.strip())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--cold", action="store_true", help="Remove the studio's cached proxies first.")
    parser.add_argument("--playback-seconds", type=float, default=12.0)
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--mask-screenshot", type=Path, default=None,
                        help="Only draw an exclude polygon (--exclude) on --frame and save the page here.")
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--exclude", type=parse_points, default=[], help='frame pixels, "x,y;x,y;..."')
    args = parser.parse_args()
    executable = shutil.which("chromium") or parser.error("no Chromium found (apt-get install -y chromium)")

    ws = args.workspace.resolve()
    results: dict[str, Any] = {"workspace": str(ws)}
    with studio_client.chromium(executable) as browser:
        if args.cold:
            shutil.rmtree(ws / "studio", ignore_errors=True)
        studio = Studio(ws)
        if args.mask_screenshot:
            try:
                page, _ = open_page(browser, studio)
                mask_screenshot(page, args.frame, args.exclude, args.mask_screenshot)
            finally:
                studio.stop()
            return
        try:
            page, first = open_page(browser, studio)
            shot = page.evaluate("window.studio.shot")
            results.update(frames=shot["frames"], size=f"{shot['width']}x{shot['height']}", fps=shot["fps"],
                           first_frame_s=round(first, 3), first_frame_cache="cold" if args.cold else "as found")
            t = time.perf_counter()
            wait_idle(page, ws, shot["frames"])
            results["warm_up_s"] = round(time.perf_counter() - t, 1)
            cookie = page.context.cookies()[0]
            steps = server_steps(studio.url, f"{cookie['name']}={cookie['value']}", shot["frames"])
            results["step_server_ms"] = {"median": round(statistics.median(steps), 2),
                                         "p95": round(sorted(steps)[int(0.95 * len(steps))], 2)}
            in_page = page_steps(page)
            results["step_in_page_ms"] = {"median": round(statistics.median(in_page), 2),
                                          "p95": round(sorted(in_page)[int(0.95 * len(in_page))], 2)}
            results["playback"] = playback(page, args.playback_seconds)
            edits = setting_changes(page, [int(shot["frames"] * (k + 0.5) / 5) for k in range(5)])
            results["setting_change_ms"] = {"each": [round(e) for e in edits],
                                            "median": round(statistics.median(edits))}
            if args.screenshot:
                screenshot(page, shot["frames"], args.screenshot)
            page.context.close()
            # Warm start: a second session finds the proxies in the workspace.
            studio.stop()
            peak = studio.peak_rss
            studio = Studio(ws)
            studio.peak_rss = peak
            page, first = open_page(browser, studio)
            results["first_frame_warm_s"] = round(first, 3)
            page.context.close()
        finally:
            studio.stop()
            results["peak_rss_mb"] = round(studio.peak_rss / 2**20)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
