"""The one exception type the CLI turns into a one-line error and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class DoppelError(Exception):
    """A problem with the user's input or environment, explained in one line.

    `path` names the file the problem is about, when there is one; the message is shown as
    ``PATH: message`` so that the user knows which of several inputs failed.
    """

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
