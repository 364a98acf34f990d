"""The records a dose-finding rule returns.

A `Decision`: the next dose, or why the trial stops, and why. The dose is a number, or a tuple
of numbers for a drug combination (one per dose column). A design that doses each stratum of
patients separately (a personalised design) returns one `Decision` per stratum in
``Decision.strata``, each naming its stratum (the values of the covariates that define it);
the trial goes on while any of them names a dose. `CountDecisions`: the decisions of a count
rule for a batch of trial states, row by row.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Decision:
    """What a rule decided from a posterior, with the quantities that drove it.

    Attributes
    ----------
    next_dose : float, tuple of float, or None
        Dose for the next cohort, a tuple (one value per dose column) for a drug
        combination; ``None`` when the trial stops, and for a decision per stratum.
    stop_reason : str or None
        Why the trial stops (``None`` when it goes on); for a decision per stratum, set
        when every stratum stopped.
    quantities : dict
        The posterior quantities the decision used (e.g. the MTD quantile and the
        posterior probability of overdosing at the chosen dose).
    bound_by : tuple of str
        What moved the dose away from the rule's unconstrained choice, in the order applied:
        options (e.g. ``("max_increment", "dose_levels")``, the conduct's ``start_dose``) or
        the constraints a rule names (BOIN's ``eliminated`` doses, ``highest_dose``).
    diagnostics : pandas.DataFrame or None
        Convergence diagnostics of the fit, per variable the decision used (the table of the
        posterior's :class:`~dosezoo.diagnostics.ConvergenceReport`, also on a stop because
        the fit was refused); None when the rule fitted no model (BOIN, 3+3; building an
        empty frame for each of the thousands of decisions of a simulation would cost more
        than the decision itself), when its posterior is an exact integration (quadrature:
        no Monte Carlo error, no convergence to judge) or an empirical-Bayes fit, and when
        the fit's check computed no table (a report whose ``table`` is None).
    stratum : dict
        The stratum the decision is for, as the values of the covariates that define it
        (e.g. ``{"z": 1}``); empty for a decision for every patient.
    strata : tuple of Decision
        One decision per stratum, for a design that doses each stratum separately (each with
        its ``stratum``, a dose or its own reason to stop); empty otherwise. Such a decision
        names no dose itself, and has a ``stop_reason`` when every stratum stopped.
    """

    next_dose: float | tuple[float, ...] | None
    stop_reason: str | None = None
    quantities: dict = field(default_factory=dict)
    bound_by: tuple[str, ...] = ()
    diagnostics: "pd.DataFrame | None" = None
    stratum: dict[str, Any] = field(default_factory=dict)
    strata: tuple["Decision", ...] = ()

    def __post_init__(self) -> None:
        """Check that a decision names a dose, a reason to stop, or one decision per stratum."""
        dose = self.next_dose
        # A number or None (nearly every decision) is kept as it is, without the ABC checks.
        if not (dose is None or isinstance(dose, float | int)) and (
            (isinstance(dose, Sequence) and not isinstance(dose, str | bytes))
            or (isinstance(dose, np.ndarray) and dose.ndim)
        ):
            dose = tuple(float(value) for value in np.asarray(dose, dtype=float).ravel())
            if not dose:
                raise ValueError("a Decision's combination dose needs at least one component")
            object.__setattr__(self, "next_dose", dose)
        if dose is not None and not (
            all(math.isfinite(value) for value in dose)
            if isinstance(dose, tuple)
            else isinstance(dose, float | int | np.integer | np.floating)
            and not isinstance(dose, bool)
            and math.isfinite(dose)
        ):
            raise ValueError(
                "a Decision's next_dose must be a finite number, a combination of them, or "
                f"None; got {dose!r}"
            )
        if isinstance(self.bound_by, str):
            raise ValueError(
                "a Decision's bound_by is a tuple of the options that bound the dose, got the "
                f"string {self.bound_by!r} (write ({self.bound_by!r},))"
            )
        if type(self.stratum) is not dict and not isinstance(self.stratum, Mapping):
            raise ValueError(f"a Decision's stratum must be a mapping, got {self.stratum!r}")
        object.__setattr__(self, "stratum", dict(self.stratum))
        strata = tuple(self.strata)
        object.__setattr__(self, "strata", strata)
        if not strata:
            if (self.next_dose is None) == (self.stop_reason is None):
                raise ValueError(
                    "a Decision has either a next_dose or a stop_reason, not both or neither"
                )
            return
        if self.next_dose is not None:
            raise ValueError("a Decision per stratum names no next_dose itself (its strata do)")
        for i, decision in enumerate(strata):
            if not isinstance(decision, Decision) or decision.strata or not decision.stratum:
                raise ValueError(
                    f"strata[{i}] must be a Decision naming its stratum, with no strata of "
                    f"its own; got {decision!r}"
                )
        if all(decision.stopped for decision in strata) == (self.stop_reason is None):
            raise ValueError(
                "a Decision per stratum has a stop_reason exactly when every stratum stopped"
            )

    @property
    def stopped(self) -> bool:
        """Whether the rule stopped the trial (every stratum, for a decision per stratum)."""
        return self.next_dose is None and all(decision.stopped for decision in self.strata)

    def scalar_dose(self, owner: str) -> float | None:
        """Return the dose of a single-agent decision as a float, None when it names none.

        For code that doses one drug: a stop, and a decision per stratum (which names no
        dose itself), give None.

        Parameters
        ----------
        owner : str
            Who asks, named in the error.

        Raises
        ------
        TypeError
            If the decision names a combination (a tuple of doses).
        """
        dose = self.next_dose
        if dose is None:
            return None
        if isinstance(dose, tuple):
            raise TypeError(
                f"{owner}: expected the dose of a single agent, got the combination {dose!r}"
            )
        return float(dose)

    @property
    def arms(self) -> tuple[tuple[float | tuple[float, ...], dict[str, Any]], ...]:
        """The doses of the next cohort with their strata: ``((dose, stratum), ...)``.

        One arm for a decision naming a dose (its ``stratum`` empty unless the decision is
        for one stratum), one per stratum that goes on for a decision per stratum, none for a
        stop.
        """
        if self.strata:
            return tuple(
                (decision.next_dose, decision.stratum)
                for decision in self.strata
                if decision.next_dose is not None
            )
        if self.next_dose is None:
            return ()
        return ((self.next_dose, self.stratum),)


class DecisionRow(NamedTuple):
    """A single-agent decision as one row of `CountDecisions` (:meth:`CountDecisions.row`)."""

    level: int
    """Level (0-based) of the dose, -1 for a stop."""
    stop_reason: str
    """Why a stop stops, ``""`` for a dose."""
    bound_by: str
    """``Decision.bound_by``, comma-joined."""
    names: tuple[str, ...]
    """The quantities' names, in the decision's order."""
    values: tuple[float, ...]
    """The quantities' values, as floats."""


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

    @classmethod
    def from_decisions(
        cls, decisions: Sequence[Decision], dose_levels: Sequence[float]
    ) -> "CountDecisions":
        """Stack single-agent `Decision` objects naming doses among ``dose_levels``, one a row.

        The inverse of `decision`: quantities keep the order in which the decisions first list
        them; a row lacking one has it NaN and not present.

        Raises
        ------
        ValueError
            If a decision names a dose that is not one of ``dose_levels``.
        """
        return cls.from_rows(
            [cls.row(decision, dose_levels, i) for i, decision in enumerate(decisions)]
        )

    @staticmethod
    def row(decision: Decision, dose_levels: Sequence[float], index: int = 0) -> DecisionRow:
        """Return a single-agent decision as a row (`DecisionRow`), ``index`` its row's number.

        Raises
        ------
        ValueError
            If the decision is one per stratum (its strata would read as a stop), or names a
            dose that is not one of ``dose_levels``.
        """
        if not isinstance(decision, Decision) or decision.strata:
            raise ValueError(
                f"CountDecisions.from_decisions: row {index} is not a Decision of one dose or "
                f"a stop (a decision per stratum has no row): {decision!r}"
            )
        dose = decision.scalar_dose("CountDecisions.from_decisions")
        if dose is None:
            level, stop_reason = -1, decision.stop_reason or ""
        elif dose in dose_levels:
            level, stop_reason = list(dose_levels).index(dose), ""
        else:
            raise ValueError(
                f"CountDecisions.from_decisions: dose {dose!r} of row {index} is not one of "
                f"the dose levels {tuple(dose_levels)}"
            )
        quantities = decision.quantities
        values = tuple(map(float, quantities.values()))
        return DecisionRow(
            level, stop_reason, ",".join(decision.bound_by), tuple(quantities), values
        )

    @classmethod
    def from_rows(cls, rows: Sequence[DecisionRow]) -> "CountDecisions":
        """Stack decisions made rows (:meth:`row`), as :meth:`from_decisions` stacks decisions.

        Rows that list the same quantities in the same order (the decisions of one rule,
        nearly always) are stacked in one array; otherwise the quantities keep the order in
        which the rows first list them, NaN and not present in a row lacking one.
        """
        m = len(rows)
        level = np.array([row.level for row in rows], dtype=np.int64)
        stop_reason = np.array([row.stop_reason for row in rows], dtype=object)
        bound_by = np.array([row.bound_by for row in rows], dtype=object)
        names = rows[0].names if rows else ()
        if all(row.names == names for row in rows):
            values = np.array([row.values for row in rows], dtype=float).reshape(m, len(names))
            columns = np.ascontiguousarray(values.T)
            quantities = {name: columns[j] for j, name in enumerate(names)}
            present = {name: np.ones(m, dtype=bool) for name in names}
            return cls(level, stop_reason, bound_by, quantities, present)
        quantities, present = {}, {}
        for i, row in enumerate(rows):
            for name, value in zip(row.names, row.values, strict=True):
                if name not in quantities:
                    quantities[name] = np.full(m, np.nan)
                    present[name] = np.zeros(m, dtype=bool)
                quantities[name][i] = value
                present[name][i] = True
        return cls(level, stop_reason, bound_by, quantities, present)

    def take(self, rows: np.ndarray) -> "CountDecisions":
        """Return the decisions of ``rows`` (indices, repeats allowed), in that order.

        A quantity no row taken records stays, not present in any row.
        """
        return CountDecisions(
            self.level[rows],
            self.stop_reason[rows],
            self.bound_by[rows],
            {key: values[rows] for key, values in self.quantities.items()},
            {key: flags[rows] for key, flags in self.present.items()},
        )

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
