r"""Dose optimisation after escalation: the dose range and a randomised pick-the-winner stage.

Project Optimus asks the escalation to end on a *recommended dose range* for randomised
phase 2 rather than on one dose (the FDA's draft guidance of 2023; the talk "Statistical
Considerations for Project Optimus" by J. Lin, 2023). This module builds that path:

Therapeutic dose range (:func:`therapeutic_dose_range`). From per-dose posterior summaries of a
model of toxicity and efficacy (e.g. :meth:`~dosezoo.designs.optimus.OptimusRule.summaries` of
the joint probit model): the *minimum active dose* (MAD) is the lowest dose given to patients
with :math:`P(p_E(d) \ge e_{\min} \mid \text{data}) \ge c_{\text{MAD}}`; the *MTD* is the
highest dose given to patients that the overdose control allows (:math:`P(p_T(d) > \bar p \mid
\text{data}) \le c_{od}`, and not excluded by the design's own overdose control, which may
exclude a dose within its Monte Carlo error of the cut-off) below every dose given that it
excludes (toxicity increases with the dose: a dose above an excluded one is excluded too); the
range is every dose from the MAD to
the MTD that were given to patients (empty when the MAD is above the MTD; an escalation that
skipped a dose leaves it out), and the recommended phase 2 dose set (RP2S) is the top of the
range and the dose given just below it, the two doses randomised next (DL A > DL B, as in the
talk). The talk defines the range (from the MAD, "based on the minimum acceptable PD
threshold", to the MTD, after the DROID design of Guo et al.); the thresholds
:math:`c_{\text{MAD}}` (0.5) and the choice of two adjacent doses are this package's.

Per-arm assessment (:class:`ArmCriteria`). The response rate of an arm has the posterior
:math:`\mathrm{Beta}(a + x, b + n - x)`; with a lower reference value (LRV) and a target value
(TV) of the response rate, the dual criterion of Frewer et al. (2016) gives **Go** when
:math:`P(\text{ORR} > \text{LRV}) \ge c_{\text{LRV}}` and :math:`P(\text{ORR} > \text{TV})
\ge c_{\text{TV}}`, **No-Go** when both are below their cut-offs, **Consider** otherwise
(defaults LRV 0.2, TV 0.35, :math:`c_{\text{LRV}} = 0.8`, :math:`c_{\text{TV}} = 0.1`; none of
them is in the talk).

Decision matrix (:func:`pick_the_winner`), verbatim from the talk's slide "randomized phase 2
with Pick-the-Winner approach" (its "Continue" column is the Go status):

=================  ===============  =============================  ===========================
DL B \ DL A         No-Go            Consider                       Go
=================  ===============  =============================  ===========================
No-Go              No-Go            Consider DL A                  Go DL A
Consider           Consider DL B    Pick-the-winner for Consider   Pick-the-winner for Go
Go                 Go DL B          Pick-the-winner for Go         Pick-the-winner for Go
=================  ===============  =============================  ===========================

Pick-the-winner (when both arms pass the Consider criterion): DL A if
:math:`P(\text{ORR}_A > \text{ORR}_B \mid \text{data}) > \delta`, else DL B: the higher dose
must show convincing superiority. :math:`\delta` (0.8 by default) is not in the talk.
:math:`P(\text{ORR}_A > \text{ORR}_B)` is exact for the two Beta posteriors: a finite sum
when A's first shape parameter is an integer (the default uniform prior), else the integral
:math:`\int_0^1 f_A(p) F_B(p)\,dp` by adaptive quadrature.

Simulation (:func:`simulate_pick_the_winner`): two doses randomised, ``n_per_arm`` patients
each (the talk: typically 20-40), each patient with a response iff a uniform draw of the
trial's own generator is below the arm's true rate (common random numbers across designs of
the stage); optionally an interim look after a fraction of the patients that drops an arm
assessed No-Go. Operating characteristics: the probability of choosing A, B, no dose, the
better dose (the higher true rate; the lower dose when equal), and the expected sample size.
"""

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln

from dosezoo.checks import (
    first_not_whole,
    integer,
    number_array,
    positive_int,
    probability,
    real_number,
)
from dosezoo.errors import DataError

__all__ = [
    "PTW_MATRIX",
    "ArmCriteria",
    "DoseRange",
    "PickTheWinnerScenario",
    "PickTheWinnerStage",
    "mean_and_se",
    "pick_the_winner",
    "pick_the_winner_cell",
    "pick_the_winner_scenarios",
    "prob_a_better",
    "simulate_pick_the_winner",
    "stage_uniforms",
    "therapeutic_dose_range",
]

Status = Literal["go", "consider", "no-go"]
STATUSES: tuple[Status, ...] = ("no-go", "consider", "go")

#: The talk's matrix, cell text verbatim, by (status of DL B, status of DL A).
PTW_MATRIX: Mapping[tuple[str, str], str] = {
    ("no-go", "no-go"): "No-Go",
    ("no-go", "consider"): "Consider DL A",
    ("no-go", "go"): "Go DL A",
    ("consider", "no-go"): "Consider DL B",
    ("consider", "consider"): "Pick-the-winner for Consider",
    ("consider", "go"): "Pick-the-winner for Go",
    ("go", "no-go"): "Go DL B",
    ("go", "consider"): "Pick-the-winner for Go",
    ("go", "go"): "Pick-the-winner for Go",
}


def _status(name: str, value: object) -> str:
    if value not in STATUSES:
        raise DataError(f"pick_the_winner: {name} must be one of {STATUSES}, got {value!r}")
    return str(value)


def pick_the_winner_cell(status_a: str, status_b: str) -> str:
    """Return the talk's matrix cell for the statuses of DL A (higher) and DL B (lower)."""
    return PTW_MATRIX[(_status("status_b", status_b), _status("status_a", status_a))]


def pick_the_winner(status_a: str, status_b: str, p_a_better: float, delta: float) -> str:
    r"""Combine the two arms' assessments by the talk's matrix: ``"A"``, ``"B"`` or ``"no-go"``.

    Parameters
    ----------
    status_a, status_b : {"go", "consider", "no-go"}
        Assessments of DL A (the higher dose) and DL B.
    p_a_better : float
        :math:`P(\text{ORR}_A > \text{ORR}_B \mid \text{data})` in [0, 1].
    delta : float
        :math:`\delta` in [0, 1]: in a pick-the-winner cell, A wins only if
        ``p_a_better > delta``.

    Returns
    -------
    str
        ``"A"``, ``"B"``, or ``"no-go"`` (no dose goes on).

    Raises
    ------
    DataError
        Naming the argument and its value when a status is unknown or a probability is
        outside [0, 1].
    """
    cell = pick_the_winner_cell(status_a, status_b)
    for name, value in (("p_a_better", p_a_better), ("delta", delta)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float | np.floating)
            or not 0 <= float(value) <= 1
        ):
            raise DataError(f"pick_the_winner: {name} must lie in [0, 1], got {value!r}")
    if cell == "No-Go":
        return "no-go"
    if cell.endswith("DL A"):
        return "A"
    if cell.endswith("DL B"):
        return "B"
    return "A" if float(p_a_better) > float(delta) else "B"


@functools.lru_cache(maxsize=65536)
def _prob_greater(a1: float, b1: float, a2: float, b2: float) -> float:
    r""":math:`P(X > Y)` for independent ``X ~ Beta(a1, b1)``, ``Y ~ Beta(a2, b2)``.

    For an integer ``a1`` the finite sum (Cook 2005; Miller 2015)
    :math:`\sum_{i=0}^{a_1 - 1} \frac{B(a_2 + i,\, b_1 + b_2)}{(b_1 + i)\, B(1 + i, b_1)\,
    B(a_2, b_2)}`, in logs; otherwise adaptive quadrature of :math:`\int f_X F_Y`.
    """
    if float(a1).is_integer():
        i = np.arange(int(a1))
        terms = betaln(a2 + i, b1 + b2) - np.log(b1 + i) - betaln(1 + i, b1) - betaln(a2, b2)
        value = float(np.exp(terms).sum())
    else:
        from scipy import integrate  # loaded on use: keeps start-up fast
        from scipy.stats import beta  # loaded on use: scipy.stats slows start-up

        value, _ = integrate.quad(
            lambda p: beta.pdf(p, a1, b1) * beta.cdf(p, a2, b2), 0, 1, epsabs=1e-12, epsrel=1e-10
        )
    return min(max(value, 0.0), 1.0)


#: Most patients per arm :func:`prob_a_better` takes: its exact sum runs over the responses.
MAX_ARM_PATIENTS = 100_000


def prob_a_better(
    responses_a: int, n_a: int, responses_b: int, n_b: int, prior: tuple[float, float] = (1, 1)
) -> float:
    r"""Return :math:`P(\text{ORR}_A > \text{ORR}_B \mid \text{data})` under Beta priors.

    Raises
    ------
    ValueError
        Naming the argument at fault, unless ``0 <= responses <= n <=`` :data:`MAX_ARM_PATIENTS`
        for each arm and the prior's two shapes are positive.
    """
    owner = "prob_a_better"
    for arm, responses, n in (("a", responses_a, n_a), ("b", responses_b, n_b)):
        patients = integer(owner, f"n_{arm}", n, minimum=0)
        if patients > MAX_ARM_PATIENTS:
            raise ValueError(f"{owner}: n_{arm} must be at most {MAX_ARM_PATIENTS}, got {n!r}")
        if integer(owner, f"responses_{arm}", responses, minimum=0) > patients:
            raise ValueError(
                f"{owner}: responses_{arm}={responses!r} exceeds n_{arm}={n!r} patients"
            )
    if isinstance(prior, str) or not isinstance(prior, Sequence) or len(prior) != 2:
        raise ValueError(f"{owner}: prior must be two Beta shapes (a, b), got {prior!r}")
    a, b = (real_number(owner, f"prior[{i}]", shape) for i, shape in enumerate(prior))
    if not (0 < a <= MAX_ARM_PATIENTS and 0 < b <= MAX_ARM_PATIENTS):
        raise ValueError(
            f"{owner}: prior's shapes must lie in (0, {MAX_ARM_PATIENTS}], got {prior!r}"
        )
    return _posterior_prob_a_better(responses_a, n_a, responses_b, n_b, a, b)


def _posterior_prob_a_better(
    responses_a: int, n_a: int, responses_b: int, n_b: int, a: float, b: float
) -> float:
    """:func:`prob_a_better` of arms and a Beta(a, b) prior that were checked already."""
    return _prob_greater(
        a + responses_a, b + n_a - responses_a, a + responses_b, b + n_b - responses_b
    )


@dataclass(frozen=True)
class ArmCriteria:
    r"""The dual Go / Consider / No-Go criterion on an arm's response rate (Frewer et al. 2016).

    Parameters
    ----------
    lrv, tv : float
        Lower reference value and target value of the response rate, ``lrv < tv`` (0.2, 0.35).
    c_lrv, c_tv : float
        Go needs :math:`P(\text{ORR} > \text{LRV}) \ge c_{\text{LRV}}` and
        :math:`P(\text{ORR} > \text{TV}) \ge c_{\text{TV}}`; No-Go is both below (0.8, 0.1).
    prior_a, prior_b : float
        Beta prior of the response rate (1, 1).
    """

    lrv: float = 0.2
    tv: float = 0.35
    c_lrv: float = 0.8
    c_tv: float = 0.1
    prior_a: float = 1.0
    prior_b: float = 1.0

    def __post_init__(self) -> None:
        """Validate the criteria, naming the field at fault."""
        owner = "ArmCriteria"
        for name in ("lrv", "tv", "c_lrv", "c_tv"):
            object.__setattr__(self, name, probability(owner, name, getattr(self, name)))
        if not self.lrv < self.tv:
            raise ValueError(f"{owner}: lrv {self.lrv!r} must be below tv {self.tv!r}")
        for name in ("prior_a", "prior_b"):
            value = real_number(owner, name, getattr(self, name))
            if value <= 0:
                raise ValueError(f"{owner}: {name} must be > 0, got {value!r}")
            object.__setattr__(self, name, value)

    def probabilities(self, responses: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        r"""Return :math:`P(\text{ORR} > \text{LRV})` and :math:`P(\text{ORR} > \text{TV})`.

        Raises
        ------
        DataError
            Unless ``n`` are whole numbers >= 1 (an arm without patients has only its prior,
            which met the LRV criterion by itself: a "go") and ``responses`` whole numbers in
            [0, n]; the message names the first value at fault.
        """
        owner = "ArmCriteria"
        responses = np.asarray(number_array(owner, "responses", responses), float)
        n = np.asarray(number_array(owner, "n", n), float)
        if n.ndim and responses.shape != n.shape:  # n may be one size for every arm
            raise DataError(
                f"{owner}: responses and n must be of one shape (one arm each), got shapes "
                f"{responses.shape} and {n.shape}"
            )
        for name, values, low in (("n", n, 1.0), ("responses", responses, 0.0)):
            # A NaN was read as a "no-go", 2.5 responses as counts.
            index = first_not_whole(values, low)
            if index is not None:
                raise DataError(
                    f"ArmCriteria: {name} must be whole numbers >= {low:g}, got "
                    f"{float(values[index])!r}"
                )
        if np.any(responses > n):
            raise DataError(
                f"ArmCriteria: responses must lie in [0, n], got {responses!r} of {n!r}"
            )
        a, b = self.prior_a + responses, self.prior_b + n - responses
        from scipy.stats import beta  # loaded on use: scipy.stats slows start-up

        return beta.sf(self.lrv, a, b), beta.sf(self.tv, a, b)

    def status(self, responses: ArrayLike, n: ArrayLike) -> np.ndarray:
        """Return ``"go"``, ``"consider"`` or ``"no-go"`` per arm (str objects)."""
        above_lrv, above_tv = self.probabilities(responses, n)
        meets_lrv, meets_tv = above_lrv >= self.c_lrv, above_tv >= self.c_tv
        return np.where(
            meets_lrv & meets_tv, "go", np.where(~meets_lrv & ~meets_tv, "no-go", "consider")
        ).astype(object)


# --------------------------------------------------------------------------- dose range


@dataclass(frozen=True)
class DoseRange:
    """The therapeutic dose range and the recommended phase 2 dose set (0-based levels).

    Attributes
    ----------
    mad, mtd : int
        The minimum active dose and the MTD (-1 when there is none).
    levels : tuple of int
        The range: the doses given to patients from the MAD to the MTD (empty when the MAD is
        above the MTD or either is missing).
    rp2s : tuple of int
        The doses to randomise, highest first (DL A, then DL B); one dose when the range has
        one, none when it is empty.
    """

    mad: int
    mtd: int
    levels: tuple[int, ...]
    rp2s: tuple[int, ...]


def therapeutic_dose_range(
    p_efficacious: Sequence[float],
    p_overdose: Sequence[float],
    n_at: Sequence[float],
    *,
    active_probability: float = 0.5,
    overdose_cutoff: float = 0.25,
    excluded: Sequence[bool] | None = None,
) -> DoseRange:
    r"""Return the range from the minimum active dose to the MTD (see the module docstring).

    Parameters
    ----------
    p_efficacious : sequence of float
        :math:`P(p_E(d) \ge e_{\min} \mid \text{data})` per level.
    p_overdose : sequence of float
        :math:`P(p_T(d) > \bar p \mid \text{data})` per level.
    n_at : sequence of float
        Patients given each level (the range holds only doses given to patients).
    active_probability : float
        :math:`c_{\text{MAD}}` (0.5).
    overdose_cutoff : float
        :math:`c_{od}` (0.25, the joint probit design's).
    excluded : sequence of bool, optional
        Per level, whether the design's overdose control excluded it (the joint probit design
        excludes a dose whose estimate is within its Monte Carlo error of the cut-off): such a
        dose counts as overdosed whatever ``p_overdose`` says. None: only ``p_overdose``.

    Returns
    -------
    DoseRange
    """
    owner = "therapeutic_dose_range"
    active_probability = probability(owner, "active_probability", active_probability)
    overdose_cutoff = probability(owner, "overdose_cutoff", overdose_cutoff)
    efficacious = np.asarray(p_efficacious, float)
    overdose = np.asarray(p_overdose, float)
    patients = np.asarray(n_at, float)
    if not efficacious.shape == overdose.shape == patients.shape or efficacious.ndim != 1:
        raise DataError(
            f"{owner}: p_efficacious, p_overdose and n_at must be one value per level, got "
            f"shapes {efficacious.shape}, {overdose.shape} and {patients.shape}"
        )
    for name, values in (("p_efficacious", efficacious), ("p_overdose", overdose)):
        bad = ~((values >= 0) & (values <= 1))
        if bad.any():
            k = int(np.argmax(bad))
            raise DataError(f"{owner}: {name}[{k}] must lie in [0, 1], got {values[k]!r}")
    # A count that is NaN, negative or fractional was read as "untried".
    index = first_not_whole(patients, 0.0)
    if index is not None:
        raise DataError(
            f"{owner}: n_at[{index[0]}] must be a whole number >= 0, got {patients[index]!r}"
        )
    overdosed = overdose > overdose_cutoff
    if excluded is not None:
        marks = np.asarray(excluded)
        if marks.shape != overdose.shape or marks.dtype != bool:
            raise DataError(
                f"{owner}: excluded must be one bool per level ({overdose.size}), got "
                f"{np.ravel(marks)[:10].tolist()}"
            )
        overdosed |= marks
    tried = patients > 0
    allowed = tried & ~overdosed
    # The overdose control excludes a dose and, for a monotone toxicity model, those above.
    # It reads the doses given: the summary of a dose an escalation skipped may be its prior
    # alone (per-dose Beta summaries), which says nothing of its toxicity.
    allowed &= np.logical_and.accumulate(~(tried & overdosed))
    active = tried & (efficacious >= active_probability)
    mtd = int(np.flatnonzero(allowed).max()) if allowed.any() else -1
    mad = int(np.flatnonzero(active).min()) if active.any() else -1
    if mad < 0 or mtd < 0 or mad > mtd:
        return DoseRange(mad, mtd, (), ())
    levels = tuple(int(k) for k in np.flatnonzero(tried[mad : mtd + 1]) + mad)
    return DoseRange(mad, mtd, levels, tuple(reversed(levels[-2:])))


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class PickTheWinnerScenario:
    """True response rates of the two randomised doses, DL A (higher) and DL B.

    Parameters
    ----------
    orr_a, orr_b : float
        True response rates in [0, 1].
    name : str
        A label.
    """

    orr_a: float
    orr_b: float
    _: KW_ONLY
    name: str = ""

    def __post_init__(self) -> None:
        """Validate the rates, naming the field at fault."""
        for name in ("orr_a", "orr_b"):
            value = real_number("PickTheWinnerScenario", name, getattr(self, name))
            if not 0 <= value <= 1:
                raise ValueError(f"PickTheWinnerScenario: {name} must lie in [0, 1], got {value!r}")
            object.__setattr__(self, name, value)

    @property
    def better(self) -> str:
        """``"A"`` if A's true rate is higher, else ``"B"`` (the lower dose when equal)."""
        return "A" if self.orr_a > self.orr_b else "B"


def pick_the_winner_scenarios() -> dict[str, PickTheWinnerScenario]:
    """Five truths for the randomised stage: A better, equal, B better, both poor, both good."""
    truths = {
        "A better": (0.45, 0.25),
        "equal": (0.35, 0.35),
        "B better": (0.25, 0.40),
        "both poor": (0.12, 0.10),
        "both good": (0.50, 0.45),
    }
    return {name: PickTheWinnerScenario(a, b, name=name) for name, (a, b) in truths.items()}


@dataclass(frozen=True)
class PickTheWinnerStage:
    """The randomised stage: per-arm criteria, the threshold delta, patients per arm, interim.

    Parameters
    ----------
    criteria : ArmCriteria
        Per-arm Go / Consider / No-Go.
    delta : float
        The pick-the-winner threshold (0.8).
    n_per_arm : int
        Patients per arm (30; the talk: typically 20-40).
    interim_fraction : float, optional
        An interim look after this fraction of each arm's patients drops an arm assessed
        No-Go (none by default).
    """

    criteria: ArmCriteria = field(default_factory=ArmCriteria)
    delta: float = 0.8
    n_per_arm: int = 30
    interim_fraction: float | None = None
    interim: int = field(init=False)

    def __post_init__(self) -> None:
        """Validate the settings, naming the field at fault."""
        owner = "PickTheWinnerStage"
        if not isinstance(self.criteria, ArmCriteria):
            raise ValueError(f"{owner}: criteria must be an ArmCriteria, got {self.criteria!r}")
        object.__setattr__(self, "delta", probability(owner, "delta", self.delta))
        object.__setattr__(self, "n_per_arm", positive_int(owner, "n_per_arm", self.n_per_arm))
        interim = 0
        if self.interim_fraction is not None:
            fraction = probability(owner, "interim_fraction", self.interim_fraction)
            interim = max(1, round(fraction * self.n_per_arm))
        object.__setattr__(self, "interim", interim)

    def run(
        self, orr_a: np.ndarray, orr_b: np.ndarray, uniforms: np.ndarray
    ) -> dict[str, np.ndarray]:
        r"""Run ``m`` stages from per-patient uniforms (m, 2, n_per_arm) (:func:`stage_uniforms`).

        A patient of arm A (B) responds iff the uniform is below ``orr_a`` (``orr_b``) of the
        trial, (m,). Returns per trial the responses and patients per arm, the statuses,
        :math:`P(\text{ORR}_A > \text{ORR}_B)` and the choice (``"A"``, ``"B"``, ``"no-go"``).
        """
        criteria, n = self.criteria, self.n_per_arm
        owner = "PickTheWinnerStage.run"
        uniforms = _checked_uniforms(owner, uniforms, (2, n))
        rate_a = _response_rates(owner, "orr_a", orr_a, len(uniforms))
        rate_b = _response_rates(owner, "orr_b", orr_b, len(uniforms))
        x_a, n_a, status_a = self._arm(uniforms[:, 0, :n] < rate_a[:, None])
        x_b, n_b, status_b = self._arm(uniforms[:, 1, :n] < rate_b[:, None])
        prior = (criteria.prior_a, criteria.prior_b)
        p_better = np.array(
            [
                # counts of the simulation, a prior ArmCriteria checked: not checked again
                _posterior_prob_a_better(int(xa), int(na), int(xb), int(nb), *prior)
                for xa, na, xb, nb in zip(x_a, n_a, x_b, n_b, strict=True)
            ]
        )
        choice = np.array(
            [
                pick_the_winner(sa, sb, float(p), self.delta)
                for sa, sb, p in zip(status_a, status_b, p_better, strict=True)
            ],
            dtype=object,
        )
        return {
            "responses_a": x_a,
            "responses_b": x_b,
            "n_a": n_a,
            "n_b": n_b,
            "status_a": status_a,
            "status_b": status_b,
            "p_a_better": p_better,
            "choice": choice,
        }

    def run_one_arm(self, orr: np.ndarray, uniforms: np.ndarray) -> dict[str, np.ndarray]:
        """Run ``m`` stages of one arm (a range of one dose) from uniforms (m, n_per_arm).

        A patient responds iff the uniform is below ``orr`` of the trial, (m,); the interim
        look drops the arm as it drops one of two. Returns per trial the ``responses``, the
        patients ``n`` and the arm's ``status`` (no winner to pick: the dose goes on unless
        No-Go).
        """
        owner = "PickTheWinnerStage.run_one_arm"
        n = self.n_per_arm
        uniforms = _checked_uniforms(owner, uniforms, (n,))
        rate = _response_rates(owner, "orr", orr, len(uniforms))
        responses, patients, status = self._arm(uniforms[:, :n] < rate[:, None])
        return {"responses": responses, "n": patients, "status": status}

    def _arm(self, responds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Responses, patients and status of one arm per trial from who responds, (m, n).

        Every patient of the arm, or those of the interim look when it assessed the arm No-Go.
        """
        criteria, n = self.criteria, self.n_per_arm
        patients = np.full(len(responds), n)
        if self.interim:
            early = self.interim
            patients[criteria.status(responds[:, :early].sum(axis=1), early) == "no-go"] = early
        responses = (responds & (np.arange(n) < patients[:, None])).sum(axis=1)
        return responses, patients, criteria.status(responses, patients)


def _checked_uniforms(owner: str, uniforms: object, shape: tuple[int, ...]) -> np.ndarray:
    """``uniforms`` as numbers in [0, 1) of shape (m, *shape) (the last axis may be longer)."""
    values = np.asarray(number_array(owner, "uniforms", uniforms), float)
    shaped = (
        values.ndim == 1 + len(shape)
        and values.shape[1:-1] == shape[:-1]
        and values.shape[-1] >= shape[-1]
    )
    if not shaped or not np.all((values >= 0.0) & (values < 1.0)):
        expected = ", ".join(map(str, ("m", *shape)))
        raise ValueError(
            f"{owner}: uniforms must hold numbers in [0, 1), shape ({expected}), got shape "
            f"{values.shape}"
        )
    return values


def _response_rates(owner: str, name: str, orr: object, m: int) -> np.ndarray:
    """``orr`` as one response rate in [0, 1] per trial of ``m``, or an error naming it."""
    rate = np.asarray(number_array(owner, name, orr), float)
    if rate.shape != (m,) or not np.all((rate >= 0.0) & (rate <= 1.0)):
        raise ValueError(
            f"{owner}: {name} must hold one response rate in [0, 1] per trial ({m}), got "
            f"{np.ravel(rate)[:10].tolist()}"
        )
    return rate


def stage_uniforms(seeds: Sequence[np.random.SeedSequence], n_per_arm: int) -> np.ndarray:
    """Per-patient uniforms of the randomised stage, (trials, 2 arms, n_per_arm).

    Trial ``i`` draws from its own seed only, so two designs of the stage simulated with the
    same seeds give the same patients the same uniforms (common random numbers).
    """
    return np.stack([np.random.default_rng(s).random((2, n_per_arm)) for s in seeds])


def simulate_pick_the_winner(
    scenario: PickTheWinnerScenario,
    stage: PickTheWinnerStage | None = None,
    *,
    n_trials: int,
    random_seed: int,
) -> dict[str, float]:
    """Simulate the randomised pick-the-winner stage and return its operating characteristics.

    Parameters
    ----------
    scenario : PickTheWinnerScenario
        The true response rates of DL A and DL B.
    stage : PickTheWinnerStage, optional
        Criteria, delta, patients per arm and interim (the defaults of the class).
    n_trials : int
        Simulated trials.
    random_seed : int
        Trial ``i`` uses child ``i`` of ``numpy.random.SeedSequence(random_seed)``.

    Returns
    -------
    dict of str to float
        ``p_select_a``, ``p_select_b``, ``p_no_go``, ``p_select_better``, ``expected_n`` and
        the Monte Carlo standard error of each (``*_se``).
    """
    stage = stage or PickTheWinnerStage()
    n_trials = integer("simulate_pick_the_winner", "n_trials", n_trials, minimum=1)
    seeds = np.random.SeedSequence(random_seed).spawn(n_trials)
    result = stage.run(
        np.full(n_trials, scenario.orr_a),
        np.full(n_trials, scenario.orr_b),
        stage_uniforms(seeds, stage.n_per_arm),
    )
    choice = result["choice"]
    per_trial = {
        "p_select_a": (choice == "A").astype(float),
        "p_select_b": (choice == "B").astype(float),
        "p_no_go": (choice == "no-go").astype(float),
        "p_select_better": (choice == scenario.better).astype(float),
        "expected_n": (result["n_a"] + result["n_b"]).astype(float),
    }
    return mean_and_se(per_trial)


def mean_and_se(per_trial: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Return the mean of each per-trial metric and its Monte Carlo SE (``<name>_se``)."""
    summary: dict[str, float] = {}
    for name, values in per_trial.items():
        values = np.asarray(values, float)
        values = values[~np.isnan(values)]
        summary[name] = float(values.mean()) if values.size else math.nan
        summary[f"{name}_se"] = (
            float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan
        )
    return summary
