"""The studio's security rules, each checked against a real server on 127.0.0.1 with raw HTTP requests (the
browser-side versions, from the page's own origin and from another origin, are in test_studio_browser.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from doppel.errors import DoppelError
from doppel.studio.backend import Backend
from doppel.studio.server import StudioServer
from tests.studio_client import db as studio_db
from tests.studio_client import login, request, serve_copy


@pytest.fixture(scope="module")
def server(merged_pair: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    with serve_copy(merged_pair, tmp_path_factory.mktemp("studio-sec") / "ws") as s:
        yield s


def _auth(server: StudioServer) -> dict[str, str]:
    cookie, host = login(server.url)
    return {"Cookie": cookie, "Host": host}


def _post(server: StudioServer, path: str, body: object, **headers: str) -> tuple[int, bytes]:
    h = {**_auth(server), "Content-Type": "application/json", "Origin": f"http://127.0.0.1:{server.keys.port}"}
    h.update(headers)
    status, _, data = request(server.url, "POST", path, {k: v for k, v in h.items() if v}, body)
    return status, data


def test_binds_to_loopback_only(server: StudioServer) -> None:
    assert server.server.config.host == "127.0.0.1"
    sockets = [s.getsockname()[0] for srv in server.server.servers for s in srv.sockets]
    assert sockets and all(addr == "127.0.0.1" for addr in sockets)


def test_token_is_required_and_exchanged_for_a_strict_httponly_cookie(server: StudioServer) -> None:
    host = f"127.0.0.1:{server.keys.port}"
    assert request(server.url, path="/", headers={"Host": host})[0] == 403
    assert request(server.url, path="/api/shot", headers={"Host": host})[0] == 403
    assert request(server.url, path="/?token=wrong", headers={"Host": host})[0] == 403
    status, headers, _ = request(server.url, headers={"Host": host})
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and server.keys.token not in cookie
    status, _, body = request(server.url, path="/api/shot", headers={"Host": host, "Cookie": cookie.split(";")[0]})
    assert status == 200 and b'"frames": 16' in body.replace(b'"frames":16', b'"frames": 16')
    # A forged session cookie does not open it.
    forged = {"Host": host, "Cookie": f"{server.keys.cookie_name}=x"}
    assert request(server.url, path="/api/shot", headers=forged)[0] == 403


def test_host_header_is_checked_against_dns_rebinding(server: StudioServer) -> None:
    auth = _auth(server)
    for host in (f"evil.example:{server.keys.port}", "127.0.0.1:1", "127.0.0.1", ""):
        status, _, body = request(server.url, path="/api/shot", headers={**auth, "Host": host})
        assert status == 403 and b"Host" in body, host
    assert request(server.url, path="/api/shot", headers={**auth, "Host": f"localhost:{server.keys.port}"})[0] == 200


def test_state_changing_requests_need_the_studios_origin_and_json(server: StudioServer) -> None:
    body = {"first": 0, "last": 0, "status": "approved", "frame": 0}
    assert _post(server, "/api/review", body, Origin="")[0] == 403
    assert _post(server, "/api/review", body, Origin="http://evil.example")[0] == 403
    assert _post(server, "/api/review", body, Origin=f"http://127.0.0.1:{server.keys.port + 1}")[0] == 403
    assert _post(server, "/api/review", body, **{"Content-Type": "text/plain"})[0] == 415
    db = studio_db(server)
    assert db.execute("SELECT COUNT(*) FROM review_ranges").fetchone()[0] == 0  # none of those got through
    status, data = _post(server, "/api/review", body)
    assert status == 200, data
    assert db.execute("SELECT COUNT(*) FROM review_ranges").fetchone()[0] == 1
    _post(server, "/api/undo", {"frame": 0})


def test_files_are_served_by_id_never_by_path(server: StudioServer) -> None:
    auth = _auth(server)
    ok = request(server.url, path="/img/plate/3.jpg", headers=auth)
    assert ok[0] == 200 and ok[1]["content-type"] == "image/jpeg" and ok[2][:2] == b"\xff\xd8"
    for path in ("/static/../../doppel.db", "/static/..%2F..%2Fdoppel.db", "/static/doppel.toml",
                 "/img/plate/..%2F..%2Fdoppel.db", "/img/../doppel.db", "/img/plate/x.jpg", "/img/renders/3.jpg",
                 "/img/plate/99.jpg", "/img/plate/-1.jpg", "/doppel.db", "/renders/000003.png"):
        status, _, body = request(server.url, path=path, headers=auth)
        assert status == 404, (path, status)
        assert b"SQLite" not in body and b"[merge]" not in body


def test_nothing_is_written_outside_the_workspace(merged_pair: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(merged_pair, ws)
    outside = tmp_path / "outside"
    outside.mkdir()
    # A workspace whose studio folder leads elsewhere (a symlink) is refused, not followed.
    (ws / "studio").mkdir(exist_ok=True)
    shutil.rmtree(ws / "studio")
    os.symlink(outside, ws / "studio")
    with pytest.raises(DoppelError, match="outside the workspace"):
        Backend(ws)
    assert list(outside.iterdir()) == []
    # A normal session writes its proxies inside the workspace only.
    (ws / "studio").unlink()
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(ws)}
    backend = Backend(ws)
    try:
        for i in range(3):
            for kind in ("plate", "merged", "mask"):
                assert backend.proxy(kind, i).is_relative_to(ws)
    finally:
        backend.close()
    assert {p for p in tmp_path.rglob("*") if not p.is_relative_to(ws)} == before
