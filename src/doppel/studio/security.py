"""The studio's gate, an ASGI middleware in front of every route.

- Host header must name the address the server is bound to (a DNS-rebinding page arrives with its own host).
- A random token per run, given once in the URL doppel prints, is exchanged for a session cookie (HttpOnly,
  SameSite=Strict, named after the port); every other request needs that cookie.
- Every state-changing request (any method but GET/HEAD) must carry an Origin equal to the studio's own and a
  JSON body (a cross-site form cannot send application/json without a CORS preflight, which is never granted).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = ("GET", "HEAD")


@dataclass
class Secrets:
    """Per-run secrets. `token` goes into the printed URL; `session` only into the cookie."""

    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    session: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def cookie_name(self) -> str:
        return f"doppel_studio_{self.port}"

    @property
    def hosts(self) -> tuple[str, ...]:
        return (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(f"http://{h}" for h in self.hosts)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}?token={self.token}"

    def cookie_header(self) -> str:
        return f"{self.cookie_name}={self.session}; HttpOnly; SameSite=Strict; Path=/"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def _refuse(send: Send, status: int, reason: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = reason.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Wraps the app: refuses requests that break a rule above with 403 (400/415 for malformed ones)."""

    def __init__(self, app: ASGIApp, keys: Secrets) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        if headers.get("host", "") not in self.keys.hosts:
            await _refuse(send, 403, "refused: unexpected Host header (the studio answers only on its own address)")
            return
        method = scope["method"]
        if method not in SAFE_METHODS:
            if headers.get("origin", "") not in self.keys.origins:
                await _refuse(send, 403, "refused: a state-changing request must come from the studio's own page")
                return
            if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                await _refuse(send, 415, "refused: edits are sent as application/json")
                return
        token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if method == "GET" and scope["path"] == "/" and token:
            if not _same(token, self.keys.token):
                await _refuse(send, 403, "refused: wrong token (use the URL `doppel studio` printed)")
                return
            # Exchange the token for the cookie and drop it from the address bar (and from history).
            await _refuse(send, 303, "", [(b"location", b"/"),
                                          (b"set-cookie", self.keys.cookie_header().encode())])
            return
        if not _same(_cookie(headers.get("cookie", ""), self.keys.cookie_name), self.keys.session):
            await _refuse(send, 403, "refused: no studio session; open the URL `doppel studio` printed")
            return
        await self.app(scope, receive, _with_headers(send))


def _cookie(header: str, name: str) -> str:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed cookie header is simply no session
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


def _with_headers(send: Send) -> Send:
    """Add headers that keep the page from being framed or sniffed, and keep its data out of caches."""

    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []),
                                               (b"x-frame-options", b"DENY"),
                                               (b"x-content-type-options", b"nosniff"),
                                               (b"referrer-policy", b"no-referrer"),
                                               (b"content-security-policy",
                                                b"default-src 'self'; img-src 'self' blob:; "
                                                b"frame-ancestors 'none'")]}
        await send(message)

    return wrapped
