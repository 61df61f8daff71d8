"""Batch runner: execute the notebook collection with papermill into ``reports/<name>/``.

``python -m helpers.run --name sample`` (what ``make report`` calls) validates the data, then runs
every ``notebooks/NN_*.ipynb`` in order and writes, per notebook, the executed ``.ipynb``, an HTML
version without code and ``<notebook>.metrics.json`` with its headline figures, plus an
``index.html`` and ``index.json`` for the run. The run is built in a hidden temporary folder and
moved into place only when every notebook succeeded, so a failed run leaves nothing behind.

Notebooks report their headline figures with :func:`record_metrics`; the runner tells them where
to write through the ``RETENTION_LAB_METRICS`` environment variable.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import html
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import paths

METRICS_ENV = "RETENTION_LAB_METRICS"
#: The kernel runs on this machine only; keep its start-up notices (e.g. about the local TCP
#: transport) out of the user's terminal. Errors still show.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
#: jsonschema's optional IRI format checker, which jsonschema (>= 4.25) imports whenever it is
#: installed (here by jupyter-events' format extra) and which compiles 38 Lark grammars on import.
_UNUSED_CHECKER = "rfc3987_syntax"


class RunError(RuntimeError):
    """A run that could not complete; the message says which notebook or file and why."""


def _without_unused_checker() -> None:
    """Before the first import of papermill, nbformat or nbconvert in this process: jsonschema
    (which nbformat imports) then does without :data:`_UNUSED_CHECKER`, its "iri" format check
    (about 1.6 s of CPU and 2.2 s of wall time per report command on the bundled data, a third of
    the command's own work). Nothing here checks formats: nbformat validates a notebook against
    its schema with no format checker (nor do nbclient, papermill and nbconvert), so no check is
    lost. A module already imported is left as it is; only this process is affected."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault(_UNUSED_CHECKER, None)  # None: `import` raises ImportError


#: What papermill imports with itself for storage this project never uses: pyarrow (and with it
#: numpy) for ``hdfs://`` paths, about 36 MB of the report command's resident memory, which waits
#: beside the notebook's kernel for the whole run (benchmarks/README.md, issue 31).
_UNUSED_BY_PAPERMILL = ("pyarrow",)
_PAPERMILL_LOCK = threading.Lock()


def _papermill() -> Any:
    """papermill, imported (once per process) without jsonschema's IRI checker
    (:func:`_without_unused_checker`) and without :data:`_UNUSED_BY_PAPERMILL` when this process
    has not imported them: papermill then offers no ``hdfs://`` handler (it says so if one is
    asked for); every local path works as before. The modules are importable again as soon as
    papermill is imported."""
    _without_unused_checker()
    with _PAPERMILL_LOCK:
        if (done := sys.modules.get("papermill")) is not None:
            return done
        kept_out = [m for m in _UNUSED_BY_PAPERMILL if m not in sys.modules]
        for m in kept_out:
            sys.modules[m] = None  # None: `import` raises ImportError, which papermill expects
        try:
            import papermill
        finally:
            for m in kept_out:
                if m in sys.modules and sys.modules[m] is None:
                    del sys.modules[m]
        return papermill


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    # a value is numpy's only where numpy is imported: the report command, which imports this
    # module, does without it (about 19 MB beside the notebook's kernel)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float) or (np is not None and isinstance(value, np.floating)):
        v = float(value)
        return None if math.isnan(v) else v
    if np is not None and isinstance(value, np.bool_):
        return bool(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def record_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Record a notebook's headline figures: written as JSON where the runner asks
    (``$RETENTION_LAB_METRICS``), and returned so the notebook can show them."""
    clean = _jsonable(metrics)
    target = os.environ.get(METRICS_ENV)
    if target:
        Path(target).write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")
    return clean


#: The keys a truth entry may name its reference value by: ``truth`` (what the generator planted
#: for this estimand: the interval should cover it) or ``generator_base`` (a base parameter the
#: planted effects bend: the interval need not cover it; tests/test_other_seed.py skips these).
TRUTH_KEYS: tuple[str, str] = ("truth", "generator_base")


def truth_entry(
    estimate: float,
    ci_low: float,
    ci_high: float,
    truth: float | None,
    *,
    digits: int | None = 4,
    key: str = "truth",
) -> dict[str, float | None]:
    """One ``{"estimate", "ci_low", "ci_high", "truth"}`` entry of a notebook's ``metrics.json``:
    an estimate of something the generator planted, its interval and the planted value.

    Every value is a float rounded to `digits` decimals (``None``: not rounded); a missing truth
    (``None`` or NaN, e.g. data without a ground-truth file) is stored as ``None``. `key` names
    the reference value (:data:`TRUTH_KEYS`). Raises ValueError when the interval is reversed or
    does not contain the estimate (checked when all three are finite, before rounding)."""
    if key not in TRUTH_KEYS:
        raise ValueError(f"key must be one of {TRUTH_KEYS}, got {key!r}")
    est, lo, hi = float(estimate), float(ci_low), float(ci_high)
    if math.isfinite(est) and math.isfinite(lo) and math.isfinite(hi) and not lo <= est <= hi:
        raise ValueError(f"the interval [{lo}, {hi}] does not contain the estimate {est}")
    ref = None if truth is None or math.isnan(float(truth)) else float(truth)

    def rounded(v: float | None) -> float | None:
        return v if v is None or digits is None else round(v, digits)

    return {
        "estimate": rounded(est),
        "ci_low": rounded(lo),
        "ci_high": rounded(hi),
        key: rounded(ref),
    }


def notebooks(only: Sequence[str] | None = None) -> list[Path]:
    """The collection's notebooks in order; `only` keeps those whose name starts with one of
    the given prefixes (``["01", "02_cohorts"]``)."""
    found = sorted(paths.NOTEBOOKS.glob(NOTEBOOK_GLOB))
    if only:
        found = [p for p in found if any(p.name.startswith(o) for o in only)]
        if not found:
            raise RunError(f"no notebook in notebooks/ starts with {list(only)}")
    return found


def load_params(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML parameter file. Top-level scalars apply to every notebook that declares them;
    a mapping under a notebook's name (``01_retention_and_churn_rates:``) applies to that one."""
    if not path:
        return {}
    import yaml

    p = Path(path)
    if not p.exists():
        raise RunError(f"parameter file not found: {p}")
    try:
        loaded = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise RunError(f"{p.name}: not valid YAML ({err})") from None
    if not isinstance(loaded, dict):
        raise RunError(f"{p.name}: expected a mapping of parameter names to values")
    return loaded


def params_for(notebook: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of `params` that `notebook` declares in its `parameters` cell."""
    papermill = _papermill()

    declared = papermill.inspect_notebook(str(notebook))
    mine = {k: v for k, v in params.items() if not isinstance(v, Mapping) and k in declared}
    own = params.get(notebook.stem, {})
    unknown = set(own) - set(declared)
    if unknown:
        raise RunError(
            f"{notebook.name} has no parameter(s) {sorted(unknown)}; it declares {sorted(declared)}"
        )
    mine.update(own)
    return mine


def to_html(executed: Path, target: Path, title: str | None = None) -> Path:
    """HTML version of an executed notebook without code (cells tagged remove-cell, solution or
    lesson dropped);
    the page title is `title` (default: the notebook's file name)."""
    _without_unused_checker()
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    cfg = Config()
    cfg.TagRemovePreprocessor.enabled = True
    # "lesson": teaching text the book shows but a report leaves out (notebook 08's lesson cells)
    cfg.TagRemovePreprocessor.remove_cell_tags = ("remove-cell", "solution", "lesson")
    cfg.HTMLExporter.exclude_input = True
    cfg.HTMLExporter.exclude_input_prompt = True
    cfg.HTMLExporter.exclude_output_prompt = True
    nb = nbformat.read(executed, as_version=4)
    name = title or executed.stem
    body, _ = HTMLExporter(config=cfg).from_notebook_node(
        nb, resources={"metadata": {"name": name}}
    )
    target.write_text(body, encoding="utf-8")
    return target


@dataclass
class Kernel:
    """A notebook kernel started ahead of :func:`execute` (:func:`started_kernel`): its manager,
    the file its notebook's metrics go to (:data:`METRICS_ENV`, set when it started), the
    variables given to its environment (`env`) and the thread that sends it its preload once it
    is up."""

    km: Any
    metrics_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    preloading: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def ready(self) -> None:
        """Wait until the preload has been sent (the kernel then runs it before any cell)."""
        if self.preloading is not None:
            self.preloading.join()


def _send_preload(km: Any, code: str, stop: threading.Event, wait: float = 60.0) -> None:
    """Wait (at most `wait` seconds, until `stop` is set) for the kernel of `km` to answer, then
    send it `code` to run silently (no output, no execution count, not in its history) without
    waiting for the result."""
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_info(km.get_connection_info())
    kc.start_channels(hb=False)  # no heartbeat thread: the kernel manager watches the process
    try:
        for _ in range(int(wait / 0.1)):
            if stop.is_set():
                return
            try:
                kc.wait_for_ready(timeout=0.1)
            except RuntimeError:  # not up yet
                continue
            kc.execute(code, silent=True, store_history=False)
            return
        # not up in `wait` seconds: nothing sent, the notebook's own cells import what it needs
    finally:
        kc.stop_channels()
        _close_thread_loop()


def _close_thread_loop() -> None:
    """Close the event loop that jupyter's ``run_sync`` created and set for this thread (it is
    not closed when the thread ends: three file descriptors a report otherwise)."""
    import asyncio

    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # none set for this thread
        return
    if not loop.is_running() and not loop.is_closed():
        loop.close()
    asyncio.set_event_loop(None)


@functools.cache
def quiet_kernel_manager() -> type:
    """jupyter_client's ``AsyncKernelManager`` that, when it shuts a kernel down, kills it without
    interrupting it first. jupyter_client sends SIGINT before the kill, and the kernel, idle after
    its notebook, logged ``[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.``: two to
    four such lines in every ``make report``, which a student reads as a failure. Used for every
    kernel the runs start (papermill's ``kernel_manager_class``, :func:`started_kernel`,
    :func:`execute_in_place`)."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietShutdown(AsyncKernelManager):  # type: ignore[misc]
        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:  # being killed: nothing to interrupt
                return
            await super()._async_interrupt_kernel()

    return QuietShutdown


@contextlib.contextmanager
def started_kernel(
    metrics_path: Path, env: Mapping[str, str] | None = None, preload: str = ""
) -> Iterator[Kernel]:
    """A Python kernel for one :func:`execute` (``kernel=``), started now in the notebooks'
    folder with `env` and :data:`METRICS_ENV` = `metrics_path` in its environment, and `preload`
    (import statements) sent to it from a thread as soon as it is up: its start and imports
    (about 3 s, benchmarks/README.md) run while the caller does other work, e.g. the report
    command reads and validates the client's file. The preload runs silently (no output, no
    execution count), so the executed notebook is the same as from a cold kernel; a module it
    imported is imported again by the notebook's own cell at no cost. Shut down on exit, also
    when the caller fails before the notebook runs."""
    from jupyter_core.utils import run_sync

    clients: list[Any] = []

    class Manager(quiet_kernel_manager()):  # type: ignore[misc]
        """A kernel manager that remembers the clients it makes (papermill's among them), whose
        channels are stopped on exit: papermill does not stop them for a kernel it did not
        start, and each would keep its sockets and heartbeat thread (a process making many
        reports ran out of file descriptors)."""

        def client(self, **kwargs: Any) -> Any:
            kc = super().client(**kwargs)
            clients.append(kc)
            return kc

    km = Manager(kernel_name="python3")
    variables = {**os.environ, **(env or {}), METRICS_ENV: str(metrics_path)}
    run_sync(km.start_kernel)(cwd=str(paths.NOTEBOOKS), extra_arguments=KERNEL_ARGS, env=variables)
    kernel = Kernel(km, Path(metrics_path), dict(env or {}))
    try:
        if preload:
            kernel.preloading = threading.Thread(
                target=_send_preload, args=(km, preload, kernel.stop), daemon=True
            )
            kernel.preloading.start()
        yield kernel
    finally:
        kernel.stop.set()  # a preload not yet sent is not sent
        kernel.ready()
        for kc in clients:
            kc.stop_channels()
        run_sync(km.shutdown_kernel)(now=True)  # its connection files removed too


def execute(
    notebook: Path,
    out_dir: Path,
    parameters: Mapping[str, Any],
    *,
    html_report: bool = True,
    env: Mapping[str, str] | None = None,
    kernel: Kernel | None = None,
    drop_tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run one notebook with papermill into `out_dir`; returns its metrics (may be empty).

    `drop_tags`: cells tagged with any of these are left out of the run and of the executed
    notebook (the client report runs no exercise: ``("solution",)``).

    `env`: environment variables the notebook's kernel sees during the run and that, unlike
    papermill parameters, are not recorded in the executed notebook (a secret such as the
    pseudonym salt). `kernel`: a kernel already started (:func:`started_kernel`, which took its
    environment and its metrics file then; `env` must be None), used instead of a new one.

    The executed notebook is written once, when the run ends (or fails), not after every cell:
    a run writes into a temporary folder that nobody reads before it ends."""
    papermill = _papermill()

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    source: Any = str(notebook)
    if drop_tags:
        import nbformat

        source = nbformat.read(notebook, as_version=4)
        source.cells = [c for c in source.cells
                        if not set(c.get("metadata", {}).get("tags", ())) & set(drop_tags)]  # fmt: skip
    metrics_path = out_dir / f"{notebook.stem}.metrics.json"
    if kernel is not None:
        if env:
            raise ValueError("a started kernel has its environment: pass env to started_kernel")
        kernel.ready()
        metrics_path, env, manager = kernel.metrics_path, {}, {"km": kernel.km}
    else:
        manager = {"kernel_manager_class": quiet_kernel_manager()}
    variables = {METRICS_ENV: str(metrics_path), **(env or {})}
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        papermill.execute_notebook(
            source, str(executed), parameters=dict(parameters), kernel_name="python3",
            cwd=str(paths.NOTEBOOKS), progress_bar=False, log_output=False, extra_arguments=KERNEL_ARGS,
            request_save_on_cell_execute=False, **manager,
        )  # fmt: skip
    except papermill.PapermillExecutionError as err:
        raise RunError(
            f"{notebook.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}"
        ) from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if html_report:
        to_html(executed, out_dir / f"{notebook.stem}.html")
    return json.loads(metrics_path.read_text()) if metrics_path.exists() else {}


def _execute_job(job: tuple[Path, Path, Mapping[str, Any], bool]) -> dict[str, Any]:
    notebook, out_dir, parameters, html_report = job
    return execute(notebook, out_dir, parameters, html_report=html_report)


def execute_many(
    jobs: Sequence[tuple[Path, Path, Mapping[str, Any]]],
    *,
    html_report: bool = True,
    workers: int | None = None,
    done: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`execute` for several (notebook, out_dir, parameters) at once, in `workers` processes
    (default: one per CPU, at most one per job): each notebook has its own kernel, so they run side
    by side; the metrics come back in the order of `jobs`. `done` is called as each finishes. The
    first failure is raised (a :class:`RunError` naming the notebook) once the others have ended."""
    todo = [(nb, out, dict(params), html_report) for nb, out, params in jobs]
    workers = min(len(todo), workers or os.cpu_count() or 1)
    if workers <= 1:
        results = []
        for job in todo:
            results.append(_execute_job(job))
            if done:
                done()
        return results
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_execute_job, job) for job in todo]
        for _ in concurrent.futures.as_completed(futures):
            if done:
                done()
        return [f.result() for f in futures]


def _index_html(name: str, rows: list[dict[str, Any]]) -> str:
    items = []
    for r in rows:
        figs = "".join(
            f"<li>{html.escape(k)}: {html.escape(str(v))}</li>"
            for k, v in r["metrics"].items()
            if not isinstance(v, (dict, list))
        )
        items.append(
            f'<tr><td><a href="{html.escape(r["html"])}">{html.escape(r["notebook"])}</a></td><td><ul>{figs}</ul></td></tr>'
        )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Retention Lab run: {html.escape(name)}</title></head>"
        f"<body><h1>Retention Lab run: {html.escape(name)}</h1><table border='1' cellpadding='6'>"
        f"<tr><th>Notebook</th><th>Headline figures</th></tr>{''.join(items)}</table></body></html>\n"
    )


def symlink_message(target: Path) -> str:
    """Why a report folder that is a symbolic link is not written (one sentence)."""
    return (
        f"{target} is a symbolic link (to {os.readlink(target)}), not a report folder; remove the "
        f"link or choose another name (a report replaces only a folder it made)"
    )


def publish(tmp: Path, target: Path, overwrite: bool) -> Path:
    """Move a finished run folder into place (replacing an earlier one only if `overwrite`).
    A `target` that is a symbolic link is refused: replacing it would delete or write where the
    link points, not the report folder."""
    if target.is_symlink():
        raise RunError(symlink_message(target))
    if target.exists():
        if not overwrite:
            raise RunError(f"{target} already exists; choose another name or pass --overwrite")
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def validate_data(data_dir: str | Path | None, as_of: str | None = None) -> None:
    """Load every table once so bad data fails before any notebook runs."""
    # the bundled company's loaders (and its generator's truth) and the tables' error: not
    # needed by the report command, which imports this module for papermill
    from helpers import data
    from helpers.tables import DataValidationError

    try:
        data.load_all(data_dir, as_of=as_of)
    except DataValidationError as err:
        raise RunError("the data did not pass validation:\n" + str(err)) from None


def run_collection(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    only: Sequence[str] | None = None,
) -> Path:
    """Run the notebooks into ``reports/<name>/`` and return that folder."""
    from tqdm.auto import tqdm

    params = dict(params or {})
    if "data_dir" in params and params["data_dir"]:
        params["data_dir"] = str(Path(params["data_dir"]).expanduser().resolve())
    validate_data(params.get("data_dir"))
    selected = notebooks(only)
    planned = {nb: params_for(nb, params) for nb in selected}
    target = paths.REPORTS / name
    if target.is_symlink():
        raise RunError(symlink_message(target))
    if target.exists() and not overwrite:
        raise RunError(
            f"{paths.shown(target)} already exists; choose another name or pass --overwrite"
        )
    paths.REPORTS.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=paths.REPORTS))
    try:
        with tqdm(total=len(selected), desc=f"run '{name}'", unit="notebook") as bar:
            results = execute_many(
                [(nb, tmp, planned[nb]) for nb in selected], done=lambda: bar.update(1)
            )
        rows = [
            {"notebook": nb.stem, "html": f"{nb.stem}.html", "parameters": planned[nb],
             "metrics": metrics}
            for nb, metrics in zip(selected, results, strict=True)
        ]  # fmt: skip
        (tmp / "index.json").write_text(
            json.dumps(_jsonable({"name": name, "notebooks": rows}), indent=2) + "\n"
        )
        (tmp / "index.html").write_text(_index_html(name, rows), encoding="utf-8")
        return publish(tmp, target, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def execute_in_place(only: Sequence[str] | None = None) -> list[Path]:
    """Re-execute notebooks in notebooks/ top to bottom and store them with outputs (no
    papermill metadata, no timings), as nbval expects them."""
    _without_unused_checker()
    import nbformat
    from nbclient import NotebookClient

    done = []
    for nb_path in notebooks(only):
        nb = nbformat.read(nb_path, as_version=4)
        NotebookClient(
            nb,
            kernel_name="python3",
            timeout=1200,
            record_timing=False,
            extra_arguments=KERNEL_ARGS,
            resources={"metadata": {"path": str(paths.NOTEBOOKS)}},
            kernel_manager_class=quiet_kernel_manager(),
        ).execute()
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, nb_path)
        print(f"executed {paths.shown(nb_path)}")
        done.append(nb_path)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers.run", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--name", default="sample", help="run name: the folder under reports/ (default: sample)"
    )
    ap.add_argument(
        "--params", help="YAML file of papermill parameters (see helpers.run.load_params)"
    )
    ap.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run of the same name"
    )
    ap.add_argument(
        "--only", nargs="*", help="run only notebooks whose names start with these prefixes"
    )
    ap.add_argument(
        "--in-place", action="store_true", help="re-execute notebooks/ in place to store outputs"
    )
    args = ap.parse_args(argv)
    try:
        if args.in_place:
            execute_in_place(args.only)
            return 0
        folder = run_collection(
            args.name, load_params(args.params), overwrite=args.overwrite, only=args.only
        )
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"run '{args.name}' written to {paths.shown(folder)}/ ; open {paths.shown(folder / 'index.html')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
