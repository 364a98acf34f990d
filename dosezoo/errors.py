"""Exceptions raised by dosezoo."""

from typing import Any


class DataError(ValueError):
    """Trial data that cannot be used: the message names the column, the row and the value."""


class FitMismatchError(DataError):
    """A fit handed to a decision was made on other data or by another model.

    The message names what differs: the data (a fingerprint of the doses, the model's outcome
    columns and the covariates, in patient order), the model class, or the model's settings.
    """


class ConfigError(ValueError):
    """A configuration that cannot be used: the message names the file, section, key and value."""


class StoreLockedError(RuntimeError):
    """A simulation's result store is in use by another run: the message names the path and pid."""


class DamagedBatchWarning(UserWarning):
    """A saved batch of a simulation is damaged or unrecorded; it is named, dropped and rerun."""


class ConvergenceError(RuntimeError):
    """A fit that failed its convergence checks was handed to a rule that needs it.

    The message says which quantity failed which check and by how much (e.g.
    ``"p_dlt: R-hat 1.0421 > 1.01"``); ``report`` is the full
    :class:`~dosezoo.diagnostics.ConvergenceReport` when there is one.
    """

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report
