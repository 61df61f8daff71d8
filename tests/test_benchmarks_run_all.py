"""benchmarks/run_all.py (``make benchmark``): it runs the scripts that need no input and lists
the others; run without arguments, a script with a required option stopped the whole run at
argparse's usage error (bench_bundled_pairs.py, the first of them, in alphabetical order)."""

from __future__ import annotations

import importlib.util

import pytest

from helpers import paths


@pytest.fixture
def run_all():
    spec = importlib.util.spec_from_file_location(
        "run_all", paths.ROOT / "benchmarks" / "run_all.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("arguments", "needs"),
    [
        ('ap.add_argument("--data", required=True)', True),
        ('ap.add_argument("data")', True),
        ('g = ap.add_mutually_exclusive_group(required=True)\ng.add_argument("--a")', True),
        ('ap.add_argument("data", nargs="?")', False),
        ('ap.add_argument("--sizes", type=int, nargs="+", default=[1])', False),
        ('ap.add_argument("--data", required=False)', False),
    ],
)
def test_a_script_needs_inputs_when_its_command_line_has_a_required_part(
    run_all, tmp_path, arguments, needs
):
    script = tmp_path / "bench_x.py"
    script.write_text(
        '"""X.\n\nRun:  python bench_x.py --data F\n"""\nimport argparse\n'
        f"ap = argparse.ArgumentParser()\n{arguments}\n"
    )
    assert run_all.needs_inputs(script) is needs
    assert run_all.usage(script) == "python bench_x.py --data F"


def test_the_benchmarks_that_time_named_files_are_not_run_by_make_benchmark(run_all):
    named = {
        s.name for s in (paths.ROOT / "benchmarks").glob("bench_*.py") if run_all.needs_inputs(s)
    }
    assert {
        "bench_bundled_pairs.py", "bench_clv_steps.py", "bench_floor.py", "bench_memory.py",
        "bench_read.py", "bench_sections.py", "bench_warehouse.py",
    } <= named  # fmt: skip
    assert "bench_cohorts.py" not in named and "bench_report.py" not in named


def test_usage_is_the_run_line_else_the_line_naming_the_script(run_all, tmp_path):
    script = tmp_path / "bench_y.py"
    script.write_text('"""Y.\n\nOnce:\n\n    python benchmarks/bench_y.py --prepare D\n"""\n')
    assert run_all.usage(script) == "python benchmarks/bench_y.py --prepare D"
    script.write_text('"""Y, without a command."""\n')
    assert run_all.usage(script) == "bench_y.py"
