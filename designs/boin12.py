r"""BOIN12: the Bayesian optimal interval phase I/II design for utility-based dose finding.

Lin, R., Zhou, Y., Yan, F., Li, D. and Yuan, Y. (2020). BOIN12: Bayesian optimal interval
phase I/II trial design for utility-based dose finding in immunotherapy and targeted
therapies. *JCO Precision Oncology* 4, 1393-1402. Every constant below was checked against the
paper's defaults and two implementations of its algorithm: the authors' simulation code
(``get.oc.obd``) and the R package escalation (Brock; ``get_boin12``, ``boin12_rds``), which
was edited to agree with the paper and the authors' software.

Outcomes and utility. Each patient has a binary toxicity :math:`T` (a DLT) and a binary
efficacy :math:`E` (here a response, ``efficacy >= 1`` of the ordinal efficacy column). The
four outcomes have utilities :math:`u(E{=}1,T{=}0) = 100`, :math:`u(E{=}0,T{=}0) = u_{00}`,
:math:`u(E{=}1,T{=}1) = u_{11}` and :math:`u(E{=}0,T{=}1) = 0` (the paper's example
:math:`u_{00} = 40`, :math:`u_{11} = 60`). With :math:`n_j` patients at dose :math:`j`, of whom
:math:`y_j` had a DLT, :math:`e_j` a response and :math:`r_j` both, the quasi-binomial number
of "successes" is

.. math::

    x_j = \frac{100 (e_j - r_j) + u_{11} r_j + u_{00} (n_j - y_j - e_j + r_j)}{100},

and the standardised mean utility :math:`u_j / 100` of dose :math:`j` has the posterior
:math:`\mathrm{Beta}(a + x_j, b + n_j - x_j)` (prior :math:`a = b = 1`).

Desirability. The highest unacceptable utility :math:`\bar u` is that of a dose with
toxicity :math:`\phi_T` and efficacy :math:`\phi_E`, independent:
:math:`\bar u = 100 \phi_E (1 - \phi_T) + u_{00} (1 - \phi_E)(1 - \phi_T) + u_{11}
\phi_E \phi_T`; the benchmark is :math:`u_b = \bar u + (100 - \bar u) / 2`, and the
desirability of dose :math:`j` is :math:`P(u_j > u_b \mid \text{data})`; an untried dose has
its prior value :math:`1 - u_b / 100`. The paper's rank-based desirability score (RDS) is the
rank of this probability in the pre-tabulated table (:meth:`BOIN12Rule.tabulate`); ranks keep
the order of the probabilities, so the rule compares the probabilities themselves.

Admissibility (checked at every dose from its own counts). A dose with at least 3 DLTs
(:math:`y_j \ge 3`, so :math:`n_j \ge 3`) and :math:`P(p_{T,j} > \phi_T \mid \text{data}) >
c_T` (0.95) is eliminated with every higher dose; a dose with :math:`n_j \ge 3` and
:math:`P(p_{E,j} < \phi_E \mid \text{data}) > c_E` (0.90) is eliminated for futility (that
dose only). Posteriors are the model's
:math:`\mathrm{Beta}(a + \text{events}, b + n_j - \text{events})`. An eliminated dose never gets
another patient, so recomputing elimination from the counts equals the sticky elimination of
the authors' code; with a backfill conduct, the outcomes of patients backfilled at a dose
before its elimination may arrive after it and count like any other's (as in
:mod:`dosezoo.designs.boin`).

Dose finding at the current dose :math:`j` with :math:`\hat p_j = y_j / n_j` and BOIN's
boundaries :math:`\lambda_e, \lambda_d` for :math:`\phi_T` (:func:`~dosezoo.designs.boin.
boin_boundaries`, with :math:`\phi_1 = 0.6\phi_T`, :math:`\phi_2 = 1.4\phi_T`):

1. exploration (the paper's supplement; ``N2 = 9`` of the authors' code): if
   :math:`n_j \ge` ``explore_n`` (9), :math:`\hat p_j < \lambda_d` and the next admissible
   dose above is untried, escalate to it, unless rules 3-4 find no admissible candidate
   (then the trial stops: the authors' code stops before it explores);
2. if :math:`\hat p_j \ge \lambda_d`: de-escalate to the highest admissible dose below
   (stay at :math:`j` when there is none and :math:`j` is admissible, else stop);
3. if :math:`\lambda_e < \hat p_j < \lambda_d` and :math:`n_j \ge N^*` (``n_star``, 6):
   the most desirable of the admissible doses among :math:`j - 1, j`;
4. otherwise (:math:`\hat p_j \le \lambda_e`, or :math:`n_j < N^*`): the most desirable of
   the admissible doses among :math:`j - 1, j, j + 1`.

"Dose :math:`j \pm 1`" is the nearest admissible dose in that direction, so a dose
eliminated for futility (always a tried one) is passed over, never an untried one. Ties of
desirability go to the highest dose (the BOIN12 Shiny application, as the escalation package
notes). The trial stops when the sample size is reached, when no dose is admissible, or when
no candidate dose is (the authors' code stops when its choice is eliminated).

OBD selection at the end. Over the tried doses not eliminated for toxicity, the DLT rates
:math:`(y_j + 0.05)/(n_j + 0.1)` are made non-decreasing by weighted isotonic regression and
the MTD is the dose whose estimate is closest to :math:`\phi_T`, as in BOIN's ``select.mtd``
(:class:`~dosezoo.designs.boin.BOINRule`). Among the admissible tried doses at or below the
MTD, the OBD maximises the estimated utility
:math:`\hat u_j = 100 \tilde p_{E,j}(1 - \tilde p_{T,j}) + u_{11} \tilde p_{E,j}
\tilde p_{T,j} + u_{00}(1 - \tilde p_{E,j})(1 - \tilde p_{T,j})` with the isotonic
:math:`\tilde p_{T,j}` and :math:`\tilde p_{E,j} = (e_j + 0.05)/(n_j + 0.1)`; ties go to the
lower dose. Choices where the sources differ: the authors' simulation code also smooths the
efficacy estimates by a model average of unimodal isotonic regressions, which is not done
here; it pools the DLT rates by ``pava(p, n + 0.1)`` over every dose (here: BOIN's
``select.mtd`` weights over the doses not eliminated for toxicity; the two choose other OBDs
in about 3% of random states, nearly all with DLT rates that fall with the dose); and it
selects no OBD after an early stop, where this rule selects from the data of a trial that
stopped with no admissible dose to move to (a trial that eliminated every dose selects none
either way); the escalation package selects by the desirability instead of :math:`\hat u_j`. With
the paper's :math:`u_{11} + u_{00} = 100` the utility is linear,
:math:`\hat u_j = u_{11} \tilde p_{E,j} + u_{00} (1 - \tilde p_{T,j})`, as in the authors'
code.

The boundaries are BOIN's closed-form :math:`\lambda_e, \lambda_d` compared with
:math:`\hat p_j` (the package BOIN's ``get.boundary``); the authors' code uses BOIN's count
boundaries, which are the same for cohorts of 3 at :math:`\phi_T = 0.35`. Toxicity elimination
needs 3 DLTs, as in the authors' code (its elimination boundary is searched from 3 DLTs up) and
in their Shiny application: the BOIN12 cases the escalation package records from it treat
the lowest dose again after 2 DLTs in 3 patients at :math:`\phi_T = 0.15`, :math:`c_T = 0.9`.
BOIN's own elimination (:mod:`dosezoo.designs.boin`, the package BOIN's ``get.boundary``) needs
3 patients, whatever their DLTs. The two differ only where fewer than 3 DLTs already exceed
the cut-off: with :math:`c_T = 0.95`, 2 DLTs in 3 patients when :math:`\phi_T < 0.2486`.
"""

import math
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betainc, betaincc

from dosezoo.checks import positive_int, probability, probability_array, real_number
from dosezoo.data import TrialData
from dosezoo.decision import CountDecisions
from dosezoo.designs.base import Conduct, Design, compose
from dosezoo.designs.boin import (
    MIN_PATIENTS_TO_ELIMINATE,
    SELECT_N0,
    SELECT_Y0,
    BOINBoundaryRule,
    at_or_above_deescalation,
    at_or_below_escalation,
    beta_tail_of_counts,
    select_mtd_estimates,
    select_mtd_level,
)
from dosezoo.designs.registry import Family, register
from dosezoo.levels import CountStates, checked_counts, format_rows, last_true
from dosezoo.models.base import DoseModel
from dosezoo.models.boin import BOIN
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described

#: DLTs a dose needs before it is eliminated for toxicity (the authors' code and application).
MIN_DLTS_TO_ELIMINATE = 3

__all__ = ["BOIN12Design", "BOIN12Rule", "BOIN12TableRow", "boin12_design", "boin12_utility"]

#: Desirabilities (or utilities) closer than this are ties.
_TIE_TOLERANCE = 1e-12
#: Names of the events besides DLTs the rule counts: responses, and DLTs with a response.
RESPONSES, BOTH = "responses", "dlt_and_response"


def boin12_utility(p_eff: ArrayLike, p_tox: ArrayLike, u11: float, u00: float) -> np.ndarray:
    r"""Return the mean utility of doses with these efficacy and toxicity rates, independent.

    :math:`100 p_E (1 - p_T) + u_{11} p_E p_T + u_{00} (1 - p_E)(1 - p_T)` (the utility of
    :math:`E{=}0, T{=}1` is 0).

    Raises
    ------
    ValueError
        If a rate is not a probability (naming it and its index), the rates' shapes do not
        broadcast, or ``u11`` or ``u00`` lies off [0, 100] (the utilities of the other two
        outcomes, 0 and 100, bound them).
    """
    owner = "boin12_utility"
    p_eff = probability_array(owner, "p_eff", p_eff)
    p_tox = probability_array(owner, "p_tox", p_tox)
    try:
        np.broadcast_shapes(p_eff.shape, p_tox.shape)
    except ValueError:
        raise ValueError(
            f"{owner}: p_eff and p_tox must be of shapes that broadcast, got {p_eff.shape} and "
            f"{p_tox.shape}"
        ) from None
    u11, u00 = _checked_utility(owner, "u11", u11), _checked_utility(owner, "u00", u00)
    return np.asarray(_utility(p_eff, p_tox, u11, u00))


def _checked_utility(owner: str, name: str, value: object) -> float:
    """Return the utility ``value`` as a float; a ValueError unless a number in [0, 100]."""
    number = real_number(owner, name, value)
    if not 0 <= number <= 100:
        raise ValueError(f"{owner}: {name} must lie in [0, 100], got {value!r}")
    return number


def _utility(
    p_eff: np.ndarray | float, p_tox: np.ndarray | float, u11: float, u00: float
) -> np.ndarray | float:
    """:func:`boin12_utility` of checked rates and utilities (NaN rates give NaN)."""
    return 100 * p_eff * (1 - p_tox) + u11 * p_eff * p_tox + u00 * (1 - p_eff) * (1 - p_tox)


def _most_desirable(candidates: np.ndarray, desirable: np.ndarray) -> np.ndarray:
    """Each row's candidate level of largest desirability, the highest among ties (-1: none)."""
    score = np.where(candidates, desirable, -np.inf)
    best = score.max(axis=1, keepdims=True)
    return last_true(candidates & (score >= best - _TIE_TOLERANCE))


def _possible_counts(
    owner: str, n: ArrayLike, y: ArrayLike, e: ArrayLike, r: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Patients, DLTs, responses and DLTs with a response, checked possible; int64 arrays.

    Whole numbers >= 0 (not text or bools) of one shape, with ``both <= dlt``,
    ``both <= responses`` and ``dlt + responses - both <= n``; a ValueError names the counts.
    ``r`` None: the overlap is not known, and only ``dlt <= n`` and ``responses <= n`` hold.
    """
    names = ("n", "dlt", "responses", "both")
    given = (n, y, e, y if r is None else r)
    counts = [checked_counts(owner, name, v) for name, v in zip(names, given, strict=True)]
    if r is None:
        counts[3] = np.minimum(counts[1], counts[2])
    if len({c.shape for c in counts}) > 1:
        raise ValueError(
            f"{owner}: the counts must be of one shape, got shapes "
            f"{', '.join(f'{name} {c.shape}' for name, c in zip(names, counts, strict=True))}"
        )
    n, y, e, r = counts
    bad = (y < 0) | (e < 0) | (r < 0) | (r > e) | (r > y) | (y + e - r > n)
    if bad.any():
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
        raise ValueError(
            f"{owner}: the counts at {at} are impossible: n={n[at]}, dlt={y[at]}, "
            f"responses={e[at]}, both={r[at]} (need 0 <= both <= dlt, both <= responses, "
            "dlt + responses - both <= n)"
        )
    return n, y, e, r


@dataclass(frozen=True)
class BOIN12TableRow:
    r"""One row of BOIN12's pre-tabulated decision table (:meth:`BOIN12Rule.tabulate`).

    Attributes
    ----------
    n, n_dlt, n_response : int
        Patients at the dose, and those with a DLT, with a response.
    n_dlt_and_response : int or None
        Those with both; None when the utility does not depend on it (:math:`u_{11} + u_{00}
        = 100`, the paper's table).
    toxicity : str
        What BOIN's boundaries allow at this dose: ``"escalate"`` (:math:`\hat p \le
        \lambda_e`: choose among :math:`j-1, j, j+1`), ``"escalate (n < N*)"`` (between the
        boundaries with fewer than :math:`N^*` patients: the same choice), ``"stay"`` (between
        the boundaries with at least :math:`N^*`: choose among :math:`j-1, j`),
        ``"de-escalate"`` (:math:`\hat p \ge \lambda_d`); ``""`` for ``n = 0``.
    eliminate_toxicity, eliminate_futility : bool
        Whether the dose is eliminated for toxicity (with all higher doses) or futility.
    desirability : float
        :math:`P(u > u_b \mid \text{data})`.
    rds : float or None
        Rank of the desirability among the admissible rows of the table (1 = least
        desirable, average ranks for ties; the paper's rank-based desirability score); None
        for an eliminated row.
    """

    n: int
    n_dlt: int
    n_response: int
    n_dlt_and_response: int | None
    toxicity: str
    eliminate_toxicity: bool
    eliminate_futility: bool
    desirability: float
    rds: float | None


@dataclass(frozen=True)
class BOIN12Rule(BOINBoundaryRule):
    r"""BOIN12's dose finding and OBD selection (Lin et al. 2020; see the module docstring).

    Parameters
    ----------
    efficacy_limit : float
        :math:`\phi_E`, the lowest acceptable response rate (0.25, the paper's example).
    u11 : float
        Utility of a response with a DLT, in [0, 100] (60).
    u00 : float
        Utility of neither, in [0, 100] (40).
    phi1, phi2 : float, optional
        BOIN's sub-therapeutic and overly toxic rates for the boundaries (``0.6 * target``,
        ``1.4 * target``).
    toxicity_cutoff : float
        :math:`c_T`: eliminate a dose with at least 3 DLTs when :math:`P(p_T > \phi_T) > c_T`
        (0.95).
    futility_cutoff : float
        :math:`c_E`: eliminate when :math:`P(p_E < \phi_E) > c_E` (0.90).
    n_star : int
        :math:`N^*`: with toxicity between the boundaries, do not escalate once the current
        dose has this many patients (6).
    explore_n : int
        Escalate to an untried next dose once the current dose has this many patients and
        :math:`\hat p < \lambda_d` (9).

    Notes
    -----
    The target :math:`\phi_T`, the levels and the Beta prior are the model's
    (:class:`~dosezoo.models.BOIN`). Decisions record ``n_at_dose``, ``dlt_at_dose``,
    ``responses_at_dose``, ``p_hat``, ``lambda_e``, ``lambda_d``, ``utility_benchmark`` and
    ``desirability_<k>`` and ``admissible_<k>`` per level; a stop also ``selected_dose``.
    The final recommendation records ``p_iso_<k>`` and ``utility_<k>`` (NaN where not
    considered) and ``mtd_level``.
    """

    label: ClassVar[str] = "BOIN12"
    counted_outcomes: ClassVar[tuple[str, ...]] = ("dlt", "efficacy")
    #: A response is efficacy >= 1: a high response (2) decides as a response (1).
    outcome_values: ClassVar[Mapping[str, tuple[int, ...]]] = {"efficacy": (0, 1)}

    _: KW_ONLY
    efficacy_limit: float = 0.25
    u11: float = 60.0
    u00: float = 40.0
    toxicity_cutoff: float = 0.95
    futility_cutoff: float = 0.9
    n_star: int = 6
    explore_n: int = 9
    utility_benchmark: float = field(default=math.nan, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        super().__post_init__()
        owner = "BOIN12Rule"
        for name in ("efficacy_limit", "toxicity_cutoff", "futility_cutoff"):
            object.__setattr__(self, name, probability(owner, name, getattr(self, name)))
        for name in ("u11", "u00"):
            object.__setattr__(self, name, _checked_utility(owner, name, getattr(self, name)))
        for name in ("n_star", "explore_n"):
            object.__setattr__(self, name, positive_int(owner, name, getattr(self, name)))

    def bind(self, model: DoseModel | None, conduct: Conduct) -> "BOIN12Rule":
        """Bind as BOIN does; add the utility benchmark from the target and efficacy limit."""
        bound = super().bind(model, conduct)
        highest_unacceptable = float(
            _utility(self.efficacy_limit, bound.target, self.u11, self.u00)
        )
        return bound._bound(
            utility_benchmark=highest_unacceptable + (100 - highest_unacceptable) / 2
        )

    # ------------------------------------------------------------------ counts

    def events_of(self, outcomes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Responses (``efficacy >= 1``) and DLTs with a response, per patient (0/1)."""
        response = (np.asarray(outcomes["efficacy"]) >= 1).astype(np.int64)
        return {RESPONSES: response, BOTH: response * np.asarray(outcomes["dlt"], np.int64)}

    def _events(self, states: CountStates) -> tuple[np.ndarray, np.ndarray]:
        """Return the responses and DLT-with-response counts of the states (checked)."""
        missing = {RESPONSES, BOTH} - set(states.events)
        if missing:
            raise ValueError(
                f"BOIN12Rule: count states need the event counts {sorted(missing)} "
                "(responses per level, DLTs with a response per level)"
            )
        e, r = states.events[RESPONSES], states.events[BOTH]
        bad = np.any((r > e) | (r > states.y) | (states.y + e - r > states.n), axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"BOIN12Rule: count state row {row} is impossible: n={states.n[row].tolist()}, "
                f"dlt={states.y[row].tolist()}, responses={e[row].tolist()}, "
                f"both={r[row].tolist()} (need both <= dlt, both <= responses, "
                "dlt + responses - both <= n)"
            )
        return e, r

    # ------------------------------------------------------------------ posterior

    def _prior(self) -> tuple[float, float]:
        model = self.bound_model
        return model.prior_a, model.prior_b

    def desirability(self, n: ArrayLike, y: ArrayLike, e: ArrayLike, r: ArrayLike) -> np.ndarray:
        r"""Return :math:`P(u > u_b \mid \text{data})` from patients, DLTs, responses and both.

        Raises
        ------
        ValueError
            Unless the counts are whole numbers of one shape with ``both <= dlt``,
            ``both <= responses`` and ``dlt + responses - both <= n``, naming them.
        """
        return self._desirability(*_possible_counts("BOIN12Rule.desirability", n, y, e, r))

    def _desirability(
        self, n: np.ndarray, y: np.ndarray, e: np.ndarray, r: np.ndarray
    ) -> np.ndarray:
        """:meth:`desirability` of counts that are possible (the rule's own, checked)."""
        a, b = self._prior()
        n, y, e, r = (np.asarray(v, dtype=float) for v in (n, y, e, r))
        x = (100 * (e - r) + self.u11 * r + self.u00 * (n - y - e + r)) / 100
        # Many doses share (n, x): the incomplete beta function is computed once for each.
        pairs, inverse = np.unique(np.stack([n.ravel(), x.ravel()]), axis=1, return_inverse=True)
        values = betaincc(a + pairs[1], b + pairs[0] - pairs[1], self.utility_benchmark / 100)
        return values[inverse.ravel()].reshape(n.shape)

    def eliminated(
        self, n: ArrayLike, y: ArrayLike, e: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return, per level, whether it is eliminated; and the toxicity and futility masks.

        Toxicity eliminates the level and every higher one; futility that level only.

        Raises
        ------
        ValueError
            Unless the counts are whole numbers of one shape with ``dlt <= n`` and
            ``responses <= n``, naming them.
        """
        n, y, e, _ = _possible_counts("BOIN12Rule.eliminated", n, y, e, None)
        return self._eliminated(n, y, e)

    def _eliminated(
        self, n: np.ndarray, y: np.ndarray, e: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`eliminated` of counts that are possible (the rule's own, checked)."""
        a, b = self._prior()
        n, y, e = (np.asarray(v, dtype=float) for v in (n, y, e))
        enough = n >= MIN_PATIENTS_TO_ELIMINATE
        toxic = (y >= MIN_DLTS_TO_ELIMINATE) & (
            beta_tail_of_counts(a, b, self.target, n, y) > self.toxicity_cutoff
        )
        futile = enough & (betainc(a + e, b + n - e, self.efficacy_limit) > self.futility_cutoff)
        toxic_from = np.logical_or.accumulate(toxic, axis=-1)
        return toxic_from | futile, toxic_from, futile

    def backfill_eligible(
        self, posterior: DosePosterior | None, data: TrialData, cleared: tuple[float, ...]
    ) -> tuple[float, ...]:
        """Return the cleared doses BOIN12 has not eliminated, for toxicity or for futility.

        BOIN12 never gives an eliminated dose again; nor does it backfill one (a dose that
        backfilling brought to many patients without a response is dropped for futility).
        """
        states = self.counts(data)
        e, _ = self._events(states)
        out = self._eliminated(states.n, states.y, e)[0][0]
        return tuple(dose for dose in cleared if not out[self.dose_levels.index(dose)])

    # ------------------------------------------------------------------ array rule

    def _decide(
        self, states: CountStates, posterior: DosePosterior | None = None
    ) -> CountDecisions:
        n, y, current = states.n, states.y, states.current
        e, r = self._events(states)
        size, levels = current.size, n.shape[1]
        rows = np.arange(size)
        doses = np.asarray(self.dose_levels)
        started = current >= 0
        at = np.maximum(current, 0)
        n_at, y_at = n[rows, at], y[rows, at]
        with np.errstate(divide="ignore", invalid="ignore"):  # no patient yet: not recorded
            p_hat = y_at / n_at
        out, _, _ = self._eliminated(n, y, e)
        desirable = self._desirability(n, y, e, r)
        index = np.arange(levels)
        admissible = ~out
        below = last_true(admissible & (index < at[:, None]))
        above_mask = admissible & (index > at[:, None])
        above = np.where(above_mask.any(axis=1), np.argmax(above_mask, axis=1), -1)
        at_ok = admissible[rows, at]

        deescalate = started & at_or_above_deescalation(y_at, n_at, self.lambda_d)
        escalate_ok = at_or_below_escalation(y_at, n_at, self.lambda_e) | (n_at < self.n_star)
        # Candidates j-1, j, j+1 (nearest admissible), the most desirable winning, ties high.
        candidates = np.zeros((size, levels), dtype=bool)
        candidates[rows[below >= 0], below[below >= 0]] = True
        candidates[rows, at] |= at_ok
        up = escalate_ok & (above >= 0)
        candidates[rows[up], above[up]] = True
        chosen = _most_desirable(candidates, desirable)
        # j + 1 held back by lambda_e (n_star patients or more) where it would have won.
        held_back = ~escalate_ok & (above >= 0)
        unrestricted = candidates.copy()
        unrestricted[rows[held_back], above[held_back]] = True
        by_lambda_e = held_back & (_most_desirable(unrestricted, desirable) != chosen)
        # The authors' code stops when no candidate is admissible before it explores.
        explore = (
            started
            & ~deescalate
            & (chosen >= 0)
            & (n_at >= self.explore_n)
            & (above >= 0)
            & (n[rows, np.maximum(above, 0)] == 0)
        )

        level = chosen.copy()
        bound_by = np.full(size, "", dtype=object)
        bound_by[by_lambda_e] = "lambda_e"
        down = deescalate & (below >= 0)
        level[down] = below[down]
        bound_by[down] = "lambda_d"
        floor = deescalate & (below < 0) & at_ok
        level[floor] = at[floor]
        bound_by[floor] = "lowest_dose"
        level[deescalate & (below < 0) & ~at_ok] = -1
        level[explore] = above[explore]
        bound_by[explore] = "explore_n"

        stop_reason = np.full(size, "", dtype=object)
        n_patients = n.sum(axis=1)
        full = started & (n_patients >= self._sample_size)
        stop_reason[full] = format_rows(
            "sample size reached: {n} of {planned}", full, n=n_patients, planned=self._sample_size
        )
        none = started & ~full & ~admissible.any(axis=1)
        stop_reason[none] = "no admissible dose: every dose eliminated for toxicity or futility"
        stuck = started & ~full & ~none & (level < 0)
        stop_reason[stuck] = format_rows(
            "no admissible dose to go to from dose {dose:g}", stuck, dose=doses[at]
        )
        stops = full | none | stuck
        level[stops], bound_by[stops] = -1, ""
        level[~started], bound_by[~started] = self._start_level, "start_dose"

        selected = np.full(size, math.nan)
        if stops.any():
            picked = self._recommend(
                CountStates(
                    n[stops],
                    y[stops],
                    current[stops],
                    {RESPONSES: e[stops], BOTH: r[stops]},
                )
            ).level
            selected[stops] = np.where(picked >= 0, doses[np.maximum(picked, 0)], math.nan)
        everywhere = np.ones(size, dtype=bool)
        recorded: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "n_at_dose": (n_at.astype(float), started),
            "dlt_at_dose": (y_at.astype(float), started),
            "responses_at_dose": (e[rows, at].astype(float), started),
            "p_hat": (p_hat, started),
            "lambda_e": (np.full(size, self.lambda_e), everywhere),
            "lambda_d": (np.full(size, self.lambda_d), everywhere),
            "utility_benchmark": (np.full(size, self.utility_benchmark), everywhere),
            **{f"desirability_{k}": (desirable[:, k], started) for k in range(levels)},
            **{f"admissible_{k}": (admissible[:, k].astype(float), started) for k in range(levels)},
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
        n, y = states.n, states.y
        e, _ = self._events(states)
        size, levels = n.shape
        out, toxic, _ = self._eliminated(n, y, e)
        tried = n > 0
        considered = tried & ~toxic
        p_iso = select_mtd_estimates(n, y, considered)
        mtd = select_mtd_level(p_iso, self.target)
        p_eff = (e + SELECT_Y0) / (n + SELECT_N0)
        utility = np.where(considered, _utility(p_eff, p_iso, self.u11, self.u00), np.nan)
        eligible = tried & ~out & (np.arange(levels) <= mtd[:, None])
        score = np.where(eligible, utility, -np.inf)
        best = score.max(axis=1, keepdims=True)
        level = np.where(
            eligible.any(axis=1), np.argmax(eligible & (score >= best - _TIE_TOLERANCE), axis=1), -1
        )
        stop_reason = np.full(size, "", dtype=object)
        stop_reason[level < 0] = np.where(
            considered.any(axis=1)[level < 0],
            "no OBD: no admissible dose at or below the MTD",
            "no OBD: no dose was given that is not eliminated for toxicity",
        )
        return CountDecisions(
            level=level,
            stop_reason=stop_reason,
            bound_by=np.full(size, "", dtype=object),
            quantities={
                "mtd_level": mtd.astype(float),
                **{f"p_iso_{k}": p_iso[:, k] for k in range(levels)},
                **{f"utility_{k}": utility[:, k] for k in range(levels)},
            },
            present={
                "mtd_level": np.ones(size, dtype=bool),
                **{f"p_iso_{k}": np.ones(size, dtype=bool) for k in range(levels)},
                **{f"utility_{k}": np.ones(size, dtype=bool) for k in range(levels)},
            },
        )

    # ------------------------------------------------------------------ table

    def tabulate(self, cohort_size: int, max_patients: int) -> list[BOIN12TableRow]:
        """Return the pre-tabulated decision table: every count at ``n`` = 0, cohort, ...

        For each number of patients at a dose (0 and the multiples of the cohort size up to
        ``max_patients``) and each number of DLTs and responses (and of both, when the utility
        depends on it), what the boundaries allow, whether the dose is eliminated, its
        desirability and its rank-based desirability score (the paper's Table 3).
        """
        cohort_size = positive_int("BOIN12Rule.tabulate", "cohort_size", cohort_size)
        max_patients = positive_int("BOIN12Rule.tabulate", "max_patients", max_patients)
        additive = abs(self.u11 + self.u00 - 100) < 1e-12
        cells = []
        for size in [0, *range(cohort_size, max_patients + 1, cohort_size)]:
            for dlts in range(size + 1):
                for responses in range(size + 1):
                    low, high = max(0, dlts + responses - size), min(dlts, responses)
                    for both in [low] if additive else range(low, high + 1):
                        cells.append((size, dlts, responses, both))
        n, t, e, r = (np.array(column, dtype=np.int64) for column in zip(*cells, strict=True))
        # Each cell is a dose on its own (one level), so toxicity does not carry across cells.
        _, toxic, futile = (
            mask[:, 0] for mask in self._eliminated(n[:, None], t[:, None], e[:, None])
        )
        desirability = self._desirability(n, t, e, r)
        admissible = ~toxic & ~futile
        ranks = np.full(n.size, np.nan)
        from scipy.stats import rankdata  # loaded on use: scipy.stats slows start-up

        ranks[admissible] = rankdata(desirability[admissible])
        rows = []
        for i in range(n.size):
            if n[i] == 0:
                move = ""
            elif at_or_below_escalation(t[i], n[i], self.lambda_e):
                move = "escalate"
            elif at_or_above_deescalation(t[i], n[i], self.lambda_d):
                move = "de-escalate"
            elif n[i] < self.n_star:  # rule 4: between the boundaries, j + 1 is a candidate
                move = "escalate (n < N*)"
            else:
                move = "stay"
            rows.append(
                BOIN12TableRow(
                    n=int(n[i]),
                    n_dlt=int(t[i]),
                    n_response=int(e[i]),
                    n_dlt_and_response=None if additive else int(r[i]),
                    toxicity=move,
                    eliminate_toxicity=bool(toxic[i]),
                    eliminate_futility=bool(futile[i]),
                    desirability=float(desirability[i]),
                    rds=float(ranks[i]) if admissible[i] else None,
                )
            )
        return rows

    def describe(self) -> Described:
        """Flat record of the rule's options, with the boundaries and benchmark when bound."""
        return {
            "efficacy_limit": self.efficacy_limit,
            "u11": self.u11,
            "u00": self.u00,
            "phi1": self.phi1,
            "phi2": self.phi2,
            "toxicity_cutoff": self.toxicity_cutoff,
            "futility_cutoff": self.futility_cutoff,
            "n_star": self.n_star,
            "explore_n": self.explore_n,
            "lambda_e": self.lambda_e,
            "lambda_d": self.lambda_d,
            "utility_benchmark": self.utility_benchmark,
        }


def boin12_design(
    target: float,
    dose_levels: Any,
    *,
    prior_a: float = 1.0,
    prior_b: float = 1.0,
    **options: Any,
) -> Design:
    r"""Return BOIN12: ``Design(BOIN(target, levels), BOIN12Rule(...), Conduct(...))``.

    Parameters
    ----------
    target : float
        The upper toxicity limit :math:`\phi_T` in (0, 1) (0.35 in the paper's example).
    dose_levels : sequence of float
        Candidate doses, strictly increasing.
    prior_a, prior_b : float
        Beta prior of the toxicity, response and standardised-utility rates (1, 1).
    **options
        Options of :class:`BOIN12Rule` (``efficacy_limit``, ``u11``, ``u00``, ...) and of
        :class:`~dosezoo.designs.base.Conduct` (start dose the lowest level, cohorts of 3, 36
        patients by default).

    Returns
    -------
    Design
        A :class:`~dosezoo.designs.base.CountDesign` that counts DLTs and responses.
    """
    return compose(BOIN(target, dose_levels, prior_a=prior_a, prior_b=prior_b), BOIN12Rule, options)


#: The BOIN12 factory under a class-style name, as the paper's readers look for it (the
#: factories of the other families are lower-case, e.g. ``boin_design``).
BOIN12Design = boin12_design


register(
    Family(
        name="boin12",
        summary=(
            "BOIN12 phase I/II design (Lin et al. 2020): utility-based desirability, BOIN's "
            "toxicity boundaries, toxicity and futility elimination, OBD selection"
        ),
        model=BOIN,
        rule=BOIN12Rule,
        example="boin12.toml",
        example_data="efftox_cohorts.csv",
    )
)
