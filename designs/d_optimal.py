r"""Multi-stage adaptive D-optimal designs for the Weibull AFT model, with precision stopping.

The Weibull D-optimal paper (Ryeznik, Sverdlov et al.), sections "Adaptive D-optimal designs" and
"Designs with early stopping criteria", and its Discussion. The criterion, the optimiser and the
equivalence theorem are in :mod:`dosezoo.designs.optimal`.

Randomisation
-------------
:func:`efficient_rounding` turns weights into counts for :math:`n` patients (Pukelsheim and
Rieder 1992). Within a stage, patients are randomised to the stage's doses one by one with the
design's weights (the paper: "the randomization probabilities were applied individually to
every subject"); ``allocation="rounded"`` allocates the efficiently rounded counts in a random
order instead.

Multi-stage designs and stopping
--------------------------------
:class:`DOptimalRule` (in ``Design(model, rule, conduct)`` a :class:`StagedDesign`): stage 1
(``first_stage`` patients) follows the initial design (uniform on {0, 0.5, 1}); at each
interim the model is refitted to the data of the completed stages and the next stage
(``stage_size`` patients, or the rest of ``sample_size``) follows the updated design. With
``stopping_eta`` the trial stops at an interim once the MLE is precise enough (eq 9):

.. math::

    |M_{obs}^{-1}(\hat\theta)| \le \left(\eta^k \prod_j |\hat\theta_j|\right)^2,

the volume of the confidence ellipsoid were every parameter estimated with coefficient of
variation :math:`\eta` and no correlation (``stopping="max_cv"``: :math:`\max_j SE_j /
|\hat\theta_j| \le \eta`, the variant of the Discussion). Eq 9 uses the *observed*
information, so the prefactor question of eq 6 does not enter it.

When the interim MLE does not exist (every patient at a dose censored: frequent with heavy
censoring, e.g. shape I at 25% events, where :math:`P(\text{event} \mid x = 1) < 0.01`), the
paper is silent. Here (``no_mle="map"``, default) the stage is designed at the posterior mode
under the model's weakly informative prior, with the posterior's information as :math:`P`;
``no_mle="initial"`` repeats the initial design. The decision records which was used
(``estimate_is_mle``). A trial never stops without an MLE.
"""

import hashlib
import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np

from dosezoo.checks import choice, integer, positive_int, positive_number, probability
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import Conduct, Design, ModelRule, dataclass_options
from dosezoo.designs.optimal import ApproximateDesign, optimal_design, uniform_design
from dosezoo.errors import DataError
from dosezoo.models.weibull_aft import WeibullAFT, WeibullMLE, WeibullPosterior
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described
from dosezoo.scenarios.weibull import WeibullScenario

__all__ = [
    "DOptimalRule",
    "PrecisionStopping",
    "StagePlan",
    "StagedDesign",
    "adaptive_d_optimal_design",
    "run_staged_trial",
]


# ---------------------------------------------------------------------------- stopping


@dataclass(frozen=True)
class PrecisionStopping:
    r"""Stop once the parameters are estimated precisely enough (the paper's eq 9).

    Parameters
    ----------
    eta : float
        Target coefficient of variation :math:`\eta` in (0, 1) (0.2 in the paper).
    criterion : {"volume", "max_cv"}
        ``"volume"``: :math:`|I_{obs}^{-1}| \le (\eta^k \prod_j |\hat\theta_j|)^2` (eq 9);
        ``"max_cv"``: :math:`\max_j SE_j / |\hat\theta_j| \le \eta` (the Discussion's
        variant).
    """

    eta: float = 0.2
    criterion: Literal["volume", "max_cv"] = "volume"

    def __post_init__(self) -> None:
        """Validate, naming the field at fault."""
        object.__setattr__(self, "eta", probability("PrecisionStopping", "eta", self.eta))
        choice("PrecisionStopping", "criterion", self.criterion, ("volume", "max_cv"))

    def evaluate(
        self, estimate: np.ndarray, covariance: np.ndarray
    ) -> tuple[bool, dict[str, float]]:
        """Whether to stop, and the log volume, its bound and the largest CV."""
        estimate = np.asarray(estimate, dtype=float)
        k = estimate.size
        sign, log_volume = np.linalg.slogdet(covariance)
        with np.errstate(divide="ignore"):
            log_bound = 2.0 * (k * math.log(self.eta) + float(np.sum(np.log(np.abs(estimate)))))
            cv = np.sqrt(np.maximum(np.diag(covariance), 0.0)) / np.abs(estimate)
        quantities = {
            "log_volume": float(log_volume) if sign > 0 else math.inf,
            "log_volume_bound": log_bound,
            "max_cv": float(np.max(cv)),
        }
        if self.criterion == "volume":
            stop = sign > 0 and log_volume <= log_bound
        else:
            stop = bool(np.max(cv) <= self.eta)
        return bool(stop), quantities

    def describe(self) -> Described:
        """Flat record of the options."""
        return {"eta": self.eta, "criterion": self.criterion}


# ---------------------------------------------------------------------------- the rule


@dataclass(frozen=True, eq=False)
class StagePlan:
    """What an interim decides: a stop, or the next stage's design, with its quantities.

    Attributes
    ----------
    design : ApproximateDesign or None
        The stage's design (None for a stop).
    stop_reason : str or None
        Why the trial stops at this interim.
    quantities : dict of str to float
        Stage, estimate, support and weights, criterion, GET maximum, stopping statistics.
    bound_by : tuple of str
        ``("initial_design",)`` for stage 1 and fixed designs, ``("no_mle",)`` when the
        fallback was used, ``("precision",)`` for a stop.
    """

    design: ApproximateDesign | None
    stop_reason: str | None
    quantities: dict[str, float]
    bound_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class DOptimalRule(ModelRule):
    r"""Multi-stage D-optimal allocation with MLE or Bayesian updating and precision stopping.

    Parameters
    ----------
    first_stage : int
        :math:`n^{(1)}`, patients of stage 1 (allocated by ``initial``).
    stage_size : int or None
        Patients of every later stage; None: one more stage, the rest of ``sample_size``
        (the two-stage design).
    tau : float or None
        Follow-up of every patient (type I censoring) in the expected information; None: no
        censoring.
    updating : {"mle", "bayes", "none"}
        Eq 8 at the MLE; the posterior expectation over the draws of a fit (the conduct's
        ``engine``: ``"nuts"``, or ``"mle"`` for the MLE's asymptotic draws); or never
        (every stage follows ``initial``: the uniform and the locally optimal comparators).
    initial : ApproximateDesign
        The design of stage 1 (uniform on {0, 0.5, 1}).
    accrued : {"observed", "expected", "none"} or None
        :math:`P` of the criterion: the observed information of the earlier stages at the
        estimate (eq 8), the expected information of their realised allocation, or none;
        None: ``"observed"`` for ``"mle"``, ``"expected"`` for ``"bayes"``.
    allocation : {"randomised", "rounded"}
        Per-patient randomisation with the design's weights (the paper), or its efficiently
        rounded counts in random order.
    stopping : PrecisionStopping or None
        Eq 9 (or max CV), checked at every interim; None: no early stop.
    no_mle : {"map", "initial"}
        When the interim MLE does not exist: the posterior mode, or the initial design.
    candidates : sequence of float, optional
        A finite design space (the model's dose range by default).
    grid_size : int
        Grid of the optimiser's first step.
    bayes_points : int
        Posterior draws entering the Bayesian criterion (equally spaced).
    """

    label: ClassVar[str] = "D-optimal"
    model_type: ClassVar[type] = WeibullAFT

    first_stage: int
    stage_size: int | None = None
    tau: float | None = None
    _: KW_ONLY
    updating: Literal["mle", "bayes", "none"] = "mle"
    initial: ApproximateDesign = field(default_factory=uniform_design)
    accrued: Literal["observed", "expected", "none"] | None = None
    allocation: Literal["randomised", "rounded"] = "randomised"
    stopping: PrecisionStopping | None = None
    no_mle: Literal["map", "initial"] = "map"
    candidates: Sequence[float] | None = None
    grid_size: int = 21
    bayes_points: int = 200
    _sample_size: int | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "DOptimalRule"
        object.__setattr__(
            self, "first_stage", positive_int(owner, "first_stage", self.first_stage)
        )
        if self.stage_size is not None:
            object.__setattr__(
                self, "stage_size", positive_int(owner, "stage_size", self.stage_size)
            )
        if self.tau is not None:
            object.__setattr__(self, "tau", positive_number(owner, "tau", self.tau))
        choice(owner, "updating", self.updating, ("mle", "bayes", "none"))
        if not isinstance(self.initial, ApproximateDesign):
            raise ValueError(f"{owner}: initial must be an ApproximateDesign, got {self.initial!r}")
        accrued = self.accrued
        if accrued is None:
            accrued = "expected" if self.updating == "bayes" else "observed"
        choice(owner, "accrued", accrued, ("observed", "expected", "none"))
        if self.updating == "bayes" and accrued == "observed":
            raise ValueError(f"{owner}: accrued='observed' needs updating='mle'")
        object.__setattr__(self, "accrued", accrued)
        choice(owner, "allocation", self.allocation, ("randomised", "rounded"))
        if self.stopping is not None and not isinstance(self.stopping, PrecisionStopping):
            raise ValueError(f"{owner}: stopping must be a PrecisionStopping or None")
        choice(owner, "no_mle", self.no_mle, ("map", "initial"))
        if self.candidates is not None:
            object.__setattr__(self, "candidates", tuple(float(x) for x in self.candidates))
        integer(owner, "grid_size", self.grid_size, minimum=5)
        positive_int(owner, "bayes_points", self.bayes_points)

    # ------------------------------------------------------------------ binding

    def bind(self, model: Any, conduct: Conduct) -> "DOptimalRule":
        """Check the model, the design space and the conduct (cohorts of one patient)."""
        bound = super().bind(model, conduct)
        lo, hi = model.dose_range
        for name, doses in (
            ("initial", self.initial.support),
            ("candidates", self.candidates or ()),
        ):
            outside = [x for x in doses if not lo <= x <= hi]
            if outside:
                raise ValueError(
                    f"DOptimalRule: {name} has doses {outside} outside the design space "
                    f"[{lo:g}, {hi:g}]"
                )
        if conduct.cohort_size != 1:
            raise ValueError(
                "DOptimalRule: conduct.cohort_size must be 1 (patients are randomised one by one "
                f"within a stage of first_stage / stage_size patients), got {conduct.cohort_size}"
            )
        if self.first_stage > conduct.sample_size:
            raise ValueError(
                f"DOptimalRule: first_stage {self.first_stage} exceeds the sample size "
                f"{conduct.sample_size}"
            )
        if self.updating == "bayes" and conduct.engine is None:
            raise ValueError(
                "DOptimalRule: updating='bayes' needs conduct.engine ('nuts' or 'mle')"
            )
        return bound._bound(_sample_size=conduct.sample_size)

    def boundaries(self, sample_size: int) -> list[int]:
        """Patients enrolled before each stage: 0, :math:`n^{(1)}`, ... (< ``sample_size``)."""
        starts = [0, self.first_stage]
        if self.stage_size is not None:
            while starts[-1] + self.stage_size < sample_size:
                starts.append(starts[-1] + self.stage_size)
        return [s for s in starts if s < sample_size]

    def needs_posterior(self, data: TrialData, *, final: bool) -> bool:
        """Ask for a fitted posterior only for Bayesian updating, at an interim."""
        return self.updating == "bayes" and not final and data.n_patients > 0

    # ------------------------------------------------------------------ interims

    def _estimate(
        self, dose: np.ndarray, time: np.ndarray, event: np.ndarray
    ) -> tuple[WeibullMLE | None, str]:
        """Return the MLE, else (``no_mle="map"``) the posterior mode; and the MLE's failure."""
        model: WeibullAFT = self.model
        design = model.regressors(dose)
        log_time, event = np.log(time), np.asarray(event, dtype=float)
        try:
            return model.estimate(design, log_time, event), ""
        except DataError as error:
            failure = str(error)
        if self.no_mle == "map" and event.sum() > 0:
            try:
                return model.estimate(design, log_time, event, penalised=True), failure
            except DataError:
                pass
        return None, failure

    def plan(
        self,
        dose: np.ndarray,
        time: np.ndarray,
        event: np.ndarray,
        sample_size: int,
        posterior: DosePosterior | None = None,
    ) -> StagePlan:
        """Decide the interim after the patients given: a stop (eq 9) or the next stage's design.

        Parameters
        ----------
        dose, time, event : numpy.ndarray
            Every patient of the completed stages.
        sample_size : int
            The trial's maximum sample size (the last stage is truncated to it).
        posterior : DosePosterior, optional
            A fit of these data (Bayesian updating).

        Returns
        -------
        StagePlan
        """
        n = int(np.size(dose))
        starts = self.boundaries(sample_size)
        stage = sum(1 for s in starts if s <= n) - 1
        upcoming = self._stage_length(n, starts, sample_size)
        quantities: dict[str, float] = {
            "stage": float(stage + 1),
            "stage_patients": float(upcoming),
        }
        fixed = StagePlan(
            self.initial, None, quantities | _design_quantities(self.initial), ("initial_design",)
        )
        if n == 0 or (self.updating == "none" and self.stopping is None):
            return fixed
        model: WeibullAFT = self.model
        fit, _ = self._estimate(np.asarray(dose), np.asarray(time), np.asarray(event))
        if fit is not None:
            quantities |= {name: float(v) for name, v in zip(fit.names, fit.theta, strict=True)}
            quantities["estimate_is_mle"] = 0.0 if fit.penalised else 1.0
        else:
            quantities["estimate_is_mle"] = 0.0
        if self.stopping is not None:
            if fit is not None and not fit.penalised:
                stop, statistics = self.stopping.evaluate(fit.theta, fit.covariance)
                quantities |= statistics
                if stop:
                    return StagePlan(
                        None,
                        _precision_reason(self.stopping, statistics, n),
                        quantities,
                        ("precision",),
                    )
        if self.updating == "none":
            return replace(fixed, quantities=quantities | _design_quantities(self.initial))
        if self.updating == "bayes" and posterior is None:
            return StagePlan(
                self.initial,
                None,
                quantities | _design_quantities(self.initial),
                ("no_posterior", "initial_design"),
            )
        if self.updating == "bayes":
            if not isinstance(posterior, WeibullPosterior):
                raise ValueError("DOptimalRule: Bayesian updating needs a WeibullPosterior")
            thetas = posterior.theta
            keep = np.unique(
                np.linspace(0, len(thetas) - 1, min(self.bayes_points, len(thetas)))
                .round()
                .astype(int)
            )
            thetas = thetas[keep]
            prior = None
            if self.accrued == "expected":
                info = model.information_points(np.asarray(dose, float), thetas, self.tau)[0]
                prior = info.sum(axis=1)
            design = optimal_design(
                model,
                thetas,
                self.tau,
                prior_information=prior,
                stage_size=upcoming,
                candidates=self.candidates,
                grid_size=self.grid_size,
            )
            return StagePlan(design, None, quantities | _design_quantities(design), ("bayes",))
        if fit is None:
            return StagePlan(
                self.initial,
                None,
                quantities | _design_quantities(self.initial),
                ("no_mle", "initial_design"),
            )
        prior = None
        if self.accrued == "observed":
            prior = fit.observed_information
        elif self.accrued == "expected":
            prior = model.information(np.asarray(dose, float), fit.theta, self.tau).sum(axis=0)
        design = optimal_design(
            model,
            fit.theta[None],
            self.tau,
            prior_information=prior,
            stage_size=upcoming,
            candidates=self.candidates,
            grid_size=self.grid_size,
        )
        bound = ("no_mle",) if fit.penalised else ()
        return StagePlan(design, None, quantities | _design_quantities(design), bound)

    @staticmethod
    def _stage_length(n: int, starts: list[int], sample_size: int) -> int:
        later = [s for s in starts if s > n]
        return (later[0] if later else sample_size) - n

    def final_estimate(
        self, dose: np.ndarray, time: np.ndarray, event: np.ndarray
    ) -> dict[str, float]:
        """Return the final MLE (or its fallback) with standard errors, as quantities."""
        quantities: dict[str, float] = {"final_n": float(np.size(dose))}
        if np.size(dose) == 0:
            return quantities
        fit, _ = self._estimate(np.asarray(dose), np.asarray(time), np.asarray(event))
        if fit is None:
            return quantities | {"estimate_is_mle": 0.0}
        return quantities | fit.as_dict() | {"estimate_is_mle": 0.0 if fit.penalised else 1.0}

    # ------------------------------------------------------------------ the Rule methods

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide the next stage's allocation after ``data`` (a stop, or its design).

        ``next_dose`` is the dose of largest weight (a Decision names one dose); the
        allocation is in the quantities (``support_<j>``, ``weight_<j>``, ``count_<j>`` for
        the stage's patients by efficient rounding, ``criterion``, ``get_max``).
        """
        if self._sample_size is None:
            raise ValueError("DOptimalRule is not bound to a conduct; use it in a Design")
        dose, time, event = _arrays(data)
        return _stage_decision(self.plan(dose, time, event, self._sample_size, posterior))

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """No dose is selected: the final estimate of the dose-response is in the quantities."""
        dose, time, event = _arrays(data)
        return Decision(
            None,
            stop_reason="no dose is selected: the design estimates the dose-response curve "
            "(final estimate in the quantities)",
            quantities=self.final_estimate(dose, time, event),
        )

    def describe(self) -> Described:
        """Flat record of the rule's options."""
        record = dataclass_options(self, skip=("initial", "stopping", "candidates"))
        record["initial"] = repr(self.initial)
        record["candidates"] = (
            "continuous" if self.candidates is None else ",".join(map(str, self.candidates))
        )
        if self.stopping is not None:
            record |= {f"stopping_{k}": v for k, v in self.stopping.describe().items()}
        return record


def _arrays(data: TrialData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.asarray(data.dose, dtype=float),
        np.asarray(data.column("time"), dtype=float),
        np.asarray(data.column("event"), dtype=float),
    )


def _design_quantities(design: ApproximateDesign) -> dict[str, float]:
    return design.quantities()


def _precision_reason(stopping: PrecisionStopping, statistics: dict[str, float], n: int) -> str:
    if stopping.criterion == "volume":
        return (
            f"precision reached after {n} patients (eq 9, eta = {stopping.eta:g}): log |I^-1| = "
            f"{statistics['log_volume']:.3f} <= {statistics['log_volume_bound']:.3f}"
        )
    return (
        f"precision reached after {n} patients: max CV {statistics['max_cv']:.3f} <= "
        f"{stopping.eta:g}"
    )


def _stage_decision(plan: StagePlan) -> Decision:
    if plan.design is None:
        return Decision(
            None, stop_reason=plan.stop_reason, quantities=plan.quantities, bound_by=plan.bound_by
        )
    design = plan.design
    counts = design.counts(int(plan.quantities["stage_patients"]))
    quantities = plan.quantities | {f"count_{j}": float(c) for j, c in enumerate(counts)}
    return Decision(
        float(design.support[int(np.argmax(design.weights))]),
        quantities=quantities,
        bound_by=plan.bound_by,
    )


# ---------------------------------------------------------------------------- the design


def _prefix_seed(random_seed: int, dose: np.ndarray, time: np.ndarray, event: np.ndarray) -> int:
    """Seed of a randomisation draw: ``random_seed`` XOR a hash of the data so far."""
    digest = hashlib.sha256(np.ascontiguousarray(dose, dtype=float).tobytes())
    digest.update(np.ascontiguousarray(time, dtype=float).tobytes())
    digest.update(np.ascontiguousarray(event, dtype=float).tobytes())
    return int.from_bytes(digest.digest()[:8], "little") ^ random_seed


def _uniform_for(random_seed: int, dose: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    return float(np.random.default_rng(_prefix_seed(random_seed, dose, time, event)).random())


@dataclass(frozen=True)
class StagedDesign(Design):
    r"""A multi-stage design whose patients are randomised one by one within each stage.

    ``Design(model, DOptimalRule(...), Conduct(cohort_size=1, ...))`` through
    :func:`adaptive_d_optimal_design`. The simulation engine asks :meth:`next` for one
    patient at a time; the stage's design is computed once, at the interim, from the data of
    the completed stages (cached), and each patient's dose is drawn with the design's weights
    from a uniform seeded by ``conduct.random_seed`` and a hash of the data so far (a
    decision must be a function of the data). :meth:`next_stage` returns the whole stage's
    allocation (the command line's ``next-dose``). The first patient's uniform depends on
    ``random_seed`` only: in a simulation every trial's first patient gets the same dose
    (the studies use :func:`run_staged_trial` with common random numbers instead).
    """

    rule: DOptimalRule

    def __getstate__(self) -> dict:
        """Pickle without the cache of stage plans."""
        return {key: value for key, value in self.__dict__.items() if key != "_plans"}

    def __setstate__(self, state: dict) -> None:
        """Restore from :meth:`__getstate__`."""
        self.__dict__.update(state)

    def _plan(self, data: TrialData, start: int) -> StagePlan:
        cache = self.__dict__.setdefault("_plans", {})
        dose, time, event = _arrays(data)
        key = (start, _prefix_seed(0, dose[:start], time[:start], event[:start]))
        plan = cache.get(key)
        if plan is None:
            posterior = None
            if self.rule.needs_posterior(data, final=False) and start > 0:
                prefix = _prefix(data, start)
                try:
                    posterior = self.posterior(prefix)
                except DataError:
                    posterior = None
                if posterior is not None:
                    refused = self._refused(posterior, prefix, final=False)
                    if refused is not None:
                        return StagePlan(None, refused.stop_reason, dict(refused.quantities))
            plan = self.rule.plan(
                dose[:start], time[:start], event[:start], self.sample_size, posterior
            )
            if len(cache) > 64:
                cache.clear()
            cache[key] = plan
        return plan

    def next(self, data: TrialData) -> Decision:
        """Dose of the next patient (randomised within the stage), or a stop at an interim."""
        data = self._check(data)
        reason = self.conduct.stop_reason(data)
        if reason:
            return Decision(None, stop_reason=reason)
        n = data.n_patients
        starts = self.rule.boundaries(self.sample_size)
        start = max(s for s in starts if s <= n)
        plan = self._plan(data, start)
        if plan.design is None:
            return Decision(
                None,
                stop_reason=plan.stop_reason,
                quantities=plan.quantities,
                bound_by=plan.bound_by,
            )
        dose, time, event = _arrays(data)
        if self.rule.allocation == "rounded":
            seed = _prefix_seed(self.conduct.random_seed, dose[:start], time[:start], event[:start])
            size = int(plan.quantities["stage_patients"])
            uniforms = np.random.default_rng(seed).random(size)
            chosen = float(plan.design.allocate(uniforms, rounded=True)[n - start])
        else:
            u = _uniform_for(self.conduct.random_seed, dose, time, event)
            chosen = float(plan.design.allocate(np.array([u]))[0])
        return Decision(chosen, quantities=dict(plan.quantities), bound_by=plan.bound_by)

    def next_stage(self, data: TrialData) -> Decision:
        """Decide the allocation of the stage that starts after ``data`` (a stop at eq 9).

        ``data`` must end at an interim (a stage boundary) or be empty.
        """
        data = self._check(data)
        reason = self.conduct.stop_reason(data)
        if reason:
            return Decision(None, stop_reason=reason)
        starts = self.rule.boundaries(self.sample_size)
        if data.n_patients not in starts:
            raise ValueError(
                f"{self.label}: {data.n_patients} patients is not a stage boundary; the stages "
                f"start after {', '.join(map(str, starts))} patients"
            )
        return _stage_decision(self._plan(data, data.n_patients))

    def recommend(self, data: TrialData) -> Decision:
        """Return the final estimate (no dose is selected by an estimation design)."""
        data = self._check(data)
        return self.rule.select(None, data)


def _prefix(data: TrialData, n: int) -> TrialData:
    if n == data.n_patients:
        return data
    frame = data.to_dataframe().iloc[:n]
    return TrialData.from_dataframe(frame.reset_index(drop=True))


def adaptive_d_optimal_design(
    model: WeibullAFT,
    *,
    first_stage: int,
    sample_size: int,
    stage_size: int | None = None,
    tau: float | None = None,
    random_seed: int = 0,
    engine: str | None = None,
    **options: Any,
) -> StagedDesign:
    """Return ``StagedDesign(model, DOptimalRule(...), Conduct(cohort_size=1, ...))``.

    Parameters
    ----------
    model : WeibullAFT
    first_stage, stage_size, tau
        See :class:`DOptimalRule`.
    sample_size : int
        Total (two-stage design) or maximum (with stopping) number of patients.
    random_seed : int
        Seed of the randomisation (and of MCMC fits).
    engine : str, optional
        The fit of Bayesian updating (``"nuts"`` by default for ``updating="bayes"``).
    **options
        Other options of :class:`DOptimalRule` (``updating``, ``stopping``, ``initial``,
        ...) and of :class:`~dosezoo.designs.base.Conduct` (``draws``, ``chains``, ...).

    Returns
    -------
    StagedDesign
    """
    conduct_names = {"draws", "tune", "chains", "convergence", "refits", "on_refusal"}
    conduct_options = {k: options.pop(k) for k in list(options) if k in conduct_names}
    if options.get("updating") == "bayes" and engine is None:
        engine = "nuts"
    lo = model.dose_range[0]
    conduct = Conduct(
        start_dose=lo,
        cohort_size=1,
        sample_size=sample_size,
        random_seed=random_seed,
        engine=engine,
        **conduct_options,
    )
    rule = DOptimalRule(first_stage, stage_size, tau, **options)
    return StagedDesign(model, rule, conduct)


# ---------------------------------------------------------------------------- fast runner


def run_staged_trial(
    design: StagedDesign,
    scenario: WeibullScenario,
    latent: np.ndarray,
    uniforms: np.ndarray | None = None,
) -> dict[str, Any]:
    r"""Run one trial of a staged design on arrays (no TrialData): the studies' engine.

    Patient :math:`j` has latent draw ``latent[j]`` (:math:`E_j \sim \mathrm{Exp}(1)`, see
    :meth:`WeibullScenario.draw_latent`) and randomisation uniform ``uniforms[j]``; passing
    the same arrays to several designs gives common random numbers. With ``uniforms`` None
    each patient's uniform is the one :meth:`StagedDesign.next` draws, and the trial equals
    the simulation engine's (``dosezoo.simulate.run_trial``) for a generator whose
    exponential draws are ``latent``.

    Returns
    -------
    dict
        ``dose``, ``time``, ``event`` (arrays), ``stop_reason``, ``plans`` (the
        :class:`StagePlan` of every interim, stage 1 included) and ``final`` (the final
        estimate's quantities).
    """
    rule = design.rule
    size = design.sample_size
    latent = np.asarray(latent, dtype=float)
    if latent.size < size or (uniforms is not None and np.size(uniforms) < size):
        raise ValueError(f"run_staged_trial: latent and uniforms need {size} values each")
    dose = np.empty(size)
    time = np.empty(size)
    event = np.empty(size)
    plans: list[StagePlan] = []
    starts = rule.boundaries(size)
    stop = ""
    n = 0
    for index, start in enumerate(starts):
        if rule.updating == "bayes":
            raise ValueError("run_staged_trial runs MLE-updated and fixed designs only")
        plan = rule.plan(dose[:start], time[:start], event[:start], size)
        plans.append(plan)
        if plan.design is None:
            stop = str(plan.stop_reason)
            break
        end = starts[index + 1] if index + 1 < len(starts) else size
        if uniforms is not None:
            u = np.asarray(uniforms[start:end], dtype=float)
            dose[start:end] = plan.design.allocate(u, rounded=rule.allocation == "rounded")
            outcome = scenario.outcomes_from_latent(dose[start:end], latent[start:end])
            time[start:end], event[start:end] = outcome["time"], outcome["event"]
        else:
            for j in range(start, end):
                if rule.allocation == "rounded":
                    seed = _prefix_seed(
                        design.conduct.random_seed, dose[:start], time[:start], event[:start]
                    )
                    order = np.random.default_rng(seed).random(end - start)
                    dose[j] = plan.design.allocate(order, rounded=True)[j - start]
                else:
                    u = _uniform_for(design.conduct.random_seed, dose[:j], time[:j], event[:j])
                    dose[j] = plan.design.allocate(np.array([u]))[0]
                outcome = scenario.outcomes_from_latent(dose[j : j + 1], latent[j : j + 1])
                time[j], event[j] = outcome["time"][0], outcome["event"][0]
        n = end
    return {
        "dose": dose[:n].copy(),
        "time": time[:n].copy(),
        "event": event[:n].copy(),
        "stop_reason": stop,
        "plans": plans,
        "final": rule.final_estimate(dose[:n], time[:n], event[:n]),
    }
