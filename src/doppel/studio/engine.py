"""The engine thread: the only thread that touches the workspace. Requests are jobs in a priority queue; when
no job waits, it re-renders stale frames in small chunks (nearest the playhead first), so an edit made during
a background render is served before the next chunk and re-queues only the frames it changed."""

from __future__ import annotations

import importlib
import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from doppel.studio.backend import Backend

CHUNK = 4
"""Frames per background render step: small enough that an interactive request waits at most one step."""
INTERACTIVE, PROXY, BACKGROUND = 0, 1, 2
LOADER_DELAY_S = 3.0


class Engine:
    """Runs `Backend` calls on one thread. `publish(event)` is called (from the engine thread) with progress
    events: {"type": "progress", "done", "total"} and {"type": "rendered", "frames": [...]}."""

    def __init__(self, open_backend: Callable[[], Backend], publish: Callable[[dict[str, Any]], None]) -> None:
        self._open_backend = open_backend
        self.ready: Future[Backend] = Future()
        self.first_image = threading.Event()
        self.publish = publish
        self.playhead = 0
        self.auto_render = True
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable[[], Any], Future[Any]]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="doppel-studio-engine", daemon=True)
        self._pending: list[int] = []
        self._total = 0
        self._done = 0
        self._cold = True  # some proxies may be missing
        self._scanned = 0
        self._measured: dict[int, str] = {}  # the render key each frame's flicker was measured at

    def start(self) -> Backend:
        """Start the thread, which opens the workspace (SQLite connections stay on the thread that made them)."""
        self._thread.start()
        self.backend = self.ready.result()
        return self.backend

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def submit(self, fn: Callable[[], Any], priority: int = INTERACTIVE) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((priority, next(self._seq), fn, future))
        return future

    def requeue(self) -> None:
        """Call on the engine thread after an edit: the stale frames are recomputed from the render plan."""
        stale = self.backend.stale()
        self._pending = stale
        self._cold, self._scanned = True, 0
        self._total = self._done + len(stale) if stale else 0
        if not stale:
            self._done = 0
        self.publish({"type": "progress", "done": self._done, "total": self._total})

    def _run(self) -> None:
        try:
            self.backend = self._open_backend()
        except BaseException as exc:
            self.ready.set_exception(exc)
            return
        self.ready.set_result(self.backend)
        # torch (for the model's identity and rendering) imports on the side once the first frame is out (or after
        # a few seconds): importing it takes seconds of CPU that the first frame should not wait behind.
        loader = threading.Thread(target=importlib.import_module, args=("doppel.merge.model",), daemon=True)
        started = time.monotonic()
        while not self._stop.is_set():
            if loader.ident is None and not self.backend.planned and (
                    self.first_image.is_set() or time.monotonic() - started > LOADER_DELAY_S):
                loader.start()
            try:
                _, _, fn, future = self._jobs.get(timeout=0.02 if self._pending and self.auto_render else 0.2)
            except queue.Empty:
                if not self.backend.planned:
                    if loader.ident is not None and not loader.is_alive():
                        self.backend.ensure_plan()
                        self.requeue()
                        self.publish({"type": "plan"})
                elif self._pending and self.auto_render:
                    self._render_chunk()
                elif self._cold:
                    self._warm()
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the waiting request
                    future.set_exception(exc)
        self.backend.close()

    def _warm(self, batch: int = 8) -> None:
        """Cache the JPEG proxies from the playhead on, a few per idle moment, so playback reads only files."""
        b = self.backend
        made = 0
        while made < batch and self._scanned < b.frame_count:
            i = (self.playhead + self._scanned) % b.frame_count
            self._scanned += 1
            for kind in ("plate", "merged"):
                if b.cached_proxy(kind, i) is None:
                    b.proxy(kind, i)
                    made += 1
        if self._scanned >= b.frame_count:
            self._cold = False
            # All proxies are there: measure the swap's added flicker for the problem markers (a few ms a frame).
            b.measure_flicker([i for i in range(b.frame_count) if b.keys.get(i) != self._measured.get(i)])
            self._measured = dict(b.keys)
            b.update_problems()
            self.publish({"type": "plan"})

    def _render_chunk(self) -> None:
        ahead = sorted(self._pending, key=lambda i: (i < self.playhead, abs(i - self.playhead)))
        chunk = ahead[:CHUNK]
        start = time.perf_counter()
        try:
            self.backend.render(chunk)
        except Exception as exc:  # a broken model or render: say so on the page, stop rendering in the background
            self._pending = []
            self.publish({"type": "error", "message": str(exc)})
            return
        done = set(chunk)
        self._pending = [i for i in self._pending if i not in done]
        self._done += len(chunk)
        if not self._pending:
            self._pending = self.backend.stale()  # edits since may have made more frames stale
            if not self._pending:
                self._total, self._done = 0, 0
        self.publish({"type": "rendered", "frames": chunk, "ms": round(1000 * (time.perf_counter() - start))})
        self.publish({"type": "progress", "done": self._done, "total": self._total})
