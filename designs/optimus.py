r"""Dose optimisation with toxicity and efficacy (Project Optimus; seed 000's selection rules).

Seed 000 ("Safety-PD Biomarker Joint Modeling") defines, for the joint model of binary
toxicity and ordinal efficacy (:class:`dosezoo.models.joint_probit.JointProbit`):

- a toxicity target interval :math:`[\ell, u]` (default :math:`[0.16, 0.33]`), so that toxicity
  still drives the escalation;
- an efficacy threshold :math:`e` for the response rate :math:`P(E \ge 1)` (default 0.2);
- overdose control: a dose :math:`d` is excluded when
  :math:`P(p_T(d) > \bar p \mid \text{data}) > c_{od}` (over-toxic level :math:`\bar p = 0.4`;
  the cut-off :math:`c_{od}`, 0.25 by default as in EWOC-type rules, is not given by the seed);
- next dose: among the doses not excluded, the one with the maximal posterior probability of
  the target event

  .. math:: \pi(d) = P\big(\ell \le p_T(d) \le u \ \text{and}\ p_E(d) \ge e \mid \text{data}\big).

This module adds what a trial needs and the seed leaves open, each an option:

- *no skipping*: the next dose is at most one level above the highest level given so far;
- *safety stop*: the trial stops when the lowest dose is excluded;
- *futility stop* (off by default): after ``futility_min_patients`` patients, stop when no
  non-excluded dose has :math:`P(p_E(d) \ge e \mid \text{data})` of at least
  ``futility_cutoff``;
- *final recommendation* (:meth:`OptimusRule.recommend_from`): the optimal biological dose
  (OBD) is the dose maximising :math:`\pi(d)` among the doses given to patients and not
  excluded, and the *recommended dose range*, which Project Optimus asks for to randomise in
  phase 2, is every such dose with :math:`\pi(d) \ge` ``range_probability``. The OBD is
  recommended only if it is in the range; otherwise no dose is recommended.

Ties in :math:`\pi` go to the lower dose. The rule judges the fit on ``p_tox`` and
``p_response`` (:class:`dosezoo.diagnostics.ConvergenceCriteria`) and refuses to act on a fit
that fails (:class:`dosezoo.errors.ConvergenceError`).
"""

import hashlib
import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

import numpy as np
import xarray as xr

from dosezoo.data import TrialData
from dosezoo.designs.boin import level_counts, validate_dose_levels, validate_start_dose
from dosezoo.decision import Decision
from dosezoo.diagnostics import ConvergenceCriteria, ConvergenceReport
from dosezoo.errors import ConvergenceError
from dosezoo.models.joint_probit import JointProbit

__all__ = ["OptimusDesign", "OptimusRule", "PosteriorRates"]


def _real(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{owner}: {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    return float(value)


def _unit(owner: str, name: str, value: object) -> float:
    number = _real(owner, name, value)
    if not 0 < number < 1:
        raise ValueError(f"{owner}: {name} must lie in (0, 1), got {value!r}")
    return number


def _integer(owner: str, name: str, value: object, smallest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < smallest:
        raise ValueError(f"{owner}: {name} must be an integer >= {smallest}, got {value!r}")
    return int(value)


@dataclass(frozen=True, eq=False)
class PosteriorRates:
    """Posterior draws of the per-dose rates and the fit's convergence report.

    Attributes
    ----------
    p_tox, p_response : numpy.ndarray
        Draws shaped ``(n_draws, n_levels)``.
    report : ConvergenceReport
        Diagnostics of the fit on ``p_tox`` and ``p_response``.
    """

    p_tox: np.ndarray
    p_response: np.ndarray
    report: ConvergenceReport

    @classmethod
    def from_idata(cls, idata: xr.DataTree, criteria: ConvergenceCriteria) -> "PosteriorRates":
        """Read ``p_tox`` and ``p_response`` from a fit and judge it by ``criteria``."""
        if not isinstance(idata, xr.DataTree) or "posterior" not in idata.children:
            raise TypeError(
                "expected an InferenceData (xarray.DataTree) with a posterior group, got "
                f"{type(idata).__name__}"
            )
        posterior = idata["posterior"]
        missing = [n for n in ("p_tox", "p_response") if n not in posterior.data_vars]
        if missing:
            raise ValueError(f"the posterior lacks {missing}; fit a JointProbit model")

        def flat(name: str) -> np.ndarray:
            values = posterior[name].transpose("chain", "draw", "dose").to_numpy()
            return values.reshape(-1, values.shape[-1])

        return cls(
            flat("p_tox"), flat("p_response"), criteria.check(idata, ["p_tox", "p_response"])
        )


@dataclass(frozen=True)
class OptimusRule:
    """Seed 000's selection rule: target toxicity interval, efficacy threshold, overdose control.

    Parameters
    ----------
    dose_levels : sequence of float
        The candidate doses, increasing (those of the model).
    tox_interval : tuple of float
        Target interval of the toxicity probability (0.16, 0.33).
    efficacy_threshold : float
        Smallest acceptable response rate ``P(E >= 1)`` (0.2).
    overdose_limit : float
        Over-toxic level (0.4).
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
    convergence : ConvergenceCriteria
        Checks on ``p_tox`` and ``p_response`` the fit must pass.
    """

    dose_levels: Sequence[float]
    _: KW_ONLY
    tox_interval: tuple[float, float] = (0.16, 0.33)
    efficacy_threshold: float = 0.2
    overdose_limit: float = 0.4
    overdose_cutoff: float = 0.25
    range_probability: float = 0.3
    futility_cutoff: float | None = None
    futility_min_patients: int = 9
    convergence: ConvergenceCriteria = field(default_factory=ConvergenceCriteria)

    def __post_init__(self) -> None:
        """Validate the options, naming the one at fault."""
        owner = "OptimusRule"
        object.__setattr__(self, "dose_levels", validate_dose_levels(owner, self.dose_levels))
        try:
            low, high = self.tox_interval
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner}: tox_interval must be a pair (low, high), got {self.tox_interval!r}"
            ) from None
        low, high = _unit(owner, "tox_interval[0]", low), _unit(owner, "tox_interval[1]", high)
        if not low < high:
            raise ValueError(f"{owner}: tox_interval must have low < high, got {(low, high)!r}")
        object.__setattr__(self, "tox_interval", (low, high))
        for name in (
            "efficacy_threshold",
            "overdose_limit",
            "overdose_cutoff",
            "range_probability",
        ):
            object.__setattr__(self, name, _unit(owner, name, getattr(self, name)))
        if self.futility_cutoff is not None:
            object.__setattr__(
                self, "futility_cutoff", _unit(owner, "futility_cutoff", self.futility_cutoff)
            )
        object.__setattr__(
            self,
            "futility_min_patients",
            _integer(owner, "futility_min_patients", self.futility_min_patients, 1),
        )
        if not isinstance(self.convergence, ConvergenceCriteria):
            raise TypeError(
                f"{owner}: convergence must be a ConvergenceCriteria, got {self.convergence!r}"
            )

    # ----------------------------------------------------------------- posterior summaries

    def summaries(self, rates: PosteriorRates) -> dict[str, np.ndarray]:
        """Per-dose posterior probabilities the rule uses.

        Returns
        -------
        dict
            ``p_target`` (the target event), ``p_overdose`` (``p_tox > overdose_limit``),
            ``p_efficacious`` (``p_response >= efficacy_threshold``), ``excluded`` (bool).
        """
        p_tox, p_response = rates.p_tox, rates.p_response
        if p_tox.shape != p_response.shape or p_tox.shape[-1] != len(self.dose_levels):
            raise ValueError(
                f"OptimusRule: rates must be shaped (draws, {len(self.dose_levels)}), got "
                f"{p_tox.shape} and {p_response.shape}"
            )
        low, high = self.tox_interval
        efficacious = p_response >= self.efficacy_threshold
        target = (p_tox >= low) & (p_tox <= high) & efficacious
        p_overdose = np.mean(p_tox > self.overdose_limit, axis=0)
        return {
            "p_target": np.mean(target, axis=0),
            "p_overdose": p_overdose,
            "p_efficacious": np.mean(efficacious, axis=0),
            "excluded": p_overdose > self.overdose_cutoff,
        }

    def _quantities(self, summary: dict[str, np.ndarray]) -> dict[str, float]:
        quantities: dict[str, float] = {}
        for k in range(len(self.dose_levels)):
            for name in ("p_target", "p_overdose", "p_efficacious"):
                quantities[f"{name}_{k}"] = float(summary[name][k])
        quantities["n_excluded"] = float(np.sum(summary["excluded"]))
        return quantities

    @staticmethod
    def _best(candidates: np.ndarray, p_target: np.ndarray) -> int:
        """Return the candidate with the largest ``p_target``, the lowest among ties."""
        return int(candidates[np.argmax(p_target[candidates])])

    def _checked(self, rates: PosteriorRates, data: TrialData):
        if not isinstance(data, TrialData):
            raise TypeError(f"OptimusRule needs a TrialData, got {type(data).__name__}")
        if not rates.report.ok:
            raise ConvergenceError(
                "OptimusRule will not act on this fit: " + "; ".join(rates.report.failures)
            )
        counts = level_counts(data, self.dose_levels, owner="OptimusRule")
        return counts, self.summaries(rates)

    # ----------------------------------------------------------------- decisions

    def decide(self, idata: xr.DataTree, data: TrialData) -> Decision:
        """Next dose from a fit of the joint model (any engine).

        Parameters
        ----------
        idata : xarray.DataTree
            A fit with ``p_tox`` and ``p_response`` (dims chain, draw, dose).
        data : TrialData
            The trial so far (at least one patient).

        Returns
        -------
        Decision
            The next dose, or a stop (safety, futility), with per-dose ``p_target_<k>``,
            ``p_overdose_<k>`` and ``p_efficacious_<k>`` in its quantities.

        Raises
        ------
        ConvergenceError
            If the fit fails ``convergence`` on ``p_tox`` or ``p_response``.
        """
        return self.choose(PosteriorRates.from_idata(idata, self.convergence), data)

    def choose(self, rates: PosteriorRates, data: TrialData) -> Decision:
        """Next dose from posterior rates (see :meth:`decide`)."""
        counts, summary = self._checked(rates, data)
        quantities = self._quantities(summary)
        diagnostics = rates.report.table
        if summary["excluded"][0]:
            return Decision(
                None,
                stop_reason=(
                    f"safety: the lowest dose {self.dose_levels[0]:g} is overdosed, "
                    f"P(p_tox > {self.overdose_limit:g}) = {summary['p_overdose'][0]:.3f} > "
                    f"{self.overdose_cutoff:g}"
                ),
                quantities=quantities,
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

    def recommend_from(self, rates: PosteriorRates, data: TrialData) -> Decision:
        """Recommend the OBD and the dose range at the end of a trial.

        Returns
        -------
        Decision
            The OBD as ``next_dose`` (or a stop when no dose qualifies); quantities add
            ``range_lowest_dose``, ``range_highest_dose``, ``range_size`` and
            ``in_range_<k>`` (1.0 / 0.0) for every level.
        """
        counts, summary = self._checked(rates, data)
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
                diagnostics=rates.report.table,
            )
        best = self._best(np.flatnonzero(in_range), summary["p_target"])
        return Decision(
            self.dose_levels[best], quantities=quantities, diagnostics=rates.report.table
        )

    def describe(self) -> dict[str, float | int | str | None]:
        """Flat record of the rule's options."""
        return {
            "dose_levels": ",".join(f"{v:g}" for v in self.dose_levels),
            "tox_low": self.tox_interval[0],
            "tox_high": self.tox_interval[1],
            "efficacy_threshold": self.efficacy_threshold,
            "overdose_limit": self.overdose_limit,
            "overdose_cutoff": self.overdose_cutoff,
            "range_probability": self.range_probability,
            "futility_cutoff": self.futility_cutoff,
            "futility_min_patients": self.futility_min_patients,
            "max_rhat": self.convergence.max_rhat,
            "min_ess_bulk": self.convergence.min_ess_bulk,
            "min_ess_tail": self.convergence.min_ess_tail,
        }


def decide(idata: xr.DataTree, data: TrialData, rule: OptimusRule | None = None) -> Decision:
    """Next dose by seed 000's rule (default options) from a fit of the joint model.

    Parameters
    ----------
    idata : xarray.DataTree
        A :class:`~dosezoo.models.joint_probit.JointProbit` fit; its dose coordinate gives the
        dose levels when ``rule`` is None.
    data : TrialData
        The trial so far.
    rule : OptimusRule, optional
        The options; seed 000's defaults by default.

    Returns
    -------
    Decision
    """
    if rule is None:
        rule = OptimusRule(tuple(float(v) for v in idata["posterior"]["dose"].to_numpy()))
    return rule.decide(idata, data)


@dataclass(frozen=True)
class OptimusDesign:
    """Joint-probit model + seed 000's rule + conduct, for trials and simulation.

    The first cohort gets ``start_dose``; each later cohort the rule's next dose; the trial
    ends after ``sample_size`` patients or at a safety / futility stop. The posterior is the
    model's kernel engine (or another), seeded from ``random_seed`` and the data, so every
    decision is a deterministic function of the data. A fit that fails the rule's convergence
    checks is refitted once with ``refit_factor`` times the draws and burn-in; if it fails
    again the design raises :class:`~dosezoo.errors.ConvergenceError` rather than act on it.

    Parameters
    ----------
    model : JointProbit
        The model; its dose levels are the design's.
    rule : OptimusRule, optional
        Default: seed 000's options on the model's dose levels.
    start_dose : float, optional
        One of the levels; the lowest by default.
    cohort_size, sample_size : int
        3 and 36.
    engine : {"kernel", "pymc", "nuts"}
        Posterior engine ("kernel").
    draws, tune, chains : int
        MCMC settings (1000, 500, 2).
    refit_factor : int
        Multiplier of draws and tune for the one refit (4).
    random_seed : int
        Seed of the fits (0).
    """

    model: JointProbit
    rule: OptimusRule | None = None
    _: KW_ONLY
    start_dose: float | None = None
    cohort_size: int = 3
    sample_size: int = 36
    engine: Literal["kernel", "pymc", "nuts"] = "kernel"
    draws: int = 1000
    tune: int = 500
    chains: int = 2
    refit_factor: int = 4
    random_seed: int = 0

    def __post_init__(self) -> None:
        """Validate the conduct, naming the field at fault."""
        owner = "OptimusDesign"
        if not isinstance(self.model, JointProbit):
            raise TypeError(f"{owner}: model must be a JointProbit, got {self.model!r}")
        rule = OptimusRule(self.model.dose_levels) if self.rule is None else self.rule
        if not isinstance(rule, OptimusRule):
            raise TypeError(f"{owner}: rule must be an OptimusRule, got {rule!r}")
        if rule.dose_levels != self.model.dose_levels:
            raise ValueError(
                f"{owner}: the rule's dose_levels {rule.dose_levels} differ from the model's "
                f"{self.model.dose_levels}"
            )
        object.__setattr__(self, "rule", rule)
        object.__setattr__(
            self, "start_dose", validate_start_dose(owner, self.start_dose, rule.dose_levels)
        )
        for name, smallest in (
            ("cohort_size", 1),
            ("sample_size", 1),
            ("draws", 1),
            ("tune", 0),
            ("chains", 1),
            ("refit_factor", 1),
            ("random_seed", 0),
        ):
            object.__setattr__(self, name, _integer(owner, name, getattr(self, name), smallest))
        if self.cohort_size > self.sample_size:
            raise ValueError(
                f"{owner}: cohort_size {self.cohort_size} exceeds sample_size {self.sample_size}"
            )
        if self.engine not in ("kernel", "pymc", "nuts"):
            raise ValueError(
                f"{owner}: engine must be 'kernel', 'pymc' or 'nuts', got {self.engine!r}"
            )

    def _validate(self, data: TrialData) -> None:
        """Refuse data the model cannot use, or doses off the levels, before any fit."""
        self.model.arrays(data)
        level_counts(data, self.rule.dose_levels, owner="OptimusDesign")

    def _seed_for(self, data: TrialData) -> int:
        digest = hashlib.sha256(np.asarray(data.dose, float).tobytes())
        for name in ("dlt", "efficacy"):
            digest.update(np.asarray(data.column(name), float).tobytes())
        return int.from_bytes(digest.digest()[:8], "little") ^ self.random_seed

    def posterior(self, data: TrialData) -> tuple[PosteriorRates, int]:
        """Fit the model to ``data``; return the rates and the number of refits (0 or 1)."""
        seed = self._seed_for(data)
        for refits, factor in enumerate((1, self.refit_factor)):
            idata = self.model.fit(
                data,
                engine=self.engine,
                draws=self.draws * factor,
                tune=self.tune * factor,
                chains=self.chains,
                random_seed=seed + refits,
            )
            rates = PosteriorRates.from_idata(idata, self.rule.convergence)
            if rates.report.ok:
                return rates, refits
        return rates, refits

    def next(self, data: TrialData) -> Decision:
        """Dose of the next cohort, or why the trial stops.

        Parameters
        ----------
        data : TrialData
            The trial so far, with ``dlt`` and ``efficacy`` (may be empty).

        Returns
        -------
        Decision
        """
        self._validate(data)
        if data.n_patients >= self.sample_size:
            return Decision(
                None, stop_reason=f"sample size reached: {data.n_patients} of {self.sample_size}"
            )
        if not data.n_patients:
            return Decision(self.start_dose, bound_by=("start_dose",))
        rates, refits = self.posterior(data)
        decision = self.rule.choose(rates, data)
        decision.quantities["refits"] = float(refits)
        return decision

    def recommend(self, data: TrialData) -> Decision:
        """Recommend the OBD and the dose range after the trial (see the rule).

        A trial stopped for safety recommends nothing, since its lowest dose is excluded.
        """
        self._validate(data)
        if not data.n_patients:
            return Decision(None, stop_reason="no OBD: no patients")
        rates, refits = self.posterior(data)
        decision = self.rule.recommend_from(rates, data)
        decision.quantities["refits"] = float(refits)
        return decision

    def describe(self) -> dict[str, float | int | str | bool | None]:
        """Flat record of the design's parameters (for simulation results)."""
        prior = {f"prior_{k}": v for k, v in self.model.prior.as_dict().items()}
        return {
            "name": "OptimusDesign",
            "model": "JointProbit",
            **prior,
            **self.rule.describe(),
            "start_dose": self.start_dose,
            "cohort_size": self.cohort_size,
            "sample_size": self.sample_size,
            "engine": self.engine,
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "refit_factor": self.refit_factor,
            "random_seed": self.random_seed,
        }
