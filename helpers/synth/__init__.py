"""The sample company (work in progress: the second edition's config is in config.py)."""

from helpers.synth._v1 import *  # noqa: F401,F403
from helpers.synth._v1 import TABLES, SynthConfig, generate, generate_orders, main, write  # noqa: F401
