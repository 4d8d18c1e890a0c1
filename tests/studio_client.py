"""A minimal HTTP client for the studio's tests: raw requests with exactly the headers a test chooses."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


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
