r"""Dose optimisation with toxicity and efficacy (Project Optimus; Lin 2023's selection rule).

Lin (2023, "Safety-PD Biomarker Joint Modeling") defines, for the joint model of binary
toxicity and ordinal efficacy (:class:`dosezoo.models.joint_probit.JointProbit`):

- a toxicity target interval :math:`[\ell, u]` (default :math:`[0.16, 0.33]`), so that toxicity
  still drives the escalation;
- an efficacy threshold :math:`e` for the response rate :math:`P(E \ge 1)` (default 0.2);
- overdose control: a dose :math:`d` is excluded when
  :math:`P(p_T(d) > \bar p \mid \text{data}) > c_{od}` (over-toxic level :math:`\bar p = 0.4`;
  the cut-off :math:`c_{od}`, 0.25 by default as in EWOC-type rules, is not given by Lin); on
  draws, an estimate within ``Conduct.mcse_margin`` Monte Carlo standard errors of the cut-off
  is made again with more draws, then counted above it (our addition, as for BLRM's);
- next dose: among the doses not excluded, the one with the maximal posterior probability of
  the target event

  .. math:: \pi(d) = P\big(\ell \le p_T(d) \le u \ \text{and}\ p_E(d) \ge e \mid \text{data}\big).

This module adds what a trial needs and Lin leaves open, each an option:

- *no skipping*: the next dose is at most one level above the highest level given so far;
- *safety stop*: the trial stops when the lowest dose is excluded and has at least
  ``safety_min_patients`` patients (3, as the CRM, BOIN and the two-stage GP designs); with
  fewer, the next cohort gets the lowest dose;
- *futility stop* (off by default): after ``futility_min_patients`` patients, stop when no
  non-excluded dose has :math:`P(p_E(d) \ge e \mid \text{data})` of at least
  ``futility_cutoff``;
- *final recommendation* (:meth:`OptimusRule.select`): the optimal biological dose
  (OBD) is the dose maximising :math:`\pi(d)` among the doses given to patients and not
  excluded, and the *recommended dose range*, which Project Optimus asks for to randomise in
  phase 2, is every such dose with :math:`\pi(d) \ge` ``range_probability``. The OBD is
  recommended only if it is in the range; otherwise no dose is recommended.

Ties in :math:`\pi` go to the lower dose. The design judges the fit on ``p_tox`` and
``p_response`` (the conduct's :class:`dosezoo.diagnostics.ConvergenceCriteria`), refits once
with more draws, and refuses to act on a fit that still fails
(:class:`dosezoo.errors.ConvergenceError`).
"""

import math
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from dosezoo.checks import integer, probability
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import Conduct, Design, ModelRule, compose, rate_above, rate_above_mcse
from dosezoo.designs.registry import Family, register
from dosezoo.levels import level_counts
from dosezoo.models.joint_probit import JointProbit
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described

__all__ = ["OPTIMUS_CONDUCT", "OptimusRule", "optimus_design"]

#: The conduct of the Project Optimus design: the independence Metropolis-Hastings engine
#: with 2 chains of 1000 draws after 200 burn-in, one refit with 4 times the draws.
OPTIMUS_CONDUCT: dict[str, Any] = {
    "engine": "imh",
    "draws": 1000,
    "tune": 200,
    "chains": 2,
    "refits": 1,
    "refit_factor": 4,
}


@dataclass(frozen=True)
class OptimusRule(ModelRule):
    """Lin's selection rule: target toxicity interval, efficacy threshold, overdose control.

    Parameters
    ----------
    tox_interval : tuple of float
        Target interval of the toxicity probability (0.16, 0.33).
    efficacy_threshold : float
        Smallest acceptable response rate ``P(E >= 1)`` (0.2).
    overdose_limit : float
        Over-toxic level (0.4), above the top of ``tox_interval``.
    overdose_cutoff : float
        A dose with ``P(p_tox > overdose_limit | data) > overdose_cutoff`` is excluded (0.25).
    range_probability : float
        Smallest posterior probability of the target event for a dose to be in the
        recommended range (0.3).
    futility_cutoff : float, optional
        Stop for futility when no non-excluded dose has ``P(p_response >= threshold)`` of at
        least this (off by default).
    futility_min_patients : int
        Patients needed before the futility stop may fire (9).
    safety_min_patients : int
        Patients at the lowest dose needed before the safety stop may fire (3); before that,
        an excluded lowest dose is given again (``bound_by`` ``"safety_min_patients"``).

    Notes
    -----
    The dose levels are the model's (:class:`~dosezoo.models.joint_probit.JointProbit`).
    """

    label: ClassVar[str] = "Optimus"
    model_type: ClassVar[type] = JointProbit

    _: KW_ONLY
    tox_interval: tuple[float, float] = (0.16, 0.33)
    efficacy_threshold: float = 0.2
    overdose_limit: float = 0.4
    overdose_cutoff: float = 0.25
    range_probability: float = 0.3
    futility_cutoff: float | None = None
    futility_min_patients: int = 9
    safety_min_patients: int = 3

    def __post_init__(self) -> None:
        """Validate the options, naming the one at fault."""
        owner = "OptimusRule"
        try:
            low, high = self.tox_interval
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner}: tox_interval must be a pair (low, high), got {self.tox_interval!r}"
            ) from None
        low = probability(owner, "tox_interval[0]", low)
        high = probability(owner, "tox_interval[1]", high)
        if not low < high:
            raise ValueError(f"{owner}: tox_interval must have low < high, got {(low, high)!r}")
        object.__setattr__(self, "tox_interval", (low, high))
        for name in (
            "efficacy_threshold",
            "overdose_limit",
            "overdose_cutoff",
            "range_probability",
        ):
            object.__setattr__(self, name, probability(owner, name, getattr(self, name)))
        if not self.overdose_limit > high:
            raise ValueError(
                f"{owner}: overdose_limit must exceed the top of tox_interval, {high!r}, got "
                f"{self.overdose_limit!r} (a dose whose toxicity lies in the target interval "
                "would count as over-toxic)"
            )
        if self.futility_cutoff is not None:
            cutoff = probability(owner, "futility_cutoff", self.futility_cutoff)
            object.__setattr__(self, "futility_cutoff", cutoff)
        minimum = integer(owner, "futility_min_patients", self.futility_min_patients, minimum=1)
        object.__setattr__(self, "futility_min_patients", minimum)
        at_lowest = integer(owner, "safety_min_patients", self.safety_min_patients, minimum=1)
        object.__setattr__(self, "safety_min_patients", at_lowest)

    def bind(self, model: Any, conduct: Conduct) -> "OptimusRule":
        """Hold the model; refuse targets that its ``target_met`` would state otherwise."""
        bound = super().bind(model, conduct)
        for name in ("tox_interval", "efficacy_threshold"):
            ours, theirs = getattr(self, name), getattr(model, name)
            if ours != theirs:
                raise ValueError(
                    f"OptimusRule: {name} {ours!r} differs from the model's {theirs!r} (its "
                    "target_met deterministic); give both the same"
                )
        return bound

    @property
    def dose_levels(self) -> tuple[float, ...]:
        """The model's dose levels."""
        return self.model.dose_levels

    def needs_posterior(self, data: TrialData, *, final: bool) -> bool:
        """Refuse doses off the levels before any fit; no fit for a trial with no patients."""
        level_counts(data, self.dose_levels, owner="OptimusRule")
        return data.n_patients > 0

    # ----------------------------------------------------------------- posterior summaries

    def summaries(
        self, posterior: DosePosterior, levels: int | None = None
    ) -> dict[str, np.ndarray]:
        """Per-dose posterior probabilities the rule uses.

        Parameters
        ----------
        posterior : DosePosterior
            With ``p_tox`` and ``p_response`` per level.
        levels : int, optional
            The first ``levels`` levels are the ones a decision reads (all by default): their
            overdose control is a comparison of the posterior
            (:meth:`~dosezoo.posterior.DosePosterior.exceeds`), which on a fit with Monte Carlo
            error the design resolves when a level is too close to the cut-off (more draws,
            then the cautious side, the level excluded); the others' estimates decide alone.

        Returns
        -------
        dict
            ``p_target`` (the target event), ``p_overdose`` (``p_tox > overdose_limit``),
            ``p_efficacious`` (``p_response >= efficacy_threshold``), ``excluded`` (bool).
        """
        low, high = self.tox_interval

        def efficacious(rates):
            return rates["p_response"] >= self.efficacy_threshold

        def target(rates):
            return (rates["p_tox"] >= low) & (rates["p_tox"] <= high) & efficacious(rates)

        p_overdose = posterior.prob_above(self.overdose_limit, "p_tox")
        read = p_overdose.size if levels is None else min(levels, p_overdose.size)
        excluded = p_overdose > self.overdose_cutoff
        excluded[:read] = posterior.exceeds(
            [f"p_overdose_{k}" for k in range(read)],
            p_overdose[:read],
            self.overdose_cutoff,
            lambda: posterior.mcse_above(self.overdose_limit, "p_tox")[:read],
        )
        return {
            "p_target": posterior.probability(target),
            "p_overdose": p_overdose,
            "p_efficacious": posterior.probability(efficacious),
            "excluded": excluded,
        }

    def _quantities(self, summary: dict[str, np.ndarray]) -> dict[str, float]:
        quantities: dict[str, float] = {}
        for k in range(len(self.dose_levels)):
            for name in ("p_target", "p_overdose", "p_efficacious"):
                quantities[f"{name}_{k}"] = float(summary[name][k])
        quantities |= {f"excluded_{k}": float(v) for k, v in enumerate(summary["excluded"])}
        quantities["n_excluded"] = float(np.sum(summary["excluded"]))
        return quantities

    @staticmethod
    def _best(candidates: np.ndarray, p_target: np.ndarray) -> int:
        """Return the candidate with the largest ``p_target``, the lowest among ties."""
        return int(candidates[np.argmax(p_target[candidates])])

    def _counts_and_summaries(
        self, posterior: DosePosterior | None, data: TrialData, *, final: bool
    ):
        if posterior is None:
            raise ValueError("OptimusRule needs a posterior of the joint model")
        counts = level_counts(data, self.dose_levels, owner="OptimusRule")
        return counts, self.summaries(posterior, self.levels_read(data, final=final))

    @staticmethod
    def _diagnostics(posterior: DosePosterior | None) -> pd.DataFrame | None:
        if posterior is None or posterior.report is None:
            return None
        return posterior.report.table

    # ----------------------------------------------------------------- decisions

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Next dose from the posterior of the joint model.

        Parameters
        ----------
        posterior : DosePosterior
            With ``p_tox`` and ``p_response`` per level.
        data : TrialData
            The trial so far (at least one patient).

        Returns
        -------
        Decision
            The next dose, or a stop (safety, futility), with per-dose ``p_target_<k>``,
            ``p_overdose_<k>``, ``p_efficacious_<k>`` and ``excluded_<k>`` (1.0: overdosed,
            within Monte Carlo error on the cautious side) in its quantities.
        """
        counts, summary = self._counts_and_summaries(posterior, data, final=False)
        assert posterior is not None  # _counts_and_summaries refuses None
        quantities = self._quantities(summary)
        diagnostics = self._diagnostics(posterior)
        if summary["excluded"][0] and counts.n[0] >= self.safety_min_patients:
            p_overdose, cutoff = summary["p_overdose"][0], self.overdose_cutoff
            # On the cautious side of a fit's Monte Carlo error, an estimate at or below the
            # cut-off counts as above it: the reason says so, or it would contradict it.
            relation = (
                f"> {cutoff:g}"
                if p_overdose > cutoff
                else f"within {posterior.caution:g} MCSEs of {cutoff:g}"
            )
            return Decision(
                None,
                stop_reason=(
                    f"safety: the lowest dose {self.dose_levels[0]:g} is overdosed, "
                    f"P(p_tox > {self.overdose_limit:g}) = {p_overdose:.3f} {relation} with "
                    f"{counts.n[0]} patients there"
                ),
                quantities=quantities,
                diagnostics=diagnostics,
            )
        if summary["excluded"][0]:  # too few patients there to stop: stay at the lowest dose
            return Decision(
                self.dose_levels[0],
                quantities=quantities,
                bound_by=("safety_min_patients",),
                diagnostics=diagnostics,
            )
        allowed = ~summary["excluded"]
        if (
            self.futility_cutoff is not None
            and data.n_patients >= self.futility_min_patients
            and np.max(summary["p_efficacious"][allowed]) < self.futility_cutoff
        ):
            return Decision(
                None,
                stop_reason=(
                    f"futility: no dose has P(p_response >= {self.efficacy_threshold:g}) >= "
                    f"{self.futility_cutoff:g}"
                ),
                quantities=quantities,
                diagnostics=diagnostics,
            )
        highest_tried = int(np.flatnonzero(counts.n > 0).max()) if data.n_patients else -1
        admissible = allowed.copy()
        admissible[highest_tried + 2 :] = False  # no skipping
        candidates = np.flatnonzero(admissible)
        best = self._best(candidates, summary["p_target"])
        unconstrained = self._best(np.flatnonzero(allowed), summary["p_target"])
        bound_by = ("no_skipping",) if unconstrained > best else ()
        return Decision(
            self.dose_levels[best],
            quantities=quantities,
            bound_by=bound_by,
            diagnostics=diagnostics,
        )

    def levels_read(self, data: TrialData, *, final: bool) -> int | None:
        """Return how many levels the next dose reads: up to one above the highest given.

        Without skipping, the next dose is among the levels up to one above the highest
        given (the lowest level's safety stop included); the futility stop and the
        recommendation read every level (None).
        """
        if final or self.futility_cutoff is not None:
            return None
        counts = level_counts(data, self.dose_levels, owner="OptimusRule")
        given = np.flatnonzero(counts.n > 0)
        return min(len(self.dose_levels), (int(given[-1]) if given.size else -1) + 2)

    def backfill_eligible(
        self, posterior: DosePosterior | None, data: TrialData, cleared: tuple[float, ...]
    ) -> tuple[float, ...]:
        """Return the cleared doses neither overdosed nor dropped for lack of efficacy.

        Overdosed: ``P(p_tox > overdose_limit) > overdose_cutoff`` (excluded from the
        escalation too). Dropped for futility, when ``futility_cutoff`` is set:
        ``P(p_response >= efficacy_threshold) < futility_cutoff`` at that dose (backfill
        randomises among the doses not discarded for lack of efficacy; Dehbi et al. 2021).
        """
        _, summary = self._counts_and_summaries(posterior, data, final=False)
        keep = ~summary["excluded"]
        if self.futility_cutoff is not None:
            keep &= summary["p_efficacious"] >= self.futility_cutoff
        return tuple(dose for dose in cleared if keep[self.dose_levels.index(dose)])

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Recommend the OBD and the dose range at the end of a trial.

        A trial with no patients recommends nothing; one stopped for safety recommends nothing
        either, since its lowest dose is excluded.

        Returns
        -------
        Decision
            The OBD as ``next_dose`` (or a stop when no dose qualifies); quantities add
            ``range_lowest_dose``, ``range_highest_dose``, ``range_size`` and
            ``in_range_<k>`` (1.0 / 0.0) for every level.
        """
        if not data.n_patients:
            return Decision(None, stop_reason="no OBD: no patients")
        counts, summary = self._counts_and_summaries(posterior, data, final=True)
        quantities = self._quantities(summary)
        candidates = np.flatnonzero((counts.n > 0) & ~summary["excluded"])
        in_range = np.zeros(len(self.dose_levels), dtype=bool)
        in_range[candidates] = summary["p_target"][candidates] >= self.range_probability
        levels = np.asarray(self.dose_levels)
        quantities |= {f"in_range_{k}": float(v) for k, v in enumerate(in_range)}
        quantities |= {
            "range_size": float(in_range.sum()),
            "range_lowest_dose": float(levels[in_range].min()) if in_range.any() else math.nan,
            "range_highest_dose": float(levels[in_range].max()) if in_range.any() else math.nan,
        }
        if not in_range.any():
            reason = (
                "no dose given to patients is below the overdose cut-off"
                if not candidates.size
                else f"no dose has P(target) >= {self.range_probability:g}"
            )
            return Decision(
                None,
                stop_reason=f"no OBD: {reason}",
                quantities=quantities,
                diagnostics=self._diagnostics(posterior),
            )
        best = self._best(np.flatnonzero(in_range), summary["p_target"])
        return Decision(
            self.dose_levels[best], quantities=quantities, diagnostics=self._diagnostics(posterior)
        )

    def overdose_probability(self, posterior: DosePosterior | None, dose: float) -> float | None:
        """``P(p_tox > overdose_limit | data)`` at ``dose``, Lin's overdose probability."""
        return rate_above(posterior, dose, self.overdose_limit, "p_tox")

    def overdose_mcse(self, posterior: DosePosterior, dose: float) -> float:
        """Monte Carlo standard error of :meth:`overdose_probability`."""
        return rate_above_mcse(posterior, dose, self.overdose_limit, "p_tox")

    def describe(self) -> Described:
        """Flat record of the rule's options."""
        return {
            "tox_low": self.tox_interval[0],
            "tox_high": self.tox_interval[1],
            "efficacy_threshold": self.efficacy_threshold,
            "overdose_limit": self.overdose_limit,
            "overdose_cutoff": self.overdose_cutoff,
            "range_probability": self.range_probability,
            "futility_cutoff": self.futility_cutoff,
            "futility_min_patients": self.futility_min_patients,
            "safety_min_patients": self.safety_min_patients,
        }


def optimus_design(model: JointProbit, **options: Any) -> Design:
    """Return the Project Optimus design: joint-probit model, Lin's rule and the conduct.

    The first cohort gets the start dose; each later cohort the rule's next dose; the trial
    ends after the sample size or at a safety / futility stop. The posterior is the model's
    fast engine (``engine="imh"``, independence Metropolis-Hastings on the outcome counts,
    the Gibbs kernel where its proposal fails), seeded from ``random_seed`` and the data, so every
    decision is a deterministic function of the data. A fit that fails the convergence checks
    is refitted once with ``refit_factor`` times the draws and burn-in; if it fails again the
    design raises :class:`~dosezoo.errors.ConvergenceError` rather than act on it.

    Parameters
    ----------
    model : JointProbit
        The model; its dose levels are the design's.
    **options
        Options of :class:`OptimusRule` and of :class:`~dosezoo.designs.base.Conduct`;
        defaults: the lowest level first, cohorts of 3, 36 patients, the ``"imh"`` engine with
        1000 draws, 200 burn-in, 2 chains, one refit with 4 times the draws.

    Returns
    -------
    Design
    """
    return compose(model, OptimusRule, OPTIMUS_CONDUCT | options)


register(
    Family(
        name="joint-probit",
        summary=(
            "Project Optimus: joint probit model of toxicity and ordinal efficacy with Lin "
            "(2023)'s target-toxicity, efficacy and overdose-control rule"
        ),
        model=JointProbit,
        rule=OptimusRule,
        conduct=OPTIMUS_CONDUCT,
        example="joint_probit.toml",
        example_data="efftox_cohorts.csv",
    )
)
