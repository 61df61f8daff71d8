"""Bad input on the command line: one clear message, exit code 2, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import report
from tests.report.clients import (
    SAMPLE_MAPPING,
    assert_nothing_left,
    cli_args,
    run_cli,
    small_client,
    write_mapping,
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# bad input: one clear message, exit code 2, nothing left behind


def _missing_column(raw):
    return raw.rename(columns={"amount": "amout"})


def _bad_dates(raw):
    raw.loc[[3, 7], "order_date"] = ["31/02/2024", "yesterday"]
    return raw


def _negative(raw):
    raw.loc[5, "amount"] = "-12.50"
    return raw


def _not_numeric(raw):
    raw.loc[[2, 9], "amount"] = ["12,50 EUR", "n/a"]
    return raw


def _duplicated(raw):
    raw.loc[4, "order_id"] = raw.loc[3, "order_id"]
    return raw


def _future(raw):
    raw.loc[6, "order_date"] = "2099-03-01 10:00:00"  # after today: an error whatever as-of says
    return raw


MALFORMED = {  # the problem (reported exactly once) and details the message must give
    "missing column": (
        _missing_column,
        "required column 'amount' is missing",
        ("did you mean 'amout'?",),
    ),
    "unparsable dates": (
        _bad_dates,
        "column 'order_date': 2 rows are",
        ("dates", "lines 5, 9", "e.g. '31/02/2024'"),
    ),
    "negative amount": (
        _negative,
        "column 'amount': 1 row is negative",
        ("line 7", "e.g. '-12.50'"),
    ),
    "non-numeric amounts": (
        _not_numeric,
        "column 'amount': 2 rows are",
        ("numer", "lines 4, 11", "e.g. '12,50 EUR'"),
    ),
    "duplicated ids": (_duplicated, "column 'order_id': 2 rows are duplicated", ("lines 5, 6",)),
    "future dates": (
        _future,
        "column 'order_date': 1 row is in the future",
        ("e.g. '2099-03-01 10:00:00'",),
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_is_refused_with_one_clear_message(tmp_path, capsys, case):
    make, fragment, details = MALFORMED[case]
    raw, data, mapping = small_client(tmp_path)
    make(raw.copy()).to_csv(data, index=False)
    root = tmp_path / "reports"
    rc, out, err = run_cli(
        cli_args(data, mapping, "acme", root),
        capsys,
    )
    assert rc == 2 and out == ""
    assert "no report was written" in err
    assert err.count(fragment) == 1 and "orders.csv" in err
    assert all(d in err for d in details), err
    assert_nothing_left(root)


def _write_raw(path: Path, content: bytes) -> None:
    path.write_bytes(content)


@pytest.mark.parametrize(
    ("case", "content", "fragment"),
    [
        ("empty", b"", "orders.csv: the file is empty (0 bytes)"),
        (
            "header only",  # every column the sample mapping maps, no row
            b"order_id,customer_id,order_date,amount,channel,discount,returned\n",
            "orders.csv: has a header but no data rows",
        ),
        (
            "wrong delimiter",
            b"order_id;customer_id;order_date;amount;channel\n1;2;2025-01-01;3.5;web\n",
            "looks delimited by ';', not ','",
        ),
        (
            "bad encoding",
            "order_id,customer_id,order_date,amount,channel\n1,2,2025-01-01,3.5,sklep łódź\n".encode(
                "cp1250"
            ),
            "cannot be read as utf-8",
        ),
    ],
)
def test_unreadable_file_is_refused(tmp_path, capsys, case, content, fragment):
    data = tmp_path / "orders.csv"
    _write_raw(data, content)
    root = tmp_path / "reports"
    rc, _, err = run_cli(
        cli_args(data, SAMPLE_MAPPING, "acme", root),
        capsys,
    )
    assert rc == 2 and err.count(fragment) == 1
    assert_nothing_left(root)


def test_several_problems_are_reported_together(tmp_path, capsys):
    raw, data, mapping = small_client(tmp_path)
    _duplicated(_negative(_bad_dates(raw))).to_csv(data, index=False)
    rc, _, err = run_cli(
        cli_args(data, mapping, "acme", tmp_path / "r"),
        capsys,
    )
    problems = [ln for ln in err.splitlines() if ln.startswith("  - ")]
    assert rc == 2 and len(problems) == 3
    assert_nothing_left(tmp_path / "r")


def test_too_short_a_history_is_refused(tmp_path, capsys):
    raw, data, mapping = small_client(tmp_path, rows=200)  # 2023-01-01 .. late January
    rc, _, err = run_cli(
        ["--data", str(data), "--mapping", str(write_mapping(tmp_path / "m.yaml", columns={"customer_id": "customer_id", "order_date": "order_date", "amount": "amount"})),
         "--name", "acme", "--reports-dir", str(tmp_path / "r")],
        capsys,
    )  # fmt: skip
    assert rc == 2 and "cover 0 complete quarters; a retention report needs at least 2" in err
    assert not (tmp_path / "r" / "acme").exists()


def test_a_one_order_file_gets_the_same_clear_message(tmp_path, capsys):
    raw, data, mapping = small_client(tmp_path, rows=1)
    rc, _, err = run_cli(
        ["--data", str(data), "--mapping", str(write_mapping(tmp_path / "m.yaml", columns={"customer_id": "customer_id", "order_date": "order_date", "amount": "amount"}, as_of="2025-12-31")),
         "--name", "acme", "--reports-dir", str(tmp_path / "r")],
        capsys,
    )  # fmt: skip
    assert rc == 2 and "1 purchase(s)" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
    assert "period: M" in err
    assert_nothing_left(tmp_path / "r")


def test_bad_mapping_and_bad_name_are_refused(tmp_path, capsys):
    _, data, _ = small_client(tmp_path)
    bad = write_mapping(tmp_path / "m.yaml", columns={"customer_id": "customer_id"})
    rc, _, err = run_cli(
        cli_args(data, bad, "acme", tmp_path / "r"),
        capsys,
    )
    assert rc == 2 and "'order_date'" in err and "'amount'" in err
    rc, _, err = run_cli(
        cli_args(data, SAMPLE_MAPPING, "../acme", tmp_path / "r"),
        capsys,
    )
    assert rc == 1 and "report name '../acme'" in err
    assert_nothing_left(tmp_path / "r")


def test_a_failing_notebook_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    from helpers import run

    def broken(notebook, out_dir, parameters, **_):
        (out_dir / "half-written.html").write_text("<html>")
        raise run.RunError(f"{notebook.name} failed in cell 7: ValueError: boom")

    monkeypatch.setattr(run, "execute", broken)
    _, data, mapping = small_client(tmp_path)
    root = tmp_path / "reports"
    rc, _, err = run_cli(
        cli_args(data, mapping, "acme", root),
        capsys,
    )
    assert rc == 1 and "failed in cell 7" in err
    assert_nothing_left(root)


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        report.main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for opt in ("--data", "--mapping", "--name", "--overwrite", "--reports-dir", "refunds"):
        assert opt in out


# --------------------------------------------------------------------------------------------
# the command's own fixed costs: what it imports and renders (benchmarks/README.md, "The report's
# fixed costs")


def test_the_command_imports_neither_the_analysis_sections_nor_the_iri_checker():
    """``python -m helpers.report`` loads the command's modules only (the package imports its
    names lazily), and papermill comes without jsonschema's IRI checker (38 Lark grammars)."""
    import subprocess
    import sys

    probe = (
        "import sys, helpers.report.cli, helpers.run\n"
        "helpers.run._without_unused_checker()\n"
        "import papermill, nbconvert\n"
        "heavy = ['helpers.report.beyond_orders', 'helpers.report.acquisition_views',"
        " 'helpers.report.analysis',"
        " 'helpers.report.covariates_view', 'helpers.report.engine', 'helpers.loyalty',"
        " 'helpers.synth', 'statsmodels.api', 'matplotlib', 'ibis']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "print(sys.modules.get('rfc3987_syntax', 'absent'))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded, checker = out.stdout.splitlines()
    assert loaded == "[]"
    assert checker in ("None", "absent")


def test_the_package_still_gives_every_name_it_lists():
    for name in report.__all__:
        assert getattr(report, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        report.no_such_name  # noqa: B018


def test_the_notebook_is_rendered_to_html_once(tmp_path, monkeypatch, capsys):
    """The report command renders the page itself (with its title): papermill's run does not."""
    from helpers import run

    seen = {}

    def stop(notebook, out_dir, parameters, **kwargs):
        seen.update(kwargs)
        raise run.RunError(f"{notebook.name} failed in cell 1: stopped by the test")

    monkeypatch.setattr(run, "execute", stop)
    _, data, mapping = small_client(tmp_path)
    rc, _, _ = run_cli(cli_args(data, mapping, "acme", tmp_path / "reports"), capsys)
    assert rc == 1 and seen.get("html_report") is False


def test_the_engines_connection_is_closed_before_the_notebook_runs(tmp_path, monkeypatch, capsys):
    """The report command's DuckDB (the validated table read in the engine) is closed before the
    notebook runs: its buffers are not held beside the kernel's while the notebook runs, and
    the database file that held the table is gone."""
    import duckdb

    from helpers import run
    from helpers.report import engine

    opened, alive, folders = [], [], []
    connect = engine.connect_scratch

    def recorded(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        folders.append(opened[-1]._retention_lab_scratch.peek()[2][0])
        assert (folders[-1] / "validated.duckdb").parent.is_dir()
        return opened[-1]

    def stop(notebook, out_dir, parameters, **_):
        for con in opened:
            try:
                con.con.execute("SELECT 1")
                alive.append(con)
            except duckdb.ConnectionException:
                pass
        raise run.RunError(f"{notebook.name} failed in cell 1: stopped by the test")

    monkeypatch.setattr(engine, "connect_scratch", recorded)
    monkeypatch.setattr(run, "execute", stop)
    _, data, mapping = small_client(tmp_path)
    args = [*cli_args(data, mapping, "acme", tmp_path / "reports"), "--engine", "duckdb"]
    rc, _, err = run_cli(args, capsys)
    assert rc == 1 and "stopped by the test" in err
    assert opened and not alive
    assert folders and not any(f.exists() for f in folders)


def test_a_small_file_is_read_by_pandas_and_hands_over_the_same_table(tmp_path):
    """Under ``PANDAS_MAX_BYTES`` the report command reads the orders with the pandas reader
    (quicker there); the notebook receives the same table and notes as from the DuckDB reader."""
    import pandas as pd

    from helpers.report import orders
    from helpers.report.mapping import load_mapping
    from tests.report.clients import ORDERS

    spec = load_mapping(SAMPLE_MAPPING)
    assert ORDERS.stat().st_size < orders.PANDAS_MAX_BYTES
    got = orders.read_orders(ORDERS, spec)
    fast = orders.read_client_orders(ORDERS, spec, "duckdb")
    assert got[1]["reader"] == "pandas" and fast[1]["reader"] == "duckdb"
    opened = []
    for name, (table, notes) in {"pandas": got, "duckdb": fast}.items():
        path = orders.save_validated(table, notes, tmp_path / f"{name}.arrow")
        opened.append(orders.open_orders(path, "pandas"))
    (a, notes_a), (b, notes_b) = opened
    pd.testing.assert_frame_equal(a, b)
    assert {**notes_a, "reader": ""} == {**notes_b, "reader": ""}


# --------------------------------------------------------------------------------------------
# memory: a large input is read in a child process (benchmarks/README.md, "The report's memory")


def _in_a_child(monkeypatch):
    """Every input read as a large one (in a child process), and this process's DuckDB refused:
    a read that stayed here would fail."""
    from helpers.report import build, engine

    def refused(*args, **kwargs):
        raise AssertionError("the command's own process connected to DuckDB")

    monkeypatch.setattr(build, "ENGINE_MIN_BYTES", 0)
    monkeypatch.setattr(engine, "connect", refused)


def test_a_large_input_is_read_in_a_child_that_ends_before_the_notebook(tmp_path, monkeypatch,
                                                                        capsys):  # fmt: skip
    """From ``ENGINE_MIN_BYTES`` the command reads, checks and hands over the orders in a spawned
    child process, which has ended when the notebook runs: the read's libraries and memory are
    not held beside the kernel. The stages are said as before; the notebook gets the engine's
    hand-over (a DuckDB file) and the client's tables."""
    import multiprocessing

    from helpers import run
    from helpers.report import orders

    seen = {}

    def stop(notebook, out_dir, parameters, **_):
        folder = Path(parameters["orders_path"]).parent
        seen["files"] = sorted(p.name for p in folder.iterdir() if p.name != "stages")
        seen["children"] = multiprocessing.active_children()
        seen["opened"] = orders.order_count(orders.open_orders(parameters["orders_path"])[0])
        raise run.RunError(f"{notebook.name} failed in cell 1: stopped by the test")

    _in_a_child(monkeypatch)
    monkeypatch.setattr(run, "execute", stop)
    _, data, mapping = small_client(tmp_path)
    args = [*cli_args(data, mapping, "acme", tmp_path / "reports"), "--engine", "duckdb"]
    rc, _, err = run_cli(args, capsys)
    rows = sum(1 for _ in data.open()) - 1
    assert rc == 1 and "stopped by the test" in err
    assert err.startswith(f"[report] read and validate: {rows:,} rows in ")
    assert seen == {"files": ["orders" + orders.ENGINE_HANDOVER_SUFFIX], "children": [],
                    "opened": rows}  # fmt: skip
    assert_nothing_left(tmp_path / "reports")


def test_the_command_holds_none_of_the_readers_when_a_child_reads(tmp_path):
    """With the read in a child process, the command (which waits beside the notebook's kernel)
    never imports pandas, DuckDB, Ibis or the readers: at the notebook's start they are in no
    module of its process (about 70 MB of its resident memory; benchmarks/README.md). Nor,
    with papermill imported as the run imports it, pyarrow or numpy (papermill's ``hdfs://``
    handler: about 50 MB more). The command runs in its own interpreter, as a client runs it."""
    import subprocess
    import sys

    _, data, mapping = small_client(tmp_path)
    args = cli_args(data, mapping, "acme", tmp_path / "reports")
    script = f"""
import sys
from helpers import run
from helpers.report import build, cli

def stop(notebook, out_dir, parameters, **_):
    run._papermill()  # what the run imports first
    held = [m for m in ("pandas", "duckdb", "ibis", "helpers.tables", "pyarrow", "numpy")
            if m in sys.modules]
    raise run.RunError(f"held: {{held}}")

build.ENGINE_MIN_BYTES = 0
run.execute = stop
sys.exit(cli.main({args!r}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "[report] read and validate:" in done.stderr and "held: []" in done.stderr
    assert_nothing_left(tmp_path / "reports")


def test_a_problem_found_in_the_child_gets_the_same_message(tmp_path, monkeypatch, capsys):
    """Problems found by the child process are the command's own: every one, exit code 2,
    nothing left behind."""
    raw, data, mapping = small_client(tmp_path)
    _duplicated(_negative(_bad_dates(raw))).to_csv(data, index=False)
    args = cli_args(data, mapping, "acme", tmp_path / "r")
    here = run_cli(args, capsys)
    _in_a_child(monkeypatch)
    there = run_cli(args, capsys)
    assert here == there and here[0] == 2
    assert len([ln for ln in there[2].splitlines() if ln.startswith("  - ")]) == 3
    assert_nothing_left(tmp_path / "r")


def _kernels() -> list:
    """This process's kernel processes (ipykernel) still running."""
    import psutil

    return [p for p in psutil.Process().children(recursive=True)
            if "ipykernel" in " ".join(p.cmdline())]  # fmt: skip


def test_the_kernel_started_during_the_read_is_shut_down_when_the_data_is_refused(tmp_path, capsys):
    """The notebook's kernel starts while the file is read (helpers.run.started_kernel); a
    refused file leaves no kernel running and nothing written."""
    raw, data, mapping = small_client(tmp_path)
    _negative(raw.copy()).to_csv(data, index=False)
    rc, _, err = run_cli(cli_args(data, mapping, "acme", tmp_path / "reports"), capsys)
    assert rc == 2 and "no report was written" in err
    assert _kernels() == []
    assert_nothing_left(tmp_path / "reports")


def test_a_started_kernel_runs_the_notebook_with_its_environment_and_preload(tmp_path):
    """run.execute in a kernel started ahead (run.started_kernel): the kernel has the environment
    given at its start and the metrics file, its silent preload leaves no trace in the executed
    notebook (execution counts from 1), and the kernel is gone after the block."""
    import nbformat

    from helpers import run

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell("secret = ''", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import os, sys\n"
            "from helpers.run import record_metrics\n"
            "_ = record_metrics({'secret': os.environ['RL_TEST_SECRET'], 'preloaded': 'wave' in sys.modules})"
        ),
    ]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    metrics = tmp_path / "m.json"
    with run.started_kernel(metrics, {"RL_TEST_SECRET": "s3"}, "import wave") as kernel:
        assert _kernels()
        run.execute(path, tmp_path / "out", {}, html_report=False, kernel=kernel)
    assert _kernels() == []
    got = json.loads(metrics.read_text())
    assert got["secret"] == "s3" and got["preloaded"] is True
    executed = nbformat.read(tmp_path / "out" / "probe.ipynb", as_version=4)
    assert [c.execution_count for c in executed.cells if c.cell_type == "code"] == [1, 2]
    assert "s3" not in (tmp_path / "out" / "probe.ipynb").read_text()


def test_a_started_kernel_leaves_no_sockets_open(tmp_path):
    """Papermill does not stop the channels of a client it made for a kernel it did not start:
    run.started_kernel stops them (a process making many reports ran out of file descriptors,
    'zmq.error.ZMQError: Too many open files', before it did)."""
    import os

    import nbformat

    from helpers import run

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, tmp_path / "tiny.ipynb")

    def once(i: int) -> None:
        with run.started_kernel(tmp_path / f"m{i}.json", {}, "import json") as kernel:
            run.execute(tmp_path / "tiny.ipynb", tmp_path / f"o{i}", {}, html_report=False,
                        kernel=kernel)  # fmt: skip

    once(0)  # the libraries' own descriptors, opened once
    before = len(os.listdir("/proc/self/fd"))
    for i in range(1, 4):
        once(i)
    assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_the_kernel_has_one_blas_thread_unless_the_caller_sets_them():
    """The report's kernel computes with one BLAS thread (its background threads then give the
    numbers they would give in turn); a caller's own setting (make's) is kept."""
    from helpers.report import build

    assert build.blas_threads({}) == dict.fromkeys(build.BLAS_THREADS, "1")
    assert build.blas_threads({"OPENBLAS_NUM_THREADS": "4"})["OPENBLAS_NUM_THREADS"] == "4"


def test_the_kernel_allocates_arrow_through_glibc_unless_the_caller_names_a_pool():
    """The report's kernel gets Arrow's system pool (the stages' malloc_trim then returns what
    Arrow freed in any thread); the variable is the one the installed pyarrow reads, and a
    caller's own pool is kept."""
    import os
    import subprocess
    import sys

    from helpers.report import build

    env = {k: v for k, v in os.environ.items() if k != build.ARROW_POOL_ENV}
    env |= build.arrow_pool(env)
    probe = "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    got = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert got.stdout.strip() == "system", got.stderr
    assert build.arrow_pool({build.ARROW_POOL_ENV: "jemalloc"}) == {
        build.ARROW_POOL_ENV: "jemalloc"
    }


def test_kernels_are_shut_down_without_an_interrupt(monkeypatch):
    """run.quiet_kernel_manager kills a kernel on shutdown without the SIGINT jupyter_client
    sends first (the idle kernel logged "KeyboardInterrupt caught in kernel", an ERROR line in
    every `make report`): a real kernel shut down through it is never interrupted and is gone;
    the same shutdown through jupyter_client's own manager interrupts it."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    from helpers import run

    interrupted: list[str] = []
    original = AsyncKernelManager._async_interrupt_kernel

    async def recording(self) -> None:
        interrupted.append(type(self).__name__)
        await original(self)

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", recording)
    for cls in (run.quiet_kernel_manager(), AsyncKernelManager):
        km = cls(kernel_name="python3")
        run_sync(km.start_kernel)(extra_arguments=run.KERNEL_ARGS)
        run_sync(km.shutdown_kernel)(now=True)
        assert not run_sync(km.is_alive)()
    assert interrupted == ["AsyncKernelManager"]  # the plain manager's shutdown only


@pytest.mark.parametrize("error", ["os", "duckdb"])
def test_a_full_disk_gets_one_message_and_leaves_nothing_behind(
    tmp_path, monkeypatch, capsys, error
):
    """A disk that fills while the report runs (the operating system's error, or DuckDB's
    IOException writing the hand-over or its spill files): one message naming the file and the
    remedy, no traceback, exit 1, nothing left behind; any other exception keeps its traceback."""
    import errno

    import duckdb

    from helpers import run

    def full(notebook, out_dir, parameters, **_):
        (out_dir / "half-written.html").write_text("<html>")
        if error == "os":
            raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "report.html"))
        raise duckdb.IOException(
            'IO Error: Could not write file "/tmp/x/orders.validated.duckdb": No space left on '
            "device\nmore lines"
        )

    monkeypatch.setattr(run, "execute", full)
    _, data, mapping = small_client(tmp_path)
    root = tmp_path / "reports"
    rc, _, err = run_cli(cli_args(data, mapping, "acme", root), capsys)
    assert rc == 1 and "Traceback" not in err
    assert "No space left on device" in err and "no report was written" in err
    assert "TMPDIR" in err and "more lines" not in err
    assert ("report.html" if error == "os" else "orders.validated.duckdb") in err
    assert_nothing_left(root)

    def defect(notebook, out_dir, parameters, **_):
        raise KeyError("a bug")

    monkeypatch.setattr(run, "execute", defect)
    with pytest.raises(KeyError):
        run_cli(cli_args(data, mapping, "acme", root), capsys)
