"""``python -m helpers.synth``: the command line of :mod:`helpers.synth.cli`."""

from __future__ import annotations

from helpers.synth.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
