"""Build a report folder: validate, run notebook 08 with papermill in a hidden temporary folder,
render the HTML, and publish ``reports/<name>/`` only when everything succeeded."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from helpers import paths, run
from helpers.report import sources, text
from helpers.report.handover import EXPORTS_ENV, SALT_ENV, SCRATCH_ENV
from helpers.report.progress import PROGRESS_ENV, Stages, follow, release_memory
from helpers.report.sources import ENGINE_MIN_BYTES

# The readers (pandas, DuckDB, Ibis, the mapping's rules) are imported where a file is read:
# in the child process of a large file or a database table (:func:`_in_child`), whose memory is
# gone when it ends, and for a small file in this process. The command itself, which waits
# beside the notebook's kernel, holds the report's light modules and papermill's.

NOTEBOOK: Path = paths.NOTEBOOKS / "08_case_study_client_report.ipynb"
#: What notebook 08's kernel imports while the report command reads the client's file
#: (:func:`helpers.run.started_kernel`): the libraries of its first cells and of its sections,
#: then held out of the garbage collector (:func:`helpers.report.progress.freeze_imported`).
PRELOAD = (
    "import matplotlib.pyplot, pandas, scipy.stats, helpers.report.analysis, "
    "helpers.report.covariates_view, helpers.report.acquisition_views, helpers.report.progress; "
    "helpers.report.progress.freeze_imported()"
)


class ReportError(RuntimeError):
    """A report that could not be made; the message says why."""


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def build_report(
    data: str | Path,
    mapping: str | Path,
    name: str,
    *,
    overwrite: bool = False,
    reports_dir: str | Path | None = None,
    client: str | None = None,
    language: str | None = None,
    engine: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Validate `data` with `mapping`, run notebook 08 on it and publish ``<reports_dir>/<name>/``.

    `engine` chooses what computes the aggregations in the notebook
    (:func:`helpers.report.orders.open_orders`: 'pandas', 'duckdb', or 'auto') and what reads a
    local file (:func:`helpers.report.orders.read_orders`: the rules in DuckDB for 'duckdb', or
    'auto' from :data:`helpers.report.sources.ENGINE_MIN_BYTES`).

    `progress` receives one line per finished stage (read, validate, analyse, render) with its
    rows and rows per second (:class:`helpers.report.progress.Stages`).

    `data`: a file, a Parquet folder (copied once into a temporary Parquet file) or a database
    table URL (``duckdb:///client.db?table=orders``; :mod:`helpers.report.sources`): a table is
    checked, given the mapping's rules and aggregated in its database, whatever `engine` says
    (:func:`helpers.report.orders.read_orders_in_warehouse`); nothing of it is copied.

    Raises :class:`ReportError` (name taken, notebook failure) or
    :class:`helpers.tables.DataValidationError` (bad mapping or data) before anything is written.
    """
    if not _SAFE_NAME.match(name):
        raise ReportError(
            f"report name {name!r} must be letters, digits, '-', '_' or '.', e.g. 'acme-2025'"
        )
    root = Path(reports_dir).expanduser().resolve() if reports_dir else paths.REPORTS
    target = root / name
    if target.is_symlink():
        raise ReportError(run.symlink_message(target))
    if target.exists() and not overwrite:
        raise ReportError(f"{target} already exists; choose another name or pass --overwrite")
    stage = Stages(progress)
    with contextlib.ExitStack() as cleanup:
        # a Parquet folder: one file, read once (a database table stays where it is)
        if sources.is_location(data) and not sources.is_database(data):
            folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="retention-source-"))
            try:
                with stage(f"read {sources.describe(data)}"):
                    data = sources.materialize(data, folder)
            except ValueError as err:
                raise ReportError(str(err)) from None
        elif sources.is_database(data):
            try:
                sources.describe(data)  # the URL names its table
            except ValueError as err:
                raise ReportError(str(err)) from None
        return _build(data, mapping, name, target, root, client, language, engine, stage, progress,
                      overwrite)  # fmt: skip


def _build(data, mapping, name, target, root, client, language, engine, stage, progress,
           overwrite) -> Path:  # fmt: skip
    """:func:`build_report` once `data` is a file."""
    # absolute, not resolved: messages name the client's path, not a symbolic link's target
    url = str(data) if sources.is_database(data) else None
    data = Path(sources.describe(url)) if url else Path(data).expanduser().absolute()
    mapping = Path(mapping).expanduser().absolute()
    if engine not in ("auto", "duckdb", "pandas", "spark"):
        raise ReportError(f"--engine must be auto, duckdb, pandas or spark, got {engine!r}")
    if language is not None and language not in text.LANGUAGES:
        raise ReportError(f"--language must be one of {sorted(text.LANGUAGES)}, got {language!r}")
    handover = Path(tempfile.mkdtemp(prefix="retention-validated-"))  # private: real ids
    args = (data, url, mapping, engine, handover)
    try:
        # the notebook's kernel starts and imports its libraries while the file is read
        # (run.started_kernel: about 3 s of the report's time), once the mapping is read (its
        # `exports` go to the kernel's environment); shut down if the read fails
        with contextlib.ExitStack() as kernel_up:
            if _in_child(data, url):
                with _ReadingChild(*args, stage) as child:
                    env = _kernel_env(child.exports(), url, progress, handover)
                    kernel = kernel_up.enter_context(
                        run.started_kernel(handover / "metrics.json", env, PRELOAD)
                    )
                    got = child.result()
            else:
                from helpers.report.mapping import load_mapping

                env = _kernel_env(load_mapping(mapping).exports, url, progress, handover)
                kernel = kernel_up.enter_context(
                    run.started_kernel(handover / "metrics.json", env, PRELOAD)
                )
                got = _read_and_hand_over(*args, stage)
            release_memory()
            return _analyse(got, data, url, mapping, name, target, root, client, language,
                            engine, stage, progress, overwrite, handover, kernel)  # fmt: skip
    finally:
        shutil.rmtree(handover, ignore_errors=True)


def _kernel_env(exports: str, url: str | None, progress: Callable[[str], None] | None,
                handover: Path) -> dict[str, str]:  # fmt: skip
    """The environment of notebook 08's kernel: the mapping's `exports`, a new pseudonym key,
    the BLAS threads (:func:`blas_threads`), Arrow's allocator (:func:`arrow_pool`), a
    database's `url`, the stages' file and the hand-over folder as its scratch folder (removed
    by the command)."""
    # the salt goes to the kernel's environment, not to papermill: its parameters are recorded
    # in the delivered report.ipynb, and with the salt anyone could test guessed ids
    env = {EXPORTS_ENV: exports, SALT_ENV: secrets.token_hex(16), SCRATCH_ENV: str(handover)}
    env |= blas_threads(os.environ)
    env |= arrow_pool(os.environ)
    if url:  # the same for a database URL and its password
        env[sources.SOURCE_ENV] = url
    if progress is not None:  # the notebook's stages, which follow() passes on as they come
        env[PROGRESS_ENV] = str(handover / "stages")
    return env


#: Arrow's allocator in the notebook's kernel (``ARROW_DEFAULT_MEMORY_POOL``).
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def arrow_pool(environ: Mapping[str, str]) -> dict[str, str]:
    """The kernel's Arrow allocator: glibc's (``system``), unless the caller's environment
    `environ` names one. Arrow's default (mimalloc) keeps the pages a thread freed in that
    thread's heap, and the stages' :func:`~helpers.report.progress.release_memory` gives back only
    its own thread's: what the sections' prefetch converted in its thread stayed resident. Through
    glibc the stages' ``malloc_trim`` returns them (benchmarks/README.md, issue 31, 2026-12-07:
    the 10M CSV's kernel peak 1,130-1,186 against 1,194-1,257 MB in three pairs, the 100M
    Parquet file's tree peak 6,046 and 6,052 against 6,140 and 6,142 MB, CPU within the runs'
    spread)."""
    return {ARROW_POOL_ENV: environ.get(ARROW_POOL_ENV, "system")}


#: The BLAS libraries' thread counts (OpenBLAS, OpenMP, MKL).
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads(environ: Mapping[str, str]) -> dict[str, str]:
    """The notebook's kernel's BLAS threads: one, unless the caller's environment `environ` sets
    them (as `make` does, to one): the models' matrices are small, and the kernel's own threads
    (:func:`helpers.report.engine.prefetch`, :func:`helpers.report.analysis.prefetch_actions`)
    then compute to the last bit what they would in turn, whatever the timing."""
    return {v: environ.get(v, "1") for v in BLAS_THREADS}


def _analyse(got, data, url, mapping, name, target, root, client, language, engine, stage,
             progress, overwrite, handover, kernel) -> Path:  # fmt: skip
    """:func:`build_report` once the file is read: notebook 08 run on the hand-over `got` in
    `kernel`, the HTML rendered, the report published."""
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=root))
        tmp.chmod(0o755)  # mkdtemp makes it private; the published report is an ordinary folder
        params = {  # a table's data_path: its source without the password
            "data_path": f"{got['source']}?table={got['table']}" if url else str(data),
            "orders_path": got["validated"], "mapping_path": str(mapping),
            "client_name": client or name, "export_dir": str(tmp),
            "language": language or "", "engine": engine,
        }  # fmt: skip
        try:
            with (
                stage("analyse (notebook 08)", got["n_orders"]),
                follow(handover / "stages", progress),
            ):  # HTML below, titled
                # the lessons' exercises are not run: their solutions show nothing to the client
                run.execute(NOTEBOOK, tmp, params, html_report=False, kernel=kernel,
                            drop_tags=("solution",))  # fmt: skip
        except run.RunError as err:
            raise ReportError(str(err)) from None
        (tmp / NOTEBOOK.name).rename(tmp / "report.ipynb")
        for line in without_stderr(tmp / "report.ipynb"):  # to the consultant, not the client
            print(f"[report] the notebook's standard error (left out of the report): {line}",
                  file=sys.stderr)  # fmt: skip
        if not kernel.metrics_path.exists():
            raise ReportError(f"{NOTEBOOK.name} did not record its metrics")
        shutil.move(kernel.metrics_path, tmp / "metrics.json")
        lang = json.loads((tmp / "metrics.json").read_text()).get("language", "en")
        # the page's <title>: plain text, escaped by nbconvert's template (the heading is escaped by T)
        title = text.catalogue(lang).plain("summary.title", client=client or name).lstrip("# ")
        with stage("render HTML"):
            run.to_html(tmp / "report.ipynb", tmp / "report.html", title=title)
        try:
            return run.publish(tmp, target, overwrite)
        except run.RunError as err:
            raise ReportError(str(err)) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def without_stderr(notebook: Path) -> list[str]:
    """Remove from the executed `notebook` (its file rewritten) every output written to the
    standard error (a library's warning, a child process's log) and return their lines, for the
    consultant's terminal. The report's content is what its cells display; what the machine
    printed on the way never goes to the client: the Spark report's HTML carried the JVM's log
    lines, with the host's name and network address (2026-12-07)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    lines: list[str] = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines += [x for x in str(out.get("text", "")).splitlines() if x.strip()]
            else:
                kept.append(out)
        cell["outputs"] = kept
    if lines:
        nbformat.write(nb, notebook)
    return lines


def _in_child(data: Path, url: str | None) -> bool:
    """Whether the report command reads `data` in a child process (:class:`_ReadingChild`): a
    database table, or a file the engine reads (from :data:`~helpers.report.sources.ENGINE_MIN_BYTES`).
    The read stage's libraries (DuckDB, Ibis) and what its allocators keep would otherwise stay in
    the command's process, which waits beside the notebook's kernel: at 2M orders 250 MB against
    120 MB (benchmarks/README.md, the report's memory). A small file is read in the command's
    process: a child's start (about 1 s of imports) would cost more than it saves there."""
    return url is not None or (data.is_file() and data.stat().st_size >= ENGINE_MIN_BYTES)


class _ReadingChild:
    """:func:`_read_and_hand_over` in a fresh (spawned) process that ends when the block does:
    ``with _ReadingChild(...) as child``, then :meth:`exports` (the mapping's, as soon as the
    child has read the mapping) and :meth:`result` (the hand-over). Its stages are said and
    recorded by `stage` when it returns, its problems raised here as the same
    :class:`~helpers.tables.DataValidationError`. The command's process then never imports the
    readers (pandas, DuckDB, Ibis): they and their memory are the child's, gone before the
    notebook runs."""

    def __init__(self, data: Path, url: str | None, mapping: Path, engine: str, handover: Path,
                 stage: Stages) -> None:  # fmt: skip
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        self._said = context.SimpleQueue()  # the child's first word: the mapping's exports
        self._stage = stage
        self._pool = ProcessPoolExecutor(
            1, mp_context=context, initializer=_listening, initargs=(self._said,)
        )
        self._future = self._pool.submit(_child, data, url, mapping, engine, handover)

    def __enter__(self) -> _ReadingChild:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _end_tracker(self) -> None:
        """The child has ended: its pool and queue dropped (their semaphores' finalizers unlink
        them and tell the tracker), then multiprocessing's resource tracker stopped. A spawned
        child starts that process (13 MB), which would otherwise wait beside the notebook's
        kernel until the command ends, with nothing left to track."""
        import gc
        from multiprocessing import resource_tracker

        self._pool = self._said = None
        gc.collect()
        resource_tracker._resource_tracker._stop()  # noqa: SLF001 (no public way; restarts if asked)

    def exports(self) -> str:
        """The mapping's ``exports``, once the child has read the mapping; a mapping (or a
        child) that failed raises what :meth:`result` raises."""
        import time

        while self._said.empty():
            if self._future.done():  # ended without a word: its problems (or error) raised
                self.result()
                raise ReportError("the reading process ended without reading the mapping")
            time.sleep(0.01)
        return self._said.get()

    def result(self) -> dict[str, Any]:
        """The hand-over (:func:`_read_and_hand_over`) once the child has ended; its stages said."""
        got = self._future.result()
        if self._pool is not None:  # the first call (exports may have asked already)
            self._pool.shutdown(wait=True)  # its memory gone before the next stage's line
            self._end_tracker()
        for done in got["done"]:
            self._stage.done.append(done)
            if self._stage.emit is not None:
                self._stage.emit(Stages.line(*done))
        if "problems" in got:
            from helpers.tables import DataValidationError

            raise DataValidationError(got["problems"])
        return got


#: In the child process of :class:`_ReadingChild`: the queue to its parent.
_PARENT: Any = None


def _listening(said: Any) -> None:
    """The child's initializer (:class:`_ReadingChild`): keep the queue to the parent."""
    global _PARENT
    _PARENT = said


def _child(data: Path, url: str | None, mapping: Path, engine: str, handover: Path) -> dict:
    """:func:`_read_and_hand_over` in the child process of :class:`_ReadingChild`: the mapping's
    ``exports`` said to the parent as soon as it is read, the stages recorded, not said
    (``done``), a :class:`DataValidationError` returned as its ``problems`` (pickling the error
    loses them)."""
    from helpers.tables import DataValidationError

    stage = Stages()
    try:
        return {**_read_and_hand_over(data, url, mapping, engine, handover, stage,
                                      said=_PARENT.put), "done": stage.done}  # fmt: skip
    except DataValidationError as err:
        return {"problems": err.problems, "done": stage.done}


def _read_and_hand_over(
    data: Path,
    url: str | None,
    mapping: Path,
    engine: str,
    handover: Path,
    stage: Stages,
    said: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Read and validate the orders of `data` (a file) or `url` (a database table) with the
    mapping file `mapping` (every problem, before any analysis runs: a large CSV/Parquet file in
    the engine, a database table in its database), check that they are enough for a report,
    read and check the mapping's other tables, and write the notebook's hand-over into
    `handover` (:func:`~helpers.report.orders.save_validated`, or the notes only for a table:
    :func:`~helpers.report.orders.save_warehouse`); the stages timed by `stage`.

    Returns the hand-over's path (``validated``), the orders' ``rows``, ``n_orders``, and the
    ``source`` and ``table`` of a database (without its password); `said` receives the
    mapping's ``exports`` once the mapping is read."""
    from helpers.report.mapping import load_mapping
    from helpers.report.orders import (
        check_enough_data,
        close_orders,
        order_count,
        read_client_tables,
        read_orders,
        read_orders_in_warehouse,
        save_tables,
        save_validated,
        save_warehouse,
    )

    spec = load_mapping(mapping)
    if said is not None:
        said(spec.exports)
    with stage("read and validate") as s:
        if url:
            orders, notes = read_orders_in_warehouse(url, spec)
        else:
            orders, notes = read_orders(data, spec, engine)
        shown = f"{notes['source']}, table {notes['table']!r}" if url else data.name
        check_enough_data(orders, notes["as_of"], spec.period, shown)
        n_orders = order_count(orders)
        s.rows = notes["rows"]
    tables = {}
    if spec.tables:  # every problem of every table, before anything is written
        with stage("read and check " + ", ".join(spec.tables)):
            tables = read_client_tables(orders, notes)
    # the notebook receives the validated tables: each file is read and validated once
    if tables:
        notes["tables"] = save_tables(tables, handover)
        del tables
    if url:  # the notes only: the notebook opens the table where it is
        validated = save_warehouse(notes, handover / "orders.warehouse.json")
    else:  # its own line: at 100M orders tens of seconds, the table written once more
        with stage("hand over the validated orders to the notebook") as s:
            validated = save_validated(orders, notes, handover / "orders.arrow")
            s.rows = n_orders
    close_orders(orders)  # DuckDB's buffers go before the notebook runs
    return {
        "validated": str(validated), "rows": notes["rows"], "n_orders": n_orders,
        "source": notes.get("source"), "table": notes.get("table"),
    }  # fmt: skip
