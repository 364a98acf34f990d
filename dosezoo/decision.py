"""The records a dose-finding rule returns.

A `Decision`: the next dose, or why the trial stops, and why. `CountDecisions`: the decisions
of a count rule for a batch of trial states, row by row.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
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


class CountDecisions(NamedTuple):
    """The decisions of a count rule for a batch of ``m`` trial states, one row per state.

    A count rule (`dosezoo.protocols.CountRuleDesign`) decides from the patients and DLTs per
    dose level and the level of the last cohort only, for many trials at once; `decision`
    turns one row into the `Decision` that ``design.next`` or ``design.recommend`` returns,
    so a design's per-data methods and the vectorised simulation share one rule.
    """

    level: np.ndarray
    """Level (0-based) of the next cohort or of the recommended dose, -1 for a stop, (m,)."""
    stop_reason: np.ndarray
    """Why each stop stops, ``""`` for a row that names a level; str objects, (m,)."""
    bound_by: np.ndarray
    """``Decision.bound_by`` of each row, comma-joined (``""`` for none); str objects, (m,)."""
    quantities: dict[str, np.ndarray]
    """Each quantity as floats, (m,), in the order a `Decision` lists them."""
    present: dict[str, np.ndarray]
    """For each quantity, whether each row's decision records it (bool, (m,)); a quantity
    may be NaN and present (e.g. no dose selected)."""

    def decision(self, row: int, dose_levels: Sequence[float]) -> Decision:
        """Return row ``row`` as a `Decision` on the doses ``dose_levels``."""
        level = int(self.level[row])
        bound = str(self.bound_by[row])
        quantities = {
            key: float(values[row])
            for key, values in self.quantities.items()
            if self.present[key][row]
        }
        bound_by = tuple(bound.split(",")) if bound else ()
        if level < 0:
            return Decision(
                None,
                stop_reason=str(self.stop_reason[row]),
                quantities=quantities,
                bound_by=bound_by,
            )
        return Decision(dose_levels[level], quantities=quantities, bound_by=bound_by)
