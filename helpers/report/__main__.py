"""``python -m helpers.report``: the client-report command (see :mod:`helpers.report`)."""

import sys

from helpers.report import main

sys.exit(main())
