"""A progress bar with ETA and the latest metrics (rich), shown on the main process only."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ProgressBar:
    def __init__(self, description: str, total: int, completed: int = 0, enabled: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=total, completed=completed, metrics="")

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._progress.stop()

    def advance(self, metrics: dict[str, Any] | None = None, keys: tuple[str, ...] = ()) -> None:
        if not self.enabled:
            return
        shown = " ".join(f"{k.split('/')[-1]}={metrics[k]:.4g}" for k in keys if metrics and k in metrics)
        self._progress.update(self._task, advance=1, metrics=shown)
