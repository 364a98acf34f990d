r"""Multi-stage adaptive D-optimal designs for the Weibull AFT model, with precision stopping.

The Weibull D-optimal paper, sections "Adaptive D-optimal designs" and
"Designs with early stopping criteria", and its Discussion. The criterion, the optimiser and the
equivalence theorem are in :mod:`dosezoo.designs.optimal`.

Stages and randomisation
------------------------
``Design(WeibullAFT(...), DOptimalRule(...), Conduct(cohort_size=1, ...))``
(:func:`adaptive_d_optimal_design`): stage 1 (``first_stage`` patients) follows the initial
design (uniform on {0, 0.5, 1}); at each interim the model is refitted to the data of the
completed stages and the next stage (``stage_size`` patients, the next of the ``stage_size``
sizes, or the rest of ``sample_size``)
follows the updated design. Within a stage patients are randomised one by one with the stage's
weights (the paper: "the randomization probabilities were applied individually to every
subject"; ``allocation="rounded"`` allocates the efficiently rounded counts in a random
order). The simulation engine asks for one patient at a time (cohorts of one), so
:meth:`DOptimalRule.choose` decides the next patient: the stage's design is planned once, at
the interim, from the data of the completed stages (and kept), and the patient's dose is drawn
from a uniform seeded by ``conduct.random_seed`` and a hash of the data so far (a decision must
be a function of the data); as in every design, the first patient gets the conduct's
``start_dose``. Each decision carries the stage's allocation: ``support_<j>``, ``weight_<j>``,
``count_<j>`` (the stage's patients by efficient rounding), ``criterion``, ``get_max`` (the
equivalence theorem's maximum) and the estimate it was planned at. :func:`run_staged_trial`
runs a trial on arrays with randomisation uniforms of its own (common random numbers: the
studies).

MLE updating (eq 8) maximises :math:`\log\det\{M_{obs} + n^{(k)} M(\xi, \hat\theta)\}`;
Bayesian updating (Discussion) averages :math:`\log\det\{n_{prev} M(\tilde\xi_{prev}, \theta_s) +
n^{(k)} M(\xi, \theta_s)\}` over the draws of the posterior of the completed stages (a NUTS fit,
or the Laplace approximation: the conduct's ``engine``); :meth:`Design.decide` feeds it any fit
(InferenceData) of the data up to an interim.

Stopping for precision (eq 9)
-----------------------------
With ``precision`` the trial stops at an interim once the MLE is precise enough:

.. math::

    |M_{obs}^{-1}(\hat\theta)| \le \left(\eta^k \prod_j |\hat\theta_j|\right)^2,

the volume of the confidence ellipsoid were every parameter estimated with coefficient of
variation :math:`\eta` and no correlation (``criterion="max_cv"``: :math:`\max_j SE_j /
|\hat\theta_j| \le \eta`, the variant of the Discussion). Eq 9 uses the *observed*
information, so the prefactor question of eq 6 does not enter it.

When the interim MLE does not exist
-----------------------------------
Every patient at a dose censored (frequent with heavy censoring: shape I at 25% events has
:math:`P(\text{event} \mid x = 1) < 0.01`) leaves the likelihood without a maximum; the paper is
silent. Here (``no_mle="map"``, default) the stage is designed at the posterior mode under the
model's weakly informative prior, with the posterior's information as :math:`M_{obs}`;
``no_mle="initial"`` repeats the initial design. The decision records which
(``estimate_is_mle``, ``bound_by`` ``"no_mle"``). A trial never stops without an MLE.
"""

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np

from dosezoo.checks import (
    choice,
    integer,
    number_array,
    positive_int,
    positive_number,
    probability,
    real_number,
)
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import Conduct, Design, ModelRule, dataclass_options
from dosezoo.designs.optimal import (
    ApproximateDesign,
    optimal_design,
    uniform_design,
    with_reference,
)
from dosezoo.designs.registry import Derived, Family, register
from dosezoo.errors import DataError
from dosezoo.models.weibull_aft import EULER_GAMMA, WeibullAFT, WeibullMLE, WeibullPosterior
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described
from dosezoo.scenarios.registry import ScenarioType, design_attribute, register_scenario
from dosezoo.scenarios.weibull import WeibullScenario, weibull_truth

__all__ = [
    "DOptimalRule",
    "PrecisionStopping",
    "StagePlan",
    "adaptive_d_optimal_design",
    "run_staged_trial",
    "weibull_reference_scenario",
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
        Stage, estimate, support and weights, counts, criterion, GET maximum, stopping
        statistics.
    bound_by : tuple of str
        ``("initial_design",)`` for stage 1 and fixed designs, ``("no_mle",)`` when the
        fallback was used, ``("precision",)`` for a stop, ``("bayes",)`` for Bayesian updating.
    """

    design: ApproximateDesign | None
    stop_reason: str | None
    quantities: dict[str, float]
    bound_by: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class DOptimalRule(ModelRule):
    r"""Multi-stage D-optimal allocation with MLE or Bayesian updating and precision stopping.

    Parameters
    ----------
    first_stage : int
        :math:`n^{(1)}`, patients of stage 1 (allocated by ``initial``).
    stage_size : int, tuple of int or None
        Patients of every later stage (an int: stages of that size until the sample size);
        the sizes :math:`n^{(2)}, \dots, n^{(\nu)}` (a tuple; any patients left form a last
        stage); None: one more stage, the rest of the sample size (the two-stage design).
    tau : float or None
        Follow-up of every patient (type I censoring) in the expected information; None: no
        censoring.
    updating : {"mle", "bayes", "none"}
        Eq 8 at the MLE; the posterior expectation over the draws of a fit (the conduct's
        ``engine``: ``"nuts"``, or ``"laplace"``); or never (every stage follows ``initial``:
        the uniform and the locally optimal comparators).
    initial : ApproximateDesign
        The design of stage 1 (uniform on {0, 0.5, 1}).
    accrued : {"observed", "expected", "none"} or None
        The information of the completed stages in the criterion: observed at the estimate
        (eq 8), expected for their realised allocation, or none (the paper's literal Bayesian
        formula); None: ``"observed"`` for ``"mle"``, ``"expected"`` otherwise.
    allocation : {"randomised", "rounded"}
        Per-patient randomisation with the design's weights (the paper), or its efficiently
        rounded counts in random order.
    precision : PrecisionStopping or None
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
    selects_dose: ClassVar[bool] = False
    model_type: ClassVar[type] = WeibullAFT

    first_stage: int
    stage_size: int | tuple[int, ...] | None = None
    tau: float | None = None
    _: KW_ONLY
    updating: Literal["mle", "bayes", "none"] = "mle"
    initial: ApproximateDesign = field(default_factory=uniform_design)
    accrued: Literal["observed", "expected", "none"] | None = None
    allocation: Literal["randomised", "rounded"] = "randomised"
    precision: PrecisionStopping | None = None
    no_mle: Literal["map", "initial"] = "map"
    candidates: Sequence[float] | None = None
    grid_size: int = 21
    bayes_points: int = 200
    _sample_size: int | None = field(default=None, init=False, repr=False, compare=False)
    _random_seed: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "DOptimalRule"
        object.__setattr__(
            self, "first_stage", positive_int(owner, "first_stage", self.first_stage)
        )
        if isinstance(self.stage_size, list | tuple):
            if not self.stage_size:
                raise ValueError(f"{owner}: stage_size must not be an empty sequence")
            sizes = tuple(
                positive_int(owner, f"stage_size[{i}]", v) for i, v in enumerate(self.stage_size)
            )
            object.__setattr__(self, "stage_size", sizes)
        elif self.stage_size is not None:
            object.__setattr__(
                self, "stage_size", positive_int(owner, "stage_size", self.stage_size)
            )
        if self.tau is not None:
            object.__setattr__(self, "tau", positive_number(owner, "tau", self.tau))
        choice(owner, "updating", self.updating, ("mle", "bayes", "none"))
        if not isinstance(self.initial, ApproximateDesign):
            raise ValueError(f"{owner}: initial must be an ApproximateDesign, got {self.initial!r}")
        # an OptimalDesign's extras (criterion, GET maximum) are not options of the rule
        object.__setattr__(
            self, "initial", ApproximateDesign(self.initial.support, self.initial.weights)
        )
        accrued = self.accrued
        if accrued is None:
            accrued = "observed" if self.updating == "mle" else "expected"
        choice(owner, "accrued", accrued, ("observed", "expected", "none"))
        if self.updating == "bayes" and accrued == "observed":
            raise ValueError(f"{owner}: accrued='observed' needs updating='mle'")
        object.__setattr__(self, "accrued", accrued)
        choice(owner, "allocation", self.allocation, ("randomised", "rounded"))
        if self.precision is not None and not isinstance(self.precision, PrecisionStopping):
            raise ValueError(
                f"{owner}: precision must be a PrecisionStopping or None, got {self.precision!r}"
            )
        choice(owner, "no_mle", self.no_mle, ("map", "initial"))
        if self.candidates is not None:
            if isinstance(self.candidates, str) or not len(self.candidates):
                raise ValueError(f"{owner}: candidates must be a non-empty sequence of doses")
            candidates = tuple(
                real_number(owner, f"candidates[{i}]", x) for i, x in enumerate(self.candidates)
            )
            if len(set(candidates)) != len(candidates):
                raise ValueError(f"{owner}: candidates must be distinct doses, got {candidates}")
            object.__setattr__(self, "candidates", candidates)
        object.__setattr__(
            self, "grid_size", integer(owner, "grid_size", self.grid_size, minimum=5)
        )
        object.__setattr__(
            self, "bayes_points", positive_int(owner, "bayes_points", self.bayes_points)
        )

    def __getstate__(self) -> dict:
        """Pickle without the kept stage plans."""
        return {key: value for key, value in self.__dict__.items() if key != "_plans"}

    def __setstate__(self, state: dict) -> None:
        """Restore from :meth:`__getstate__`."""
        self.__dict__.update(state)

    # ------------------------------------------------------------------ binding

    def bind(self, model: Any, conduct: Conduct) -> "DOptimalRule":
        """Check the model, the design space and the conduct (cohorts of one patient)."""
        bound = super().bind(model, conduct)
        if model.degree < 1:
            raise ValueError(
                "DOptimalRule: the model has no dose effect (degree 0): every design is "
                "D-optimal for it; give the model a degree >= 1"
            )
        # The optimal designs and the estimates of the stages are the dose curve's alone.
        model._no_covariates("DOptimalRule")
        lo, hi = model.dose_range
        for name, doses in (
            ("conduct.start_dose", () if conduct.start_dose is None else (conduct.start_dose,)),
            ("initial", self.initial.support),
            ("candidates", self.candidates or ()),
        ):
            outside = [float(x) for x in doses if not lo <= x <= hi]
            if outside:
                raise ValueError(
                    f"DOptimalRule: {name} has doses {outside} outside the design space "
                    f"[{lo:g}, {hi:g}]"
                )
        if conduct.cohort_size != 1:
            raise ValueError(
                "DOptimalRule: cohort_size must be 1 (patients are randomised one by one "
                f"within stages of first_stage / stage_size patients), got {conduct.cohort_size}"
            )
        if self.first_stage > conduct.sample_size:
            raise ValueError(
                f"DOptimalRule: first_stage {self.first_stage} exceeds the sample size "
                f"{conduct.sample_size}"
            )
        if self.updating == "bayes" and conduct.engine is None:
            raise ValueError(
                "DOptimalRule: updating='bayes' needs conduct.engine ('nuts' or 'laplace')"
            )
        return bound._bound(_sample_size=conduct.sample_size, _random_seed=conduct.random_seed)

    @property
    def sample_size(self) -> int:
        """The trial's (maximum) sample size, from the conduct the rule is bound to."""
        if self._sample_size is None:
            raise ValueError("DOptimalRule is not bound to a conduct; use it in a Design")
        return self._sample_size

    def boundaries(self, sample_size: int | None = None) -> list[int]:
        """Return the patients enrolled before each stage: 0, :math:`n^{(1)}`, ..."""
        size = self.sample_size if sample_size is None else sample_size
        starts = [0, self.first_stage]
        if isinstance(self.stage_size, tuple):
            for n in self.stage_size:
                starts.append(starts[-1] + n)
        elif self.stage_size is not None:
            while starts[-1] + self.stage_size < size:
                starts.append(starts[-1] + self.stage_size)
        return [s for s in starts if s < size]

    def stage_start(self, n: int, sample_size: int | None = None) -> int:
        """Return the patients enrolled before the stage of patient ``n`` (0-based)."""
        return max(s for s in self.boundaries(sample_size) if s <= n)

    def needs_posterior(self, data: TrialData, *, final: bool) -> bool:
        """Ask for a fit only for Bayesian updating, at an interim whose plan is not kept."""
        if self.updating != "bayes" or final or data.n_patients == 0:
            return False
        n = data.n_patients
        return n in self.boundaries() and self._kept(data, n) is None

    # ------------------------------------------------------------------ interims

    def _estimate(self, dose: np.ndarray, time: np.ndarray, event: np.ndarray) -> WeibullMLE | None:
        """Return the MLE, else (``no_mle="map"``) the posterior mode, else None."""
        model: WeibullAFT = self.model
        design = model.regressors(dose)
        log_time, event = np.log(time), np.asarray(event, dtype=float)
        try:
            return model.estimate(design, log_time, event)
        except DataError:
            pass
        if self.no_mle == "map" and event.sum() > 0:
            try:
                return model.estimate(design, log_time, event, penalised=True)
            except DataError:
                pass
        return None

    def plan(
        self,
        dose: np.ndarray,
        time: np.ndarray,
        event: np.ndarray,
        sample_size: int | None = None,
        posterior: DosePosterior | None = None,
    ) -> StagePlan:
        """Decide the interim after the patients given: a stop (eq 9) or the next stage's design.

        Parameters
        ----------
        dose, time, event : numpy.ndarray
            Every patient of the completed stages.
        sample_size : int, optional
            The trial's maximum sample size (the last stage is truncated to it); the bound
            conduct's by default.
        posterior : DosePosterior, optional
            A fit of these data (Bayesian updating).

        Returns
        -------
        StagePlan
        """
        dose, time, event = self._patients(dose, time, event)
        if sample_size is not None:
            sample_size = positive_int("DOptimalRule.plan", "sample_size", sample_size)
        sample_size = self.sample_size if sample_size is None else sample_size
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
        if n == 0 or (self.updating == "none" and self.precision is None):
            return fixed
        model: WeibullAFT = self.model
        fit = self._estimate(np.asarray(dose), np.asarray(time), np.asarray(event))
        if fit is not None:
            quantities |= {name: float(v) for name, v in zip(fit.names, fit.theta, strict=True)}
            quantities["estimate_is_mle"] = 0.0 if fit.penalised else 1.0
        else:
            quantities["estimate_is_mle"] = 0.0
        if self.precision is not None:
            if fit is not None and not fit.penalised:
                stop, statistics = self.precision.evaluate(fit.theta, fit.covariance)
                quantities |= statistics
                if stop:
                    return StagePlan(
                        None,
                        _precision_reason(self.precision, statistics, n),
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
        dose, time, event = self._patients(dose, time, event)
        quantities: dict[str, float] = {"final_n": float(np.size(dose))}
        if np.size(dose) == 0:
            return quantities
        fit = self._estimate(dose, time, event)
        if fit is None:
            return quantities | {"estimate_is_mle": 0.0}
        return quantities | fit.as_dict() | {"estimate_is_mle": 0.0 if fit.penalised else 1.0}

    def _patients(
        self, dose: object, time: object, event: object
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the patients given as arrays, checked as the model checks data.

        A DataError names the column, the row and the value: a time <= 0, an event not 0/1, a
        dose off the design space, columns of different lengths.
        """
        data = TrialData({"dose": dose, "time": time, "event": event})
        self.model.check_data(data)
        return _arrays(data)

    # ------------------------------------------------------------------ the Rule methods

    def _kept(self, data: TrialData, start: int) -> StagePlan | None:
        """Return the plan kept for the stage that starts after the first ``start`` patients."""
        dose, time, event = _arrays(data)
        key = (start, _digest(dose[:start], time[:start], event[:start]))
        return self.__dict__.get("_plans", {}).get(key)

    def stage_plan(self, data: TrialData, posterior: DosePosterior | None = None) -> StagePlan:
        """Return the plan of the stage the next patient after ``data`` belongs to.

        Planned at the stage's interim from its completed stages, then kept (a stage is
        planned once); ``posterior`` is a fit of those data (Bayesian updating).

        Raises
        ------
        ValueError
            For Bayesian updating, when the plan is not kept and no posterior is given.
        """
        n = data.n_patients
        start = self.stage_start(n)
        kept = self._kept(data, start)
        if kept is not None:
            return kept
        if self.updating == "bayes" and start > 0 and posterior is None:
            raise ValueError(
                f"DOptimalRule: Bayesian updating plans a stage at its interim: decide at the "
                f"{start}th patient with a fit of the data up to it (this stage started after "
                f"{start} patients; the data have {n})"
            )
        if posterior is not None and start != n and self.updating == "bayes":
            raise ValueError(
                f"DOptimalRule: the fit must be of the data up to the interim ({start} "
                f"patients), not of {n}"
            )
        dose, time, event = _arrays(data)
        plan = self.plan(dose[:start], time[:start], event[:start], posterior=posterior)
        if plan.design is not None:
            counts = plan.design.counts(int(plan.quantities["stage_patients"]))
            quantities = plan.quantities | {f"count_{j}": float(c) for j, c in enumerate(counts)}
            plan = replace(plan, quantities=quantities)
        plans = self.__dict__.setdefault("_plans", {})
        if len(plans) >= 64:
            plans.clear()
        plans[(start, _digest(dose[:start], time[:start], event[:start]))] = plan
        return plan

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide the next patient's dose (randomised within the stage), or a stop at eq 9.

        Parameters
        ----------
        posterior : DosePosterior or None
            A fit of the data up to the interim (Bayesian updating); ignored otherwise.
        data : TrialData
            The trial so far.

        Returns
        -------
        Decision
            The dose, drawn with the stage design's weights; the quantities hold the stage's
            allocation (``support_<j>``, ``weight_<j>``, ``count_<j>``), ``criterion``,
            ``get_max`` and the estimate it was planned at.
        """
        plan = self.stage_plan(data, posterior)
        if plan.design is None:
            return Decision(
                None,
                stop_reason=plan.stop_reason,
                quantities=dict(plan.quantities),
                bound_by=plan.bound_by,
            )
        dose, time, event = _arrays(data)
        n = data.n_patients
        if self.allocation == "rounded":
            start = self.stage_start(n)
            seed = _seed(self._random_seed, dose[:start], time[:start], event[:start])
            uniforms = np.random.default_rng(seed).random(int(plan.quantities["stage_patients"]))
            chosen = float(plan.design.allocate(uniforms, rounded=True)[n - start])
        else:
            u = np.random.default_rng(_seed(self._random_seed, dose, time, event)).random()
            chosen = float(plan.design.allocate(np.array([u]))[0])
        return Decision(chosen, quantities=dict(plan.quantities), bound_by=plan.bound_by)

    def stage(self, data: TrialData, posterior: DosePosterior | None = None) -> Decision:
        """Return the allocation of the stage that starts after ``data`` (or a stop at eq 9).

        ``next_dose`` is the dose of largest weight; the allocation is in the quantities.
        ``data`` must end at an interim (or be empty).
        """
        if data.n_patients not in self.boundaries():
            raise ValueError(
                f"DOptimalRule: {data.n_patients} patients is not an interim; the stages start "
                f"after {', '.join(map(str, self.boundaries()))} patients"
            )
        plan = self.stage_plan(data, posterior)
        if plan.design is None:
            return Decision(
                None,
                stop_reason=plan.stop_reason,
                quantities=dict(plan.quantities),
                bound_by=plan.bound_by,
            )
        top = float(plan.design.support[int(np.argmax(plan.design.weights))])
        return Decision(top, quantities=dict(plan.quantities), bound_by=plan.bound_by)

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Select no dose: the final estimate of the dose-response curve is in the quantities."""
        dose, time, event = _arrays(data)
        return Decision(
            None,
            stop_reason="no dose is selected: the design estimates the dose-response curve "
            "(final estimate in the quantities)",
            quantities=self.final_estimate(dose, time, event),
        )

    def describe(self) -> Described:
        """Flat record of the rule's options."""
        record = dataclass_options(self, skip=("initial", "precision", "candidates"))
        record["initial"] = repr(self.initial)
        record["candidates"] = (
            "continuous" if self.candidates is None else ",".join(map(str, self.candidates))
        )
        if self.precision is not None:
            record |= {f"precision_{k}": v for k, v in self.precision.describe().items()}
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


def _digest(dose: np.ndarray, time: np.ndarray, event: np.ndarray) -> int:
    """Hash the data so far (doses, times, events)."""
    digest = hashlib.sha256(np.ascontiguousarray(dose, dtype=float).tobytes())
    digest.update(np.ascontiguousarray(time, dtype=float).tobytes())
    digest.update(np.ascontiguousarray(event, dtype=float).tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def _seed(random_seed: int, dose: np.ndarray, time: np.ndarray, event: np.ndarray) -> int:
    """Seed of a randomisation draw: ``random_seed`` XOR a hash of the data so far."""
    return _digest(dose, time, event) ^ random_seed


# ---------------------------------------------------------------------------- the design


def adaptive_d_optimal_design(
    model: WeibullAFT,
    *,
    first_stage: int,
    sample_size: int,
    stage_size: int | tuple[int, ...] | None = None,
    tau: float | None = None,
    random_seed: int = 0,
    engine: str | None = None,
    **options: Any,
) -> Design:
    """Return ``Design(model, DOptimalRule(...), Conduct(cohort_size=1, ...))``.

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
        Other options of :class:`DOptimalRule` (``updating``, ``precision``, ``initial``, ...)
        and of :class:`~dosezoo.designs.base.Conduct` (``start_dose``, ``draws``, ...).

    Returns
    -------
    Design
    """
    conduct_names = {
        "start_dose",
        "draws",
        "tune",
        "chains",
        "convergence",
        "refits",
        "on_refusal",
        "stopping",
    }
    conduct_options = {k: options.pop(k) for k in list(options) if k in conduct_names}
    if options.get("updating") == "bayes" and engine is None:
        engine = "nuts"
    conduct_options.setdefault("start_dose", model.dose_range[0])
    conduct = Conduct(
        cohort_size=1,
        sample_size=sample_size,
        random_seed=random_seed,
        engine=engine,
        **conduct_options,
    )
    rule = DOptimalRule(first_stage, stage_size, tau, **options)
    return Design(model, rule, conduct)


def _lowest_dose(model: object, rule: object, conduct: Mapping[str, Any]) -> float:
    """Return the start dose of the family: the lowest dose of the model's design space."""
    assert isinstance(model, WeibullAFT)
    return model.dose_range[0]


register(
    Family(
        name="weibull-d-optimal",
        summary=(
            "adaptive D-optimal designs for a censored Weibull time-to-event dose-response "
            "(the Weibull D-optimal paper)"
        ),
        model=WeibullAFT,
        rule=DOptimalRule,
        conduct={
            "cohort_size": 1,
            "sample_size": 300,
            "start_dose": Derived("the lowest dose of the model", _lowest_dose),
        },
        example="weibull_d_optimal.toml",
        example_data="weibull_first_stage.csv",
    )
)


# ---------------------------------------------------------------------------- scenario


def weibull_reference_scenario(
    shape: str | None = None,
    b: float = EULER_GAMMA,
    beta: Sequence[float] | None = None,
    tau: float | None = None,
    event_probability: float | None = None,
    metric_doses: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    follow_up: float | None = None,
) -> WeibullScenario:
    """Return the Weibull truth with its D-efficiency reference (``[scenario] type = "weibull"``).

    :func:`dosezoo.scenarios.weibull.weibull_truth` (a shape of the paper or ``beta``; the
    censoring time ``tau``, or the ``event_probability`` of the uniform design, or else
    ``follow_up``, the design's by default), with
    :func:`~dosezoo.designs.optimal.with_reference`, so that each trial is scored by the
    D-efficiency of its allocation against the locally D-optimal design at the truth.
    """
    if tau is None and event_probability is None:
        tau = follow_up
    coefficients = None if beta is None else tuple(float(v) for v in beta)
    truth = weibull_truth(shape, b, coefficients, tau, event_probability, tuple(metric_doses))
    return with_reference(truth, WeibullAFT(degree=len(truth.beta) - 1))


def _from_design(design: object) -> dict[str, Any]:
    """Return the design's follow-up, the truth's censoring time unless the scenario sets one.

    Not as ``tau``: an ``event_probability`` given in the configuration would then meet a
    ``tau`` the user never gave (refused as both).
    """
    tau = design_attribute(design, "tau")
    return {} if tau is None else {"follow_up": tau}


# Registered here, not in dosezoo.scenarios.weibull: the reference design needs the optimiser.
register_scenario(
    ScenarioType(
        name="weibull",
        summary=(
            "censored Weibull times, the 24 dose-response scenarios of the Weibull D-optimal "
            "paper (4 shapes x 6 hazards), scored by the D-efficiency of the allocation"
        ),
        build=weibull_reference_scenario,
        from_design=_from_design,
        design_keys=("follow_up",),
    )
)


# ---------------------------------------------------------------------------- fast runner


def run_staged_trial(
    design: Design,
    scenario: WeibullScenario,
    latent: np.ndarray,
    uniforms: np.ndarray | None = None,
) -> dict[str, Any]:
    r"""Run one trial of a staged design on arrays (no TrialData): the studies' engine.

    Patient :math:`j` has latent draw ``latent[j]`` (:math:`E_j \sim \mathrm{Exp}(1)`, see
    :meth:`WeibullScenario.draw_latent`) and randomisation uniform ``uniforms[j]``; passing the
    same arrays to several designs gives common random numbers. With ``uniforms`` None the
    first patient gets the start dose and the others the uniform :meth:`DOptimalRule.choose`
    draws, and the trial equals the simulation engine's (``dosezoo.simulate.run_trial``) for a
    generator whose exponential draws are ``latent``.

    Returns
    -------
    dict
        ``dose``, ``time``, ``event`` (arrays), ``stop_reason``, ``plans`` (the
        :class:`StagePlan` of every interim, stage 1 included) and ``final`` (the final
        estimate's quantities).
    """
    rule = design.rule
    if not isinstance(rule, DOptimalRule) or rule.updating == "bayes":
        raise ValueError("run_staged_trial runs DOptimalRule designs with MLE or no updating")
    size = design.sample_size
    latent = np.asarray(number_array("run_staged_trial", "latent", latent), dtype=float)
    short = latent.size < size or (uniforms is not None and np.size(uniforms) < size)
    if latent.ndim != 1 or short:
        raise ValueError(f"run_staged_trial: latent and uniforms need {size} values each")
    if not np.all((latent > 0) & np.isfinite(latent)):
        raise ValueError(
            "run_staged_trial: latent must hold positive finite exponential draws, got "
            f"{latent[~((latent > 0) & np.isfinite(latent))][:5].tolist()}"
        )
    if uniforms is not None:
        uniforms = np.asarray(number_array("run_staged_trial", "uniforms", uniforms), dtype=float)
        if uniforms.ndim != 1 or not np.all((uniforms >= 0) & (uniforms < 1)):
            raise ValueError("run_staged_trial: uniforms must be one sequence of numbers in [0, 1)")
    dose, time, event = np.empty(size), np.empty(size), np.empty(size)
    plans: list[StagePlan] = []
    starts = rule.boundaries()
    stop = ""
    n = 0
    rounded = rule.allocation == "rounded"
    for index, start in enumerate(starts):
        plan = rule.plan(dose[:start], time[:start], event[:start])
        plans.append(plan)
        if plan.design is None:
            stop = str(plan.stop_reason)
            break
        end = starts[index + 1] if index + 1 < len(starts) else size
        if uniforms is not None:
            dose[start:end] = plan.design.allocate(np.asarray(uniforms[start:end]), rounded=rounded)
        else:
            order = None
            if rounded:
                seed = _seed(rule._random_seed, dose[:start], time[:start], event[:start])
                order = np.random.default_rng(seed).random(end - start)
            for j in range(start, end):
                if j == 0:
                    dose[j] = design.start_dose
                elif order is not None:
                    dose[j] = plan.design.allocate(order, rounded=True)[j - start]
                else:
                    u = np.random.default_rng(
                        _seed(rule._random_seed, dose[:j], time[:j], event[:j])
                    ).random()
                    dose[j] = plan.design.allocate(np.array([u]))[0]
                outcome = scenario.outcomes_from_latent(dose[j : j + 1], latent[j : j + 1])
                time[j], event[j] = outcome["time"][0], outcome["event"][0]
            n = end
            continue
        outcome = scenario.outcomes_from_latent(dose[start:end], latent[start:end])
        time[start:end], event[start:end] = outcome["time"], outcome["event"]
        n = end
    return {
        "dose": dose[:n].copy(),
        "time": time[:n].copy(),
        "event": event[:n].copy(),
        "stop_reason": stop,
        "plans": plans,
        "final": rule.final_estimate(dose[:n], time[:n], event[:n]),
    }
