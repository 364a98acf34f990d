"""Exceptions raised by dosezoo."""


class DataError(ValueError):
    """Trial data that cannot be used: the message names the column, the row and the value."""


class ConvergenceError(RuntimeError):
    """A posterior fit that failed its convergence checks was handed to a rule that needs it."""
