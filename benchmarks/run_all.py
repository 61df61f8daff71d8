"""Run every benchmark script in benchmarks/ (bench_*.py) that needs no input of the user's, in
turn; each prints its own figures. The others time files the user names (an export and its
mapping, a hand-over, source trees): they are listed with the line that says how to run them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def needs_inputs(script: Path) -> bool:
    """Whether `script`'s command line has a required option or group (``required=True``) or a
    positional argument: run without arguments it would only print argparse's usage error."""
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        kws = {kw.arg: kw.value for kw in node.keywords}
        required = kws.get("required")
        if isinstance(required, ast.Constant) and required.value is True:
            return True
        first = node.args[0] if node.args else None
        nargs = kws.get("nargs")
        if (
            getattr(node.func, "attr", "") == "add_argument"
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and not first.value.startswith("-")
            and not (isinstance(nargs, ast.Constant) and nargs.value in ("?", "*"))
        ):
            return True
    return False


def usage(script: Path) -> str:
    """The ``Run:`` line of `script`'s docstring, else its first line naming the script's
    path, else the script's name."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    lines = [x.strip() for x in doc.splitlines()]
    line = next((x for x in lines if x.startswith("Run:")), "").removeprefix("Run:").strip()
    named = next((x for x in lines if f"benchmarks/{script.name}" in x), "")
    return line or named or script.name


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if not scripts:
        print("no benchmarks yet")
    later = [s for s in scripts if needs_inputs(s)]
    for script in scripts:
        if script in later:
            continue
        print(f"== {script.name}", flush=True)
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        if rc:
            return rc
    if later:
        print("== not run here: these time files you name (see benchmarks/README.md)")
        for script in later:
            print(f"   {usage(script)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
