"""Shared benchmark utilities (not a test; no pytest here).

Benchmarks run as scripts, ``.venv/bin/python benchmarks/bench_<topic>.py``, so this folder is on
``sys.path`` and they import::

    from _common import time_it, rows_per_s, duckdb_runner, machine

API:

* ``time_it(fn, repeat=3) -> (median_s, peak_rss_mb)``: median wall time of ``repeat`` calls of
  ``fn()`` (after a garbage collection each), and the process's peak resident memory (MB,
  10^6 bytes) *during those calls*. On Linux the peak is reset before the calls
  (``/proc/self/clear_refs``) and read from ``VmHWM``; elsewhere a background thread samples RSS
  every few milliseconds. The figure includes everything the process holds (the input data too).
* ``rows_per_s(n_rows, seconds) -> float``: throughput.
* ``duckdb_runner(sql, threads=None, native=False, **frames) -> fn``: registers pandas DataFrames
  under the given names in a fresh in-memory DuckDB connection (scanned in place, no copy; or
  copied into native DuckDB tables with ``native=True``) and returns a zero-argument function
  running ``sql`` and fetching the result as a pandas DataFrame; ``fn.con`` is the connection
  (close it when done).
* ``machine() -> str``: CPU count, RAM and library versions, for the report line.
* ``fmt_row(label, n_rows, seconds, rss_mb, baseline_s=None) -> str``: one aligned result line.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

__all__ = ["time_it", "rows_per_s", "duckdb_runner", "machine", "fmt_row", "peak_rss_mb"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False if not possible."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (or start), MB."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    import resource  # not on Windows

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


class _Sampler(threading.Thread):
    """Polls RSS while a benchmark runs (fallback when the kernel counter cannot be reset)."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak, self._done = interval, 0, threading.Event()
        self._proc = psutil.Process()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return max(self.peak, self._proc.memory_info().rss) / 1e6


def time_it(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, float]:
    """Median wall time (s) of `repeat` calls of `fn` and the peak RSS (MB) during them."""
    gc.collect()
    kernel = _reset_peak()
    sampler = None if kernel else _Sampler()
    if sampler:
        sampler.start()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    peak = peak_rss_mb() if kernel else sampler.stop()
    return statistics.median(times), peak


def rows_per_s(n_rows: int, seconds: float) -> float:
    """Throughput in rows per second."""
    return n_rows / seconds if seconds > 0 else float("inf")


def duckdb_runner(
    sql: str, threads: int | None = None, native: bool = False, **frames: Any
) -> Callable[[], Any]:
    """A function running `sql` in DuckDB over the given pandas frames (registered by name) and
    returning a pandas DataFrame. `threads`: DuckDB worker threads (default: all cores);
    `native`: copy the frames into DuckDB tables first (untimed; DuckDB's own columnar storage)
    instead of scanning the pandas memory in place."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name, frame in frames.items():
        if native:
            con.register(f"_{name}_frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}_frame")
            con.unregister(f"_{name}_frame")
        else:
            con.register(name, frame)

    def run() -> Any:
        return con.execute(sql).df()

    run.con = con  # type: ignore[attr-defined]
    return run


def machine() -> str:
    """A one-line description of the machine and the library versions."""
    import duckdb
    import numpy as np
    import pandas as pd

    ram = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, {ram:.0f} GiB RAM; "
        f"python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}, "
        f"duckdb {duckdb.__version__}"
    )


def fmt_row(
    label: str, n_rows: int, seconds: float, rss_mb: float, baseline_s: float | None = None
) -> str:
    """`label  rows  seconds  rows/s  [x DuckDB]  peak RSS` as one aligned line."""
    line = f"  {label:<28} {n_rows:>12,} rows {seconds:8.3f} s {rows_per_s(n_rows, seconds) / 1e6:8.2f} M rows/s"
    if baseline_s is not None:
        line += f"   {seconds / baseline_s:5.2f}x DuckDB"
    return line + f"   peak RSS {rss_mb:7.0f} MB"
