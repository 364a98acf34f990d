r"""The EWOC rule: next dose = posterior alpha-quantile of the MTD (Babb et al. 1998).

With the EWOC posterior (:class:`~dosezoo.models.EWOC`), the next dose :math:`x` satisfies
:math:`P(\mathrm{MTD} < x \mid \text{data}) = \alpha`: the feasibility bound :math:`\alpha`
caps the posterior probability of overdosing. :math:`\alpha` is fixed (``alpha``, 0.25) or
increases during the trial (``alpha_step`` per patient treated, up to ``alpha_max``, as in
Tighiouart and Rogatko 2010, who start at 0.1 and add 0.05 per patient up to 0.5).

Doses are continuous in ``[x_min, x_max]`` (``doses="continuous"``), capped at the current dose
plus ``max_increment``; or the model's dose levels (``doses="levels"``, default): the highest
level not above the quantile (rounding down keeps the overdose control; the lowest level when
every level is above it; a level whose :math:`P(\mathrm{MTD} < x)` exceeds :math:`\alpha` by
at most ``CDF_TOLERANCE``, the grid's integration error, counts as not above it; on MCMC draws,
a level over :math:`\alpha` by the draws' discreteness is not given, and one within Monte Carlo
error of it is resolved as ``Conduct.mcse_margin`` says), at most one level above the highest
level given (``no_skipping``; the ``ewoc`` package's ``no_skip_dose`` counts from the current
dose, which differs only after a de-escalation).
With ``safety_cutoff`` set, the trial stops with no MTD when
:math:`P(\mathrm{MTD} < \text{lowest dose}) >` ``safety_cutoff``. At the end, the recommended
dose is the rule's dose given all data, not above the highest dose given; no dose is
recommended (a stop with the reason) when no patient was treated, or, with levels, when every
dose given lies below the lowest level (no level was tried).

Coherence (Cheung 2005, *Biometrika* 92, 863-873), option ``coherent`` (off by default, as in
Babb et al.): a decision never escalates above the last cohort's dose after a DLT in it, nor
de-escalates below it after a cohort without DLT. The posterior quantile is not coherent by
construction: the rule takes the alpha-quantile of the MTD whatever the last outcome was, so
a DLT-free cohort at a dose above that quantile (given under ``no_skipping`` or a fixed start)
is followed by a lower dose (``tests/test_blrm_ewoc_boin.py`` shows a case). With the option
on, coherence takes precedence over the feasibility bound for that decision; ``p_overdose``
records the posterior probability of overdosing at the dose given.
"""

import bisect
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from dosezoo.checks import real_number
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import Conduct, Design, ModelRule, compose, dataclass_options
from dosezoo.designs.registry import Family, register
from dosezoo.models.ewoc import EWOC
from dosezoo.posterior import Distribution, DosePosterior
from dosezoo.protocols import Described

__all__ = ["CDF_TOLERANCE", "EWOC_CONDUCT", "EWOCRule", "ewoc_design"]

#: The conduct of EWOC designs: cohorts of 1, as Babb et al. (1998).
EWOC_CONDUCT: dict[str, Any] = {"cohort_size": 1}

#: A level whose ``P(MTD < level)`` exceeds alpha by at most this is reached (levels only): the
#: quadrature integrates the MTD's CDF to about 1e-5, so a quantile that equals a level exactly
#: (with data at ``x_min`` only, the MTD's posterior is its prior: for uniform priors the
#: quantile ``x_min + alpha (x_max - x_min)`` may be a level) lands a little below it.
CDF_TOLERANCE = 1e-4


@dataclass(frozen=True)
class EWOCRule(ModelRule):
    r"""Escalation with overdose control.

    Parameters
    ----------
    alpha : float
        Feasibility bound at the start, in (0, 0.5] (0.25).
    alpha_step : float
        Increase of alpha per patient treated (0: fixed).
    alpha_max : float
        Largest alpha (0.5).
    doses : {"levels", "continuous"}
        Discrete levels (rounded down) or any dose in the range.
    no_skipping : bool
        Levels only: at most one level above the highest level given (True).
    max_increment : float or None
        Continuous doses only: largest increase over the current dose (None: off).
    safety_cutoff : float or None
        Stop when :math:`P(\mathrm{MTD} <` lowest level :math:`)` exceeds it (None: off). The
        model's ``x_min`` must lie below the lowest level: at it, that probability is 0.
    coherent : bool
        Never escalate after a cohort with a DLT nor de-escalate after one without (False).

    Notes
    -----
    The dose levels and the dose range are the model's. :func:`ewoc_design`'s conduct starts
    at the lowest level, with cohorts of 1 (as Babb et al.) and 36 patients.
    """

    label: ClassVar[str] = "EWOC"
    model_type: ClassVar[type] = EWOC

    _: KW_ONLY
    alpha: float = 0.25
    alpha_step: float = 0.0
    alpha_max: float = 0.5
    doses: Literal["levels", "continuous"] = "levels"
    no_skipping: bool = True
    max_increment: float | None = None
    safety_cutoff: float | None = None
    coherent: bool = False

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "EWOCRule"
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
        if self.doses not in ("levels", "continuous"):
            raise ValueError(f"{owner}: doses must be 'levels' or 'continuous', got {self.doses!r}")
        if self.max_increment is not None:
            increment = real_number(owner, "max_increment", self.max_increment)
            if increment <= 0:
                raise ValueError(f"{owner}: max_increment must be > 0, got {increment!r}")
            object.__setattr__(self, "max_increment", increment)
        if self.safety_cutoff is not None:
            cutoff = real_number(owner, "safety_cutoff", self.safety_cutoff)
            if not 0 < cutoff < 1:
                raise ValueError(f"{owner}: safety_cutoff must lie in (0, 1), got {cutoff!r}")
            object.__setattr__(self, "safety_cutoff", cutoff)
        if not isinstance(self.coherent, bool | np.bool_):
            raise ValueError(f"{owner}: coherent must be True or False, got {self.coherent!r}")
        object.__setattr__(self, "coherent", bool(self.coherent))
        if not isinstance(self.no_skipping, bool | np.bool_):
            raise ValueError(
                f"{owner}: no_skipping must be True or False, got {self.no_skipping!r}"
            )

    def bind(self, model: Any, conduct: Conduct) -> "EWOCRule":
        """Hold the model; refuse a safety stop that its dose range makes impossible."""
        bound = super().bind(model, conduct)
        lowest = model.dose_levels[0]
        if self.safety_cutoff is not None and model.x_min >= lowest:
            raise ValueError(
                f"EWOCRule: safety_cutoff {self.safety_cutoff:g} can never stop the trial: the "
                f"model's x_min ({model.x_min:g}) is the lowest level, where P(MTD < {lowest:g}) "
                "= 0; put x_min below the lowest level (e.g. 0)"
            )
        return bound

    def alpha_for(self, data: TrialData) -> float:
        """Return the feasibility bound after ``data.n_patients`` patients."""
        return min(self.alpha_max, self.alpha + self.alpha_step * data.n_patients)

    @staticmethod
    def _mtd(posterior: DosePosterior | None) -> Distribution:
        if posterior is None or posterior.mtd is None:
            raise ValueError("EWOCRule needs a posterior with the MTD (an EWOC fit)")
        return posterior.mtd

    def _dose(
        self,
        quantile: float,
        data: TrialData,
        *,
        final: bool,
        reached: Callable[[float], bool],
        drawn: bool = False,
    ) -> tuple[float, list[str]]:
        """Apply the dose options to the quantile; return the dose and the options that bound.

        ``reached(level)`` says whether a level is within the feasibility bound (up to
        :data:`CDF_TOLERANCE`): the first level above the quantile may be all the same, the
        level below it must be, which only a quantile of draws (``drawn``) can miss.
        """
        given = np.asarray(data.dose, dtype=float)
        bound_by: list[str] = []
        if self.doses == "continuous":
            dose = quantile
            ceiling = (
                given.max()
                if final
                else (
                    float(data.dose[data.escalation][-1]) + self.max_increment
                    if self.max_increment is not None and given.size
                    else None
                )
            )
            if ceiling is not None and dose > ceiling:
                dose = ceiling
                bound_by.append("highest_given" if final else "max_increment")
            return float(dose), bound_by
        # The model's levels increase strictly: bisect on the tuple, not numpy on a tiny array
        # (every decision comes here). A NaN quantile is above no level, as before.
        levels = self.model.dose_levels
        level = bisect.bisect_right(levels, quantile) - 1 if quantile == quantile else -1
        if level + 1 < len(levels) and reached(float(levels[level + 1])):
            level += 1
        elif drawn:
            # On draws the quantile's own level may be within Monte Carlo error of the bound
            # (or over it by the draws' discreteness, 1 / draws); on a grid the CDF, which
            # increases, keeps it within.
            while level > 0 and not reached(float(levels[level])):
                level -= 1
        level = max(level, 0)
        # -1 when no level was given (no patient, or every dose below the lowest level)
        highest = bisect.bisect_right(levels, given.max()) - 1 if given.size else -1
        ceiling = highest if final else (highest + 1 if self.no_skipping else len(levels) - 1)
        if level > ceiling:
            level = ceiling
            bound_by.append("highest_given" if final else "no_skipping")
        return float(levels[level]), bound_by

    @staticmethod
    def _coherent(dose: float, data: TrialData, bound_by: list[str]) -> float:
        """Keep the last cohort's dose if the rule would move against its outcome."""
        last_dose = float(data.dose[data.escalation][-1])
        had_dlt = bool(np.asarray(data.column("dlt"))[data.last_cohort].any())
        if (had_dlt and dose > last_dose) or (not had_dlt and dose < last_dose):
            bound_by.append("coherence")
            return last_dose
        return dose

    def _safety_stop(self, posterior: DosePosterior, mtd: Distribution) -> str | None:
        if self.safety_cutoff is None:
            return None
        lowest = self.model.dose_levels[0]
        p_overdose = mtd.cdf(lowest)
        if posterior.exceeds_value(
            "p_overdose_lowest",
            p_overdose,
            self.safety_cutoff,
            lambda: posterior.mcse_mtd_cdf(lowest),
        ):
            return (
                f"safety: P(MTD < lowest dose {lowest:g}) = {p_overdose:.3f} > "
                f"{self.safety_cutoff:g}"
            )
        return None

    def _untried(self, data: TrialData) -> str | None:
        """Why no dose can be recommended from ``data`` (no patient, or no level given)."""
        if not data.n_patients:
            return "no patients"
        levels = self.model.dose_levels
        highest = float(np.max(data.dose))
        if self.doses == "levels" and highest < levels[0]:
            return (
                f"no dose level was given (the highest dose given, {highest:g}, is below the "
                f"lowest level {levels[0]:g})"
            )
        return None

    def _decision(
        self, posterior: DosePosterior | None, data: TrialData, *, final: bool
    ) -> Decision:
        untried = self._untried(data) if final else None
        if untried:
            return Decision(None, stop_reason=f"no MTD: {untried}")
        mtd = self._mtd(posterior)
        alpha = self.alpha_for(data)
        quantile = mtd.quantile(alpha)
        quantities = {"alpha": alpha, "mtd_quantile": quantile}
        assert posterior is not None  # _mtd refused a posterior without one
        reason = self._safety_stop(posterior, mtd)
        if reason:
            return Decision(
                None, stop_reason=f"no MTD: {reason}" if final else reason, quantities=quantities
            )

        dose, bound_by = self._dose(
            quantile,
            data,
            final=final,
            reached=lambda level: self._feasible(posterior, level, alpha),
            drawn=posterior.sampled,
        )
        if self.coherent and not final and data.n_patients:
            dose = self._coherent(dose, data, bound_by)
        quantities["p_overdose"] = mtd.cdf(dose)
        return Decision(dose, quantities=quantities, bound_by=tuple(bound_by))

    @staticmethod
    def _feasible(posterior: DosePosterior, level: float, alpha: float) -> bool:
        """Whether ``level`` is within the feasibility bound (up to :data:`CDF_TOLERANCE`).

        On a fit, a comparison with its Monte Carlo error.
        """
        mtd = EWOCRule._mtd(posterior)
        return not posterior.exceeds_value(
            "p_overdose_next_level",
            mtd.cdf(level),
            alpha + CDF_TOLERANCE,
            lambda: posterior.mcse_mtd_cdf(level),
        )

    def backfill_eligible(
        self, posterior: DosePosterior | None, data: TrialData, cleared: tuple[float, ...]
    ) -> tuple[float, ...]:
        r"""Return the cleared levels within the feasibility bound.

        EWOC gives no patient a dose with :math:`P(\mathrm{MTD} < x) > \alpha`, backfill
        patients neither (as BLRM's overdose control closes its levels to them).
        """
        assert posterior is not None  # the rule reads a posterior at every decision
        alpha = self.alpha_for(data)
        return tuple(level for level in cleared if self._feasible(posterior, level, alpha))

    def reads_counts_only(self) -> bool:
        """Whether the rule reads the counts per level and the current level only.

        It does on the dose levels (when coherent, the last cohort's DLTs too).
        """
        return self.doses == "levels"

    def reads_last_cohort(self) -> bool:
        """Whether the rule reads the last cohort's DLTs: when coherent."""
        return self.coherent

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide the next dose: the alpha-quantile of the MTD under the dose options.

        Parameters
        ----------
        posterior : DosePosterior
            The EWOC posterior given ``data`` (with the MTD's distribution, ``mtd``).
        data : TrialData
            The trial so far, at least one patient.

        Returns
        -------
        Decision
            Quantities ``alpha``, ``mtd_quantile`` and ``p_overdose`` (``P(MTD < dose)`` at the
            dose chosen).
        """
        return self._decision(posterior, data, final=False)

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Recommend the rule's dose given all data, not above the highest dose given.

        No dose (a stop with the reason) when no patient was treated, or, with levels, when
        every dose given lies below the lowest level.
        """
        return self._decision(posterior, data, final=True)

    def describe(self) -> Described:
        """Flat record of the rule's options."""
        return dataclass_options(self)


def ewoc_design(model: EWOC, **options: Any) -> Design:
    """Return the EWOC design: ``Design(model, EWOCRule(...), Conduct(...))``.

    Parameters
    ----------
    model : EWOC
        The model (its dose range and levels).
    **options
        Options of :class:`EWOCRule` and of :class:`~dosezoo.designs.base.Conduct` (start dose
        the lowest level, cohorts of 1, 36 patients by default).

    Returns
    -------
    Design
    """
    return compose(model, EWOCRule, options, **EWOC_CONDUCT)


register(
    Family(
        name="ewoc",
        summary="escalation with overdose control (Babb, Rogatko and Zacks 1998)",
        model=EWOC,
        rule=EWOCRule,
        conduct=EWOC_CONDUCT,
        example="ewoc.toml",
        example_data="binary_cohorts.csv",
    )
)
