r"""One design shape for the whole zoo: ``Design(model, rule, conduct)``.

A design is composed of three parts:

- a **model** (:class:`dosezoo.models.base.DoseModel`): the dose-response model whose
  posterior the rule reads (None for a rule that uses no model, such as 3+3);
- a **rule** (:class:`Rule`): a function of a posterior (:class:`dosezoo.posterior.DosePosterior`)
  and the data that returns the next dose or a stop (``choose``) and the final recommendation
  (``select``), each a :class:`dosezoo.decision.Decision` saying which options bound it;
- the **conduct** (:class:`Conduct`): start dose, cohort size, sample size, data-based stopping
  rules, how the posterior is computed (the model's exact engine, or a fit by an MCMC engine
  seeded from the data, with its convergence checks and refits).

The conduct is written once, here, for every family: :meth:`Design.next` checks the data,
stops at the sample size or by a stopping rule, gives the start dose to the first cohort and
otherwise asks the rule; :meth:`Design.decide` applies the same rule to any fit the user made
(``decide(idata, data)``); :meth:`Design.recommend` asks the rule for the final selection.

A hard overdose limit holds for every model-based rule: a rule reports the posterior
probability of overdosing at a dose (:meth:`Rule.overdose_probability`), and no decision gives
the next cohort a dose where it exceeds ``conduct.max_overdose_probability`` (0.5 by default),
whatever the rule's options (monotone, no skipping, coherence, rounding) asked for: the design
de-escalates to the highest dose within the limit, or stops with the reason "overdose limit"
(before ``conduct.overdose_min_patients`` patients had the lowest dose level, that level is
given again instead: the only dose the limit lets through). Nor is a backfill patient given
such a dose (:meth:`Design.backfill_doses`).

Rules that decide from the patients and DLTs per dose level only (BOIN, 3+3) derive from
:class:`CountRule`: the rule is written once, for a batch of count states
(``decide_counts`` / ``recommend_counts``), and ``choose`` / ``select`` apply it to a batch of
one. ``Design(model, count_rule, conduct)`` is then a :class:`CountDesign`, which the
simulation engine runs in lockstep (:class:`dosezoo.protocols.CountRuleDesign`).

Reproducibility. A posterior fitted by MCMC is seeded from ``conduct.random_seed`` and a hash
of the data (:meth:`Conduct.seed_for`; of the counts per dose level when the model's posterior
depends on no more), so a decision is a deterministic function of
the data, as the simulation engine requires.
"""

import copy
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, MutableMapping, Sequence
from dataclasses import KW_ONLY, asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self

import numpy as np

from dosezoo.checks import choice, integer, positive_int, real_number
from dosezoo.data import TrialData
from dosezoo.decision import CountDecisions, Decision, DecisionRow
from dosezoo.designs.backfill import Backfill
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.errors import ConvergenceError, DataError
from dosezoo.lazy import compiled
from dosezoo.levels import (
    CountStates,
    checked_events,
    checked_last_cohorts,
    count_state,
    level_counts,
    level_index,
)
from dosezoo.models.base import DoseModel
from dosezoo.posterior import DosePosterior, OrderedLevelTails, Sampling
from dosezoo.protocols import Described, number_text

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "Backfill",
    "Conduct",
    "CountDesign",
    "CountRule",
    "CountsView",
    "DecisionTableRow",
    "Design",
    "ModelRule",
    "Rule",
    "RuleOptions",
    "Stopping",
    "closest_levels",
    "compose",
    "conduct_posterior",
    "dataclass_options",
    "mtd_level_below",
    "mtd_level_below_mcse",
    "rate_above",
    "rate_above_mcse",
]


RuleOptions = Mapping[str, object]
"""What :meth:`Rule.describe` returns: the rule's options by name, each a scalar or a sequence
(or a dict), which :meth:`Design.describe` flattens into a `Described` record."""


class Stopping(Protocol):
    """A data-based stopping rule of the conduct (e.g. a count of toxicities).

    A rule may name the outcome columns it reads in a tuple ``outcomes`` (e.g. ``("y",)``):
    a design whose model has other outcomes refuses it when it is built, rather than at the
    first decision.
    """

    def reason(self, data: TrialData) -> str | None:
        """Why the trial must stop given ``data``, or None to go on."""
        ...

    def describe(self) -> Described:
        """Return the rule's options, flat."""
        ...


@dataclass(frozen=True)
class Conduct:
    r"""How a trial is run, whatever the model and rule.

    Parameters
    ----------
    start_dose : float, optional
        Dose of the first cohort; the lowest dose level by default (required for a model
        without dose levels).
    cohort_size : int
        Patients per cohort; the last cohort is truncated to ``sample_size``.
    sample_size : int
        Maximum number of patients.
    stopping : tuple of Stopping
        Data-based stopping rules, checked in order before every decision and the
        recommendation.
    engine : str, optional
        How the posterior is computed: None (default) or the model's exact engine (its
        ``fast_engine``, e.g. ``"grid"``, ``"quadrature"``) for the model's fast posterior;
        any other of the model's engines (``"nuts"``, ``"pymc"``, ``"kernel"``) for a fit
        seeded from the data, whose convergence is checked before the rule acts on it.
    draws, tune, chains : int
        MCMC settings (``tune`` None: the model's default).
    random_seed : int
        Base seed of the fits; each fit's seed is derived from it and the data.
    convergence : ConvergenceCriteria
        What a fit must pass before a rule acts on it.
    refits : int
        Fits repeated with more draws (``refit_factor`` times more each time, seeded anew)
        when a fit fails the checks (0: none).
    refit_factor : int
        Growth of the draws per refit.
    refit_tune : bool
        Whether the burn-in grows with the draws.
    on_refusal : {"raise", "stop"}
        When every fit fails the checks: raise :class:`~dosezoo.errors.ConvergenceError`
        (default), or stop the trial with the reason (a simulation that must go on).
    mcse_margin : float
        How close, in Monte Carlo standard errors, a decision's deciding comparison (a
        posterior probability against its threshold: the overdose control of BLRM and of the
        Optimus design (Lin 2023), BOIN's elimination read from a fit, the CRM's and EWOC's
        safety stops, EWOC's feasibility bound at a level, the hard overdose limit)
        may lie to its threshold before the estimate no longer decides it (2 by default;
        0: the estimate always decides). Such a decision is made again on a refit with more
        draws (as after failed checks, within ``refits``); if a comparison is still that
        close, it takes the cautious side (the dose not given, the stop), the decision's
        ``bound_by`` naming ``"mcse"`` when that changed it, and its quantity
        ``mcse_margin`` the smallest distance to a threshold, in MCSEs. When those refits
        fail the convergence checks, the last fit that passed them decides on its cautious
        side (the quantity ``refits_refused`` counting the failed refits), rather than
        refusing the decision. A posterior with no Monte Carlo error (an exact engine) is
        decided by its values as before.
    backfill : Backfill, optional
        Run the trial in time and enrol backfill patients at lower, cleared doses while an
        escalation cohort is pending (:mod:`dosezoo.designs.backfill`); None (default): no
        time, cohorts one after the other.
    max_overdose_probability : float
        The hard overdose limit, in (0, 1]: no decision gives the next cohort a dose whose
        posterior probability of overdosing (:meth:`Rule.overdose_probability`, e.g.
        :math:`P(\mathrm{MTD} < x)`, or BLRM's excessive toxicity) exceeds it; the design
        de-escalates to the highest dose within it (``bound_by`` ``"overdose_limit"``) or
        stops ("overdose limit: ...") (on a posterior with Monte Carlo error, within
        ``mcse_margin`` of it: see there). 0.5 by default: a dose whose posterior says it more
        likely than not overdoses is never given (to backfill patients neither), whatever the
        rule's options ask for; 1 turns the limit off. The recommendation at the end records
        its ``overdose_probability``; it is the rule's (see ``select_within_overdose_limit``),
        or none ("no MTD: overdose limit: ...") when the lowest dose level exceeds the limit
        after ``overdose_min_patients`` had it: the state in which the limit stops a trial.
    overdose_min_patients : int
        Patients needed at the lowest dose level before the overdose limit may stop the trial
        (3, as the rules' own safety stops: BOIN's elimination, the CRM's and Optimus's safety
        stop); with fewer, the lowest level is given again (``bound_by``
        ``"overdose_min_patients"``). It is the only dose the limit may let through.
    select_within_overdose_limit : bool
        Whether the recommendation at the end is held to the overdose limit as the next dose
        is: a selected dose above it moves down to the highest dose within it (``bound_by``
        ``"overdose_limit"``, the rule's dose kept as ``rule_dose``), or there is no MTD.
        False by default, so that a rule selects as its paper does (e.g. Lee (2023)'s nearest
        rounding of the MTD's quantile may select a level whose P(overdose) exceeds 0.5; the
        recorded ``overdose_probability`` of the selection shows how often).
    """

    start_dose: float | None = None
    cohort_size: int = 3
    sample_size: int = 36
    _: KW_ONLY
    stopping: tuple[Stopping, ...] = ()
    engine: str | None = None
    draws: int = 1000
    tune: int | None = None
    chains: int = 2
    random_seed: int = 0
    convergence: ConvergenceCriteria = field(default_factory=ConvergenceCriteria)
    refits: int = 0
    refit_factor: int = 2
    refit_tune: bool = True
    on_refusal: Literal["raise", "stop"] = "raise"
    mcse_margin: float = 2.0
    backfill: Backfill | None = None
    max_overdose_probability: float = 0.5
    overdose_min_patients: int = 3
    select_within_overdose_limit: bool = False

    #: The settings of the fits (with ``convergence``), recorded by :meth:`describe`.
    fit_settings: ClassVar[tuple[str, ...]] = (
        "engine",
        "draws",
        "tune",
        "chains",
        "random_seed",
        "refits",
        "refit_factor",
        "refit_tune",
        "on_refusal",
    )

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "Conduct"
        minimum = integer(owner, "overdose_min_patients", self.overdose_min_patients, minimum=0)
        object.__setattr__(self, "overdose_min_patients", minimum)
        limit = real_number(owner, "max_overdose_probability", self.max_overdose_probability)
        if not 0 < limit <= 1:
            raise ValueError(f"{owner}: max_overdose_probability must lie in (0, 1], got {limit!r}")
        object.__setattr__(self, "max_overdose_probability", limit)
        margin = real_number(owner, "mcse_margin", self.mcse_margin)
        if not 0 <= margin < np.inf:
            raise ValueError(f"{owner}: mcse_margin must be finite and >= 0, got {margin!r}")
        object.__setattr__(self, "mcse_margin", margin)
        if self.start_dose is not None:
            object.__setattr__(
                self, "start_dose", real_number(owner, "start_dose", self.start_dose)
            )
        for name in ("cohort_size", "sample_size", "draws", "chains", "refit_factor"):
            object.__setattr__(self, name, positive_int(owner, name, getattr(self, name)))
        for name in ("random_seed", "refits"):
            object.__setattr__(self, name, integer(owner, name, getattr(self, name), minimum=0))
        if self.tune is not None:
            object.__setattr__(self, "tune", integer(owner, "tune", self.tune, minimum=0))
        if self.cohort_size > self.sample_size:
            raise ValueError(
                f"{owner}: cohort_size {self.cohort_size} exceeds sample_size {self.sample_size}"
            )
        if isinstance(self.stopping, str) or not isinstance(self.stopping, Sequence):
            raise ValueError(
                f"{owner}: stopping must be a sequence of rules, got {self.stopping!r}"
            )
        stopping = tuple(self.stopping)
        for i, rule in enumerate(stopping):
            if not callable(getattr(rule, "reason", None)):
                raise ValueError(f"{owner}: stopping[{i}] has no reason(data) method: {rule!r}")
        object.__setattr__(self, "stopping", stopping)
        if self.engine is not None and not isinstance(self.engine, str):
            raise ValueError(f"{owner}: engine must be a string or None, got {self.engine!r}")
        if not isinstance(self.convergence, ConvergenceCriteria):
            raise ValueError(
                f"{owner}: convergence must be a ConvergenceCriteria, got {self.convergence!r}"
            )
        choice(owner, "on_refusal", self.on_refusal, ("raise", "stop"))
        for name in ("refit_tune", "select_within_overdose_limit"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ValueError(
                    f"{owner}: {name} must be True or False, got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, bool(getattr(self, name)))
        if self.backfill is not None and not isinstance(self.backfill, Backfill):
            raise ValueError(f"{owner}: backfill must be a Backfill or None, got {self.backfill!r}")

    def seed_for(
        self, data: TrialData, columns: Sequence[str], statistic: Hashable | None = None
    ) -> int:
        """Seed of a fit to ``data``: ``random_seed`` XOR a hash of the doses and ``columns``.

        The doses are every dose column (one for a single drug, several for a combination);
        the covariates of the data, when they have any, enter the hash too; the patients in a
        canonical order (the models treat them as exchangeable: the same trial entered with
        its rows in another order gets the same fit). With ``statistic`` (the model's counts
        per level when its posterior depends on no more,
        :attr:`~dosezoo.models.base.DoseModel.count_posterior`), the hash is of its ``repr``
        alone.
        """
        if statistic is not None:
            digest = hashlib.sha256(repr(statistic).encode()).digest()
        else:
            digest = bytes.fromhex(data.fingerprint(columns, exchangeable=True))
        return int.from_bytes(digest[:8], "little") ^ self.random_seed

    def stop_reason(self, data: TrialData) -> str | None:
        """Why the trial stops before the next cohort (sample size, then stopping rules)."""
        if data.n_patients >= self.sample_size:
            return f"sample size reached: {data.n_patients} of {self.sample_size}"
        return self.early_stop(data)

    def early_stop(self, data: TrialData) -> str | None:
        """Why a stopping rule ends the trial given ``data`` (None: none does)."""
        for rule in self.stopping:
            reason = rule.reason(data)
            if reason:
                return reason
        return None

    def describe(self) -> Described:
        """Flat record of the conduct (for simulation results)."""
        record: Described = {
            "start_dose": self.start_dose,
            "cohort_size": self.cohort_size,
            "sample_size": self.sample_size,
            "max_overdose_probability": self.max_overdose_probability,
            "overdose_min_patients": self.overdose_min_patients,
        }
        if self.select_within_overdose_limit:
            # Recorded only when on: the records (and stores) of every other conduct stay as
            # they were.
            record["select_within_overdose_limit"] = True
        # Every stopping rule by its place and kind: with the options alone under one prefix,
        # a second rule overwrote the first, and two conducts that differ read the same (a
        # simulation's store then took one's results for the other's).
        for index, rule in enumerate(self.stopping):
            record[f"stopping_{index}"] = type(rule).__name__
            record |= {f"stopping_{index}_{k}": value for k, value in rule.describe().items()}
        # The fits' settings and seed whatever the engine: without one, a model whose fast
        # posterior is sampled (the latent GP's, the joint probit's) fits with them, and a rule
        # may draw from the seed (the Weibull D-optimal randomisation); recorded only with an
        # engine, two designs that gave other trials read the same (and a store returned, or
        # resumed, one's trials as the other's).
        record |= {name: getattr(self, name) for name in self.fit_settings}
        if self.engine is not None:
            # A fit by an engine can have Monte Carlo error for the margin to act on (so may a
            # model's fast posterior: `Design.describe` records it then); the records of the
            # exact conducts stay as they were.
            record["mcse_margin"] = self.mcse_margin
        record |= {f"convergence_{name}": value for name, value in asdict(self.convergence).items()}
        if self.backfill is not None:
            record |= {f"backfill_{key}": value for key, value in self.backfill.describe().items()}
        return record


class Rule(ABC):
    """A dose-finding rule: a function of a posterior and the data (subclasses are dataclasses).

    Subclasses define :meth:`choose`, :meth:`select` and :meth:`describe`; the optional hooks
    have defaults that fit most rules.
    """

    #: Name of the rule in results and in the command line.
    label: ClassVar[str] = ""
    #: Whether the first cohort gets the conduct's start dose (False: the rule decides for the
    #: first cohort too, e.g. from an initial design of its own).
    uses_start_dose: ClassVar[bool] = True
    #: Quantities the decision of the first cohort (the start dose) records.
    start_quantities: ClassVar[dict[str, float]] = {}
    #: Whether the trial ends by selecting a dose (False: its end is an estimate, e.g. the
    #: Weibull D-optimal design's dose-response curve; reports then show the allocation only).
    selects_dose: ClassVar[bool] = True
    #: The values of an outcome the rule tells apart, where it reads fewer than the outcome
    #: has (BOIN12 reads whether a patient responded, efficacy 0 or 1, not 1 from 2): dose
    #: pathways enumerate these alone.
    outcome_values: ClassVar[Mapping[str, tuple[int, ...]]] = {}

    def _bound(self, **values: object) -> Self:
        """Return a copy holding ``values`` in its bound (``init=False``) fields.

        The copy keeps none of the decisions the rule kept (:class:`CountRule`): it is bound to
        other settings.
        """
        bound = copy.copy(self)
        bound.__dict__.pop("_decisions", None)
        for name, value in values.items():
            object.__setattr__(bound, name, value)
        return bound

    def bind(self, model: DoseModel | None, conduct: Conduct) -> Self:
        """Check the rule against ``model`` and ``conduct``; fill in what it takes from them.

        Returns the rule itself by default; a rule that reads model settings (its target, its
        dose levels) returns a copy that holds them.
        """
        return self

    def needs_posterior(self, data: TrialData, *, final: bool) -> bool:
        """Whether the decision after ``data`` reads a posterior (False: ``None`` is passed)."""
        return True

    def model_for(self, model: DoseModel, data: TrialData) -> DoseModel:
        """Return the model whose posterior the decision reads.

        ``model`` by default; a rule whose prior depends on earlier data (a two-stage design)
        returns another.
        """
        return model

    def levels_read(self, data: TrialData, *, final: bool) -> int | None:
        """How many of the lowest dose levels the decision reads (None: all).

        A sampled posterior's convergence is judged on these levels only: a rule that never
        reads the untried doses far above the data need not wait for them to mix.
        """
        return None

    def check_data(self, data: TrialData) -> None:
        """Raise a DataError where the data are ones the model takes but the rule cannot read.

        Nothing by default. A design checks its data with its model's ``check_data``, then
        this (e.g. a model on any positive dose under a rule that reads the dose levels).
        """

    def reads_counts_only(self) -> bool:
        """Whether the decisions read the data only through the counts and current level.

        The counts are the patients and DLTs per dose level, the current level the last
        cohort's, and, for a rule that :meth:`reads_last_cohort`, the last cohort's patients
        and DLTs; with a model whose posterior depends on the counts per level only, the
        design runs in lockstep (:meth:`Design.counts_view`).

        False by default; a rule that reads the order of the patients, their cohorts before
        the last or doses off the levels must keep it so.
        """
        return False

    def reads_last_cohort(self) -> bool:
        """Whether the decisions read the patients and DLTs of the last cohort (False).

        A rule that :meth:`reads_counts_only` and this (dfcrm's coherent CRM: no escalation
        after a cohort with too many DLTs) still runs in lockstep, its count states carrying
        the last cohort.
        """
        return False

    def reads_cohorts(self) -> bool:
        """Whether the decisions read which patients were dosed together (their cohorts).

        As :meth:`reads_last_cohort` by default. A design whose rule reads the cohorts, with
        cohorts of more than one patient, refuses data without a ``cohort`` column
        (:attr:`TrialData.cohorts_given`): each patient would be read as a cohort of their own.
        """
        return self.reads_last_cohort()

    def refusal_quantities(
        self, posterior: DosePosterior, data: TrialData, *, final: bool
    ) -> dict[str, float]:
        """Return the quantities a stop for a refused fit records (none by default)."""
        return {}

    def backfill_eligible(
        self, posterior: DosePosterior | None, data: TrialData, cleared: tuple[float, ...]
    ) -> tuple[float, ...]:
        """Return the doses among ``cleared`` that may take backfill patients now.

        ``cleared`` are the doses below the current escalation dose that the data cleared
        (:meth:`dosezoo.designs.backfill.Backfill.cleared`); ``posterior`` is the one the
        rule's next decision reads from the same data (None for a rule that reads none). By
        default every cleared dose; a rule removes the doses it excludes (eliminated for
        toxicity, overdosed, dropped for futility).
        """
        return cleared

    def overdose_probability(self, posterior: DosePosterior | None, dose: float) -> float | None:
        r"""Posterior probability that ``dose`` overdoses: what the hard overdose limit checks.

        By default :math:`P(\mathrm{MTD} < x \mid \text{data})` when the posterior has the MTD's
        distribution (EWOC, 3PND), None otherwise (no model-based quantity: the limit does
        not apply). Rules of per-level rates override it with their own definition of an
        overdose (:func:`mtd_level_below` for the CRM, BLRM's excessive toxicity).
        """
        if posterior is None or posterior.mtd is None:
            return None
        return float(posterior.mtd.cdf(dose))

    def overdose_mcse(self, posterior: DosePosterior, dose: float) -> float:
        r"""Monte Carlo standard error of :meth:`overdose_probability` at ``dose``.

        Of :math:`P(\mathrm{MTD} < x)` by default (0 when the MTD is not drawn); a rule that
        overrides :meth:`overdose_probability` overrides this too (``tests/test_contract.py``
        holds every family to it), or its overdose limit is decided by the estimate alone (0:
        the MCSE of another probability would not be its).
        """
        own = type(self).overdose_probability is not Rule.overdose_probability
        if posterior.mtd is None or own:
            return 0.0
        return posterior.mcse_mtd_cdf(dose)

    @abstractmethod
    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide the next dose (or a stop) from the posterior of the trial so far."""

    @abstractmethod
    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Select the dose to recommend at the end of the trial (or none, with the reason)."""

    @abstractmethod
    def describe(self) -> RuleOptions:
        """Return the rule's options (for simulation results), sequences as they are."""


@dataclass(frozen=True)
class ModelRule(Rule):
    """A rule that reads settings of its model (target, dose levels); the Design binds it.

    Subclasses set ``model_type``; :meth:`bind` checks the model against it and keeps it.
    """

    model_type: ClassVar[type]
    _model: Any = field(default=None, init=False, repr=False, compare=False)

    def bind(self, model: DoseModel | None, conduct: Conduct) -> Self:
        """Check that ``model`` is a ``model_type`` and hold it."""
        if not isinstance(model, self.model_type):
            raise TypeError(
                f"{type(self).__name__}: model must be a {self.model_type.__name__}, got {model!r}"
            )
        return self._bound(_model=model)

    @property
    def model(self) -> Any:
        """The model the rule is bound to."""
        if self._model is None:
            raise ValueError(f"{type(self).__name__} is not bound to a model; use it in a Design")
        return self._model


def _posterior_seed(model: DoseModel, data: TrialData, conduct: Conduct) -> int:
    """Return the seed of a fit to ``data``: the conduct's seed and a digest of the data."""
    statistic = model.sufficient_statistic(data) if model.count_posterior else None
    return conduct.seed_for(data, model.outcomes, statistic)


def conduct_posterior(
    model: DoseModel,
    data: TrialData,
    conduct: Conduct,
    *,
    levels: int | None = None,
    attempt: int = 0,
    seed: int | None = None,
) -> DosePosterior:
    """Compute the posterior of ``data`` under ``model`` as a design with ``conduct`` does.

    The model's fast posterior when ``conduct.engine`` is None or the model's fast engine;
    otherwise a fit by that engine seeded from the data, judged by ``conduct.convergence`` on
    the ``levels`` lowest levels (None: all), refitted with more draws up to
    ``conduct.refits`` times from fit ``attempt`` on (a fit that still fails is returned with
    its report). :meth:`Design.posterior` is this for the model its rule reads; a rule that
    reads the posteriors of earlier data (the combination design's stopping rule) asks it of
    them, so that they are the ones its decisions on those data read. ``seed`` is the fits'
    seed as the conduct derives it from the data, for a caller that derived it already.
    """
    if model.exact_posterior and conduct.engine in (None, model.fast_engine):
        return model.posterior(data)
    if seed is None:
        seed = _posterior_seed(model, data, conduct)
    for attempt in range(attempt, conduct.refits + 1):
        factor = conduct.refit_factor**attempt
        tune = conduct.tune if conduct.tune is not None else model.default_tune
        sampling = Sampling(
            draws=conduct.draws * factor,
            tune=tune * factor if conduct.refit_tune else tune,
            chains=conduct.chains,
            random_seed=seed + attempt,
            criteria=conduct.convergence,
            levels=levels,
        )
        if conduct.engine in (None, model.fast_engine):
            posterior = model.posterior(data, sampling)
        else:
            posterior = model.fitted_posterior(data, sampling, engine=conduct.engine)
        if posterior.report is None or posterior.report.ok:
            break
    return replace(posterior, refits=attempt) if attempt else posterior


def compose(
    model: DoseModel | None,
    rule_class: type[Rule],
    options: dict[str, Any],
    **conduct_defaults: Any,
) -> "Design":
    """Build ``Design(model, rule_class(...), Conduct(...))`` from one set of keyword options.

    Each option goes to the rule or to the conduct by its name; ``conduct_defaults`` are the
    family's own defaults (e.g. cohorts of 1 for EWOC). This is what the family factories
    (``crm_design``, ``boin_design``, ...) are.

    Raises
    ------
    TypeError
        Naming an option that is neither the rule's nor the conduct's.
    """
    conduct_names = set(_init_names(Conduct))
    rule_names = set(_init_names(rule_class))
    unknown = sorted(set(options) - conduct_names - rule_names)
    if unknown:
        raise TypeError(
            f"{rule_class.label or rule_class.__name__} design: unknown option {unknown[0]!r}; "
            f"rule options: {', '.join(sorted(rule_names))}; "
            f"conduct options: {', '.join(sorted(conduct_names))}"
        )
    conduct = Conduct(
        **(
            conduct_defaults
            | {key: value for key, value in options.items() if key in conduct_names}
        )
    )
    rule = rule_class(**{key: value for key, value in options.items() if key in rule_names})
    return Design(model, rule, conduct)


def rate_above(
    posterior: DosePosterior | None, dose: float, threshold: float, name: str = "p_dlt"
) -> float | None:
    """``P(rate > threshold | data)`` at ``dose``, one of the posterior's dose levels.

    What rules of per-level rates report as :meth:`Rule.overdose_probability`; None when
    there is no posterior or ``dose`` is not one of its levels.
    """
    if posterior is None:
        return None
    levels = list(posterior.dose_levels)
    if dose not in levels:
        return None
    return posterior.prob_above_at(threshold, levels.index(dose), name)


def rate_above_mcse(
    posterior: DosePosterior, dose: float, threshold: float, name: str = "p_dlt"
) -> float:
    """Monte Carlo standard error of :func:`rate_above` (0 off the levels or when exact)."""
    levels = list(posterior.dose_levels)
    if dose not in levels:
        return 0.0
    return float(posterior.mcse_above(threshold, name)[levels.index(dose)])


def mtd_level_below_mcse(
    posterior: DosePosterior, dose: float, target: float, name: str = "p_dlt"
) -> float:
    """Monte Carlo standard error of :func:`mtd_level_below` (0 off the levels or when exact)."""
    levels = list(posterior.dose_levels)
    if dose not in levels or not posterior.sampled or name in posterior.tails:
        return 0.0
    index = levels.index(dose)
    below = posterior.mcse(lambda rates: closest_levels(rates[name], target)[:, None] < index)
    return float(below[0])


def mtd_level_below(
    posterior: DosePosterior | None, dose: float, target: float, name: str = "p_dlt"
) -> float | None:
    r"""``P(MTD < dose | data)`` for a design whose MTD is the level closest to ``target``.

    The posterior probability that ``dose``, one of the posterior's levels, lies above the
    MTD, where the MTD is the level whose rate is closest to the target (O'Quigley et al.
    1990), a placebo level of rate 0 below the lowest included: the lowest level overdoses
    when its rate exceeds twice the target. As :math:`P(\mathrm{MTD} < x)` of the designs
    with a continuous MTD (EWOC, 3PND), it is what the hard overdose limit checks for the
    CRM and the latent-GP designs; None without a posterior or off the levels.

    A posterior whose tails of the rate are an
    :class:`~dosezoo.posterior.OrderedLevelTails` (the CRM's) gives it exactly, by
    integration; otherwise it is the posterior mean of the indicator over the points.
    """
    if posterior is None:
        return None
    levels = list(posterior.dose_levels)
    if dose not in levels:
        return None
    tails = posterior.tails.get(name)
    if isinstance(tails, OrderedLevelTails):
        return tails.prob_closest_below(target, levels.index(dose))
    mtd = closest_levels(posterior.rate(name), target)
    return float(posterior.expectation((mtd < levels.index(dose)).astype(float)))


def closest_levels(rates: np.ndarray, target: float) -> np.ndarray:
    """Per point, the level whose rate is closest to ``target``; -1 for a placebo level of rate 0.

    Parameters
    ----------
    rates : numpy.ndarray
        Rates per point and level, shape (m, K), in any order across the levels.
    target : float
        The target rate.

    Returns
    -------
    numpy.ndarray
        Shape (m,): the closest level (0-based), -1 when the placebo (rate 0, below the lowest
        level) is closer than every level; of a level below the target and one above it as
        close, the lower.

    Notes
    -----
    The nearest level at or below the target (the largest such rate; the placebo when there
    is none) is compared with the nearest above it (the smallest rate above). Comparing
    every ``|p - target|`` loses the rates far below the target: below half a unit in the
    last place of the target, ``target - p`` is the target itself, and every such level tied
    with the placebo (which then won) although its rate, however small, is the closer. Equal
    rates are rates rounded together (a 0 or a 1 in floating point) of a model whose rates
    increase across the levels (two levels of a continuous posterior tie with probability 0):
    of equal rates at or below the target the highest level is taken, as is a level of rate 0
    before the placebo; of equal rates above it the lowest.
    """
    rates = np.ascontiguousarray(rates, dtype=float)
    return compiled(_closest_levels)(rates, float(target))


def _closest_levels(rates: np.ndarray, target: float) -> np.ndarray:
    """:func:`closest_levels` row by row, one pass over each row's levels (compiled).

    Per row: the largest rate at or below the target (the highest level among equal ones;
    the placebo, rate 0, when there is none or it is -inf) and the smallest above it (the
    lowest level among equal ones; none when it is +inf or a rate is NaN), then the closer
    of the two, the lower on a tie. The eleven numpy passes over an (m, K) array it replaced
    took about half of a latent-GP decision's overdose check (under cProfile).
    """
    m, k_levels = rates.shape
    out = np.empty(m, dtype=np.int64)
    for i in range(m):
        below, below_rate = -1, -np.inf
        above, above_rate = -1, np.inf
        undefined_above = False
        for k in range(k_levels):
            rate = rates[i, k]
            if rate <= target:
                if rate >= below_rate and rate > -np.inf:
                    below, below_rate = k, rate
            elif rate != rate:  # NaN
                undefined_above = True
            elif rate < above_rate:
                above, above_rate = k, rate
        if below < 0:
            below_rate = 0.0
        out[i] = below
        if not undefined_above and above >= 0:
            below_distance, above_distance = target - below_rate, above_rate - target
            if above_distance < below_distance or (
                above_distance == below_distance and above < below
            ):
                out[i] = above
    return out


def _init_names(cls: type) -> list[str]:
    """Names of a dataclass's public init fields, in order."""
    return [f.name for f in fields(cls) if f.init and not f.name.startswith("_")]


def dataclass_options(obj: object, *, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Return a dataclass's public init fields as a dict (options for ``describe``)."""
    return {name: getattr(obj, name) for name in _init_names(type(obj)) if name not in skip}


@dataclass(frozen=True)
class Design:
    """A dose-finding design: a model, a rule and the conduct.

    Parameters
    ----------
    model : DoseModel or None
        The dose-response model (None for a rule that uses no model).
    rule : Rule
        Turns a posterior of the trial so far into the next dose, and selects the dose to
        recommend at the end.
    conduct : Conduct
        Start dose, cohort and sample sizes, stopping rules and how the posterior is computed.

    Notes
    -----
    ``Design(model, rule, conduct)`` with a :class:`CountRule` returns a :class:`CountDesign`.
    """

    model: DoseModel | None
    rule: Rule
    conduct: Conduct = field(default_factory=Conduct)

    def __new__(cls, *args: Any, **kwargs: Any) -> "Design":
        """Return a :class:`CountDesign` when the rule is a :class:`CountRule`."""
        rule = kwargs.get("rule", args[1] if len(args) > 1 else None)
        if cls is Design and isinstance(rule, CountRule):
            cls = CountDesign
        return super().__new__(cls)

    def __post_init__(self) -> None:
        """Check the parts and bind the rule to the model and conduct."""
        if self.model is not None and not isinstance(self.model, DoseModel):
            raise TypeError(f"Design: model must be a DoseModel or None, got {self.model!r}")
        if not isinstance(self.rule, Rule):
            raise TypeError(f"Design: rule must be a Rule, got {self.rule!r}")
        if not isinstance(self.conduct, Conduct):
            raise TypeError(f"Design: conduct must be a Conduct, got {self.conduct!r}")
        levels = getattr(self.model, "dose_levels", None) or getattr(self.rule, "dose_levels", None)
        conduct = self.conduct
        uses_start = self.rule.uses_start_dose
        if uses_start and conduct.start_dose is None and levels:
            conduct = replace(conduct, start_dose=float(levels[0]))
        elif uses_start and conduct.start_dose is None:
            raise ValueError("Design: conduct.start_dose is required when there are no dose levels")
        elif levels and conduct.start_dose not in levels:
            raise ValueError(
                f"Design: start_dose {conduct.start_dose!r} is not one of the dose levels "
                f"{tuple(levels)}"
            )
        if self.model is not None and conduct.engine is not None:
            choice("Design", "conduct.engine", conduct.engine, (*type(self.model).engines(),))
        elif conduct.engine is not None:
            raise ValueError(
                f"Design: conduct.engine {conduct.engine!r}: {type(self.rule).__name__} uses no "
                "model, so there is nothing to fit; leave engine unset"
            )
        if conduct.backfill is not None and not (
            levels and (self.model is None or "dlt" in self.model.outcomes)
        ):
            raise ValueError(
                "Design: conduct.backfill clears doses by their DLTs; it needs dose levels and a "
                f"model with the outcome 'dlt', got {type(self.model).__name__} with outcomes "
                f"{getattr(self.model, 'outcomes', ())}"
            )
        outcomes = () if self.model is None else self.model.outcomes
        for index, piece in enumerate(conduct.stopping):
            missing = [name for name in getattr(piece, "outcomes", ()) if name not in outcomes]
            if self.model is not None and missing:
                raise ValueError(
                    f"Design: conduct.stopping[{index}] ({type(piece).__name__}) reads the "
                    f"outcome {missing[0]!r}, which the data of {type(self.model).__name__} do "
                    f"not have (its outcomes: {', '.join(outcomes)})"
                )
        object.__setattr__(self, "conduct", conduct)
        object.__setattr__(self, "rule", self.rule.bind(self.model, conduct))

    # ------------------------------------------------------------------ the engine's view

    @property
    def start_dose(self) -> float | None:
        """Dose of the first cohort (None when the rule decides the first cohort itself)."""
        if self.conduct.start_dose is None:
            return None
        return float(self.conduct.start_dose)

    @property
    def cohort_size(self) -> int:
        """Patients per cohort."""
        return self.conduct.cohort_size

    @property
    def sample_size(self) -> int:
        """Maximum number of patients."""
        return self.conduct.sample_size

    @property
    def dose_levels(self) -> tuple[float, ...] | None:
        """The dose levels of the model (or of the rule), if it has levels."""
        levels = getattr(self.model, "dose_levels", None) or getattr(self.rule, "dose_levels", None)
        return tuple(levels) if levels else None

    @property
    def backfill(self) -> Backfill | None:
        """The conduct's backfill (None: the trial is not run in time)."""
        return self.conduct.backfill

    def backfill_doses(self, data: TrialData, current: float) -> tuple[float, ...]:
        """Return the doses a backfill patient may get now, increasing (empty: none).

        The doses below ``current`` (the pending escalation cohort's) that ``data`` (the
        patients whose outcomes are known) cleared, less those the rule excludes on the
        posterior its next decision would read (:meth:`Rule.backfill_eligible`) and those over
        the hard overdose limit (``conduct.max_overdose_probability``, as for the next cohort,
        but with no exception for the lowest dose: a backfill patient may be turned away);
        none when that posterior is a refused fit. On a fit with Monte Carlo error, a
        comparison within ``conduct.mcse_margin`` MCSEs of its cut-off closes the dose: the
        hard limit's, and those the rule makes with its Monte Carlo error
        (:meth:`~dosezoo.posterior.DosePosterior.exceeds`), as its decisions make them.

        Raises
        ------
        ValueError
            If the conduct has no backfill or the design has no dose levels.
        """
        backfill, levels = self.conduct.backfill, self.dose_levels
        if backfill is None or levels is None:
            raise ValueError(f"{self.label}: backfill needs a conduct.backfill and dose levels")
        data = self._check(data)
        cleared = backfill.cleared(data, levels, current)
        if not cleared:
            return ()
        posterior = None
        if self.model is not None and self.rule.needs_posterior(data, final=False):
            posterior = self.posterior(data)
            if posterior.report is not None and not posterior.report.ok:
                return ()
        if posterior is None:
            return tuple(self.rule.backfill_eligible(None, data, cleared))
        if posterior.sampled:
            # A dose within ``mcse_margin`` MCSEs of a cut-off counts as beyond it, as at a
            # decision after its refits: a backfill patient may be turned away, not refitted for.
            posterior = posterior.deciding(self.conduct.mcse_margin)
        eligible = self.rule.backfill_eligible(posterior, data, cleared)
        return tuple(dose for dose in eligible if not self._overdoses(posterior, dose))

    # ------------------------------------------------------------------ posterior

    def _check(self, data: object) -> TrialData:
        if not isinstance(data, TrialData):
            raise TypeError(f"{self.label} needs a TrialData, got {type(data).__name__}")
        if self.model is not None:
            self.model.check_data(data, min_patients=0)
        self.rule.check_data(data)
        if (
            not data.cohorts_given
            and data.n_patients > 1
            and self.conduct.cohort_size > 1
            and self.rule.reads_cohorts()
        ):
            raise DataError(
                f"{self.label}: the data have no column 'cohort', and the rule reads which "
                f"patients were dosed together (cohorts of {self.conduct.cohort_size}); give "
                "each patient's cohort number in a column 'cohort' (without it, each patient is "
                "a cohort of their own)"
            )
        return data

    @property
    def label(self) -> str:
        """Name of the design (its rule's label)."""
        return self.rule.label or type(self.rule).__name__

    def posterior(self, data: TrialData, *, final: bool = False, attempt: int = 0) -> DosePosterior:
        """Compute the posterior the rule reads, as the conduct says.

        The model's fast posterior when ``conduct.engine`` is None or the model's exact engine
        (asked for directly when it is an exact integration, which reads no seed); otherwise a
        fit by that engine seeded from the data, judged by ``conduct.convergence`` on the
        levels the rule reads, refitted with more draws up to ``conduct.refits`` times.
        ``attempt`` is the first of these fits to make (0: the first; a decision too close to
        a threshold for its Monte Carlo error asks for the one after its fit's).

        Raises
        ------
        ConvergenceError
            If every fit fails the checks and ``conduct.on_refusal`` is ``"raise"``.
        """
        if self.model is None:
            raise ValueError(f"{self.label} has no model, hence no posterior")
        model = self.rule.model_for(self.model, data)
        conduct = self.conduct
        if model.exact_posterior and conduct.engine in (None, model.fast_engine):
            return model.posterior(data)
        seed = _posterior_seed(model, data, conduct)
        levels = self.rule.levels_read(data, final=final)
        # A trial run in time asks for the posterior of the same data twice: for the decision
        # and for the backfill doses of the first arrivals after it. The posterior is a
        # function of the data (and the seed derived from them), so the last one is kept.
        key = (seed, data.n_patients, final, levels)
        cached = self.__dict__.get("_last_posterior")
        if (
            conduct.backfill is not None
            and cached is not None
            and cached[0] == key
            and cached[1].refits >= attempt
        ):
            return cached[1]
        posterior = conduct_posterior(
            model, data, conduct, levels=levels, attempt=attempt, seed=seed
        )
        if conduct.backfill is not None:
            object.__setattr__(self, "_last_posterior", (key, posterior))
        return posterior

    def __getstate__(self) -> dict[str, Any]:
        """Return the state to pickle, without the kept posterior and decisions (caches)."""
        caches = ("_last_posterior", "_counts_view")
        return {name: value for name, value in self.__dict__.items() if name not in caches}

    def _refused(
        self, posterior: DosePosterior, data: TrialData, *, final: bool
    ) -> Decision | None:
        """Refuse a fit that failed its checks: raise, or return a stop with the reason."""
        report = posterior.report
        if report is None or report.ok:
            return None
        message = "; ".join(report.failures)
        if self.conduct.refits:
            message += f" after {self.conduct.refits} refits with more draws"
        if self.conduct.on_refusal == "stop":
            prefix = "no MTD: " if final else ""
            return Decision(
                None,
                stop_reason=f"{prefix}fit refused: {message}",
                quantities=self.rule.refusal_quantities(posterior, data, final=final),
                diagnostics=report.table,
            )
        raise ConvergenceError(f"{self.label} will not act on this fit: {message}", report)

    # ------------------------------------------------------------------ decisions

    def next(
        self, data: TrialData, *, posteriors: MutableMapping[Hashable, Any] | None = None
    ) -> Decision:
        """Decide the dose of the next cohort, or to stop the trial.

        Parameters
        ----------
        data : TrialData
            The trial so far (may be empty: the first cohort gets the start dose).
        posteriors : mutable mapping, optional
            A memo of posteriors by :meth:`posterior_key`, filled and read across calls (e.g.
            by the dose transition pathways, whose trials share their sufficient statistics).

        Returns
        -------
        Decision
        """
        data = self._check(data)
        reason = self.conduct.stop_reason(data)
        if reason:
            return Decision(None, stop_reason=reason)
        if not data.n_patients and self.rule.uses_start_dose:
            return Decision(
                self.start_dose,
                bound_by=("start_dose",),
                quantities=dict(self.rule.start_quantities),
            )
        return self._ask_rule(data, final=False, posteriors=posteriors)

    def recommend(self, data: TrialData) -> Decision:
        """Recommend a dose at the end of a trial (the rule's selection), or none.

        Parameters
        ----------
        data : TrialData
            Every patient of the trial.

        Returns
        -------
        Decision
        """
        data = self._check(data)
        reason = self.conduct.early_stop(data)
        if reason:
            return Decision(None, stop_reason=reason)
        return self._ask_rule(data, final=True)

    def posterior_key(self, data: TrialData, *, final: bool = False) -> Hashable:
        """Return what the posterior of ``data`` depends on, as a key of a memo.

        The model (for data), its sufficient statistic of the data, the levels the rule reads
        and whether the posterior is for the final selection.
        """
        if self.model is None:
            raise ValueError(f"{self.label} has no model, hence no posterior")
        model = self.rule.model_for(self.model, data)
        levels = self.rule.levels_read(data, final=final)
        options = json.dumps(model.parameters(), sort_keys=True, default=str)
        return (model.model_name, options, model.sufficient_statistic(data), levels, final)

    def _ask_rule(
        self,
        data: TrialData,
        *,
        final: bool,
        posteriors: MutableMapping[Hashable, Any] | None = None,
    ) -> Decision:
        """Ask the rule (``final``: for its selection) on the posterior the conduct computes."""
        posterior = None
        if self.rule.needs_posterior(data, final=final):
            if posteriors is None:
                posterior = self.posterior(data, final=final)
            else:
                key = self.posterior_key(data, final=final)
                posterior = posteriors.get(key)
                if posterior is None:
                    posterior = posteriors[key] = self.posterior(data, final=final)
            refused = self._refused(posterior, data, final=final)
            if refused is not None:
                return refused
        decision, posterior = self._resolved(posterior, data, final=final, refit=True)
        return self._with_diagnostics(self._with_refits(decision, posterior), posterior)

    def _rule_decision(
        self, posterior: DosePosterior | None, data: TrialData, *, final: bool
    ) -> Decision:
        """Return the rule's choice (``final``: selection), held to the hard overdose limit."""
        if final:
            return self._selection_within_overdose_limit(
                self.rule.select(posterior, data), posterior, data
            )
        return self._within_overdose_limit(self.rule.choose(posterior, data), posterior, data)

    def _resolved(
        self, posterior: DosePosterior | None, data: TrialData, *, final: bool, refit: bool
    ) -> tuple[Decision, DosePosterior | None]:
        """Decide so that no comparison within ``conduct.mcse_margin`` MCSEs of its cutoff decides.

        A decision on a posterior with Monte Carlo error whose comparisons
        (:meth:`DosePosterior.exceeds`) lie that close is made again on the next refit with
        more draws (``refit``, within ``conduct.refits``), then, still that close, with those
        comparisons on their cautious side. When the refits fail the convergence checks, the
        last fit that passed them decides, on its cautious side (the quantity
        ``refits_refused`` counts the refits that failed): they were asked for more
        precision, not because that fit failed its checks. Returns the decision and the
        posterior it read.
        """
        margin = self.conduct.mcse_margin
        if posterior is None or not posterior.sampled or not margin:
            return self._rule_decision(posterior, data, final=final), posterior
        refused = 0
        while True:
            view = posterior.deciding()
            decision = self._rule_decision(view, data, final=final)
            close = [c.margin() for c in view.comparisons if c.margin() < margin]
            if not close:
                return decision, posterior
            if not refit or posterior.refits >= self.conduct.refits:
                break
            refitted = self.posterior(data, final=final, attempt=posterior.refits + 1)
            if refitted.report is not None and not refitted.report.ok:
                # Every refit from here on was made (Design.posterior) and failed.
                refused = refitted.refits - posterior.refits
                break
            posterior = refitted
        cautious = self._rule_decision(posterior.deciding(margin), data, final=final)
        changed = (cautious.next_dose, cautious.stop_reason) != (
            decision.next_dose,
            decision.stop_reason,
        )
        quantities = cautious.quantities | {"mcse_margin": min(close)}
        if refused:
            quantities["refits_refused"] = float(refused)
        return replace(
            cautious,
            bound_by=(*cautious.bound_by, "mcse") if changed else cautious.bound_by,
            quantities=quantities,
        ), posterior

    def _over_limit(self, posterior: DosePosterior, dose: float, p: float) -> bool:
        """Whether ``p``, the overdose probability at ``dose``, exceeds the hard limit.

        At a dose level, a comparison with its Monte Carlo error
        (:meth:`~dosezoo.posterior.DosePosterior.exceeds`).
        """
        limit = self.conduct.max_overdose_probability
        if not self.dose_levels or dose not in self.dose_levels:
            # A dose off the levels is a quantile of the MTD (the rule's, or the limit's own
            # when de-escalating), on the limit by construction at worst: its Monte Carlo error
            # is the quantile's, which a comparison at a fixed dose does not describe.
            return not p <= limit
        return posterior.exceeds_value(
            "overdose_probability", p, limit, lambda: self.rule.overdose_mcse(posterior, dose)
        )

    def _overdoses(self, posterior: DosePosterior, dose: float) -> bool:
        """Whether ``dose`` is over the hard overdose limit (never, without its probability)."""
        p = self.rule.overdose_probability(posterior, dose)
        return p is not None and self._over_limit(posterior, dose, p)

    def _within_overdose_limit(
        self,
        decision: Decision,
        posterior: DosePosterior | None,
        data: TrialData,
        *,
        final: bool = False,
    ) -> Decision:
        """Hold ``decision`` to ``conduct.max_overdose_probability`` (the hard overdose limit).

        Records ``overdose_probability`` at the dose given; above the limit, de-escalates to
        the highest lower dose level within it (without levels: the MTD's quantile at the
        limit), or stops when there is none, and records the rule's own dose as
        ``rule_dose`` (the rule's quantities, e.g. its ``p_overdose``, speak of that dose).
        ``final``: the decision is the recommendation (a stop is "no MTD: ...").
        """
        dose = decision.next_dose
        if posterior is None or dose is None or isinstance(dose, tuple) or decision.strata:
            return decision
        p = self.rule.overdose_probability(posterior, float(dose))
        if p is None:
            return decision
        limit = self.conduct.max_overdose_probability
        if not self._over_limit(posterior, float(dose), p):
            decision.quantities["overdose_probability"] = p
            return decision
        if self.dose_levels:
            candidates = [float(v) for v in reversed(self.dose_levels) if v < dose]
        elif posterior.mtd is not None:
            candidates = [float(posterior.mtd.quantile(limit))]
        else:
            candidates = []
        for candidate in candidates:
            q = self.rule.overdose_probability(posterior, candidate)
            if q is not None and not self._over_limit(posterior, candidate, q) and candidate < dose:
                return replace(
                    decision,
                    next_dose=candidate,
                    bound_by=(*decision.bound_by, "overdose_limit"),
                    quantities=decision.quantities
                    | {"overdose_probability": q, "rule_dose": float(dose)},
                )
        lowest = candidates[-1] if candidates else float(dose)
        treated = int(np.count_nonzero(np.asarray(data.dose, dtype=float) == lowest))
        if self.dose_levels and treated < self.conduct.overdose_min_patients:
            # As the rules' own safety stops: no stop before enough patients at the lowest dose.
            return replace(
                decision,
                next_dose=lowest,
                bound_by=(*decision.bound_by, "overdose_min_patients"),
                quantities=decision.quantities
                | {
                    "overdose_probability": self.rule.overdose_probability(posterior, lowest),
                    "rule_dose": float(dose),
                },
            )
        return Decision(
            None,
            stop_reason=(
                f"{'no MTD: ' if final else ''}overdose limit: P(overdose) > {limit:g} at every "
                f"dose up to {dose:g} "
                f"(at the lowest, {lowest:g}: "
                f"{self.rule.overdose_probability(posterior, lowest):.3f})"
            ),
            quantities=decision.quantities | {"overdose_probability": p, "rule_dose": float(dose)},
            diagnostics=decision.diagnostics,
        )

    def _selection_within_overdose_limit(
        self, decision: Decision, posterior: DosePosterior | None, data: TrialData
    ) -> Decision:
        """Record the selection's ``overdose_probability``; hold it to the hard overdose limit.

        With ``conduct.select_within_overdose_limit``, as :meth:`_within_overdose_limit` holds
        a next dose. Otherwise the rule's selection stands, but for no dose when the lowest
        dose level exceeds the limit after ``overdose_min_patients`` had it: the state in which
        :meth:`_within_overdose_limit` stops a trial (a trial stopped because every dose more
        likely than not overdoses ends without an MTD, as after the rules' own safety stops,
        rather than with the rule's selection of the lowest level).
        """
        if self.conduct.select_within_overdose_limit:
            return self._within_overdose_limit(decision, posterior, data, final=True)
        dose = decision.next_dose
        if posterior is None or dose is None or isinstance(dose, tuple) or decision.strata:
            return decision
        p = self.rule.overdose_probability(posterior, float(dose))
        if p is not None:
            decision.quantities["overdose_probability"] = p
        if not self.dose_levels:
            return decision
        lowest = float(self.dose_levels[0])
        treated = int(np.count_nonzero(np.asarray(data.dose, dtype=float) == lowest))
        if treated < self.conduct.overdose_min_patients:
            return decision
        if dose != lowest:
            p = self.rule.overdose_probability(posterior, lowest)
        limit = self.conduct.max_overdose_probability
        if p is None or not self._over_limit(posterior, lowest, p):
            return decision
        return Decision(
            None,
            stop_reason=(
                f"no MTD: overdose limit: P(overdose) > {limit:g} at the lowest dose "
                f"{lowest:g} ({p:.3f})"
            ),
            quantities=decision.quantities | {"overdose_probability": p, "rule_dose": float(dose)},
            diagnostics=decision.diagnostics,
        )

    def _with_refits(self, decision: Decision, posterior: DosePosterior | None) -> Decision:
        """Record the refits a decision's fit needed, when the conduct allows refits."""
        if self.conduct.refits and posterior is not None:
            decision.quantities["refits"] = float(posterior.refits)
        return decision

    @staticmethod
    def _with_diagnostics(decision: Decision, posterior: DosePosterior | None) -> Decision:
        """Attach the convergence table of the decision's fit, unless the rule gave its own.

        The table of the posterior's report (the variables the conduct judged); a posterior
        without one (an exact integration, which has no Monte Carlo error) leaves
        ``diagnostics`` None and costs nothing here.
        """
        report = None if posterior is None else posterior.report
        if report is None or report.table is None or decision.diagnostics is not None:
            return decision
        return replace(decision, diagnostics=report.table)

    def decide(self, idata: "xr.DataTree", data: TrialData) -> Decision:
        """Decide the next dose from a fit of the trial so far, made by any engine.

        What :meth:`next` decides, the posterior read from ``idata``: :meth:`next`'s stop when
        the sample size is reached or a stopping rule of the conduct holds (the fit unread),
        else the rule's dose held to the hard overdose limit.

        Parameters
        ----------
        idata : xarray.DataTree
            A fit of the design's model (or, for a rule whose prior depends on the data, of
            :meth:`model_for` the data) to ``data``.
        data : TrialData
            The trial so far, at least one patient.

        Returns
        -------
        Decision

        Raises
        ------
        FitMismatchError
            If the fit was made on other data, by another model class or with other model
            settings (:meth:`~dosezoo.models.base.DoseModel.check_fit`).
        ConvergenceError
            If the fit fails ``conduct.convergence`` on the variables the rule reads.
        """
        data = self._check(data)
        if self.model is None:
            raise ValueError(f"{self.label} uses no model; call next(data)")
        if not data.n_patients:
            raise ValueError(f"{self.label}.decide needs at least one patient; call next(data)")
        model = self.rule.model_for(self.model, data)
        model.check_fit(idata, data)
        # The sample size and the conduct's stopping rules come first, and stop as next(data)
        # does: a count rule stops at the sample size itself, with its quantities.
        if self.conduct.stop_reason(data):
            return self.next(data)
        levels = self.rule.levels_read(data, final=False)
        posterior = model.posterior_from_idata(idata, self.conduct.convergence, levels=levels)
        report = posterior.report
        if report is not None and not report.ok:
            raise ConvergenceError(
                f"{self.label} will not act on this fit: " + "; ".join(report.failures), report
            )
        decision = self._resolved(posterior, data, final=False, refit=False)[0]
        return self._with_diagnostics(decision, posterior)

    def counts_view(self) -> "CountsView | None":
        """Return the design as a count-rule design for the lockstep engine, if it is one.

        It is when the model's posterior depends on the data only through the patients and
        DLTs per level (``model.count_posterior``, computed by its exact engine), the rule
        reads nothing else but the current level and perhaps the last cohort
        (:meth:`Rule.reads_counts_only`, :meth:`Rule.reads_last_cohort`), and the
        conduct has no stopping rule of its own; None otherwise. The view is kept with the
        design, so that the decisions it keeps by count state serve every batch of trials this
        process simulates with the design, not only the batch that first reached the state.
        """
        model = self.model
        if (
            model is None
            or not model.count_posterior
            or not self.rule.reads_counts_only()
            or self.conduct.stopping
            or self.conduct.engine not in (None, model.fast_engine)
        ):
            return None
        view = self.__dict__.get("_counts_view")
        if view is None:
            view = CountsView(self)
            object.__setattr__(self, "_counts_view", view)
        return view

    def model_for(self, data: TrialData) -> DoseModel:
        """Return the model whose fit :meth:`decide` expects for ``data``."""
        if self.model is None:
            raise ValueError(f"{self.label} uses no model")
        return self.rule.model_for(self.model, data)

    def describe(self) -> Described:
        """Flat record of the design: model, rule and conduct (for simulation results)."""
        record: Described = {"name": self.label}
        if not self.rule.selects_dose:  # recorded only then: other records stay as they were
            record["selects_dose"] = False
        if self.model is not None:
            record["model"] = self.model.model_name
            record |= {
                f"model_{key}": _flat(value) for key, value in self.model.parameters().items()
            }
        record |= {f"rule_{key}": _flat(value) for key, value in self.rule.describe().items()}
        conduct = self.conduct.describe()
        model = self.model
        if model is not None and not (
            model.exact_posterior and self.conduct.engine in (None, model.fast_engine)
        ):
            # A fast posterior may be sampled too (the joint probit's, the latent GP's): the
            # margin changes its trials, and a store must tell two margins apart.
            conduct.setdefault("mcse_margin", self.conduct.mcse_margin)
        record |= {f"conduct_{key}": _flat(value) for key, value in conduct.items()}
        return record


def _flat(value: object) -> float | int | str | bool | None:
    """Return a described value as a netCDF-safe scalar (sequences comma-joined)."""
    if isinstance(value, list | tuple | np.ndarray):
        return ",".join(number_text(v) if isinstance(v, int | float) else str(v) for v in value)
    if isinstance(value, dict):
        return str(value)
    return value  # type: ignore[return-value]  # anything else is taken as a scalar


@dataclass(frozen=True, eq=False)
class CountsView:
    """A model-based design seen as a count-rule design (``CountRuleDesign``).

    For a design whose decisions depend on the patients and DLTs per level and the current
    level only (:meth:`Design.counts_view`), the lockstep engine decides the next cohort of a
    whole batch of trials by one call of :meth:`decide_counts`. Each distinct count state of
    the batch is decided once: by ``design.next`` on data with those counts (the model's
    :meth:`~dosezoo.models.base.DoseModel.data_from_counts`; with the last cohort's patients
    and DLTs when the rule reads them), so the decision is exactly the one of the
    per-trial engine, and is kept for every later trial that reaches the same state, in this
    batch and the next ones (the states early in a trial recur in nearly every trial): up to
    :attr:`memo_size` decisions, then the memo starts afresh.
    """

    #: Decisions kept by count state, as rows (`dosezoo.decision.DecisionRow`).
    memo_size: ClassVar[int] = 1 << 15

    design: Design
    _memo: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def dose_levels(self) -> tuple[float, ...]:
        """The model's dose levels."""
        return tuple(getattr(self.design.model, "dose_levels"))

    @property
    def cohort_size(self) -> int:
        """Patients per cohort."""
        return self.design.cohort_size

    @property
    def sample_size(self) -> int:
        """Maximum number of patients."""
        return self.design.sample_size

    @property
    def counted_outcomes(self) -> tuple[str, ...]:
        """The DLTs only: a design seen through its counts reads patients and DLTs per level."""
        return ("dlt",)

    @property
    def reads_last_cohort(self) -> bool:
        """Whether the design's rule reads the last cohort's patients and DLTs."""
        return self.design.rule.reads_last_cohort()

    def events_of(self, outcomes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """No events besides DLTs."""
        return {}

    def decide_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
        last_cohort: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> CountDecisions:
        """Decide for a batch of count states, row ``i`` as ``design.next`` on those counts.

        ``last_cohort`` (the patients and DLTs of each state's last cohort, (m,) each) is
        required when the rule :attr:`reads_last_cohort`, and ignored otherwise.
        """
        return self._decide(n, y, current, last_cohort, final=False)

    def recommend_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
        last_cohort: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> CountDecisions:
        """Select for a batch of count states, row ``i`` as ``design.recommend``."""
        return self._decide(n, y, current, last_cohort, final=True)

    def _decide(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        last_cohort: tuple[np.ndarray, np.ndarray] | None,
        *,
        final: bool,
    ) -> CountDecisions:
        levels = self.dose_levels
        owner = self.design.label
        states = count_state(owner, n, y, current, len(levels))
        # Each distinct state of the batch is looked up once: its key is the row of its counts,
        # current level and (when the rule reads it) last cohort, as bytes.
        columns = [states.n, states.y, states.current[:, None]]
        cohorts = None
        if self.reads_last_cohort:
            if last_cohort is None:
                raise ValueError(
                    f"{owner}: the rule reads the last cohort; give last_cohort, the patients "
                    "and DLTs of each state's last cohort"
                )
            cohorts = checked_last_cohorts(owner, states, last_cohort)
            columns += [cohorts.n[:, None], cohorts.y[:, None]]
        table = np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.int64)
        keys = table.view(np.dtype((np.void, table.shape[1] * table.itemsize))).ravel()
        _, first_rows, inverse = np.unique(keys, return_index=True, return_inverse=True)
        # The distinct states in order of first appearance, so that the quantities keep the
        # order in which the rows first list them.
        order = np.argsort(first_rows)
        position = np.empty_like(order)
        position[order] = np.arange(order.size)
        method = self.design.recommend if final else self.design.next
        model = self.design.model
        assert model is not None  # a design with a counts view has a model
        rows: list[DecisionRow] = []
        for row in first_rows[order].tolist():
            key = (final, keys[row].tobytes())
            decided = self._memo.get(key)
            if decided is None:
                if len(self._memo) >= self.memo_size:
                    self._memo.clear()
                cohort = None if cohorts is None else (int(cohorts.n[row]), int(cohorts.y[row]))
                level = int(states.current[row])
                # count_state and checked_last_cohorts checked the batch's states above
                data = model.data_from_counts(
                    states.n[row], states.y[row], level, cohort, checked=True
                )
                decided = self._memo[key] = CountDecisions.row(method(data), levels, len(rows))
            rows.append(decided)
        return CountDecisions.from_rows(rows).take(position[inverse])


class CountRule(Rule):
    """A rule that decides from the patients and DLTs per dose level and the current level only.

    Subclasses write the rule once, for a batch of ``m`` count states: ``n``, ``y`` (m, K)
    and ``current`` (m,), the level of the last cohort (-1 before the first patient), in
    :meth:`_decide` and :meth:`_recommend`; the base derives ``choose`` / ``select`` (a batch
    of one) and the checked batch methods the lockstep engine calls. After
    :meth:`~Rule.bind`, a count rule holds its dose levels, start level and sample size.
    """

    dose_levels: tuple[float, ...]

    @abstractmethod
    def _decide(
        self, states: CountStates, posterior: DosePosterior | None = None
    ) -> CountDecisions:
        """Decide for checked count states (``posterior``: a fit to read, if any)."""

    @abstractmethod
    def _recommend(
        self, states: CountStates, posterior: DosePosterior | None = None
    ) -> CountDecisions:
        """Select for checked count states (``posterior``: a fit to read, if any)."""

    #: Outcome columns the rule counts: ``dlt``, and those :meth:`events_of` reads.
    counted_outcomes: ClassVar[tuple[str, ...]] = ("dlt",)

    def events_of(self, outcomes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Map patients' outcomes to the events the rule counts besides DLTs (none here).

        Parameters
        ----------
        outcomes : mapping of str to numpy.ndarray
            The ``counted_outcomes`` of some patients, arrays of one shape.

        Returns
        -------
        dict of str to numpy.ndarray
            Each event as 0/1 integers of that shape; the counts per level of these events
            are the ``events`` of the rule's count states.
        """
        return {}

    def counts(self, data: TrialData) -> CountStates:
        """Return the count state of ``data`` as a batch of one: ``n``, ``y``, ``current``.

        With its ``events`` per level, when the rule counts any (:meth:`events_of`).
        """
        owner = type(self).__name__
        counts = level_counts(data, self.dose_levels, owner=owner)
        outcomes = {}
        for name in self.counted_outcomes:
            data.require(name, min_patients=0, model=owner)
            outcomes[name] = np.asarray(data.column(name))
        events = self.events_of(outcomes)
        if not events:
            return CountStates(counts.n[None], counts.y[None], np.array([counts.current]))
        index = level_index(data.dose, self.dose_levels, owner=owner)
        per_level = {
            name: np.bincount(index, weights=flags, minlength=len(self.dose_levels)).astype(
                np.int64
            )[None]
            for name, flags in events.items()
        }
        # The patients and DLTs of validated data are possible counts (as above); the events
        # are the rule's own, checked.
        n = counts.n[None]
        return CountStates(
            n, counts.y[None], np.array([counts.current]), checked_events(owner, n, per_level)
        )

    def needs_posterior(self, data: TrialData, *, final: bool) -> bool:
        """Count rules read the counts; a posterior only when one is given (``decide``)."""
        return False

    #: Decisions of one count state kept by :meth:`choose` and :meth:`select` (a few kB each).
    memo_size: ClassVar[int] = 1 << 14

    def _kept(self, states: CountStates, *, final: bool) -> CountDecisions:
        """Return :meth:`_decide` (``final``: :meth:`_recommend`) of one count state, kept.

        A decision is a function of the count state alone (no posterior given), and a
        simulation run trial by trial (e.g. with backfill) reaches the same states in trial
        after trial: each is decided once, up to :attr:`memo_size` states, then the memo
        starts afresh. Each call still builds its own `Decision` from the kept row.
        """
        key = (
            final,
            states.n.tobytes(),
            states.y.tobytes(),
            int(states.current[0]),
            tuple((name, counts.tobytes()) for name, counts in states.events.items()),
        )
        memo = self.__dict__.get("_decisions")
        if memo is None:
            memo = {}
            object.__setattr__(self, "_decisions", memo)
        decisions = memo.get(key)
        if decisions is None:
            if len(memo) >= self.memo_size:
                memo.clear()
            decide = self._recommend if final else self._decide
            decisions = memo[key] = decide(states)
        return decisions

    def __getstate__(self) -> dict[str, Any]:
        """Return the state to pickle, without the decisions kept (a cache)."""
        return {name: value for name, value in self.__dict__.items() if name != "_decisions"}

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide as :meth:`decide_counts` on the counts of ``data``."""
        states = self.counts(data)
        if posterior is None:
            return self._kept(states, final=False).decision(0, self.dose_levels)
        return self._decide(states, posterior).decision(0, self.dose_levels)

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Select as :meth:`recommend_counts` on the counts of ``data``."""
        states = self.counts(data)
        if posterior is None:
            return self._kept(states, final=True).decision(0, self.dose_levels)
        return self._recommend(states, posterior).decision(0, self.dose_levels)

    def decide_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
    ) -> CountDecisions:
        """Decide for a batch of count states, row ``i`` as ``next`` on data with those counts.

        Parameters
        ----------
        n, y : array_like
            Patients and DLTs per level, (m, K) integers.
        current : array_like
            Level of each state's last cohort, -1 before the first patient, (m,) integers.
        events : mapping of str to array_like, optional
            The other events the rule counts (:meth:`events_of`), (m, K) integers each.

        Returns
        -------
        CountDecisions
        """
        return self._decide(self._count_state(n, y, current, events))

    def recommend_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
    ) -> CountDecisions:
        """Select for a batch of count states, row ``i`` as ``recommend`` on those counts."""
        return self._recommend(self._count_state(n, y, current, events))

    def _count_state(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
    ) -> CountStates:
        """Check a batch of count states; return them as int64 arrays."""
        return count_state(type(self).__name__, n, y, current, len(self.dose_levels), events)

    def tabulate(self, cohort_size: int, max_patients: int) -> list[Any] | None:
        """Return the rule's own decision table (rows of a dataclass), or None.

        None (the default) lets :meth:`CountDesign.decision_table` read the escalation table
        by patients and DLTs from :meth:`decide_counts`; a rule whose decisions depend on more
        counts tabulates them itself. Called on the bound rule, with the sample size lifted.
        """
        return None


@dataclass(frozen=True)
class CountDesign(Design):
    """A design whose rule is a :class:`CountRule`: its decisions depend on the counts only.

    ``next`` and ``recommend`` are the rule's on the counts of the data (the rule handles the
    start dose and the sample size itself, as it does for a batch); the simulation engine runs
    such a design in lockstep through :meth:`decide_counts` and :meth:`recommend_counts`.
    """

    rule: CountRule

    def next(
        self, data: TrialData, *, posteriors: MutableMapping[Hashable, Any] | None = None
    ) -> Decision:
        """Decide as the count rule does on the counts of ``data`` (after the stopping rules).

        ``posteriors`` is unused: a count rule reads no posterior.
        """
        reason = self.conduct.early_stop(self._check(data))
        if reason:
            return Decision(None, stop_reason=reason)
        return self.rule.choose(None, data)

    def recommend(self, data: TrialData) -> Decision:
        """Select as the count rule does on the counts of ``data`` (after the stopping rules)."""
        reason = self.conduct.early_stop(self._check(data))
        if reason:
            return Decision(None, stop_reason=reason)
        return self.rule.select(None, data)

    #: Conduct options a count rule never reads: the hard overdose limit holds a posterior
    #: quantity that count rules do not report (their own elimination plays its part), and
    #: there is no fit.
    unused_conduct: ClassVar[tuple[str, ...]] = (
        "conduct_max_overdose_probability",
        "conduct_overdose_min_patients",
        "conduct_select_within_overdose_limit",
        *(f"conduct_{name}" for name in Conduct.fit_settings),
        *(f"conduct_convergence_{field.name}" for field in fields(ConvergenceCriteria)),
    )

    def describe(self) -> Described:
        """Flat record of the design, without the conduct options a count rule never reads."""
        record = super().describe()
        for key in self.unused_conduct:
            record.pop(key, None)
        return record

    @property
    def counted_outcomes(self) -> tuple[str, ...]:
        """Outcome columns the rule counts (``dlt``, and those of its other events)."""
        return self.rule.counted_outcomes

    #: A count rule reads the counts per level and the current level, never the last cohort.
    reads_last_cohort: ClassVar[bool] = False

    def events_of(self, outcomes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the rule's other events (besides DLTs) of patients with these outcomes."""
        return self.rule.events_of(outcomes)

    def decide_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
        last_cohort: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> CountDecisions:
        """Decide for a batch of count states (the lockstep engine's call).

        ``last_cohort`` is not read (:attr:`reads_last_cohort` is False).
        """
        return self.rule.decide_counts(n, y, current, events)

    def recommend_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
        last_cohort: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> CountDecisions:
        """Select for a batch of count states (``last_cohort`` is not read)."""
        return self.rule.recommend_counts(n, y, current, events)

    def decision_table(self, max_patients: int | None = None) -> list[Any]:
        """Tabulate the rule's decisions by the patients and DLTs at the current dose.

        A rule with a table of its own (:meth:`CountRule.tabulate`, e.g. by patients, DLTs and
        responses) returns that instead.

        The table BOIN's protocols print: for ``n`` patients at the current dose (``n`` =
        cohort size, twice the cohort size, ... up to ``max_patients``), the largest number of
        DLTs at which the rule escalates, the smallest at which it de-escalates, and the
        smallest at which it eliminates the dose (never gives it again). It is read from the
        rule itself, by one batch of :meth:`decide_counts` at a middle level ``j`` with no
        patient elsewhere (escalate: the next level is above ``j``; de-escalate: below), and
        at ``j - 1`` after one DLT-free cohort there (eliminated: the rule would not escalate
        back to ``j``). The sample size is lifted so that it never stops the table early.

        Parameters
        ----------
        max_patients : int, optional
            Largest ``n``; the sample size or 12, whichever is smaller, by default.

        Returns
        -------
        list of DecisionTableRow
            One row per ``n``, up to the first ``n`` the rule refuses as a state (the 3+3
            treats 3 or 6 patients per dose).

        Raises
        ------
        ValueError
            With fewer than 3 dose levels (no middle level; a rule's own table does not need
            one), or ``max_patients`` below the cohort size.
        """
        cohort = self.cohort_size
        limit = min(self.sample_size, 12) if max_patients is None else max_patients
        limit = positive_int("decision_table", "max_patients", limit)
        if limit < cohort:
            raise ValueError(
                f"decision_table: max_patients {limit} is below the cohort size {cohort}"
            )
        conduct = replace(self.conduct, sample_size=10 * (limit + cohort), stopping=())
        rule = Design(self.model, self.rule, conduct).rule
        assert isinstance(rule, CountRule)
        own = rule.tabulate(cohort, limit)
        if own is not None:
            return own
        levels = len(self.rule.dose_levels)
        if levels < 3:
            raise ValueError(
                f"decision_table: needs at least 3 dose levels (a middle one), got {levels}"
            )
        middle = levels // 2
        rows = []
        for n in range(cohort, limit + 1, cohort):
            y = np.arange(n + 1)
            states = np.zeros((2 * y.size + 1, levels), dtype=np.int64)
            dlts = np.zeros_like(states)
            states[:, middle], dlts[: 2 * y.size, middle] = n, np.tile(y, 2)
            states[y.size :, middle - 1] = cohort  # one DLT-free cohort below
            states[-1, middle] = 0  # the control: from below, the rule escalates to j
            current = np.r_[np.full(y.size, middle), np.full(y.size + 1, middle - 1)]
            try:
                level = rule.decide_counts(states, dlts, current).level
            except ValueError:  # a state the rule refuses (e.g. 9 patients at a 3+3 dose)
                break
            if level[-1] != middle:
                raise ValueError(
                    f"decision_table: {self.label} does not escalate after {cohort} patients "
                    "without a DLT at the dose below; elimination cannot be read"
                )
            here, back = level[: y.size], level[y.size : 2 * y.size]
            escalate = y[here > middle]
            deescalate = y[(here >= 0) & (here < middle)]
            eliminate = y[back != middle]
            rows.append(
                DecisionTableRow(
                    n=n,
                    escalate=int(escalate.max()) if escalate.size else None,
                    deescalate=int(deescalate.min()) if deescalate.size else None,
                    eliminate=int(eliminate.min()) if eliminate.size else None,
                )
            )
        return rows


@dataclass(frozen=True)
class DecisionTableRow:
    """One row of a count design's decision table (:meth:`CountDesign.decision_table`).

    Attributes
    ----------
    n : int
        Patients at the current dose.
    escalate : int or None
        Escalate with at most this many DLTs (None: never).
    deescalate : int or None
        De-escalate with at least this many DLTs (None: never).
    eliminate : int or None
        Eliminate the dose with at least this many DLTs (None: never).
    """

    n: int
    escalate: int | None
    deescalate: int | None
    eliminate: int | None
