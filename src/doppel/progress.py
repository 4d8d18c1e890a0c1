"""Progress: one callback protocol for the whole library, and the CLI's adapter that draws rich bars.

The API reports progress as `progress(stage, done, total, message)`: `stage` is one of `STAGES`, `done` of
`total` units (frames, training steps or seconds), `message` a detail such as the file being read. Inside, a
stage sees a plain `(done, total)` callback bound by `bind`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Stage = Literal["probe", "extract", "overlays", "train", "merge", "export", "eval", "demo", "mask"]
STAGES: tuple[Stage, ...] = ("probe", "extract", "overlays", "train", "merge", "export", "eval", "demo", "mask")

StepCallback = Callable[[int, int], None]
"""What a stage calls inside: `step(done, total)`."""


class ProgressCallback(Protocol):
    """`progress(stage, done, total, message)`: called as a stage advances; `total` 0 when unknown."""

    def __call__(self, stage: Stage, done: int, total: int, message: str) -> None: ...


def bind(progress: ProgressCallback | None, stage: Stage, message: str = "") -> StepCallback | None:
    """A `(done, total)` callback for one stage, or None when nobody listens."""
    if progress is None:
        return None

    def step(done: int, total: int) -> None:
        progress(stage, done, total, message)

    return step


stderr = Console(stderr=True)

UNITS: dict[str, str] = {"train": "it"}


@contextlib.contextmanager
def rich_progress(say: Callable[[str], object] | None = None) -> Iterator[ProgressCallback]:
    """The CLI's adapter: yields a `ProgressCallback` that draws one transient bar per (stage, message).
    Messages of the `demo` stage (its steps) are passed to `say` instead of drawing a bar."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as bars:
        tasks: dict[tuple[str, str], TaskID] = {}

        def update(stage: Stage, done: int, total: int, message: str) -> None:
            if stage == "demo":
                if say is not None:
                    say(f"{done}/{total} {message}")
                return
            key = (stage, message)
            if key not in tasks:
                tasks[key] = bars.add_task(f"{stage} {message}".strip(), total=None, rate="")
            task = tasks[key]
            elapsed = bars.tasks[task].elapsed or 0.0
            unit = UNITS.get(stage, "frames")
            rate = f"{done / elapsed:.1f} {unit}/s" if elapsed > 0 else ""
            bars.update(task, completed=done, total=total or None, rate=rate)

        yield update
