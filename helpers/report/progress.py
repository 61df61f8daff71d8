"""Stage-by-stage progress of a report run, so that a long run never looks hung.

Each stage prints one line when it ends, e.g.
``[report] validate: 10,000,000 rows in 52.3 s (191,205 rows/s)``; the command line sends these
lines to standard error (standard output keeps the one-line result)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Stages", "PROGRESS_ENV", "step", "follow", "release_memory", "freeze_imported"]


def release_memory() -> None:
    """Give freed memory back to the system (glibc's and Arrow's allocators keep freed pages
    otherwise), so that the next stage of a long run starts from what is really in use."""
    import ctypes
    import gc
    import sys

    gc.collect()
    if (pa := sys.modules.get("pyarrow")) is not None:  # Arrow's pool, if Arrow is here at all
        pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def freeze_imported() -> None:
    """Move every object the process holds now (the modules imported so far: their functions,
    classes, constants) out of the garbage collector's generations (``gc.freeze``), after one
    collection, and back in at exit (``gc.unfreeze``: the extension modules' objects are then
    finalized as without it, and nanobind has no leak to warn of). The report's kernel calls it
    once its libraries are imported (``helpers.report.build.PRELOAD``): the collector then
    never walks those objects again -- in :func:`release_memory` at each stage (0.13-0.16 s per
    full collection over the 242k objects of the report's imports, about 1.4 s of a 10M-order
    report) nor in its own full collections. Objects that later become garbage are collected as
    before; only those already present stay."""
    import atexit
    import gc

    gc.collect()
    gc.freeze()
    atexit.register(gc.unfreeze)


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
        """``[report] <name>: <rows> rows in <s> s (<rows/s> rows/s)``; without rows, just the time.
        A stage shorter than the printed tenth of a second gets no rate: a wait for work done on
        a thread before it (the exports) printed "841,883 rows in 0.0 s (99,962,360,394 rows/s)"."""
        if rows is None:
            return f"[report] {name}: {seconds:.1f} s"
        if seconds < 0.05:
            return f"[report] {name}: {rows:,} rows in {seconds:.1f} s"
        return f"[report] {name}: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)"


#: Environment variable naming the file the notebook's stages are written to (set by the report
#: command for its kernel; unset in JupyterLab and under nbval, where :func:`step` is silent).
PROGRESS_ENV = "RETENTION_LAB_PROGRESS"


def _append(line: str) -> None:
    path = os.environ.get(PROGRESS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@contextmanager
def step(name: str, rows: int | None = None) -> Iterator[Stages]:
    """A stage inside the report's notebook (aggregate, fit, ...): its line goes to the file named
    by :data:`PROGRESS_ENV`, which the report command follows (:func:`follow`). After a stage of
    at least :data:`RELEASE_MIN_ROWS` rows its freed memory goes back to the system
    (:func:`release_memory`; about 30 ms, not worth it on small data)."""
    with Stages(_append)(name, rows) as stage:
        yield stage
    if (stage.rows or 0) >= RELEASE_MIN_ROWS:
        release_memory()


#: Stages of at least this many rows give their freed memory back when they end (:func:`step`).
RELEASE_MIN_ROWS = 100_000


@contextmanager
def follow(path: Path, emit: Callable[[str], None] | None) -> Iterator[None]:
    """While the block runs, send each new line of `path` (the notebook's stages) to `emit`, with
    ``PROGRESS_ENV`` pointing at `path` for the kernel started inside the block."""
    if emit is None:
        yield
        return
    path.touch()
    old = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = str(path)
    stop = threading.Event()

    def tail() -> None:
        with path.open(encoding="utf-8") as f:
            while True:
                line = f.readline()
                if line:
                    emit("  " + line.rstrip("\n"))
                elif stop.is_set():
                    return
                else:
                    time.sleep(0.05)

    t = threading.Thread(target=tail, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)
        if old is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = old
