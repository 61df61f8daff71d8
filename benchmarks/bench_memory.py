"""Benchmark (issues 16 and 31): where the client report's memory goes, stage by stage, and which
process holds it: the report command or the notebook's kernel.

Run:  .venv/bin/python benchmarks/bench_memory.py --data F --mapping M [--tree label=DIR ...]
                                                  [--rounds N] [--trace OUT.csv]
                                                  [--inside [--every S] [--keep-samples DIR]]

Each round runs ``python -m helpers.report --data F --mapping M`` once per ``--tree`` (A B A B:
each tree's ``helpers`` by ``PYTHONPATH``, e.g. a ``git archive`` of the commit before a change
beside the working tree; default: this repository alone), every run a whole process under
``/usr/bin/time -v`` (its user + system CPU, the command and the kernel it waited for, and the
largest single process's maximum resident set). Every 50 ms it samples each process of the tree:
its resident set split into anonymous memory (``RssAnon``: what the program allocated) and
file-backed pages (``RssFile``: libraries and memory-mapped files, such as the hand-over's Arrow
file, which the system can drop), for the command and for the kernel. The report's stage lines
(standard error) end the stages: each stage's peak is the largest sample since the line before.

Printed: per round and tree, the wall and CPU seconds, the tree's peak (the summed RSS, as
``bench_report.py`` measures it), the largest process (``time -v``), and a table of the stages
with the tree's, the command's and the kernel's peak (the kernel's anonymous part beside it).
``--trace`` writes every sample (seconds, command RSS, kernel RSS, kernel anonymous, stage) of
the last round as CSV, to plot the curve.

``--inside`` also looks inside the notebook's kernel: a sampling thread, started by an IPython
startup file in a temporary ``IPYTHONDIR`` given to the kernel, writes every ``--every`` seconds
its resident memory, glibc's heap in use and free (``mallinfo2``: numpy's and pandas' arrays
live there), the kernel's DuckDB memory by tag (``duckdb_memory()``: hash tables, windows, the
hand-over's cached blocks) and the innermost ``helpers`` frame of the notebook's thread. Printed
after each run: the kernel's largest samples and the largest per function, with that
composition. ``--keep-samples DIR`` keeps each run's samples (JSON lines), each with the
notebook cell's file and line too. Linux and glibc only; the sampling costs a little time (a
figure for memory, not for speed).
"""

from __future__ import annotations

import argparse
import atexit
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil
from _common import machine

ROOT = Path(__file__).resolve().parents[1]
TIME_V = "/usr/bin/time"


#: The kernel's sampling thread (an IPython startup file: the kernel runs it before the notebook).
SAMPLER = textwrap.dedent(
    """
    import ctypes, json, os, sys, threading, time
    import psutil

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    import weakref

    # The kernel's DuckDB backends, recorded as they are made. Not by scanning gc.get_objects():
    # from this thread that can take hold of a tuple the notebook's thread is still building,
    # whose resize then fails ("SystemError: Objects/tupleobject.c: bad argument to internal
    # function" in a cell, one run in a few).
    _BACKENDS = weakref.WeakSet()

    def _track_backends():
        try:
            from ibis.backends.duckdb import Backend
        except ImportError:
            return
        made = Backend.__init__

        def __init__(self, *args, **kwargs):
            made(self, *args, **kwargs)
            _BACKENDS.add(self)

        Backend.__init__ = __init__

    def _duckdb_mb():
        for o in list(_BACKENDS):  # one database is enough: its memory is the database's
            if getattr(o, "con", None) is not None:
                try:
                    cur = o.con.cursor()
                    rows = cur.execute("SELECT tag, memory_usage_bytes FROM duckdb_memory() "
                                       "WHERE memory_usage_bytes > 0").fetchall()
                    cur.close()
                    return {tag: round(b / 1e6) for tag, b in rows}
                except Exception:
                    continue
        return {}

    def _sample(path, every):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        me, main, t0 = psutil.Process(), threading.main_thread().ident, time.time()
        with open(path, "a") as out:
            while True:
                mi = libc.mallinfo2()
                frame, where, cell = sys._current_frames().get(main), "", ""
                while frame is not None:
                    name = frame.f_code.co_filename
                    if not where and "/helpers/" in name:
                        name = name.rsplit("/helpers/", 1)[1]
                        where = f"{frame.f_code.co_name} ({name}:{frame.f_lineno})"
                    elif not cell and "ipykernel_" in name:  # the notebook's cell (a file per cell) and line
                        cell = f"{name.rsplit('/', 1)[-1]}:{frame.f_lineno}"
                    frame = frame.f_back
                out.write(json.dumps({
                    "t": round(time.time() - t0, 2), "rss": round(me.memory_info().rss / 1e6),
                    "heap_used": round((mi.uordblks + mi.hblkhd) / 1e6),
                    "heap_free": round(mi.fordblks / 1e6), "duckdb": _duckdb_mb(), "where": where,
                    "cell": cell,
                }) + "\\n")
                out.flush()
                time.sleep(every)

    if os.environ.get("KERNEL_MEMORY_LOG"):
        _track_backends()
        threading.Thread(target=_sample, daemon=True, args=(
            os.environ["KERNEL_MEMORY_LOG"], float(os.environ["KERNEL_MEMORY_EVERY"]))).start()
    """
)


def _status_kb(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and RssShmem of `pid` from ``/proc/<pid>/status``, kB."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def _role(p: psutil.Process) -> str:
    """'kernel' for the notebook's kernel, 'command' for ``python -m helpers.report``, else
    'other' (``time`` itself, a compiler...)."""
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "other"
    if "ipykernel" in cmd:
        return "kernel"
    if "helpers.report" in cmd:
        return "command"
    return "other"


def run_traced(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> dict:
    """Run `cmd` in `cwd` under ``time -v``, sampling the tree every 50 ms; returns the samples,
    the stage lines with their times, the wall seconds, stderr and the exit code."""
    if os.path.exists(TIME_V):
        cmd = [TIME_V, "-v", *cmd]
    start = time.perf_counter()
    child = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    root = psutil.Process(child.pid)
    samples: list[tuple[float, int, int, int, int]] = []  # t, tree, command, kernel, kernel anon
    stages: list[tuple[float, str]] = []
    err_lines: list[str] = []
    done = threading.Event()
    roles: dict[int, str] = {}

    def sample() -> None:
        while not done.is_set():
            tree = command = kernel = anon = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                procs = []
            for p in procs:
                if roles.get(p.pid) != "kernel":
                    # again until it is the kernel: a child forked by the command carries the
                    # command's line until it runs its own program (the kernel did, on a
                    # warehouse table, and its memory was counted as the command's)
                    roles[p.pid] = _role(p)
                kb = _status_kb(p.pid)
                rss = kb.get("VmRSS", 0) * 1024
                tree += rss
                if roles[p.pid] == "command":
                    command += rss
                elif roles[p.pid] == "kernel":
                    kernel += rss
                    anon += kb.get("RssAnon", 0) * 1024
            samples.append((time.perf_counter() - start, tree, command, kernel, anon))
            time.sleep(0.05)

    def read_err() -> None:
        for line in child.stderr:
            err_lines.append(line)
            if "[report]" in line:
                stages.append((time.perf_counter() - start, line.strip()))

    threads = [threading.Thread(target=sample, daemon=True),
               threading.Thread(target=read_err, daemon=True)]  # fmt: skip
    for t in threads:
        t.start()
    out = child.stdout.read()
    child.wait()
    threads[1].join()
    done.set()
    threads[0].join()
    return {
        "wall": time.perf_counter() - start,
        "samples": samples,
        "stages": stages,
        "stderr": "".join(err_lines),
        "stdout": out,
        "code": child.returncode,
    }


def stage_peaks(run: dict) -> list[tuple[str, float, float, float, float, float]]:
    """(stage, seconds, tree MB, command MB, kernel MB, kernel anonymous MB): the peaks of the
    samples between a stage line and the one before it (the last row: after the last line)."""
    rows, t0 = [], 0.0
    bounds = [*run["stages"], (float("inf"), "(after the last stage line)")]
    for t1, line in bounds:
        inside = [s for s in run["samples"] if t0 <= s[0] < t1] or [(0, 0, 0, 0, 0)]
        name = re.sub(r"^\[report\] ", "", line)
        name = re.sub(r": [\d,]+ rows in .*|: [\d.]+ s$", "", name)
        secs = (min(t1, run["wall"]) - t0) if t1 != float("inf") else run["wall"] - t0
        rows.append((name, secs, *(max(s[k] for s in inside) / 1e6 for k in (1, 2, 3, 4))))
        t0 = t1
    return rows


def time_v(err: str) -> tuple[float | None, float | None]:
    """(user + system CPU seconds, maximum resident set MB) of ``/usr/bin/time -v``'s report."""
    m = [re.search(rf"{k} time \(seconds\): ([\d.]+)", err) for k in ("User", "System")]
    cpu = float(m[0].group(1)) + float(m[1].group(1)) if all(m) else None
    r = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return cpu, (int(r.group(1)) * 1024 / 1e6 if r else None)


def inside_summary(kernel: list[dict], top: int = 12) -> list[str]:
    """The lines ``--inside`` prints from the kernel's samples `kernel` (:data:`SAMPLER`'s
    JSON lines): its `top` largest samples and the largest sample per function, each as resident
    memory = glibc's heap in use + its free heap + DuckDB's memory + the rest (libraries, Python
    objects, Arrow, and the part of the free heap already given back)."""

    def parts(k: dict) -> str:
        duck = sum(k["duckdb"].values())
        tags = ", ".join(
            f"{tag} {mb}" for tag, mb in sorted(k["duckdb"].items(), key=lambda x: -x[1])
        )
        rest = k["rss"] - k["heap_used"] - k["heap_free"] - duck
        return (
            f"rss {k['rss']:5,} = heap in use {k['heap_used']:5,} + heap free "
            f"{k['heap_free']:4,} + DuckDB {duck:4,} ({tags or '-'}) + rest {rest:5,}"
        )

    lines = [f"  the kernel's {min(top, len(kernel))} largest samples (MB):"]
    for k in sorted(kernel, key=lambda k: -k["rss"])[:top]:
        lines.append(f"    {k['t']:6.1f} s  {parts(k)}  {k['where']}")
    best: dict[str, dict] = {}
    for k in kernel:
        fn = k["where"].split(" (")[0] or "(between cells, or not in helpers)"
        if fn not in best or k["rss"] > best[fn]["rss"]:
            best[fn] = k
    lines.append("  the kernel's largest sample per function (MB):")
    for fn, k in sorted(best.items(), key=lambda kv: -kv[1]["rss"])[:top]:
        lines.append(f"    {fn[:34]:<34} {parts(k)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--mapping", required=True)
    ap.add_argument(
        "--tree", action="append", default=[],
        help="label=DIR: a tree whose helpers run the report (PYTHONPATH); repeat to pair",
    )  # fmt: skip
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument(
        "--reports-dir", help="where the reports go (default: a temporary folder, removed at exit)"
    )
    ap.add_argument("--trace", help="CSV of the last round's samples (one file per tree)")
    ap.add_argument(
        "--keep-samples", metavar="DIR",
        help="with --inside: keep each run's kernel samples in DIR (JSON lines: time, memory, "
        "the innermost helpers frame and the notebook cell's file and line)",
    )  # fmt: skip
    ap.add_argument("--engine", default="auto")
    ap.add_argument(
        "--inside",
        action="store_true",
        help="also sample inside the kernel: heap, DuckDB, function (see above)",
    )
    ap.add_argument("--every", type=float, default=0.25, help="--inside's sampling interval, s")
    args = ap.parse_args(argv)
    # nothing left in the temporary folder: the reports (2.2 GB at 100M orders) and the
    # kernel's sampler go at exit (--keep-samples copies the samples out first)
    if args.reports_dir is None:
        args.reports_dir = tempfile.mkdtemp(prefix="bench-memory-reports-")
        atexit.register(shutil.rmtree, args.reports_dir, True)
    inside = Path(tempfile.mkdtemp(prefix="bench-memory-")) if args.inside else None
    if inside is not None:
        atexit.register(shutil.rmtree, inside, True)
        startup = inside / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-bench-memory.py").write_text(SAMPLER)
    trees = [t.split("=", 1) for t in args.tree] or [["this", str(ROOT)]]
    print(machine())
    results: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k, _ in trees}
    for r in range(args.rounds):
        for label, tree in trees:
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
            env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            log = inside / f"kernel-{label}-{r}.jsonl" if inside is not None else None
            if log is not None:
                env.update(IPYTHONDIR=str(inside / "ipython"), KERNEL_MEMORY_LOG=str(log),
                           KERNEL_MEMORY_EVERY=str(args.every))  # fmt: skip
            cmd = [args.python, "-m", "helpers.report", "--data", args.data, "--mapping",
                   args.mapping, "--name", f"mem-{label}", "--reports-dir", args.reports_dir,
                   "--overwrite", "--engine", args.engine]  # fmt: skip
            load = os.getloadavg()[0]
            run = run_traced(cmd, env, Path(tree))  # python -m: the tree's helpers first
            if run["code"] != 0:
                print(run["stderr"][-3000:])
                print(f"{label}: the report failed (exit {run['code']})")
                return 1
            cpu, largest = time_v(run["stderr"])
            tree_peak = max(s[1] for s in run["samples"]) / 1e6
            results[label].append((run["wall"], cpu or float("nan"), tree_peak, largest or 0))
            print(f"\nround {r + 1}, {label} ({tree}): wall {run['wall']:.1f} s, CPU {cpu:.1f} s, "
                  f"tree peak {tree_peak:,.0f} MB, largest process {largest:,.0f} MB; "
                  f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")  # fmt: skip
            print(f"  {'stage':<66} {'s':>6} {'tree':>7} {'command':>8} {'kernel':>7} {'anon':>7}")
            for name, secs, tree_mb, cmd_mb, ker_mb, anon_mb in stage_peaks(run):
                print(f"  {name[:66]:<66} {secs:6.1f} {tree_mb:7.0f} {cmd_mb:8.0f} "
                      f"{ker_mb:7.0f} {anon_mb:7.0f}")  # fmt: skip
            if log is not None and log.exists():
                kernel = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
                print("\n".join(inside_summary(kernel)))
                if args.keep_samples:
                    kept = Path(args.keep_samples) / log.name
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(log, kept)
                    print(f"  the kernel's samples (JSON lines, with each sample's cell) in {kept}")
            if args.trace and r == args.rounds - 1:
                path = Path(args.trace)
                path = path.with_name(f"{path.stem}-{label}{path.suffix}")
                ends = run["stages"]
                with path.open("w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["seconds", "tree_mb", "command_mb", "kernel_mb", "kernel_anon_mb",
                                "stage"])  # fmt: skip
                    for t, tr, c, k, a in run["samples"]:
                        stage = next((n for e, n in ends if t < e), "")
                        w.writerow([f"{t:.2f}", round(tr / 1e6), round(c / 1e6), round(k / 1e6),
                                    round(a / 1e6), stage])  # fmt: skip
                print(f"  samples written to {path}")
    if len(trees) > 1 or args.rounds > 1:
        print(f"\n{'tree':<12} {'wall s':>8} {'CPU s':>8} {'tree peak MB':>13} {'largest MB':>11}"
              "  (medians; peaks: max)")  # fmt: skip
        for label, rows in results.items():
            print(f"{label:<12} {statistics.median(x[0] for x in rows):8.1f} "
                  f"{statistics.median(x[1] for x in rows):8.1f} {max(x[2] for x in rows):13,.0f} "
                  f"{max(x[3] for x in rows):11,.0f}")  # fmt: skip
        if len(trees) == 2:
            (a, ra), (b, rb) = results.items()
            cpu = [x[1] / y[1] for x, y in zip(ra, rb, strict=True)]
            peak = [x[2] / y[2] for x, y in zip(ra, rb, strict=True)]
            print(f"paired {a}/{b}: CPU {', '.join(f'{x:.3f}' for x in cpu)} "
                  f"(median {statistics.median(cpu):.3f}); tree peak "
                  f"{', '.join(f'{x:.3f}' for x in peak)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
