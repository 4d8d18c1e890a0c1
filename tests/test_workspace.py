from __future__ import annotations

import shutil
import sqlite3
import tomllib
from pathlib import Path

import pytest

from doppel.errors import DoppelError
from doppel.workspace import SCHEMA_VERSION, Settings, Workspace
from doppel.workspace.settings import default_toml, parse_settings


def test_init_writes_settings_and_a_wal_database(tmp_path: Path) -> None:
    with Workspace.create(tmp_path / "ws") as ws:
        assert ws.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ws.db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert len(ws.id) == 32
        assert ws.settings == Settings()
    text = (tmp_path / "ws" / "doppel.toml").read_text()
    assert "crop_size = 256" in text and "# Side of the aligned face crops" in text


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "precious.txt").write_text("keep me")
    with pytest.raises(DoppelError, match="not an empty folder"):
        Workspace.create(tmp_path / "ws")
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["precious.txt"]


def test_init_into_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    Workspace.create(tmp_path / "ws").close()
    assert (tmp_path / "ws" / "doppel.db").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["ws"]


def test_a_folder_that_is_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(DoppelError, match="not a doppel workspace"):
        Workspace.open(tmp_path)
    with pytest.raises(DoppelError, match="no such workspace"):
        Workspace.open(tmp_path / "nope")


def test_a_database_from_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws").close()
    db = sqlite3.connect(tmp_path / "ws" / "doppel.db")
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 5,))
    db.commit()
    db.close()
    with pytest.raises(DoppelError, match=f"schema version {SCHEMA_VERSION + 5}, newer"):
        Workspace.open(tmp_path / "ws")
    db = sqlite3.connect(tmp_path / "ws" / "doppel.db")
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION + 5


def test_a_database_that_is_not_sqlite(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws").close()
    (tmp_path / "ws" / "doppel.db-wal").unlink(missing_ok=True)
    (tmp_path / "ws" / "doppel.db").write_bytes(b"garbage" * 100)
    with pytest.raises(DoppelError, match="unreadable"):
        Workspace.open(tmp_path / "ws")


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    with Workspace.create(tmp_path / "ws") as ws:
        with pytest.raises(RuntimeError), ws.transaction() as db:
            db.execute("INSERT INTO meta VALUES ('x', 'y')")
            raise RuntimeError
        assert ws.db.execute("SELECT COUNT(*) FROM meta WHERE key='x'").fetchone()[0] == 0


def test_default_toml_round_trips_to_the_defaults() -> None:
    assert parse_settings(tomllib.loads(default_toml()), Path("doppel.toml")) == Settings()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"extract": {"crop_sise": 128}}, "unknown setting [extract] crop_sise"),
        ({"extrct": {}}, "unknown settings section [extrct]"),
        ({"extract": {"crop_size": "big"}}, "must be int"),
        ({"extract": {"face_type": "mouth"}}, "is not one of full, whole_face, head"),
    ],
)
def test_bad_settings_are_named(data: dict, message: str) -> None:
    with pytest.raises(DoppelError) as err:
        parse_settings(data, Path("doppel.toml"))
    assert message in str(err.value)


def test_edited_settings_are_read(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws").close()
    path = tmp_path / "ws" / "doppel.toml"
    path.write_text(path.read_text().replace("crop_size = 256", "crop_size = 384"))
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.settings.extract.crop_size == 384


def test_a_schema_3_workspace_opens_and_is_migrated(trained_pair: Path, tmp_path: Path) -> None:
    """A v3 database made by this code's own migrations 0-3 (as doppel 0.1 wrote it, models found by their
    folders, a face layer's corner in its file name) is brought to the current schema on open."""
    from doppel.workspace.db import migrate
    from doppel.workspace.settings import default_toml

    ws = tmp_path / "old"
    ws.mkdir()
    (ws / "doppel.toml").write_text(default_toml())
    shutil.copytree(trained_pair / "models", ws / "models")
    workspace_id = sqlite3.connect(trained_pair / "doppel.db").execute(
        "SELECT value FROM meta WHERE key = 'workspace_id'").fetchone()[0]
    db = sqlite3.connect(ws / "doppel.db", isolation_level=None)
    migrate(db, ws / "doppel.db", upto=3)
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == 3
    db.execute("INSERT INTO meta VALUES ('workspace_id', ?)", (workspace_id,))
    db.execute("INSERT INTO renders VALUES (5, 'k5', 'renders/000005.png', 'renders/layers/000005_12_34.png', 7,"
               " '[[1, 0, 0], [0, 1, 0]]', 'then')")
    db.execute("INSERT INTO renders VALUES (6, 'k6', NULL, NULL, NULL, NULL, 'then')")
    db.close()
    assert SCHEMA_VERSION > 3
    with Workspace.open(ws) as w:
        assert w.db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        renders = w.renders.all()
        assert (renders[5].layer_x, renders[5].layer_y, renders[5].cache_key) == (12, 34, "k5")
        assert renders[5].matrix is not None and renders[5].matrix.shape == (2, 3)
        assert not renders[6].swapped and renders[6].cache_key == "k6"
        (model,) = w.models.all()
        assert (model.name, model.step, model.preset) == ("main", 3, "tiny-64")
        assert (w.root / model.checkpoint / "model.safetensors").is_file()
        assert w.summary()["models"] == {"main": {"step": 3, "preset": "tiny-64"}}


def test_typed_accessors_read_what_extraction_and_training_wrote(trained_pair: Path) -> None:
    with Workspace.open(trained_pair) as w:
        target = w.target()
        assert target is not None
        chosen = w.people.chosen("target")
        assert chosen is not None and chosen.chosen and chosen.embedding.shape == (128,)
        faces = w.faces.of_chosen("target", media_id=target.id)
        assert len(faces) == target.info.frame_count == 16
        assert all(f.person_id == chosen.id for f in faces)
        assert w.faces.mesh(faces[0].id).shape == (468, 3)
        assert sorted(w.faces.meshes(target.id)) == list(range(16))
        assert w.frames.pending(target.id) == [] and w.frames.done(target.id) == list(range(16))
        assert w.models.get("main") is not None and w.models.get("other") is None
        with pytest.raises(DoppelError, match="a model name is"):
            w.models.folder("../escape")
