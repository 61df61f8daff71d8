"""``python -m helpers.synth``: the command line of :mod:`helpers.synth.command`."""

from __future__ import annotations

from helpers.synth.command import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
