"""The environment variables through which the report command hands notebook 08's kernel what
must not be a papermill parameter (the delivered ``report.ipynb`` records its parameters): a
module of names only, so the command does not import the analysis to know them.

The others of the kind live with what reads them: :data:`helpers.report.sources.SOURCE_ENV`
(a warehouse URL, its password included) and :data:`helpers.report.progress.PROGRESS_ENV`."""

from __future__ import annotations

__all__ = ["SALT_ENV", "EXPORTS_ENV", "SCRATCH_ENV"]

#: The pseudonyms' secret key, random per report (:func:`helpers.report.analysis.pseudonym_salt`).
SALT_ENV = "RETENTION_LAB_SALT"
#: The mapping's ``exports`` (``raw``: cells as in the client's file; otherwise spreadsheet-safe;
#: :func:`helpers.report.analysis.export_csv`).
EXPORTS_ENV = "RETENTION_LAB_EXPORTS"
#: A folder of the command's, removed when the report ends whatever the kernel did, where the
#: kernel may keep large intermediate results on disk (:class:`helpers.report.engine.MarginCells`).
SCRATCH_ENV = "RETENTION_LAB_SCRATCH"
