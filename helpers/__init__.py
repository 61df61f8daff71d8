"""Retention Lab helpers: the single source of logic for the notebooks and reports.

Modules: paths, synth (sample company generator), data (loading and validation), retention,
plots, run (batch runner); later issues add cohorts, survival, segments, clv, report, ...
"""

__version__ = "0.1.0"
