"""`doppel studio`: the local web app (Starlette on uvicorn). Routes are thin: each one validates its input and
hands a `Backend` call to the engine thread; images are served by (kind, frame number), static files by name
from a fixed table, never by a path taken from the request."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from doppel.errors import DoppelError
from doppel.studio import masks
from doppel.studio.backend import PROXY_KINDS, Backend
from doppel.studio.engine import INTERACTIVE, PROXY, Engine
from doppel.studio.security import Guard, Secrets

STATIC = {"studio.js": "text/javascript", "masks.js": "text/javascript", "studio.css": "text/css",
          "index.html": "text/html"}
"""The only files the server reads from its package, by name."""


def _asset(name: str) -> bytes:
    return resources.files("doppel.studio").joinpath("static", name).read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    """Server-sent events to every open page; `publish` may be called from any thread."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.last: dict[str, dict[str, Any]] = {}

    def publish(self, event: dict[str, Any]) -> None:
        self.last[event["type"]] = event
        if self.loop is None:
            return
        for q in list(self.queues):
            self.loop.call_soon_threadsafe(q.put_nowait, event)


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DoppelError(f"{key} must be an integer")
    return value


def build_app(root: Path, keys: Secrets, device: str | None = "cpu") -> Starlette:
    """The studio app for the workspace at `root`, guarded by `keys`."""
    hub = Hub()
    state: dict[str, Engine] = {}

    def engine() -> Engine:
        return state["engine"]

    async def run(fn: Callable[[], Any], priority: int = INTERACTIVE) -> Any:
        return await asyncio.wrap_future(engine().submit(fn, priority))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.loop = asyncio.get_running_loop()
        state["engine"] = Engine(lambda: Backend(root, device), hub.publish)
        await asyncio.to_thread(state["engine"].start)
        yield
        await asyncio.to_thread(state["engine"].stop)

    async def index(request: Request) -> Response:
        return Response(_asset("index.html"), media_type="text/html", headers={"cache-control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", 404)
        return Response(_asset(name), media_type=STATIC[name], headers={"cache-control": "no-store"})

    async def image(request: Request) -> Response:
        kind, frame = request.path_params["kind"], request.path_params["frame"]
        if kind not in PROXY_KINDS:
            return Response("not found", 404)
        backend = engine().backend
        path = backend.cached_proxy(kind, frame)
        if path is None:
            if not 0 <= frame < backend.frame_count:
                return Response("not found", 404)
            path = await run(lambda: backend.proxy(kind, frame), PROXY)
        engine().first_image.set()
        return FileResponse(path, media_type="image/jpeg", headers={"cache-control": "no-store"})

    async def occlusion(request: Request) -> Response:
        frame = request.path_params["frame"]
        try:
            data = await run(lambda: masks.overlay(engine().backend, frame), PROXY)
        except DoppelError:
            return Response("not found", 404)
        return Response(data, media_type="image/png", headers={"cache-control": "no-store"})

    def edit(fn: Callable[[Backend, dict[str, Any]], Any]) -> Callable[[Request], Any]:
        """A state-changing route: parse JSON, apply the edit on the engine thread, re-render the playhead's frame
        at once, re-queue the stale frames for the background worker, answer with the frame's new state."""

        async def handler(request: Request) -> Response:
            try:
                data = json.loads(await request.body() or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError:
                return JSONResponse({"error": "the body must be a JSON object"}, 400)

            def job() -> dict[str, Any]:
                b = engine().backend
                result = fn(b, data)  # edits that change the render plan refresh it themselves
                frame = data.get("frame")
                if isinstance(frame, int) and 0 <= frame < b.frame_count:
                    engine().playhead = frame
                    if frame in b.stale() and b.model_id is not None:
                        b.render([frame])
                        b.proxy("merged", frame)
                engine().requeue()
                out = {"result": result}
                if isinstance(frame, int) and 0 <= frame < b.frame_count:
                    out["frame"] = b.frame(frame)
                return out

            try:
                return JSONResponse(await run(job))
            except DoppelError as exc:
                return JSONResponse({"error": str(exc)}, 400)

        return handler

    def read(fn: Callable[[Backend, Request], Any]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            try:
                return JSONResponse(await run(lambda: fn(engine().backend, request)))
            except DoppelError as exc:
                return JSONResponse({"error": str(exc)}, 400)

        return handler

    async def events(request: Request) -> Response:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        hub.queues.add(q)
        for event in hub.last.values():
            q.put_nowait(event)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(q.get(), 15)
                        yield f"data: {json.dumps(event)}\n\n".encode()
                    except TimeoutError:
                        yield b": keep-alive\n\n"
            finally:
                hub.queues.discard(q)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})

    def playhead(b: Backend, d: dict[str, Any]) -> int:
        engine().playhead = _int(d, "frame")
        return engine().playhead

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/img/{kind}/{frame:int}.jpg", image),
        Route("/api/shot", read(lambda b, r: b.shot())),
        Route("/api/timeline", read(lambda b, r: b.timeline())),
        Route("/api/summary", read(lambda b, r: b.summary())),
        Route("/api/frame/{frame:int}", read(lambda b, r: b.frame(r.path_params["frame"]))),
        Route("/api/events", events),
        Route("/api/playhead", edit(playhead), methods=["POST"]),
        Route("/api/render", edit(lambda b, d: _int(d, "frame")), methods=["POST"]),
        Route("/api/override", edit(lambda b, d: b.set_override(
            _int(d, "first"), _int(d, "last"), str(d.get("key")), d.get("value"))), methods=["POST"]),
        Route("/api/keyframe", edit(lambda b, d: b.set_keyframe(
            str(d.get("key")), _int(d, "frame"), d.get("value"))), methods=["POST"]),  # type: ignore[arg-type]
        Route("/api/keyframe/delete", edit(lambda b, d: b.remove_keyframe(str(d.get("key")), _int(d, "frame"))),
              methods=["POST"]),
        Route("/api/review", edit(lambda b, d: b.set_review(
            _int(d, "first"), _int(d, "last"), str(d.get("status")))), methods=["POST"]),
        Route("/api/note", edit(lambda b, d: b.add_note(
            _int(d, "first"), _int(d, "last"), str(d.get("text", "")))), methods=["POST"]),
        Route("/api/note/resolve", edit(lambda b, d: b.resolve_note(
            _int(d, "id"), bool(d.get("resolved", True)))), methods=["POST"]),
        Route("/api/landmarks", edit(lambda b, d: b.interpolate_landmarks(_int(d, "frame")) if d.get("interpolate")
                                     else b.move_anchors(_int(d, "frame"), d.get("anchors"))),  # type: ignore[arg-type]
              methods=["POST"]),
        Route("/img/occlusion/{frame:int}.png", occlusion),
        Route("/api/mask/label", edit(lambda b, d: masks.draw(b, _int(d, "frame"), d.get("shapes"),
                                                               d.get("base", "landmarks"))), methods=["POST"]),
        Route("/api/mask/remove", edit(lambda b, d: masks.remove_newest(b, _int(d, "frame"))), methods=["POST"]),
        Route("/api/mask/copy", edit(lambda b, d: masks.copy(b, _int(d, "frame"), d.get("frames"))),
              methods=["POST"]),
        Route("/api/mask/propagate", edit(lambda b, d: masks.propagate(b, _int(d, "frame"), d.get("frames"))),
              methods=["POST"]),
        Route("/api/mask/confirm", edit(lambda b, d: masks.confirm(b, _int(d, "first"), _int(d, "last"))),
              methods=["POST"]),
        Route("/api/undo", edit(lambda b, d: b.undo()), methods=["POST"]),
        Route("/api/redo", edit(lambda b, d: b.redo()), methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.hub = hub
    app.state.engine = state
    return app


class StudioServer:
    """uvicorn serving the guarded app on 127.0.0.1 (or `host`); `serve()` blocks, `start()` runs it in a thread."""

    def __init__(self, root: Path, port: int = 0, host: str = "127.0.0.1", device: str | None = "cpu") -> None:
        self.keys = Secrets(port or free_port())
        self.host = host
        self.app = build_app(Path(root), self.keys, device)
        config = uvicorn.Config(Guard(self.app, self.keys), host=host, port=self.keys.port, log_level="warning",
                                lifespan="on", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.keys.url()

    def serve(self) -> None:
        self.server.run()

    def start(self, timeout: float = 60) -> None:
        self._thread = threading.Thread(target=self.server.run, name="doppel-studio-http", daemon=True)
        self._thread.start()
        waited = 0.0
        while not self.server.started:
            if not self._thread.is_alive() or waited > timeout:
                raise DoppelError("the studio server did not start")
            threading.Event().wait(0.02)
            waited += 0.02

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
