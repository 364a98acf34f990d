r"""The Bayesian optimal interval (BOIN) design for binary dose-limiting toxicity.

Liu, S. and Yuan, Y. (2015). Bayesian optimal interval designs for phase I clinical trials.
*J. R. Stat. Soc. C* 64, 507-523; the elimination, stopping and MTD-selection rules are those
of the authors' R package BOIN (Yan et al. 2020, *J. Stat. Softw.* 94(13); functions
``get.boundary``, ``get.oc`` and ``select.mtd``). Seno et al. (2025, Appendix C.2) use BOIN
with these defaults as a comparator and as the first stage of their two-stage designs.

Escalation. With target :math:`\phi`, the highest sub-therapeutic rate :math:`\phi_1` and the
lowest overly toxic rate :math:`\phi_2` (defaults :math:`0.6\phi` and :math:`1.4\phi`), the
boundaries that minimise the probability of a wrong decision are

.. math::

    \lambda_e = \frac{\log\frac{1 - \phi_1}{1 - \phi}}
                     {\log\frac{\phi (1 - \phi_1)}{\phi_1 (1 - \phi)}}, \qquad
    \lambda_d = \frac{\log\frac{1 - \phi}{1 - \phi_2}}
                     {\log\frac{\phi_2 (1 - \phi)}{\phi (1 - \phi_2)}}.

With :math:`y_j` DLTs in :math:`n_j` patients at the current dose :math:`j` and
:math:`\hat p_j = y_j / n_j`: escalate to :math:`j + 1` if :math:`\hat p_j \le \lambda_e`,
de-escalate to :math:`j - 1` if :math:`\hat p_j \ge \lambda_d`, otherwise stay. A boundary
can be a simple fraction (:math:`\lambda_d = 1/2` when :math:`\phi_2 = 1 - \phi`), which
floating point misses by an ulp either way; :math:`\hat p_j` within ``BOUNDARY_TOLERANCE``
of a boundary counts as on it, so the paper's inequalities decide, not the rounding. The
package BOIN (2.7.2) instead stays at :math:`\hat p_j = \lambda_d` exactly.

Elimination. With a :math:`\mathrm{Beta}(a, b)` prior (the package's is :math:`a = b = 1`),
dose :math:`j` and every higher dose are eliminated when :math:`n_j \ge 3` and
:math:`P(p_j > \phi \mid y_j, n_j) > c_e` (``elimination_cutoff``, 0.95). No eliminated dose is
given again; the trial stops, with no MTD, when the lowest dose is eliminated. With
``extra_safe`` it also stops when :math:`n_1 \ge 3` and
:math:`P(p_1 > \phi \mid y_1, n_1) > c_e - \text{offset}`, as ``get.boundary`` documents and
``select.mtd`` applies it (``get.oc`` checks it only at sample sizes where some number of DLTs
would eliminate the dose, which skips it for targets of about 0.47 and above at
:math:`n_1 = 3`). As in ``get.oc``, the trial stops
(and selects an MTD) when :math:`n_j \ge` ``n_earlystop`` and the rule would stay at :math:`j`.

MTD selection (``select.mtd``). Over the doses that were given and are not eliminated, the
estimates :math:`\tilde p_j = (y_j + 0.05) / (n_j + 0.1)` are made non-decreasing by the
pooled-adjacent-violators algorithm with weights :math:`1 / v_j`,
:math:`v_j = (y_j + 0.05)(n_j - y_j + 0.05) / ((n_j + 0.1)^2 (n_j + 1.1))`; the MTD is the dose
whose isotonic estimate is closest to :math:`\phi`. Among ties the package picks the highest
dose if the tied estimates are below :math:`\phi` and the lowest otherwise (it adds
:math:`k \cdot 10^{-10}` to the :math:`k`-th estimate); here estimates within
:math:`10^{-10}` of the smallest distance are ties, and if any of them is below :math:`\phi`
the highest of those below is chosen, else the lowest.

Every decision is a deterministic function of the data: elimination is recomputed from the
counts at each dose, which equals the package's sticky elimination because an eliminated dose
receives no more patients. With a backfill conduct (:mod:`dosezoo.designs.backfill`), the
patients backfilled at a dose before its elimination may report after it; their outcomes count
like any other's, so an elimination would be lifted if they brought the posterior probability
back under the cut-off (the package has no backfill; its elimination never lifts).

One rule, two faces. Decisions depend only on the patients and DLTs per level and on the level
of the last cohort, so the rule is written once, for a batch of such count states
(:class:`~dosezoo.designs.base.CountRule`: the engine runs many trials in lockstep through it);
``next`` and ``recommend`` count the data and apply it to a batch of one. The elimination and
stopping probabilities come from BOIN's beta-binomial model (:class:`~dosezoo.models.BOIN`):
exact from the counts, or read from any fit of that model by ``decide(idata, data)``.
"""

import functools
import math
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaincc

from dosezoo.checks import flag, positive_int, probability, real_number
from dosezoo.data import TrialData
from dosezoo.decision import CountDecisions
from dosezoo.designs.base import Conduct, CountRule, Design, compose
from dosezoo.designs.registry import Family, register
from dosezoo.levels import CountStates, format_rows, last_true
from dosezoo.models.base import DoseModel
from dosezoo.models.boin import BOIN
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described

__all__ = [
    "BOINBoundaryRule",
    "BOINRule",
    "boin_boundaries",
    "boin_design",
    "isotonic_regression",
    "select_mtd_estimates",
    "select_mtd_level",
]

#: Pseudo-counts of the estimates that ``select.mtd`` makes isotonic.
SELECT_Y0, SELECT_N0 = 0.05, 0.1
#: Estimates whose distances to the target differ by less than this are ties.
_TIE_TOLERANCE = 1e-10
#: Patients a dose needs before it can be eliminated (or stop the trial, with extra_safe).
MIN_PATIENTS_TO_ELIMINATE = 3


# --------------------------------------------------------------------------- beta tails


#: Counts below which :func:`beta_tail_of_counts` looks its values up: the first table's
#: size, doubled as larger counts come, up to the largest (8 MB).
_TAIL_TABLE_SIZE, _MAX_TAIL_TABLE_SIZE = 64, 1024


def beta_tail_of_counts(a: float, b: float, x: float, n: ArrayLike, y: ArrayLike) -> np.ndarray:
    r"""Return :math:`P(p > x)` under :math:`\mathrm{Beta}(a + y, b + n - y)` for counts ``n, y``.

    ``betaincc(a + y, b + n - y, x)``. A simulation asks for it at the same few integer counts
    over and over, so integer counts are looked up in a table of that same function at every
    ``(n, y)`` below its size, computed once per ``(a, b, x)`` (the same numbers: a ufunc
    gives the same value for the same arguments); other values are computed directly.
    """
    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    if n.size:
        low, high = min(n.min(), y.min()), max(n.max(), y.max())
        if (
            low >= 0
            and high < _MAX_TAIL_TABLE_SIZE
            and np.array_equal(n, np.floor(n))
            and np.array_equal(y, np.floor(y))
        ):
            size = _TAIL_TABLE_SIZE
            while size <= high:
                size *= 2
            return _beta_tail_table(float(a), float(b), float(x), size)[
                n.astype(np.int64), y.astype(np.int64)
            ]
    return betaincc(a + y, b + n - y, x)


@functools.lru_cache(maxsize=8)
def _beta_tail_table(a: float, b: float, x: float, size: int) -> np.ndarray:
    """``betaincc(a + y, b + n - y, x)`` at ``[n, y]`` for ``n, y < size`` (read-only)."""
    n, y = np.meshgrid(np.arange(size, dtype=float), np.arange(size, dtype=float), indexing="ij")
    with np.errstate(invalid="ignore"):  # y > n: not counts, the value of betaincc all the same
        table = betaincc(a + y, b + n - y, x)
    table.flags.writeable = False
    return table


# --------------------------------------------------------------------------- isotonic


def isotonic_regression(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fit the weighted least-squares non-decreasing sequence (pooled adjacent violators).

    Adjacent blocks whose means decrease are pooled into their weighted mean until the
    sequence is non-decreasing (Barlow et al. 1972); this is ``pava`` of the R package BOIN.

    Parameters
    ----------
    values : numpy.ndarray
        Values to make non-decreasing, shape (m,).
    weights : numpy.ndarray
        Positive weights, shape (m,).

    Returns
    -------
    numpy.ndarray
        The isotonic fit, shape (m,).
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if values.shape != weights.shape or values.ndim != 1:
        raise ValueError(
            f"isotonic_regression: values and weights must be 1-d of one shape, got "
            f"{values.shape} and {weights.shape}"
        )
    if not np.all(weights > 0):
        raise ValueError(f"isotonic_regression: weights must be > 0, got {weights!r}")
    means: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(values, weights, strict=True):
        means.append(float(value))
        totals.append(float(weight))
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            weight_sum = totals[-2] + totals[-1]
            pooled = (means[-2] * totals[-2] + means[-1] * totals[-1]) / weight_sum
            size = sizes[-2] + sizes[-1]
            del means[-1], totals[-1], sizes[-1]
            means[-1], totals[-1], sizes[-1] = pooled, weight_sum, size
    return np.repeat(means, sizes)


def select_mtd_estimates(n: np.ndarray, y: np.ndarray, admissible: np.ndarray) -> np.ndarray:
    """Return ``select.mtd``'s isotonic DLT-rate estimates per row of counts (m, K).

    The estimates :math:`(y_k + 0.05) / (n_k + 0.1)` of the admissible levels of a row are
    made non-decreasing by :func:`isotonic_regression` with inverse-variance weights (the R
    package BOIN's ``select.mtd``); NaN where not admissible.
    """
    phat = (y + SELECT_Y0) / (n + SELECT_N0)
    variance = (y + SELECT_Y0) * (n - y + SELECT_Y0) / ((n + SELECT_N0) ** 2 * (n + SELECT_N0 + 1))
    estimates = np.where(admissible, phat, np.nan)
    # Pooling changes only rows whose admissible estimates decrease somewhere; the others
    # are their own isotonic fit, exactly (PAVA returns them unchanged).
    highest_so_far = np.maximum.accumulate(np.where(admissible, phat, -np.inf), axis=1)
    decreasing = admissible[:, 1:] & (phat[:, 1:] < highest_so_far[:, :-1])
    for row in np.flatnonzero(decreasing.any(axis=1)):
        keep = admissible[row]
        estimates[row, keep] = isotonic_regression(phat[row, keep], 1 / variance[row, keep])
    return estimates


def select_mtd_level(estimates: np.ndarray, target: float) -> np.ndarray:
    """Return ``select.mtd``'s MTD level per row of estimates (m, K); -1 where all are NaN.

    The level whose estimate is closest to ``target``; among ties, the highest below the
    target, else the lowest.
    """
    admissible = ~np.isnan(estimates)
    distance = np.where(admissible, np.abs(estimates - target), np.inf)
    tied = admissible & (distance <= distance.min(axis=1, keepdims=True) + _TIE_TOLERANCE)
    below = last_true(tied & (estimates < target))
    level = np.where(below >= 0, below, np.argmax(tied, axis=1))
    return np.where(admissible.any(axis=1), level, -1)


# --------------------------------------------------------------------------- boundaries


def _boundaries(
    owner: str, target: float, phi1: float | None, phi2: float | None
) -> tuple[float, float, float, float]:
    """Validate ``(target, phi1, phi2)`` and return them with ``(lambda_e, lambda_d)``."""
    phi = real_number(owner, "target", target)
    if not 0 < phi < 1:
        raise ValueError(f"{owner}: target must lie in (0, 1), got {target!r}")
    low = 0.6 * phi if phi1 is None else real_number(owner, "phi1", phi1)
    high = 1.4 * phi if phi2 is None else real_number(owner, "phi2", phi2)
    if not 0 < low < phi:
        got = f"{phi1!r}" if phi1 is not None else f"the default 0.6 * target = {low:g}"
        raise ValueError(f"{owner}: phi1 must lie in (0, target={phi!r}), got {got}")
    if not phi < high < 1:
        got = f"{phi2!r}" if phi2 is not None else f"the default 1.4 * target = {high:g}"
        raise ValueError(f"{owner}: phi2 must lie in (target={phi!r}, 1), got {got}")
    # The logarithms of ratios near 1 as log1p of the differences: with phi1 or phi2 next to
    # the target the quotients of logs cancelled to nonsense (lambda_e 0.5 at target 0.3).
    below, above = math.log1p((phi - low) / (1 - phi)), math.log1p((high - phi) / (1 - high))
    lambda_e = below / (below + math.log1p((phi - low) / low))
    lambda_d = above / (above + math.log1p((high - phi) / phi))
    if not low < lambda_e < phi < lambda_d < high:  # the boundaries rounded onto the rates
        raise ValueError(
            f"{owner}: phi1={low!r} and phi2={high!r} are too close to target={phi!r} for "
            f"BOIN's boundaries to lie strictly between them (lambda_e={lambda_e!r}, "
            f"lambda_d={lambda_d!r})"
        )
    return low, high, lambda_e, lambda_d


def boin_boundaries(
    target: float, phi1: float | None = None, phi2: float | None = None
) -> tuple[float, float]:
    r"""Return BOIN's escalation and de-escalation boundaries :math:`(\lambda_e, \lambda_d)`.

    .. math::

        \lambda_e = \frac{\log\frac{1 - \phi_1}{1 - \phi}}
                         {\log\frac{\phi (1 - \phi_1)}{\phi_1 (1 - \phi)}}, \qquad
        \lambda_d = \frac{\log\frac{1 - \phi}{1 - \phi_2}}
                         {\log\frac{\phi_2 (1 - \phi)}{\phi (1 - \phi_2)}}

    (Liu and Yuan 2015). E.g. target 0.3 gives (0.2365, 0.3585).

    Parameters
    ----------
    target : float
        Target DLT rate :math:`\phi` in (0, 1).
    phi1 : float, optional
        Highest DLT rate deemed sub-therapeutic, in (0, target); default ``0.6 * target``.
    phi2 : float, optional
        Lowest DLT rate deemed overly toxic, in (target, 1); default ``1.4 * target``.

    Returns
    -------
    tuple of float
        ``(lambda_e, lambda_d)``.

    Raises
    ------
    ValueError
        Naming the argument at fault, unless ``0 < phi1 < target < phi2 < 1``.
    """
    return _boundaries("boin_boundaries", target, phi1, phi2)[2:]


#: How near a boundary :math:`\hat p = y / n` counts as on it (see the module docstring). A
#: boundary that is a fraction with a denominator up to :math:`10^5` lies at least
#: :math:`10^{-10}` from every other :math:`y / n` with :math:`n \le 10^5`: only the tie moves.
BOUNDARY_TOLERANCE = 1e-12


def at_or_below_escalation(y: ArrayLike, n: ArrayLike, lambda_e: float) -> np.ndarray:
    r"""Whether :math:`\hat p = y / n \le \lambda_e`, a boundary within the tolerance included."""
    return np.asarray(y) <= (lambda_e + BOUNDARY_TOLERANCE) * np.asarray(n)


def at_or_above_deescalation(y: ArrayLike, n: ArrayLike, lambda_d: float) -> np.ndarray:
    r"""Whether :math:`\hat p = y / n \ge \lambda_d`, a boundary within the tolerance included."""
    return np.asarray(y) >= (lambda_d - BOUNDARY_TOLERANCE) * np.asarray(n)


# --------------------------------------------------------------------------- rule


@dataclass(frozen=True)
class BOINBoundaryRule(CountRule):
    r"""A count rule on BOIN's interval boundaries and the :class:`~dosezoo.models.BOIN` model.

    Binding to the model takes its target :math:`\phi`, dose levels and Beta prior, and derives
    the escalation and de-escalation boundaries :math:`(\lambda_e, \lambda_d)` from
    :math:`(\phi_1, \phi_2)` (Liu and Yuan 2015; :func:`boin_boundaries`). BOIN and BOIN12
    (Lin et al. 2020) share it.

    Parameters
    ----------
    phi1, phi2 : float, optional
        Sub-therapeutic and overly toxic rates defining the boundaries; default
        ``0.6 * target`` and ``1.4 * target``.
    """

    _: KW_ONLY
    phi1: float | None = None
    phi2: float | None = None
    dose_levels: tuple[float, ...] = field(default=(), init=False, compare=False)
    target: float = field(default=math.nan, init=False, compare=False)
    lambda_e: float = field(default=math.nan, init=False, repr=False, compare=False)
    lambda_d: float = field(default=math.nan, init=False, repr=False, compare=False)
    _model: BOIN | None = field(default=None, init=False, repr=False, compare=False)
    _start_level: int = field(default=0, init=False, repr=False, compare=False)
    _sample_size: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check that ``phi1`` and ``phi2`` are numbers (their range is checked when bound)."""
        for name in ("phi1", "phi2"):
            if getattr(self, name) is not None:
                value = real_number(type(self).__name__, name, getattr(self, name))
                object.__setattr__(self, name, value)

    def bind(self, model: DoseModel | None, conduct: Conduct) -> Self:
        """Take the target, levels and prior from the BOIN model; derive the boundaries."""
        owner = type(self).__name__
        if not isinstance(model, BOIN):
            raise TypeError(f"{owner}: model must be a BOIN, got {model!r}")
        phi1, phi2, lambda_e, lambda_d = _boundaries(owner, model.target, self.phi1, self.phi2)
        return self._bound(
            phi1=phi1,
            phi2=phi2,
            dose_levels=model.dose_levels,
            target=model.target,
            lambda_e=lambda_e,
            lambda_d=lambda_d,
            _model=model,
            _start_level=model.dose_levels.index(conduct.start_dose),
            _sample_size=conduct.sample_size,
        )

    @property
    def bound_model(self) -> BOIN:
        """The BOIN model the rule is bound to (its target, levels and Beta prior)."""
        if self._model is None:
            raise ValueError(
                f"{type(self).__name__} is not bound to a BOIN model; use it in a Design"
            )
        return self._model


@dataclass(frozen=True)
class BOINRule(BOINBoundaryRule):
    r"""The BOIN rule (Liu and Yuan 2015) with the R package's safety rules.

    Parameters
    ----------
    phi1, phi2 : float, optional
        Sub-therapeutic and overly toxic rates defining the boundaries; default
        ``0.6 * target`` and ``1.4 * target``.
    elimination_cutoff : float
        :math:`c_e` in (0, 1): a dose with ``n >= 3`` and
        :math:`P(p > \phi \mid \text{data}) > c_e` is eliminated with all higher doses (0.95).
    extra_safe : bool
        Also stop when the lowest dose has ``n >= 3`` and
        :math:`P(p_1 > \phi \mid \text{data}) > c_e - \text{offset}`.
    offset : float
        In (0, 0.5) and below ``elimination_cutoff`` (0.05).
    n_earlystop : int
        Stop (and select an MTD) when the current dose has this many patients and the rule
        would stay there (100, i.e. off for 36 patients).

    Attributes
    ----------
    target : float
        The model's target :math:`\phi` (after the design binds the rule).
    lambda_e, lambda_d : float
        The escalation and de-escalation boundaries (after binding).

    Notes
    -----
    The target, the dose levels and the Beta prior of elimination are those of the model
    (:class:`~dosezoo.models.BOIN`). Every decision after the first records, as floats,
    ``n_at_dose``, ``dlt_at_dose`` and ``p_hat`` at the current dose, ``lambda_e``,
    ``lambda_d``, ``p_above_target`` (:math:`P(p_j > \phi \mid \text{data})` at the current
    dose) and ``n_eliminated`` (the number of eliminated levels). A decision that stops the
    trial also records ``selected_dose``, the dose the recommendation selects from the data
    (NaN when none), since the simulation engine asks for a recommendation only of trials that
    reach ``sample_size``.
    """

    label: ClassVar[str] = "BOIN"

    _: KW_ONLY
    elimination_cutoff: float = 0.95
    extra_safe: bool = False
    offset: float = 0.05
    n_earlystop: int = 100

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault (the boundaries when bound)."""
        super().__post_init__()
        owner = "BOINRule"
        cutoff = probability(owner, "elimination_cutoff", self.elimination_cutoff)
        offset = real_number(owner, "offset", self.offset)
        if not 0 < offset < min(0.5, cutoff):
            raise ValueError(
                f"{owner}: offset must lie in (0, 0.5) and be below elimination_cutoff, got "
                f"{self.offset!r}"
            )
        for name, value in (
            ("elimination_cutoff", cutoff),
            ("offset", offset),
            ("extra_safe", flag(owner, "extra_safe", self.extra_safe)),
            ("n_earlystop", positive_int(owner, "n_earlystop", self.n_earlystop)),
        ):
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ posterior

    def p_above_target(self, n: np.ndarray, y: np.ndarray) -> np.ndarray:
        r"""Return :math:`P(p_j > \phi \mid y_j, n_j)` under the model's Beta prior."""
        model = self.bound_model
        return beta_tail_of_counts(model.prior_a, model.prior_b, self.target, n, y)

    def _p_above(self, n: np.ndarray, y: np.ndarray, posterior: DosePosterior | None) -> np.ndarray:
        """``P(p_k > target)`` per state and level: exact from the counts, or from a fit."""
        if posterior is None:
            return self.p_above_target(n, y)
        return np.broadcast_to(posterior.prob_above(self.target), n.shape)

    def _too_toxic(
        self,
        n: np.ndarray,
        p_above: np.ndarray,
        posterior: DosePosterior | None,
        cutoff: float,
    ) -> np.ndarray:
        """Whether each level with enough patients has ``P(p_k > target) > cutoff``, (m, K).

        Exact from the counts; on a fit (one data set, ``m`` 1), a comparison of the
        posterior (:meth:`~dosezoo.posterior.DosePosterior.exceeds`) at the levels with
        enough patients, which the design resolves when it lies within its Monte Carlo error
        of the cut-off (more draws, then the cautious side: too toxic).
        """
        enough = n >= MIN_PATIENTS_TO_ELIMINATE
        if posterior is None:
            return enough & (p_above > cutoff)
        levels = np.flatnonzero(enough[0])
        over = np.zeros(n.shape, dtype=bool)
        over[:, levels] = posterior.exceeds(
            [f"p_above_target_{k}" for k in levels],
            p_above[0, levels],
            cutoff,
            lambda: posterior.mcse_above(self.target)[levels],
        )
        return over

    def eliminated_from(
        self, n: np.ndarray, y: np.ndarray, posterior: DosePosterior | None = None
    ) -> np.ndarray:
        """Return, per row of counts (m, K), the lowest eliminated level, or K if none is."""
        p_above = self._p_above(n, y, posterior)
        eliminated = self._too_toxic(n, p_above, posterior, self.elimination_cutoff)
        return np.where(eliminated.any(axis=1), np.argmax(eliminated, axis=1), n.shape[1])

    def isotonic_estimates(self, data: TrialData) -> np.ndarray:
        """Return ``select.mtd``'s isotonic DLT-rate estimate per level (NaN if not admissible).

        Admissible levels were given to at least one patient and are not eliminated.
        """
        n, y, _, _ = self.counts(data)
        return self._isotonic(n, y, self.eliminated_from(n, y))[0]

    # ------------------------------------------------------------------ array rule

    def _safety_reasons(
        self,
        n: np.ndarray,
        y: np.ndarray,
        eliminated_from: np.ndarray,
        p_above: np.ndarray,
        posterior: DosePosterior | None = None,
    ) -> np.ndarray:
        """Why each state must stop with no MTD, ``""`` where it need not (str objects, (m,))."""
        reasons = np.full(n.shape[0], "", dtype=object)

        def beyond(cutoff: float) -> ArrayLike:
            # On the cautious side of a fit's Monte Carlo error an estimate at or below the
            # cut-off counts as above it: the reason says so, or it would contradict it.
            if posterior is None:
                return ""
            return np.where(
                p_above[:, 0] > cutoff, "", f" or within {posterior.caution:g} MCSEs of it"
            )

        lowest: dict[str, ArrayLike] = {
            "dose": self.dose_levels[0],
            "y": y[:, 0],
            "n": n[:, 0],
            "target": self.target,
        }
        out = eliminated_from == 0
        reasons[out] = format_rows(
            "lowest dose {dose:g} eliminated: {y} DLTs in {n} patients, "
            "P(p > {target:g}) > {cutoff:g}{near}",
            out,
            cutoff=self.elimination_cutoff,
            near=beyond(self.elimination_cutoff),
            **lowest,
        )
        if self.extra_safe:
            cutoff = self.elimination_cutoff - self.offset
            extra = ~out & self._too_toxic(n[:, :1], p_above[:, :1], posterior, cutoff)[:, 0]
            reasons[extra] = format_rows(
                "extra-safe stop at the lowest dose {dose:g}: {y} DLTs in {n} patients, "
                "P(p > {target:g}) > {cutoff:g}{near}",
                extra,
                cutoff=cutoff,
                near=beyond(cutoff),
                **lowest,
            )
        return reasons

    def _isotonic(self, n: np.ndarray, y: np.ndarray, eliminated_from: np.ndarray) -> np.ndarray:
        """``select.mtd``'s isotonic estimates per row of counts, NaN where not admissible."""
        admissible = (n > 0) & (np.arange(n.shape[1]) < eliminated_from[:, None])
        return select_mtd_estimates(n, y, admissible)

    def backfill_eligible(
        self, posterior: DosePosterior | None, data: TrialData, cleared: tuple[float, ...]
    ) -> tuple[float, ...]:
        r"""Return the cleared doses below BOIN's elimination.

        BOIN never gives again a dose with :math:`P(p_j > \phi \mid \text{data}) >`
        ``elimination_cutoff`` (3 or more patients) nor any dose above it; neither does it
        backfill them.
        """
        states = self.counts(data)
        first = int(self.eliminated_from(states.n, states.y, posterior)[0])
        return tuple(dose for dose in cleared if self.dose_levels.index(dose) < first)

    def _decide(
        self, states: CountStates, posterior: DosePosterior | None = None
    ) -> CountDecisions:
        n, y, current = states.n, states.y, states.current
        size, top = current.size, len(self.dose_levels) - 1
        doses = np.asarray(self.dose_levels)
        started = current >= 0
        at = np.maximum(current, 0)
        n_at, y_at = n[np.arange(size), at], y[np.arange(size), at]
        p_above = self._p_above(n, y, posterior)
        eliminated_from = self.eliminated_from(n, y, posterior)

        # The boundaries, kept off eliminated levels and inside the dose range.
        level = at.copy()
        bound_by = np.full(size, "", dtype=object)
        out = at >= eliminated_from
        escalate = ~out & at_or_below_escalation(y_at, n_at, self.lambda_e)
        deescalate = ~out & ~escalate & at_or_above_deescalation(y_at, n_at, self.lambda_d)
        at_top = escalate & (at == top)
        blocked = escalate & ~at_top & (at + 1 >= eliminated_from)
        at_bottom = deescalate & (at == 0)
        level[out] = eliminated_from[out] - 1
        level[escalate & ~at_top & ~blocked] += 1
        level[deescalate & ~at_bottom] -= 1
        bound_by[out | blocked] = "eliminated"
        bound_by[at_top] = "highest_dose"
        bound_by[at_bottom] = "lowest_dose"

        # The stops, in the order they are checked.
        stop_reason = np.full(size, "", dtype=object)
        n_patients = n.sum(axis=1)
        full = started & (n_patients >= self._sample_size)
        stop_reason[full] = format_rows(
            "sample size reached: {n} of {planned}", full, n=n_patients, planned=self._sample_size
        )
        safety = self._safety_reasons(n, y, eliminated_from, p_above, posterior)
        unsafe = started & ~full & (safety != "")
        stop_reason[unsafe] = safety[unsafe]
        early = started & ~full & ~unsafe & (level == at) & (n_at >= self.n_earlystop)
        stop_reason[early] = format_rows(
            "n_earlystop: {n} patients at dose {dose:g}", early, n=n_at, dose=doses[at]
        )
        stops = full | unsafe | early
        level[stops], bound_by[stops] = -1, ""
        level[~started], bound_by[~started] = self._start_level, "start_dose"

        # A stop records the dose recommend() selects from the same counts.
        selected = np.full(size, math.nan)
        if stops.any():
            chosen = self._recommend(
                CountStates(n[stops], y[stops], current[stops]), posterior
            ).level
            selected[stops] = np.where(chosen >= 0, doses[np.maximum(chosen, 0)], math.nan)
        with np.errstate(divide="ignore", invalid="ignore"):  # no patient yet: not recorded
            p_hat = y_at / n_at
        everywhere = np.ones(size, dtype=bool)
        recorded = {
            "n_at_dose": (n_at.astype(float), started),
            "dlt_at_dose": (y_at.astype(float), started),
            "p_hat": (p_hat, started),
            "lambda_e": (np.full(size, self.lambda_e), everywhere),
            "lambda_d": (np.full(size, self.lambda_d), everywhere),
            "p_above_target": (p_above[np.arange(size), at], started),
            "n_eliminated": ((top + 1 - eliminated_from).astype(float), started),
            "selected_dose": (selected, stops),
        }
        return CountDecisions(
            level=level,
            stop_reason=stop_reason,
            bound_by=bound_by,
            quantities={key: values for key, (values, _) in recorded.items()},
            present={key: where for key, (_, where) in recorded.items()},
        )

    def _recommend(
        self, states: CountStates, posterior: DosePosterior | None = None
    ) -> CountDecisions:
        n, y, current = states.n, states.y, states.current
        size, levels = current.size, len(self.dose_levels)
        p_above = self._p_above(n, y, posterior)
        eliminated_from = self.eliminated_from(n, y, posterior)
        safety = self._safety_reasons(n, y, eliminated_from, p_above, posterior)
        safe = safety == ""
        estimates = np.full((size, levels), np.nan)
        estimates[safe] = self._isotonic(n[safe], y[safe], eliminated_from[safe])
        level = select_mtd_level(estimates, self.target)
        stop_reason = np.full(size, "", dtype=object)
        stop_reason[~safe] = [f"no MTD: {reason}" for reason in safety[~safe]]
        none = safe & (level < 0)
        stop_reason[none] = "no MTD: no admissible dose was given"
        level[~safe | none] = -1
        return CountDecisions(
            level=level,
            stop_reason=stop_reason,
            bound_by=np.full(size, "", dtype=object),
            quantities={f"p_iso_{k}": estimates[:, k] for k in range(levels)},
            present={f"p_iso_{k}": safe for k in range(levels)},
        )

    def describe(self) -> Described:
        """Flat record of the rule's options, with the boundaries when bound."""
        return {
            "phi1": self.phi1,
            "phi2": self.phi2,
            "elimination_cutoff": self.elimination_cutoff,
            "extra_safe": self.extra_safe,
            "offset": self.offset,
            "n_earlystop": self.n_earlystop,
            "lambda_e": self.lambda_e,
            "lambda_d": self.lambda_d,
        }


def boin_design(
    target: float,
    dose_levels: Any,
    *,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
    **options: Any,
) -> Design:
    r"""Return the BOIN design: ``Design(BOIN(target, levels), BOINRule(...), Conduct(...))``.

    Parameters
    ----------
    target : float
        Target DLT rate :math:`\phi` in (0, 1).
    dose_levels : sequence of float
        Candidate doses, strictly increasing.
    prior_a, prior_b : float
        Beta prior of each dose's DLT rate for elimination and stopping (1, 1).
    **options
        Options of :class:`BOINRule` and of :class:`~dosezoo.designs.base.Conduct` (start dose
        the lowest level, cohorts of 3, 36 patients by default).

    Returns
    -------
    Design
        A :class:`~dosezoo.designs.base.CountDesign`.
    """
    return compose(BOIN(target, dose_levels, prior_a=prior_a, prior_b=prior_b), BOINRule, options)


register(
    Family(
        name="boin",
        summary=(
            "Bayesian optimal interval design (Liu and Yuan 2015) with the R package BOIN's "
            "elimination and selection (Yan et al. 2020)"
        ),
        model=BOIN,
        rule=BOINRule,
        example="boin.toml",
        example_data="binary_cohorts.csv",
    )
)
