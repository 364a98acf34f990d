r"""Dose-finding by the posterior alpha-quantile of the MTD (Lee 2023, Algorithm 2; EWOC).

The next dose is :math:`x_{n+1} = \Pi_n^{-1}(\alpha)`, the :math:`\alpha`-quantile of the
posterior of the MTD, so that :math:`P(\mathrm{MTD} < x_{n+1} \mid \mathcal F_n) \le \alpha`
(eq (10)): :math:`\alpha` is the feasibility bound of overdose control. Practical options
(Lee 2023, Discussion) restrict the choice, in this order: no dose above the last one plus
``max_increment``; no dose below the last one (``monotone``); then the dose is moved to a
level of ``dose_levels``, the nearest one (Lee's rule) or the highest one not above it
(``rounding="down"``, EWOC's, which keeps the overdose control), and with ``no_skipping`` never
above the level next to the highest level given. Every option that changes
the dose is recorded in ``Decision.bound_by``, and the posterior probability of overdosing at
the dose finally chosen is reported, so a user sees what the options cost in overdose control.

Level-aware escalation (EWOC's rule for discrete doses, Babb et al. 1998; the ``ewoc`` R
package with ``rounding = "down"``, one of the two roundings it requires for discrete doses,
and its default ``no_skip_dose = TRUE``) is ``rounding="down"`` with ``no_skipping``: the next
dose is the highest level :math:`d_k` with :math:`P(\mathrm{MTD} < d_k \mid \mathcal F_n) \le
\alpha`, at most one level above the highest level given. The package counts that one level
from the current dose instead, which differs only after a de-escalation (it then escalates
one level at a time back up to the highest dose given). A level is at most the
:math:`\alpha`-quantile exactly when its posterior probability of overdosing is at most
:math:`\alpha` (the posterior CDF of the MTD is continuous and increasing), so rounding the
quantile down is that test, level by level. Lee's nearest rounding can instead move up to a
level whose probability of overdosing exceeds :math:`\alpha`.

The feasibility bound may grow during the trial (Lee 2023, "we can use a variable feasibility
bound :math:`\alpha`, starting with some small value of :math:`\alpha`, and as the trial
progresses, :math:`\alpha` increases in small increments", after Tighiouart and Rogatko 2010):
after :math:`n` patients :math:`\alpha_n = \min(\alpha_{max}, \alpha + n\,\Delta\alpha)`
(``alpha``, ``alpha_step``, ``alpha_max``), as :class:`~dosezoo.designs.EWOCRule` does. Early
patients get strong overdose control while the posterior is vague; the last decisions, made
on most of the data, move toward the posterior median of the MTD (:math:`\alpha = 0.5`, the
estimate under a symmetric loss).

The rule needs two functions of the posterior of the MTD, its quantile and its CDF
(``posterior.mtd``): the exact quadrature posterior of :meth:`dosezoo.models.ThreePND.posterior`,
which designs and simulations use, or MCMC draws of any fit (``Design.decide(idata, data)``,
after the convergence checks).

The design (:func:`mtd_quantile_design`, Lee 2023, Algorithm 1) gives the first cohort the
start dose :math:`x_1` and each later cohort of ``cohort_size`` patients
:math:`x_{n+1} = \mathcal D_\alpha(\mathcal F_n)`; the trial ends after ``sample_size``
patients, or earlier when the :class:`ToxicityStopping` rule fires. ``cohort_size = 1`` is the
fully sequential adaptive design (FSAD), ``cohort_size = 3`` the cohort sequential one (CSAD).
At the end the recommended dose is the rule's dose given all the data, :math:`x_{N+1}` (Lee
takes the last patient's dose :math:`x_N`; the scenarios score both).
"""

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from dosezoo.checks import integer, positive_number, real_number
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import Conduct, Design, ModelRule, RuleOptions
from dosezoo.designs.registry import Family, register, register_stopping
from dosezoo.levels import validate_dose_levels
from dosezoo.models.three_pnd import ThreePND
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described

__all__ = ["MTD_QUANTILE_CONDUCT", "MTDQuantileRule", "ToxicityStopping", "mtd_quantile_design"]

#: The conduct of Lee (2023)'s designs: one patient per cohort (FSAD), 30 patients, and a
#: burn-in of 500 for an MCMC engine.
MTD_QUANTILE_CONDUCT: dict[str, Any] = {"cohort_size": 1, "sample_size": 30, "tune": 500}


@dataclass(frozen=True)
class ToxicityStopping:
    """Stop the trial when more than ``max_toxicities`` patients had ``y >= threshold``.

    Lee (2023), Discussion ("Stopping rule"): e.g. stop when the number of patients with a
    CTCAE grade >= 4 toxicity exceeds a pre-specified number. A piece of the conduct
    (:class:`~dosezoo.designs.base.Conduct`'s ``stopping``).

    Parameters
    ----------
    threshold : float
        A response at or above it is a toxicity (e.g. the model's ``eta``).
    max_toxicities : int
        Largest tolerated number of toxicities (>= 0).
    """

    threshold: float
    max_toxicities: int
    #: The outcome it reads: the continuous response.
    outcomes: ClassVar[tuple[str, ...]] = ("y",)

    def __post_init__(self) -> None:
        """Validate the options."""
        owner = "ToxicityStopping"
        object.__setattr__(self, "threshold", real_number(owner, "threshold", self.threshold))
        object.__setattr__(
            self, "max_toxicities", integer(owner, "max_toxicities", self.max_toxicities, minimum=0)
        )

    def reason(self, data: TrialData) -> str | None:
        """Why the trial must stop, or ``None`` to go on."""
        if not data.n_patients:
            return None
        count = int(np.sum(data.column("y") >= self.threshold))
        if count > self.max_toxicities:
            return (
                f"toxicity: {count} patients with y >= {self.threshold:g}, "
                f"more than {self.max_toxicities}"
            )
        return None

    def describe(self) -> Described:
        """Flat record of the rule."""
        return {"threshold": self.threshold, "max_toxicities": self.max_toxicities}


@dataclass(frozen=True)
class MTDQuantileRule(ModelRule):
    """Next dose = posterior ``alpha``-quantile of the MTD, with Lee's practical options.

    Parameters
    ----------
    alpha : float
        Feasibility bound in (0, 0.5]: the largest tolerated posterior probability that the
        next dose exceeds the MTD (at the start, when ``alpha_step > 0``).
    dose_levels : tuple of float, optional
        Discrete doses; the chosen dose is moved to the nearest level. Another sequence is
        stored as a tuple.
    rounding : {"nearest", "down"}
        How a dose is moved to ``dose_levels``: the nearest level (Lee 2023; a dose exactly
        halfway between two goes to the lower, the cautious side) or the highest level not
        above it (EWOC; keeps ``P(overdose) <= alpha`` when no other option binds).
    monotone : bool
        Never de-escalate below the last dose given.
    max_increment : float, optional
        Largest increase over the last dose given.
    no_skipping : bool
        Levels only: never above the level next to the highest level given (False). With
        ``rounding="down"`` this is EWOC's level-aware escalation (see the module's notes).
    alpha_step : float
        Increase of the feasibility bound per patient treated, >= 0 (0: fixed ``alpha``):
        after ``n`` patients the bound is ``min(alpha_max, alpha + n * alpha_step)``.
    alpha_max : float
        Largest feasibility bound, in [alpha, 0.5] (0.5).

    Notes
    -----
    Lee (2023), Algorithm 2 and Discussion; the increasing bound follows the paper's remark on
    a variable feasibility bound (Tighiouart and Rogatko 2010).
    """

    label: ClassVar[str] = "3PND"
    model_type: ClassVar[type] = ThreePND

    alpha: float = 0.1
    dose_levels: tuple[float, ...] | None = None
    rounding: Literal["nearest", "down"] = "nearest"
    monotone: bool = False
    max_increment: float | None = None
    no_skipping: bool = False
    alpha_step: float = 0.0
    alpha_max: float = 0.5

    def __post_init__(self) -> None:
        """Validate the options, naming the one at fault."""
        owner = "MTDQuantileRule"
        for name in ("alpha", "alpha_max"):
            value = real_number(owner, name, getattr(self, name))
            if not 0 < value <= 0.5:
                raise ValueError(f"{owner}: {name} must lie in (0, 0.5], got {value!r}")
            object.__setattr__(self, name, value)
        if self.alpha > self.alpha_max:
            raise ValueError(f"{owner}: alpha {self.alpha!r} exceeds alpha_max {self.alpha_max!r}")
        step = real_number(owner, "alpha_step", self.alpha_step)
        if step < 0:
            raise ValueError(f"{owner}: alpha_step must be >= 0, got {step!r}")
        object.__setattr__(self, "alpha_step", step)
        if not isinstance(self.no_skipping, bool | np.bool_):
            raise ValueError(
                f"{owner}: no_skipping must be True or False, got {self.no_skipping!r}"
            )
        object.__setattr__(self, "no_skipping", bool(self.no_skipping))
        if self.no_skipping and self.dose_levels is None:
            raise ValueError(f"{owner}: no_skipping needs dose_levels (it counts levels)")
        if self.dose_levels is not None:
            levels = validate_dose_levels("MTDQuantileRule", self.dose_levels)
            object.__setattr__(self, "dose_levels", levels)
        if self.rounding not in ("nearest", "down"):
            raise ValueError(
                f"MTDQuantileRule: rounding must be 'nearest' or 'down', got {self.rounding!r}"
            )
        if not isinstance(self.monotone, bool | np.bool_):
            raise ValueError(
                f"MTDQuantileRule: monotone must be True or False, got {self.monotone!r}"
            )
        if self.max_increment is not None:
            increment = positive_number("MTDQuantileRule", "max_increment", self.max_increment)
            object.__setattr__(self, "max_increment", increment)

    def bind(self, model: Any, conduct: Conduct) -> "MTDQuantileRule":
        """Check the model and that the start dose and the levels lie inside its dose range."""
        bound = super().bind(model, conduct)
        owner = "MTDQuantileRule"
        inside = f"({model.x_min:g}, {model.x_max:g})"
        assert conduct.start_dose is not None  # the Design fills it in before binding
        if not model.x_min < float(conduct.start_dose) < model.x_max:
            raise ValueError(
                f"{owner}: start_dose must lie in {inside}, got {conduct.start_dose!r}"
            )
        if self.dose_levels is not None and not all(
            model.x_min < v < model.x_max for v in self.dose_levels
        ):
            raise ValueError(
                f"{owner}: dose_levels {self.dose_levels} must lie in the model's dose range "
                f"{inside}"
            )
        return bound

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Choose the next dose from a posterior of the MTD.

        Parameters
        ----------
        posterior : DosePosterior
            With the MTD's distribution (``posterior.mtd``): the quadrature posterior of 3PND
            or the draws of a fit.
        data : TrialData
            The trial so far.

        Returns
        -------
        Decision
            Quantities ``alpha``, ``mtd_quantile`` and ``p_overdose`` (the posterior
            probability of overdosing at the dose chosen); diagnostics of the fit.
        """
        if posterior is None or posterior.mtd is None:
            raise ValueError("MTDQuantileRule needs a posterior with the MTD (a 3PND fit)")
        report = posterior.report
        mtd = posterior.mtd
        alpha = self.alpha_for(data)
        quantile = mtd.quantile(alpha)
        dose, bound_by = quantile, []
        last = float(data.dose[data.escalation][-1]) if data.n_patients else None
        if last is not None and self.max_increment is not None and dose > last + self.max_increment:
            dose = last + self.max_increment
            bound_by.append("max_increment")
        if last is not None and self.monotone and dose < last:
            dose = last
            bound_by.append("monotone")
        if self.dose_levels is not None:
            cap = self._skip_cap(data)
            unrounded, dose = dose, self._to_level(dose, last, cap)
            # An option moved the level when rounding without it gives another one (the
            # increment and monotone options act here too, on the levels they allow).
            unbound = {
                "no_skipping": self._to_level(unrounded, last, None),
                "max_increment": self._to_level(unrounded, last, cap, increment=False),
                "monotone": self._to_level(unrounded, last, cap, monotone=False),
            }
            for option, free in unbound.items():
                if option not in bound_by and dose != free:
                    bound_by.append(option)
            if dose != unrounded:
                bound_by.append("dose_levels")
        return Decision(
            next_dose=dose,
            quantities={
                "alpha": alpha,
                "mtd_quantile": quantile,
                "p_overdose": mtd.cdf(dose),
            },
            bound_by=tuple(bound_by),
            diagnostics=None if report is None else report.table,
        )

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Recommend the rule's dose given all the data, :math:`x_{N+1}` (see :meth:`choose`)."""
        return self.choose(posterior, data)

    def alpha_for(self, data: TrialData) -> float:
        r"""Return the feasibility bound after ``data.n_patients`` patients.

        :math:`\min(\alpha_{max}, \alpha + n\,\Delta\alpha)`; ``alpha`` when ``alpha_step``
        is 0.
        """
        if not self.alpha_step:
            return self.alpha
        return min(self.alpha_max, self.alpha + self.alpha_step * data.n_patients)

    def describe(self) -> RuleOptions:
        """Record of the rule's options.

        ``no_skipping`` is recorded only when on, ``alpha_step`` and ``alpha_max`` only when
        the bound increases, so that the records of earlier simulations still match.
        """
        record: dict[str, object] = {
            "alpha": self.alpha,
            "dose_levels": None if self.dose_levels is None else list(self.dose_levels),
            "rounding": self.rounding,
            "monotone": self.monotone,
            "max_increment": self.max_increment,
        }
        if self.no_skipping:
            record["no_skipping"] = True
        if self.alpha_step:
            record["alpha_step"] = self.alpha_step
            record["alpha_max"] = self.alpha_max
        return record

    def _skip_cap(self, data: TrialData) -> int | None:
        """Index of the highest level ``no_skipping`` allows (None: the option is off).

        The level next to the highest level given (the lowest level when no level was given).
        """
        if not self.no_skipping:
            return None
        given = np.asarray(data.dose, dtype=float)
        levels = np.asarray(self.dose_levels)
        highest = int(np.searchsorted(levels, given.max(), side="right")) - 1 if given.size else -1
        return highest + 1

    def _to_level(
        self,
        dose: float,
        last: float | None,
        cap: int | None,
        *,
        increment: bool = True,
        monotone: bool = True,
    ) -> float:
        """Nearest level to ``dose`` that keeps the monotone, increment and skipping options.

        ``cap`` is the index of the highest level allowed by ``no_skipping`` (None: no cap);
        ``increment`` and ``monotone`` False leave those options out (to tell whether they
        moved the level).
        """
        levels = np.asarray(self.dose_levels)
        allowed = np.ones(levels.size, dtype=bool)
        if cap is not None:
            allowed &= np.arange(levels.size) <= cap
        if last is not None and increment and self.max_increment is not None:
            allowed &= levels <= last + self.max_increment
        if last is not None and monotone and self.monotone:
            allowed &= levels >= last
        if not allowed.any():
            assert last is not None  # with no last dose every level is allowed
            if self.monotone and last > levels[-1]:
                reason = (
                    f"the last dose {last:g} is above every dose level, so monotone = true "
                    "allows none"
                )
            else:
                reason = (
                    f"no dose level is within max_increment = {self.max_increment:g} of the "
                    f"last dose {last:g}"
                    + (" without de-escalating (monotone = true)" if self.monotone else "")
                )
            raise ValueError(f"MTDQuantileRule: {reason}; levels are {self.dose_levels}")
        candidates = levels[allowed]
        if self.rounding == "down":
            below = candidates[candidates <= dose]
            # every allowed level is above the dose: the lowest one is the least overdosing
            return float(below[-1] if below.size else candidates[0])
        return float(candidates[np.argmin(np.abs(candidates - dose))])


def mtd_quantile_design(
    model: ThreePND, rule: MTDQuantileRule, *, stopping: Any = None, **conduct: Any
) -> Design:
    """Return Lee's adaptive design: ``Design(model, rule, Conduct(...))``.

    Parameters
    ----------
    model : ThreePND
        The dose-response model.
    rule : MTDQuantileRule
        Feasibility bound and the dose options (levels, monotone, maximum increment).
    stopping : ToxicityStopping, optional
        Early stopping for safety (or a sequence of stopping rules).
    **conduct
        Options of :class:`~dosezoo.designs.base.Conduct`: ``start_dose`` (required, inside
        the model's dose range and one of the rule's levels when it has levels),
        ``cohort_size`` (1: FSAD, default; 3: CSAD), ``sample_size`` (30), ``engine`` (the
        exact quadrature by default; ``"kernel"``, ``"pymc"`` or ``"nuts"`` fit by MCMC and
        must pass the convergence checks), ``draws``, ``tune`` (500), ``chains``,
        ``random_seed``, ``convergence``.

    Returns
    -------
    Design
    """
    if stopping is not None:
        conduct["stopping"] = (stopping,) if hasattr(stopping, "reason") else tuple(stopping)
    settings = MTD_QUANTILE_CONDUCT | conduct
    if "start_dose" not in settings:
        raise TypeError(
            "mtd_quantile_design: start_dose is required (the dose of the first cohort)"
        )
    return Design(model, rule, Conduct(**settings))


register_stopping("toxicity", ToxicityStopping)
register(
    Family(
        name="3pnd",
        summary=(
            "posterior alpha-quantile of the MTD under the 3PND model of continuous toxicity "
            "(Lee 2023, Trials 24:745)"
        ),
        model=ThreePND,
        rule=MTDQuantileRule,
        conduct=MTD_QUANTILE_CONDUCT,
        example="o6bg_accelerated.toml",
        example_data="o6bg_first_cohorts.csv",
    )
)
