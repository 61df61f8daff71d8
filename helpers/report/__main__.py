"""``python -m helpers.report``: the client-report command (see :mod:`helpers.report`)."""

import sys

from helpers.report.cli import main

sys.exit(main())
