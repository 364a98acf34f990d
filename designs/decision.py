"""The record a dose-finding rule returns: the next dose, or why the trial stops, and why."""

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Decision:
    """What a rule decided from a posterior, with the quantities that drove it.

    Attributes
    ----------
    next_dose : float or None
        Dose for the next cohort; ``None`` when the trial stops.
    stop_reason : str or None
        Why the trial stops (``None`` when it goes on).
    quantities : dict
        The posterior quantities the decision used (e.g. the MTD quantile and the
        posterior probability of overdosing at the chosen dose).
    bound_by : tuple of str
        The options that moved the dose away from the unconstrained choice, in the order
        they were applied (e.g. ``("max_increment", "dose_levels")``).
    diagnostics : pandas.DataFrame or None
        Convergence diagnostics of the fit, per variable the decision used; None when the
        rule fitted no model (BOIN, 3+3; building an empty frame for each of the thousands
        of decisions of a simulation would cost more than the decision itself).
    """

    next_dose: float | None
    stop_reason: str | None = None
    quantities: dict = field(default_factory=dict)
    bound_by: tuple[str, ...] = ()
    diagnostics: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        """Check that a decision either names a dose or a reason to stop."""
        if (self.next_dose is None) == (self.stop_reason is None):
            raise ValueError(
                "a Decision has either a next_dose or a stop_reason, not both or neither"
            )

    @property
    def stopped(self) -> bool:
        """Whether the rule stopped the trial."""
        return self.next_dose is None
