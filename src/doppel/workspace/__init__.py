"""The workspace: a folder with `doppel.toml`, the SQLite database `doppel.db` and sub-folders for big files."""

from doppel.workspace.db import Workspace
from doppel.workspace.records import Media
from doppel.workspace.schema import SCHEMA_VERSION
from doppel.workspace.settings import Settings

__all__ = ["SCHEMA_VERSION", "Media", "Settings", "Workspace"]
