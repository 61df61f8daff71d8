"""``python -m helpers.synth [--out DIR] [--seed N] [--set field=value ...]``: write a company.

Without arguments it writes the bundled data to datasets/ (what ``make data`` does). Values of
``--set`` are Python literals (``--set loyalty_rate_uplift=1.5``, ``--set
loyalty_pilot_countries="('FR','ES')"``); strings may be given bare (``--set delivery_fix_date=2025-06-01``).
"""

from __future__ import annotations

import argparse
import ast
from dataclasses import fields, replace

from helpers import paths
from helpers.synth.company import generate
from helpers.synth.config import Plan, SynthConfig
from helpers.synth.io import write


def parse_set(items: list[str], cfg: SynthConfig) -> SynthConfig:
    """Apply `field=value` overrides to `cfg`, checking field names."""
    known = {f.name for f in fields(SynthConfig)}
    changes = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise SystemExit(
                f"--set {item!r}: expected field=value with a SynthConfig field, one of {sorted(known)}"
            )
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        if name == "plans":
            value = tuple(Plan(*p) for p in value)
        changes[name] = value
    return replace(cfg, **changes)


def main(argv: list[str] | None = None) -> None:
    """Write a company (default: the bundled one to datasets/) from the command-line arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.synth", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default=None, help="folder to write (default: datasets/)")
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed (default: SynthConfig.seed)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a SynthConfig field",
    )
    args = parser.parse_args(argv)
    cfg = SynthConfig()
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    cfg = parse_set(args.set, cfg)
    tables, truth = generate(cfg)
    total = 0.0
    for path in write(tables, truth, args.out):
        size = path.stat().st_size / 1e6
        total += size
        print(f"wrote {paths.shown(path)} ({size:.2f} MB)")
    print(f"total {total:.2f} MB")
