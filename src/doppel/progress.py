"""Rich progress bars for the CLI; the library only sees plain `progress(done, total)` callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

stderr = Console(stderr=True)


@contextlib.contextmanager
def progress_bars(unit: str = "frames") -> Iterator[Callable[[str], Callable[[int, int], None]]]:
    """Yield `new_bar(label)`, which returns a `progress(done, total)` callback driving one bar."""
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

        def new_bar(label: str) -> Callable[[int, int], None]:
            task = bars.add_task(label, total=None, rate="")

            def update(done: int, total: int) -> None:
                elapsed = bars.tasks[task].elapsed or 0.0
                rate = f"{done / elapsed:.1f} {unit}/s" if elapsed > 0 else ""
                bars.update(task, completed=done, total=total or None, rate=rate)

            return update

        yield new_bar
