r"""Dose transition pathways: what a design does after every outcome of the next cohorts.

Yap, Billingham, Cheung, Craddock and O'Quigley (2017, *Clin. Cancer Res.* 23, 7440-7447)
tabulate, before a trial or at an interim, the design's decision after every possible outcome of
the next :math:`k` cohorts, so that clinicians see the design's behaviour in advance. The tree
starts at the current data with the design's next dose; each cohort of :math:`c` patients at the
dose the design chose has one branch per outcome, and each branch carries the design's decision
on the data extended by it; a branch ends when the design stops or after :math:`k` cohorts.

Conventions (as R's escalation, ``get_dose_paths``): patients within a cohort are exchangeable,
so a cohort's outcome is a multiset of per-patient outcomes (a cohort of 3 with binary DLTs has
4 outcomes, not 8), written ``"<cohort number><codes>"`` with ``N`` (no DLT) and ``T`` (DLT),
e.g. ``"1NNT 2NNN"``; other discrete outcomes add their value to the code (``efficacy`` 0/1/2 as
``E0``/``E1``/``E2``, so a patient of the joint probit is e.g. ``TE1``, and a cohort's codes are
comma-separated; a rule that tells fewer values apart names them in its ``outcome_values``, and
only those are enumerated: BOIN12 reads whether a patient responded, ``E0`` or ``E1``).
Outcomes must be discrete: a design of a continuous response (3PND) or of event times has no
finite tree, and asking for its pathways raises a ``ValueError`` saying so (discretising a
continuous outcome would make the tree depend on the chosen cut points, which the design does
not have). A design that decides per stratum or for several arms at once (the
combination design's initial cohorts) has no single branch dose and is refused the same way.

Each node's posterior is memoised by the model's sufficient statistic of the data
(:meth:`~dosezoo.models.base.DoseModel.sufficient_statistic`, e.g. the patients and DLTs per
dose): trials that differ only in the order of their outcomes share one posterior. For a design
whose posterior is sampled (MCMC), the first trial with a statistic seeds the fit that the others
reuse.
"""

import itertools
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dosezoo.checks import positive_int
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import Design
from dosezoo.outcomes import registered_outcomes

__all__ = ["DosePaths", "cohort_outcomes", "dose_paths", "plot_dose_paths"]

#: Outcome columns of a design whose rule uses no model (a count rule counts DLTs).
_COUNT_OUTCOMES = ("dlt",)


def _patient_code(outcome: dict[str, int]) -> str:
    """``N``/``T`` for the DLT, then ``<initial><value>`` for every other outcome."""
    code = ""
    for name, value in outcome.items():
        if name == "dlt":
            code += "T" if value else "N"
        else:
            code += f"{name[0].upper()}{value}"
    return code


def cohort_outcomes(
    outcomes: Sequence[str],
    cohort_size: int,
    values_read: Mapping[str, tuple[int, ...]] | None = None,
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Return every outcome of a cohort: its code and the outcome columns of its patients.

    Parameters
    ----------
    outcomes : sequence of str
        The design's outcome columns (registered in :mod:`dosezoo.outcomes` with their allowed
        values).
    cohort_size : int
        Patients in the cohort.
    values_read : mapping of str to tuple of int, optional
        The values of an outcome that the rule tells apart, in place of all it allows (the
        rule's ``outcome_values``).

    Returns
    -------
    list of (str, dict)
        Codes as ``"NNT"`` (comma-separated codes when a patient's code is longer than a
        letter) and ``{column: values}`` with one value per patient; patients with fewer
        events first.

    Raises
    ------
    ValueError
        If an outcome is continuous (no finite set of values).
    """
    registry = registered_outcomes()
    values = []
    for name in outcomes:
        outcome = registry.get(name)
        if outcome is None or outcome.allowed is None:
            raise ValueError(
                f"dose pathways need outcomes with finitely many values; {name!r} is "
                "continuous (pathways are defined for binary and ordinal outcomes only)"
            )
        allowed = (values_read or {}).get(name, outcome.allowed)
        values.append(tuple(int(v) for v in allowed))
    patients = [dict(zip(outcomes, combo, strict=True)) for combo in itertools.product(*values)]
    result = []
    for cohort in itertools.combinations_with_replacement(range(len(patients)), cohort_size):
        members = [patients[i] for i in cohort]
        codes = [_patient_code(member) for member in members]
        separator = "" if all(len(code) == 1 for code in codes) else ","
        columns = {name: np.array([m[name] for m in members]) for name in outcomes}
        result.append((separator.join(codes), columns))
    return result


@dataclass(frozen=True)
class DosePaths:
    """The dose transition pathways of a design from some data.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per node, depth first: ``node``, ``parent`` (-1 for the root), ``cohort`` (0 at
        the root), ``dose`` (given to that cohort; NaN at the root), ``outcomes`` (the cohort's
        code), ``path`` (the codes from the root), ``n_patients``, ``next_dose`` (the design's
        decision after it; NaN for a stop; a string for a combination), ``stop_reason`` (why
        the design stops there; empty when it goes on).
    seconds : float
        Wall time of the computation.
    posteriors : int
        Distinct posteriors computed (the memo's size).
    """

    table: pd.DataFrame
    seconds: float
    posteriors: int
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the table as JSON records (NaN as null)."""
        return self.table.to_json(orient="records")

    def plot(self, **options: Any) -> Any:
        """Draw the tree (:func:`plot_dose_paths`)."""
        return plot_dose_paths(self, **options)


def _dose_value(dose: float | tuple[float, ...] | None) -> float | str:
    if dose is None:
        return float("nan")
    if isinstance(dose, tuple):
        return ", ".join(f"{d:g}" for d in dose)
    return float(dose)


def _single_dose(design: Design, decision: Decision) -> float | tuple[float, ...] | None:
    """Return the dose of the next cohort, or None for a stop; refuse several arms or strata."""
    if decision.stopped:
        return None
    arms = decision.arms
    if decision.strata or len(arms) != 1:
        raise ValueError(
            f"{design.label}: dose pathways need one dose per cohort; this decision names "
            f"{len(arms)} arm(s) across strata"
        )
    return arms[0][0]


def dose_paths(
    design: Design,
    data: TrialData,
    cohorts: int = 2,
    *,
    cohort_size: int | None = None,
) -> DosePaths:
    """Compute the design's decisions after every outcome of the next ``cohorts`` cohorts.

    Parameters
    ----------
    design : Design
        Any design whose cohorts get one dose and whose outcomes are discrete.
    data : TrialData
        The trial so far (may be empty: the tree then starts at the start dose).
    cohorts : int
        Number of future cohorts (2).
    cohort_size : int, optional
        Patients per future cohort (the design's by default).

    Returns
    -------
    DosePaths

    Raises
    ------
    ValueError
        For continuous outcomes, decisions per stratum or several arms, data with covariates
        (future patients' covariates are unknown), or a non-positive number of cohorts.
    """
    cohorts = positive_int("dose_paths", "cohorts", cohorts)
    size = design.cohort_size if cohort_size is None else cohort_size
    size = positive_int("dose_paths", "cohort_size", size)
    if data.covariates:
        raise ValueError(
            f"dose pathways are not defined for data with covariates ({', '.join(data.covariates)})"
            ": the covariates of future patients are unknown"
        )
    # A count rule may count more than its model observes (BOIN12: efficacy on BOIN's model).
    outcome_columns = tuple(
        dict.fromkeys(
            (
                *(design.model.outcomes if design.model is not None else _COUNT_OUTCOMES),
                *getattr(design.rule, "counted_outcomes", ()),
            )
        )
    )
    branches = cohort_outcomes(outcome_columns, size, design.rule.outcome_values)
    memo: dict[Hashable, Any] = {}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()

    def add(parent: int, cohort: int, dose: Any, code: str, path: str, trial: TrialData) -> None:
        decision = design.next(trial, posteriors=memo)
        node = len(rows)
        rows.append(
            {
                "node": node,
                "parent": parent,
                "cohort": cohort,
                "dose": _dose_value(dose),
                "outcomes": code,
                "path": path,
                "n_patients": trial.n_patients,
                "next_dose": _dose_value(decision.next_dose),
                # Never None: a column of text and None is read back with NaN for None.
                "stop_reason": decision.stop_reason or "",
            }
        )
        next_dose = _single_dose(design, decision)
        if cohort == cohorts or next_dose is None:
            return
        for branch, columns in branches:
            label = f"{cohort + 1}{branch}"
            extended = trial.with_cohort(next_dose, **columns)
            add(node, cohort + 1, next_dose, label, f"{path} {label}".strip(), extended)

    add(-1, 0, None, "", "", data)
    table = pd.DataFrame(rows)
    return DosePaths(
        table=table,
        seconds=time.perf_counter() - started,
        posteriors=len(memo),
        attrs={"design": design.label, "cohorts": cohorts, "cohort_size": size},
    )


def plot_dose_paths(paths: DosePaths, *, ax: Any = None) -> Any:
    """Draw the pathways as a tree: cohorts left to right, each node labelled by its decision.

    Edges carry the cohort's outcome code; a stop is drawn as a red square.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    table = paths.table
    leaves = table[~table["node"].isin(table["parent"])]
    if ax is None:
        _, ax = plt.subplots(figsize=(2.5 + 2.2 * table["cohort"].max(), 0.5 + 0.3 * len(leaves)))
    position: dict[int, float] = {}
    for rank, node in enumerate(leaves["node"]):
        position[int(node)] = float(rank)
    # Parents sit at the mean height of their children (children come after them).
    for node in reversed(table["node"].tolist()):
        if node not in position:
            children = table.loc[table["parent"] == node, "node"]
            position[node] = float(np.mean([position[int(c)] for c in children]))
    for row in table.itertuples():
        y = position[row.node]
        if row.parent >= 0:
            y0 = position[int(row.parent)]
            ax.plot([row.cohort - 1, row.cohort], [y0, y], color="0.7", lw=0.8, zorder=1)
            ax.annotate(
                row.outcomes,
                ((row.cohort - 0.5), (y0 + y) / 2),
                fontsize=7,
                ha="center",
                va="bottom",
                color="0.35",
            )
        stopped = isinstance(row.next_dose, float) and np.isnan(row.next_dose)
        if stopped:
            label = "stop"
        elif isinstance(row.next_dose, float):
            label = f"{row.next_dose:g}"
        else:
            label = str(row.next_dose)
        ax.scatter(
            [row.cohort],
            [y],
            marker="s" if stopped else "o",
            color="tab:red" if stopped else "tab:blue",
            zorder=2,
        )
        ax.annotate(label, (row.cohort, y), xytext=(5, -3), textcoords="offset points", fontsize=8)
    ax.set_xticks(range(int(table["cohort"].max()) + 1))
    ax.set_xlabel("cohort (0: now)")
    ax.set_yticks([])
    ax.invert_yaxis()
    ax.set_title(f"Dose transition pathways: {paths.attrs.get('design', '')}")
    return ax
