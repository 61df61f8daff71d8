"""Stage-by-stage progress of a report run, so that a long run never looks hung.

Each stage prints one line when it ends, e.g.
``[report] validate: 10,000,000 rows in 52.3 s (191,205 rows/s)``; the command line sends these
lines to standard error (standard output keeps the one-line result)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Stages"]


class Stages:
    """Times named stages and reports them through `emit` (None: silent).

    ``with stages("validate") as stage: ...; stage.rows = len(orders)`` prints the stage's rows,
    seconds and rows per second when the block ends without an error; ``stages.done`` lists
    (stage, rows, seconds) for tests and benchmarks."""

    def __init__(self, emit: Callable[[str], None] | None = None) -> None:
        self.emit = emit
        self.done: list[tuple[str, int | None, float]] = []
        self.rows: int | None = None

    @contextmanager
    def __call__(self, name: str, rows: int | None = None) -> Iterator[Stages]:
        self.rows = rows
        t0 = time.perf_counter()
        yield self
        seconds = time.perf_counter() - t0
        self.done.append((name, self.rows, seconds))
        if self.emit is not None:
            self.emit(self.line(name, self.rows, seconds))

    @staticmethod
    def line(name: str, rows: int | None, seconds: float) -> str:
        """``[report] <name>: <rows> rows in <s> s (<rows/s> rows/s)``; without rows, just the time."""
        if rows is None:
            return f"[report] {name}: {seconds:.1f} s"
        rate = rows / seconds if seconds > 0 else float("inf")
        return f"[report] {name}: {rows:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s)"
