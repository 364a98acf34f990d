r"""Level-set-estimation (LSE) and Bayesian-optimisation (BO) dose finding on the latent GP.

Seno et al. (2025), Sections 4.3-4.4 and Appendices C.3 and D; the BO design of
Takahashi and Suzuki (2021). The model is :class:`dosezoo.models.latent_gp.LatentGP`; from
posterior draws of :math:`p_k` (the DLT probability at dose :math:`k`) and the target
:math:`\phi`, write :math:`\pi_k = P(p_k < \phi \mid \text{data})` (probability that dose
:math:`k` is in the sub-level set) and :math:`\bar\pi_k = P(p_k > \phi \mid \text{data})`.

Acquisition functions
---------------------
* LSE, misclassification with overdose control (Section 4.3.3):
  :math:`a_k = \min(\pi_k, 1 - \pi_k) \, (1 - \bar\pi_k)^\lambda`. The weight decreases in
  :math:`\bar\pi_k` and :math:`\lambda = 0` gives the plain expected misclassification
  probability (Section 4.3.2). Seno et al.'s eq (23) lost its symbols in our copy; this
  weight is the simplest one with the stated properties.
* LSE, classification ambiguity (Appendix D; Gotovos et al. 2013): with
  :math:`c_k = \min(u_k - \phi, \phi - l_k)`, :math:`[l_k, u_k]` the equal-tailed credible
  interval of :math:`p_k` (level 0.95 by default, ``credible_level``), and
  :math:`w_k = (1 - \bar\pi_k)^\lambda`, :math:`a_k = c_k w_k` for :math:`c_k \ge 0` and
  :math:`a_k = c_k / w_k` for :math:`c_k < 0` (:math:`\phi` outside the interval). The
  weighted formula is lost in our copy of Appendix D, which says only that :math:`\lambda`
  has the role it has for the misclassification probability (a larger one, stricter overdose
  control). A product :math:`c_k w_k` fails that where :math:`c_k < 0`: it raises the score
  of a more toxic dose towards 0 (at a credible level of 0.5, a dose with
  :math:`\bar\pi = 0.9` beat one with 0.125 for every :math:`\lambda > 0`), so a negative
  ambiguity is divided by the weight. The two agree where the interval holds :math:`\phi`.
* BO, expected improvement (Appendix C.3): with :math:`g_k = |p_k - \phi|` and the current
  best :math:`g^* = \min_{k \text{ tried}} E[g_k]`,
  :math:`EI_k = E[\max(g^* - g_k, 0)]`.

The next dose maximises the acquisition over the admissible set (eq 22); ties go to the lowest
dose. The acquisition values are Monte Carlo averages over the posterior draws, so a choice
that does not go down is checked against the safer doses (our addition): an escalation whose
advantage over the best admissible dose at or below the current one, or a stay whose advantage
over the best admissible dose below it, is within two batch-means standard errors of that
difference is not told apart from noise, and the rule takes the safer side, that lower dose
(``bound_by`` ``"mcse"``). A de-escalation is the safer side already.

Admissible set (Section 4.3.1, :class:`AdmissibleSet`)
------------------------------------------------------
(i) no dose more than ``max_escalation`` (1) level above the current dose;
(ii) if :math:`\bar\pi_1 >` ``single_dose_threshold`` only the lowest dose;
(iii) only doses with :math:`\bar\pi_k <` ``exclusion_threshold``.
Seno et al. require the threshold of (ii) below that of (iii). Defaults: 0.8 and 0.9. 0.9 is
BOIN's extra-safe stopping cut-off (0.95 - 0.05) and keeps (iii) less strict than BOIN's
elimination (0.95). For (ii), 0.5 (the lowest dose classified in the super-level set) was
tried and rejected: when stage 1 puts the prior MTD at the lowest dose, the prior itself has
:math:`P(p_1 > \phi) = 1/2`, and a single DLT there confined the trial to the lowest dose
for the rest of the trial even when its true rate was a quarter of the target.

Safety stop: the trial stops (no MTD) when the lowest dose has at least ``stop_min_patients``
(3) patients and :math:`\bar\pi_1 >` ``stop_threshold`` (0.9, BOIN's extra-safe convention).
The comparison carries its Monte Carlo error (our addition, as the CRM's safety stop): an
estimate within ``conduct.mcse_margin`` MCSEs of the threshold is made again on a refit with
more draws, then, still that close, decided on the side of the stop (``bound_by`` ``"mcse"``).
The admissible set is empty only when the lowest dose fails (iii), i.e.
:math:`\bar\pi_1 \ge` ``exclusion_threshold``; with ``stop_threshold <= exclusion_threshold``
that is the safety stop except at the boundary (:math:`\bar\pi_1` exactly equal to both, or
fewer than ``stop_min_patients`` at the lowest dose). The trial then stops too, with no MTD:
no dose may be given (found by the property test of the admissible set). Like every
model-based design, these also keep the package's hard overdose limit
(:mod:`dosezoo.designs.base`: no cohort at a dose with :math:`P(\mathrm{MTD} < d) >`
``conduct.max_overdose_probability``, 0.5), which Seno et al. do not have.

Final recommendation (step 7 of Section 4.4, :meth:`LSERule.recommend`)
-----------------------------------------------------------------------
Doses with :math:`\pi_k > 0.5` form the estimated sub-level set, the others the super-level
set. (a) all in the super-level set: the lowest dose; (b) all in the sub-level set: the
highest dose; (c) otherwise, with :math:`d_L` the highest dose of the sub-level set and
:math:`d_U = d_{L+1}`, :math:`q_j = P(\phi - \delta \le p_j \le \phi + \delta)`: :math:`d_U` if
:math:`q_U > q_L + \epsilon` and :math:`d_U` was given to at least one patient, else
:math:`d_L` (Seno et al.'s second condition is lost from our copy; never recommending an
untried dose is our choice). The paper's :math:`d_U` is the lowest dose of the super-level
set: the same dose when the classification is monotone in the dose, as the paper assumes.
The latent curve need not be monotone, and then the paper's :math:`d_U` may lie below
:math:`d_L` (after 1/3 DLTs at doses 1 and 2, 4/6 at 3, 1/3 at 4 and 1/24 at 5 it is dose 1,
which rule (c) would then recommend); here the MTD is sought above the highest dose
believed below the target, and when that is the highest dose it is recommended, as in (b).
Defaults :math:`\delta = 0.05` (``margin``, the proper dosing interval) and
:math:`\epsilon = 0.05` (``selection_margin``).

The MTD estimate between doses is the boundary of the estimated level sets on the continuous
scaled dose: with the latent curve between doses interpolated by the GP conditional mean
given its values at the doses (:meth:`~dosezoo.models.latent_gp.LatentGP.latent_between`),
the first scaled dose where :math:`P(p(x) < \phi) = 1/2`, mapped back to dose units by
linear interpolation (the lowest / highest dose when no crossing exists).

BO's final recommendation (Appendix C.3): the tried dose with the smallest :math:`E|p_k -
\phi|`; Seno et al.'s two small constants :math:`\epsilon_1, \epsilon_2` were lost from our copy
and are not used.

Two-stage design (Section 4.4, :class:`TwoStageGPRule`, :func:`lse_design`, :func:`bo_design`)
-------------------------------------------------------------------------------------------
Stage 1 is the BOIN rule (:class:`dosezoo.designs.boin.BOINRule`) from the lowest dose until the
cumulative number of DLTs reaches ``stage1_dlts`` (2) or the highest dose has been given;
its own stops (elimination of the lowest dose, and the extra-safe rule when enabled) end the
trial while it runs. The cohort that ends stage 1 goes to stage 2 even when BOIN would stop
after it (2 DLTs in 3 at the lowest dose eliminate it at target 0.2, 3 in 3 at 0.3): stage 2's
own safety stop, :math:`P(p_1 > \phi) >` ``stop_threshold`` under the GP, judges the lowest
dose from then on. This is how the paper reads: stage 1 runs "until" the DLTs are reached,
and its LSE keeps treating in the scenarios whose MTD is the lowest dose (it has the highest
PCA there, where BOIN stops over 30 % of its trials early). A protocol wanting a stricter
judgement of the lowest dose lowers ``stop_threshold``. Stage 2 fits the GP after every
cohort. Its prior mean is the quantile construction
with the prior MTD at the dose BOIN would give next at the end of stage 1, or at the lowest
dose when BOIN would stop there (its stop says the MTD is at most the lowest dose; the paper
does not say which prior follows a stop of BOIN, and with the MTD in the middle of the range
3 DLTs in 3 at the lowest dose did not trigger the safety stop) (step 3; option
``prior_mtd_from_stage1``). Every decision is a deterministic function of the data: the
sampler is seeded from ``random_seed`` and a hash of the data (the conduct's seeding).
"""

import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field, fields, replace
from types import SimpleNamespace
from typing import Any, ClassVar, Literal

import numpy as np

from dosezoo.checks import flag, positive_int, probability, real_number
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import Conduct, Design, Rule, mtd_level_below, mtd_level_below_mcse
from dosezoo.designs.boin import BOINRule
from dosezoo.designs.registry import Family, Option, options_of, register, table_of
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.levels import LevelCounts, level_counts
from dosezoo.models.base import DoseModel
from dosezoo.models.boin import BOIN
from dosezoo.models.latent_gp import (
    LatentGP,
    check_quantile_statements,
    effective_sample_size,
    quantile_prior_mean,
)
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described

__all__ = [
    "AdmissibleSet",
    "BORule",
    "LSERule",
    "TwoStageGPRule",
    "bo_design",
    "expected_improvement",
    "lse_acquisition",
    "lse_design",
    "mtd_between_doses",
]

#: Probabilities are clipped to this distance from 0 and 1 before taking logits.
_P_CLIP = 1e-12
#: Points of the scaled-dose grid on which the level-set boundary is located.
_GRID_POINTS = 201
#: Stage-1 histories whose prior MTD level a design remembers.
_CACHE_SIZE = 4096
#: Key of the last data :meth:`TwoStageGPRule.stage1_end` answered for, in the rule's cache.
_LAST_STAGE1 = "last stage-1 end"


def _draws(p_draws: object, owner: str) -> np.ndarray:
    draws = np.asarray(p_draws, dtype=float)
    if draws.ndim != 2 or draws.shape[0] < 1 or draws.shape[1] < 1:
        raise ValueError(f"{owner}: p_draws must have shape (draws, doses), got {draws.shape}")
    if not np.all((draws >= 0) & (draws <= 1)):
        raise ValueError(f"{owner}: p_draws must be probabilities in [0, 1]")
    return draws


# --------------------------------------------------------------------------- acquisitions


def lse_acquisition(
    p_draws: np.ndarray,
    target: float,
    *,
    overdose_weight: float = 1.0,
    kind: Literal["misclassification", "ambiguity"] = "misclassification",
    credible_level: float = 0.95,
) -> np.ndarray:
    r"""LSE acquisition per dose (see the module docstring).

    Parameters
    ----------
    p_draws : numpy.ndarray
        Posterior draws of the DLT probabilities, shape (draws, K).
    target : float
        :math:`\phi`.
    overdose_weight : float
        :math:`\lambda \ge 0`.
    kind : {"misclassification", "ambiguity"}
        Section 4.3.3 or Appendix D.
    credible_level : float
        Level of the credible interval of the ambiguity acquisition.

    Returns
    -------
    numpy.ndarray
        Shape (K,).
    """
    owner = "lse_acquisition"
    draws = _draws(p_draws, owner)
    phi = probability(owner, "target", target)
    weight_power = real_number(owner, "overdose_weight", overdose_weight)
    if weight_power < 0:
        raise ValueError(f"{owner}: overdose_weight must be >= 0, got {overdose_weight!r}")
    below = np.mean(draws < phi, axis=0)
    above = np.mean(draws > phi, axis=0)
    weight = (1.0 - above) ** weight_power
    if kind == "misclassification":
        return np.minimum(below, 1.0 - below) * weight
    if kind == "ambiguity":
        level = probability(owner, "credible_level", credible_level)
        lower, upper = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
        ambiguity = np.minimum(upper - phi, phi - lower)
        # A product would raise a negative ambiguity (phi outside the interval) towards 0 as
        # the dose grows more toxic: the weight divides it instead (-inf at weight 0).
        with np.errstate(divide="ignore"):
            return np.where(ambiguity >= 0, ambiguity * weight, ambiguity / weight)
    raise ValueError(f"{owner}: kind must be 'misclassification' or 'ambiguity', got {kind!r}")


def expected_improvement(p_draws: np.ndarray, target: float, tried: np.ndarray) -> np.ndarray:
    r"""BO expected improvement on :math:`g_k = |p_k - \phi|` (Appendix C.3).

    Parameters
    ----------
    p_draws : numpy.ndarray
        Shape (draws, K).
    target : float
        :math:`\phi`.
    tried : numpy.ndarray
        Bool, shape (K,): doses given to at least one patient; :math:`g^*` is the smallest
        posterior mean of :math:`g` among them (among all doses when none was tried).

    Returns
    -------
    numpy.ndarray
        :math:`E[\max(g^* - g_k, 0)]`, shape (K,).
    """
    draws = _draws(p_draws, "expected_improvement")
    phi = probability("expected_improvement", "target", target)
    tried = np.asarray(tried)
    if tried.dtype != bool and not np.isin(tried, (0, 1)).all():
        raise ValueError(f"expected_improvement: tried must be booleans (or 0/1), got {tried!r}")
    tried = tried.astype(bool)
    if tried.shape != (draws.shape[1],):
        raise ValueError(
            f"expected_improvement: tried must have shape ({draws.shape[1]},), got {tried.shape}"
        )
    gap = np.abs(draws - phi)
    mean_gap = gap.mean(axis=0)
    best = mean_gap[tried].min() if tried.any() else mean_gap.min()
    return np.maximum(best - gap, 0.0).mean(axis=0)


@dataclass(frozen=True)
class AdmissibleSet:
    r"""The admissible dose set of Section 4.3.1.

    Parameters
    ----------
    max_escalation : int
        Condition (i): at most this many levels above the current dose (1).
    single_dose_threshold : float
        Condition (ii): only the lowest dose when :math:`P(p_1 > \phi) >` this (0.8).
    exclusion_threshold : float
        Condition (iii): only doses with :math:`P(p_k > \phi) <` this (0.9). Must exceed
        ``single_dose_threshold``.
    """

    max_escalation: int = 1
    single_dose_threshold: float = 0.8
    exclusion_threshold: float = 0.9

    def __post_init__(self) -> None:
        """Validate the thresholds, naming the field at fault."""
        owner = "AdmissibleSet"
        if (
            isinstance(self.max_escalation, bool)
            or not isinstance(self.max_escalation, int | np.integer)
            or self.max_escalation < 0
        ):
            raise ValueError(
                f"{owner}: max_escalation must be an integer >= 0, got {self.max_escalation!r}"
            )
        single = probability(owner, "single_dose_threshold", self.single_dose_threshold)
        exclusion = probability(owner, "exclusion_threshold", self.exclusion_threshold)
        if not single < exclusion:
            raise ValueError(
                f"{owner}: single_dose_threshold ({single!r}) must be below exclusion_threshold "
                f"({exclusion!r}), as condition (ii) is stricter than (iii)"
            )
        object.__setattr__(self, "single_dose_threshold", single)
        object.__setattr__(self, "exclusion_threshold", exclusion)

    def mask(self, p_above: np.ndarray, current: int) -> np.ndarray:
        r"""Bool mask of admissible levels.

        Parameters
        ----------
        p_above : numpy.ndarray
            :math:`P(p_k > \phi \mid \text{data})`, shape (K,).
        current : int
            0-based level of the current dose.

        Returns
        -------
        numpy.ndarray
            Bool, shape (K,). Empty only when even the lowest dose fails (iii) (the design's
            safety stop then fires first when ``stop_threshold <= exclusion_threshold``).
        """
        p_above = np.asarray(p_above, dtype=float)
        # NaN fails every comparison: the lowest dose was refused and the next one allowed.
        bad = ~((p_above >= 0) & (p_above <= 1))
        if p_above.ndim != 1 or bad.any():
            value = float(p_above.ravel()[np.argmax(bad.ravel())]) if bad.any() else p_above.shape
            raise ValueError(
                f"AdmissibleSet: p_above must be one probability per level, got {value!r}"
            )
        size = p_above.size
        if isinstance(current, bool) or not isinstance(current, int | np.integer):
            raise ValueError(f"AdmissibleSet: current level must be an integer, got {current!r}")
        if not 0 <= current < size:
            raise ValueError(f"AdmissibleSet: current level must lie in [0, {size}), got {current}")
        allowed = p_above < self.exclusion_threshold
        if p_above[0] > self.single_dose_threshold:
            allowed[1:] = False
        allowed[current + self.max_escalation + 1 :] = False
        return allowed


# --------------------------------------------------------------------------- rules


def mtd_between_doses(
    model: LatentGP, p_draws: np.ndarray, target: float, *, mean: np.ndarray | None = None
) -> float:
    r"""MTD estimate between doses: where :math:`P(p(x) < \phi) = 1/2` first, in dose units.

    Parameters
    ----------
    model : LatentGP
        The model (scaled doses, length-scale).
    p_draws : numpy.ndarray
        Posterior draws at the doses, shape (draws, K).
    target : float
        :math:`\phi`.
    mean : numpy.ndarray, optional
        Prior mean the draws were sampled with.

    Returns
    -------
    float
        Dose (original units) in ``[dose_levels[0], dose_levels[-1]]``.
    """
    owner = "mtd_between_doses"
    target = probability(owner, "target", target)
    draws = np.clip(_draws(p_draws, owner), _P_CLIP, 1 - _P_CLIP)
    x = np.asarray(model.scaled_doses)
    if draws.shape[1] != x.size:
        raise ValueError(
            f"{owner}: p_draws must have one column per dose level ({x.size}), got {draws.shape[1]}"
        )
    grid = np.linspace(x[0], x[-1], _GRID_POINTS)
    latent = model.latent_between(np.log(draws / (1 - draws)), grid, mean=mean)
    below = np.mean(latent < math.log(target / (1 - target)), axis=0) - 0.5
    crossing = np.flatnonzero(below <= 0)
    if not crossing.size:
        at = grid[-1]
    elif crossing[0] == 0:
        at = grid[0]
    else:
        j = crossing[0]
        at = grid[j - 1] + (grid[j] - grid[j - 1]) * below[j - 1] / (below[j - 1] - below[j])
    return float(np.interp(at, x, np.asarray(model.dose_levels)))


@dataclass(frozen=True)
class LSERule:
    r"""The LSE rule: acquisition with overdose control and the final recommendation.

    Parameters
    ----------
    target : float
        :math:`\phi`.
    overdose_weight : float
        :math:`\lambda \ge 0` (1; 0 is the plain misclassification probability).
    acquisition : {"misclassification", "ambiguity"}
        Section 4.3.3, or the classification ambiguity of Appendix D.
    credible_level : float
        Credible level of the ambiguity acquisition (0.95).
    margin : float
        :math:`\delta` of the proper dosing interval of rule (c) (0.05).
    selection_margin : float
        :math:`\epsilon` of rule (c) (0.05).
    """

    target: float
    _: KW_ONLY
    overdose_weight: float = 1.0
    acquisition: Literal["misclassification", "ambiguity"] = "misclassification"
    credible_level: float = 0.95
    margin: float = 0.05
    selection_margin: float = 0.05

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "LSERule"
        phi = probability(owner, "target", self.target)
        weight = real_number(owner, "overdose_weight", self.overdose_weight)
        if weight < 0:
            raise ValueError(f"{owner}: overdose_weight must be >= 0, got {weight!r}")
        if self.acquisition not in ("misclassification", "ambiguity"):
            raise ValueError(
                f"{owner}: acquisition must be 'misclassification' or 'ambiguity', got "
                f"{self.acquisition!r}"
            )
        level = probability(owner, "credible_level", self.credible_level)
        margin = real_number(owner, "margin", self.margin)
        if not (0 < margin and phi - margin > 0 and phi + margin < 1):
            raise ValueError(f"{owner}: margin must be > 0 and keep target +- margin in (0, 1)")
        epsilon = probability(owner, "selection_margin", self.selection_margin, closed=True)
        for name, value in (
            ("target", phi),
            ("overdose_weight", weight),
            ("credible_level", level),
            ("margin", margin),
            ("selection_margin", epsilon),
        ):
            object.__setattr__(self, name, value)

    @property
    def label(self) -> str:
        """Short name for results."""
        return f"LSE_{self.acquisition}_lambda{self.overdose_weight:g}"

    def acquisition_values(self, p_draws: np.ndarray, counts: LevelCounts) -> np.ndarray:
        """Acquisition per dose (``counts`` unused; the signature is shared with BO)."""
        return lse_acquisition(
            p_draws,
            self.target,
            overdose_weight=self.overdose_weight,
            kind=self.acquisition,
            credible_level=self.credible_level,
        )

    def recommend(self, p_draws: np.ndarray, counts: LevelCounts) -> tuple[int, dict]:
        """Recommended level by rules (a)-(c) of step 7, with the quantities that drove it."""
        draws = _draws(p_draws, "LSERule.recommend")
        below = np.mean(draws < self.target, axis=0)
        sublevel = below > 0.5
        quantities: dict[str, float] = {"n_sublevel": float(sublevel.sum())}
        if not sublevel.any():
            return 0, quantities | {"rule": 1.0}  # (a)
        if sublevel.all():
            return draws.shape[1] - 1, quantities | {"rule": 2.0}  # (b)
        low = int(np.flatnonzero(sublevel)[-1])
        if low == draws.shape[1] - 1:  # no dose above the highest one below the target
            return low, quantities | {"rule": 3.0}
        high = low + 1
        inside = (draws >= self.target - self.margin) & (draws <= self.target + self.margin)
        q_low, q_high = float(inside[:, low].mean()), float(inside[:, high].mean())
        quantities |= {"rule": 3.0, "q_lower": q_low, "q_upper": q_high}
        if q_high > q_low + self.selection_margin and counts.n[high] > 0:
            return high, quantities
        return low, quantities

    def describe(self) -> dict[str, float | str]:
        """Flat record of the rule."""
        return {
            "rule": "LSE",
            "overdose_weight": self.overdose_weight,
            "acquisition": self.acquisition,
            "credible_level": self.credible_level,
            "margin": self.margin,
            "selection_margin": self.selection_margin,
        }


@dataclass(frozen=True)
class BORule:
    r"""The BO rule of Takahashi and Suzuki (2021): expected improvement on :math:`|p - \phi|`.

    Parameters
    ----------
    target : float
        :math:`\phi`.
    """

    target: float

    def __post_init__(self) -> None:
        """Validate the target."""
        object.__setattr__(self, "target", probability("BORule", "target", self.target))

    @property
    def label(self) -> str:
        """Short name for results."""
        return "BO"

    def acquisition_values(self, p_draws: np.ndarray, counts: LevelCounts) -> np.ndarray:
        """Return the expected improvement per dose; the incumbent is the best tried dose."""
        return expected_improvement(p_draws, self.target, counts.n > 0)

    def recommend(self, p_draws: np.ndarray, counts: LevelCounts) -> tuple[int, dict]:
        """Return the tried dose with the smallest posterior mean of ``|p - target|``."""
        gap = np.abs(_draws(p_draws, "BORule.recommend") - self.target).mean(axis=0)
        tried = np.flatnonzero(counts.n > 0)
        candidates = tried if tried.size else np.arange(gap.size)
        level = int(candidates[np.argmin(gap[candidates])])
        return level, {"mean_gap": float(gap[level])}

    def describe(self) -> dict[str, float | str]:
        """Flat record of the rule."""
        return {"rule": "BO"}


# --------------------------------------------------------------------------- design

#: Batches of draws of the batch-means Monte Carlo standard error of an acquisition difference.
MCSE_BATCHES = 10
#: An escalation (a stay) must beat the best dose at or below (below) the current one by this
#: many standard errors (about a one-sided 97.7% level) to be told apart from Monte Carlo noise.
MCSE_MARGIN = 2.0


@dataclass(frozen=True)
class TwoStageGPRule(Rule):
    r"""Two-stage rule of Section 4.4: BOIN first, then the latent-GP rule (LSE or BO).

    Parameters
    ----------
    stage2 : LSERule or BORule
        The acquisition and final recommendation of stage 2; its target is the design's.
    stage1_dlts : int
        Stage 1 ends once this many DLTs have been seen in total (2) or the highest dose has
        been given.
    boin_extra_safe : bool
        Whether stage 1 uses BOIN's extra-safe stop (True, as Seno et al.'s Appendix C.2).
    admissible : AdmissibleSet
        Conditions (i)-(iii) of Section 4.3.1.
    stop_threshold : float
        Safety stop when :math:`P(p_1 > \phi) >` this (0.9) ...
    stop_min_patients : int
        ... and the lowest dose has at least this many patients (3).
    margin, prob_low, prob_high : float
        Quantile prior-mean construction of the stage-2 priors (0.05, 0.8, 0.8; see
        :mod:`dosezoo.models.latent_gp`): with ``prior_mtd_from_stage1``, the prior MTD is put
        at the dose BOIN would give next at the end of stage 1 (step 3), the lowest if BOIN
        would stop; otherwise the model's own prior mean is used.
    prior_mtd_from_stage1 : bool
        (True.)

    Notes
    -----
    The model is a :class:`~dosezoo.models.latent_gp.LatentGP` whose prior mean is the
    construction with no prior MTD location (:func:`lse_design` and :func:`bo_design` build
    it); the rule's :meth:`model_for` gives the model with the stage-1 prior MTD, the one whose
    fit ``decide(idata, data)`` expects.
    """

    stage2: LSERule | BORule
    _: KW_ONLY
    stage1_dlts: int = 2
    boin_extra_safe: bool = True
    admissible: AdmissibleSet = field(default_factory=AdmissibleSet)
    stop_threshold: float = 0.9
    stop_min_patients: int = 3
    margin: float = 0.05
    prob_low: float = 0.8
    prob_high: float = 0.8
    prior_mtd_from_stage1: bool = True
    start_quantities: ClassVar[dict[str, float]] = {"stage": 1.0}
    _model: LatentGP | None = field(default=None, init=False, repr=False, compare=False)
    _models: tuple = field(default=(), init=False, repr=False, compare=False)
    _boin: BOINRule | None = field(default=None, init=False, repr=False, compare=False)
    _sample_size: int = field(default=0, init=False, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "TwoStageGPRule"
        if not isinstance(self.stage2, LSERule | BORule):
            raise TypeError(f"{owner}: stage2 must be an LSERule or a BORule, got {self.stage2!r}")
        if not isinstance(self.admissible, AdmissibleSet):
            raise TypeError(
                f"{owner}: admissible must be an AdmissibleSet, got {self.admissible!r}"
            )
        for name in ("stage1_dlts", "stop_min_patients"):
            object.__setattr__(self, name, positive_int(owner, name, getattr(self, name)))
        stop = probability(owner, "stop_threshold", self.stop_threshold)
        if stop > self.admissible.exclusion_threshold:
            raise ValueError(
                f"{owner}: stop_threshold ({stop!r}) must not exceed "
                f"admissible.exclusion_threshold ({self.admissible.exclusion_threshold!r}), or "
                "the admissible set could be empty without a stop"
            )
        object.__setattr__(self, "stop_threshold", stop)
        # The prior mean's statements, checked here rather than when the design binds them.
        check_quantile_statements(owner, self.target, self.margin, self.prob_low, self.prob_high)
        for name in ("boin_extra_safe", "prior_mtd_from_stage1"):
            object.__setattr__(self, name, flag(owner, name, getattr(self, name)))

    @property
    def label(self) -> str:  # type: ignore[override]  # Rule's is per class; this, per instance
        """Short name for results: the stage-2 rule's."""
        return self.stage2.label

    @property
    def target(self) -> float:
        r"""The target :math:`\phi`."""
        return self.stage2.target

    @property
    def dose_levels(self) -> tuple[float, ...]:
        """The model's dose levels."""
        return self.model.dose_levels

    @property
    def model(self) -> LatentGP:
        """The model (no prior MTD location) the rule is bound to."""
        if self._model is None:
            raise ValueError("TwoStageGPRule is not bound to a model; use it in a Design")
        return self._model

    def bind(self, model: DoseModel | None, conduct: Conduct) -> "TwoStageGPRule":
        """Build stage 1 (BOIN on the model's levels) and the stage-2 prior per prior MTD."""
        if not isinstance(model, LatentGP):
            raise TypeError(f"TwoStageGPRule: model must be a LatentGP, got {model!r}")
        own_prior = quantile_prior_mean(
            self.target,
            model.scaled_doses,
            sigma_f_mean=model.sigma_f_mean,
            margin=self.margin,
            prob_low=self.prob_low,
            prob_high=self.prob_high,
        )
        if not np.allclose(model.prior_mean, own_prior, rtol=0.0, atol=1e-9):
            raise ValueError(
                f"TwoStageGPRule: the model's prior mean differs from target {self.target:g}'s "
                "quantile construction (the rule's margin, prob_low, prob_high); build the model "
                "with LatentGP.from_quantiles, or use lse_design / bo_design"
            )
        boin = BOINRule(extra_safe=self.boin_extra_safe).bind(
            BOIN(self.target, model.dose_levels), conduct
        )
        models = tuple(
            replace(
                model,
                prior_mean=tuple(
                    quantile_prior_mean(
                        self.target,
                        model.scaled_doses,
                        sigma_f_mean=model.sigma_f_mean,
                        margin=self.margin,
                        prob_low=self.prob_low,
                        prob_high=self.prob_high,
                        prior_mtd_level=level,
                    )
                ),
            )
            for level in range(model.n_doses)
        )
        return self._bound(
            _model=model,
            _models=models,
            _boin=boin,
            _sample_size=conduct.sample_size,
            _cache={},
        )

    # ------------------------------------------------------------------ stages

    def stage1_end(self, data: TrialData) -> int | None:
        """Patients in stage 1 (a cohort boundary), or ``None`` while stage 1 goes on.

        A decision asks it of the same data several times (which model, which levels, which
        stage): the answer for the last data asked about is kept (data are immutable, and the
        data kept cannot be freed, so ``is`` cannot mistake other data for them).
        """
        last = self._cache.get(_LAST_STAGE1)
        if last is not None and last[0] is data:
            return last[1]
        end = self._stage1_end(data)
        self._cache[_LAST_STAGE1] = (data, end)
        return end

    def _stage1_end(self, data: TrialData) -> int | None:
        index = np.searchsorted(np.asarray(self.dose_levels), np.asarray(data.dose, float))
        dlt = np.asarray(data.column("dlt"), dtype=np.int64)
        cohort = np.asarray(data.cohort)
        last_of_cohort = np.flatnonzero(np.r_[cohort[1:] != cohort[:-1], True])
        total_dlts = np.cumsum(dlt)[last_of_cohort]
        reached_top = np.maximum.accumulate(index == len(self.dose_levels) - 1)[last_of_cohort]
        done = np.flatnonzero((total_dlts >= self.stage1_dlts) | reached_top)
        return int(last_of_cohort[done[0]] + 1) if done.size else None

    def prior_mtd_level(self, data: TrialData, end: int) -> int | None:
        """Level BOIN would give next at the end of stage 1; the lowest if it would stop.

        BOIN stops before the sample size only for the lowest dose (eliminated, or its
        extra-safe rule): the MTD is then at most the lowest dose, and the prior is put there
        (with the prior MTD in the middle of the range, 3 DLTs in 3 at the lowest dose left
        ``P(p_1 > target)`` at 0.88, under the safety stop's 0.9, and the trial went on there).
        ``None`` when the option is off, or BOIN stops at the sample size.
        """
        if not self.prior_mtd_from_stage1:
            return None
        dose = np.asarray(data.dose, dtype=float)[:end]
        dlt = np.asarray(data.column("dlt"), dtype=np.int64)[:end]
        key = dose.tobytes() + dlt.tobytes()
        cache = self._cache
        if key not in cache:
            if len(cache) >= _CACHE_SIZE:  # stage-1 histories are few; bound memory anyway
                cache.clear()
            prefix = TrialData({"dose": dose, "cohort": np.asarray(data.cohort)[:end], "dlt": dlt})
            chosen = self._stage1().choose(None, prefix).scalar_dose("TwoStageGPRule")
            if chosen is not None:
                cache[key] = self.dose_levels.index(chosen)
            else:
                cache[key] = 0 if prefix.n_patients < self._sample_size else None
        return cache[key]

    def _stage1(self) -> BOINRule:
        if self._boin is None:
            raise ValueError("TwoStageGPRule is not bound to a model; use it in a Design")
        return self._boin

    def _stage1_stop(self, data: TrialData) -> str | None:
        """Why the trial ended in stage 1 (a stop of BOIN before the sample size), or None."""
        stage1 = self._stage1().choose(None, data)
        if stage1.next_dose is None and data.n_patients < self._sample_size:
            return str(stage1.stop_reason)
        return None

    def _end(self, data: TrialData) -> int:
        end = self.stage1_end(data)
        return data.n_patients if end is None else end

    # ------------------------------------------------------------------ hooks

    def reads_cohorts(self) -> bool:
        """Return True: stage 1 ends with the cohort of its first DLTs (or at the top level)."""
        return True

    def needs_posterior(self, data: TrialData, *, final: bool) -> bool:
        """Stage 2 reads the GP posterior; stage 1 (and a trial that ended in it) does not."""
        if not data.n_patients:
            return False
        if self.stage1_end(data) is not None:
            return True
        return final and self._stage1_stop(data) is None

    def model_for(self, model: DoseModel, data: TrialData) -> LatentGP:
        """Return the GP with the prior MTD at BOIN's next dose after stage 1 (step 3)."""
        level = self.prior_mtd_level(data, self._end(data))
        return self.model if level is None else self._models[level]

    def levels_read(self, data: TrialData, *, final: bool) -> int:
        """Return how many levels the decision reads: up to one above the current or highest.

        The next dose reads the lowest dose (safety stop) up to one above the current dose;
        the recommendation up to one above the highest dose given.
        """
        counts = level_counts(data, self.dose_levels, owner="TwoStageGPRule")
        if final:
            return int(np.flatnonzero(counts.n > 0)[-1]) + 2
        return counts.current + 2

    def refusal_quantities(
        self, posterior: DosePosterior, data: TrialData, *, final: bool
    ) -> dict[str, float]:
        """Return what a refused stage-2 fit records: the stage and the ESS (next dose only)."""
        if final:
            return {}
        return {"stage": 2.0, "ess_min": _least_ess(posterior, self.levels_read(data, final=False))}

    # --------------------------------------------------------------- decisions

    def _safety(
        self, posterior: DosePosterior, p_above: np.ndarray, counts: LevelCounts
    ) -> str | None:
        """Why the safety stop ends the trial, or None.

        The comparison of ``P(p_1 > target)`` with ``stop_threshold`` carries its Monte Carlo
        error (`DosePosterior.exceeds_value`): an estimate within ``conduct.mcse_margin`` MCSEs
        of the threshold is decided on the next refit, or on the cautious side, the stop. On
        the estimate alone, data whose exact probability is above the threshold went on under
        some seeds (``tests/test_lse.py`` holds such a trial).
        """
        if counts.n[0] >= self.stop_min_patients and posterior.exceeds_value(
            "p_above_0",
            float(p_above[0]),
            self.stop_threshold,
            lambda: float(posterior.mcse_above(self.target)[0]),
        ):
            return (
                f"safety stop at the lowest dose {self.dose_levels[0]:g}: "
                f"P(p > {self.target:g}) = {p_above[0]:.3f} > {self.stop_threshold:g}"
            )
        return None

    def backfill_eligible(
        self, posterior: DosePosterior | None, data: TrialData, cleared: tuple[float, ...]
    ) -> tuple[float, ...]:
        r"""Return the cleared doses the design could give now.

        In stage 1, those below BOIN's elimination; in stage 2, those of the admissible set
        by its conditions (ii) and (iii) (condition (i) bounds an escalation, and backfill
        doses are below the pending cohort's), on the estimates alone, as the next dose reads
        the admissible set.
        """
        if posterior is None:  # stage 1 reads no posterior
            return self._stage1().backfill_eligible(None, data, cleared)
        above = np.mean(posterior.rate("p_dlt") > self.target, axis=0)
        allowed = self.admissible.mask(above, len(self.dose_levels) - 1)
        return tuple(dose for dose in cleared if allowed[self.dose_levels.index(dose)])

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        r"""Dose for the next cohort, or why the trial stops.

        Parameters
        ----------
        posterior : DosePosterior or None
            The GP posterior (stage 2); None in stage 1.
        data : TrialData
            The trial so far (doses among the levels, a 0/1 ``dlt``), at least one patient.

        Returns
        -------
        Decision
            In stage 2 the quantities hold, per level ``k``, ``pi_below_k``
            (:math:`P(p_k < \phi)`), ``p_above_k``, ``acquisition_k`` and ``admissible_k``.
        """
        counts = level_counts(data, self.dose_levels, owner="TwoStageGPRule")
        end = self.stage1_end(data)
        if end is None:
            decision = self._stage1().choose(None, data)
            quantities: dict[str, float] = {"stage": 1.0}
            if decision.next_dose is None:
                return Decision(
                    None,
                    stop_reason=f"stage 1 (BOIN): {decision.stop_reason}",
                    quantities=quantities,
                )
            return Decision(decision.next_dose, bound_by=("stage1_boin",), quantities=quantities)
        if posterior is None:
            raise ValueError("TwoStageGPRule needs the GP posterior in stage 2")
        draws = posterior.rate("p_dlt")
        prior_level = self.prior_mtd_level(data, end)
        below = np.mean(draws < self.target, axis=0)
        above = np.mean(draws > self.target, axis=0)
        quantities = {
            "stage": 2.0,
            "ess_min": _least_ess(posterior, counts.current + 2),
            "prior_mtd_level": math.nan if prior_level is None else float(prior_level),
        }
        quantities |= {f"pi_below_{k}": float(v) for k, v in enumerate(below)}
        quantities |= {f"p_above_{k}": float(v) for k, v in enumerate(above)}
        reason = self._safety(posterior, above, counts)
        if reason:
            return Decision(None, stop_reason=reason, quantities=quantities)
        allowed = self.admissible.mask(above, counts.current)
        values = self.stage2.acquisition_values(draws, counts)
        quantities |= {f"acquisition_{k}": float(v) for k, v in enumerate(values)}
        quantities |= {f"admissible_{k}": float(v) for k, v in enumerate(allowed)}
        if not allowed.any():  # even the lowest dose fails (iii): no dose may be given
            return Decision(
                None,
                stop_reason=(
                    f"no admissible dose: P(p > {self.target:g}) = {above[0]:.3f} >= "
                    f"{self.admissible.exclusion_threshold:g} at the lowest dose"
                ),
                quantities=quantities,
            )
        level = int(np.flatnonzero(allowed)[np.argmax(values[allowed])])
        bound_by = () if allowed.all() or values[level] >= values.max() else ("admissible",)
        safer = self._safer_within_noise(draws, counts, allowed, values, level)
        if safer is not None:
            level, quantities["acquisition_gap_mcse"] = safer
            bound_by = (*bound_by, "mcse")
        return Decision(self.dose_levels[level], bound_by=bound_by, quantities=quantities)

    def _safer_within_noise(
        self,
        draws: np.ndarray,
        counts: LevelCounts,
        allowed: np.ndarray,
        values: np.ndarray,
        level: int,
    ) -> tuple[int, float] | None:
        """Return the best safer admissible dose if the choice of ``level`` over it is noise.

        The safer doses of an escalation are those at or below the current one; of a stay,
        those below it; a de-escalation is the safer side already. The acquisition values are
        Monte Carlo averages over the draws: a choice whose advantage over the best safer
        admissible dose is less than :data:`MCSE_MARGIN` Monte Carlo standard errors of that
        difference is not told apart from noise, and the rule takes the safer side (that lower
        dose). The standard error is by batch means (:data:`MCSE_BATCHES` consecutive batches
        of draws, each giving the difference of the acquisition values), which accounts for
        the chain's autocorrelation. Returns ``(lower level, standard error)``, or None to
        keep ``level``.
        """
        lower = np.flatnonzero(allowed[: min(level, counts.current + 1)])
        if level < counts.current or not lower.size or len(draws) < 2 * MCSE_BATCHES:
            return None
        best = int(lower[np.argmax(values[lower])])
        gaps = [
            np.subtract(*self.stage2.acquisition_values(batch, counts)[[level, best]])
            for batch in np.array_split(draws, MCSE_BATCHES)
        ]
        error = float(np.std(gaps, ddof=1) / math.sqrt(MCSE_BATCHES))
        if values[level] - values[best] >= MCSE_MARGIN * error:
            return None
        return best, error

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Recommend the MTD at the end of the trial (rules (a)-(c), or BO's), or no dose.

        The quantities include ``mtd_estimate``, the MTD between doses (dose units).
        """
        counts = level_counts(data, self.dose_levels, owner="TwoStageGPRule")
        if counts.current < 0:
            return Decision(None, stop_reason="no MTD: no patient was treated")
        if self.stage1_end(data) is None:
            stop = self._stage1_stop(data)
            if stop is not None:
                return Decision(None, stop_reason=f"no MTD: stage 1 (BOIN): {stop}")
        if posterior is None:
            raise ValueError("TwoStageGPRule needs the GP posterior to recommend")
        draws = posterior.rate("p_dlt")
        above = np.mean(draws > self.target, axis=0)
        reason = self._safety(posterior, above, counts)
        if reason:
            return Decision(None, stop_reason=f"no MTD: {reason}")
        if above[0] >= self.admissible.exclusion_threshold:
            return Decision(
                None,
                stop_reason=(
                    f"no MTD: no admissible dose, P(p > {self.target:g}) = {above[0]:.3f} >= "
                    f"{self.admissible.exclusion_threshold:g} at the lowest dose"
                ),
            )
        level, quantities = self.stage2.recommend(draws, counts)
        mean = np.asarray(self.model_for(self.model, data).prior_mean)
        quantities = {
            **quantities,
            "mtd_estimate": mtd_between_doses(self.model, draws, self.target, mean=mean),
            **{f"pi_below_{k}": float(v) for k, v in enumerate(np.mean(draws < self.target, 0))},
        }
        return Decision(self.dose_levels[level], quantities=quantities)

    def overdose_probability(self, posterior: DosePosterior | None, dose: float) -> float | None:
        """``P(MTD < dose | data)`` (:func:`mtd_level_below`; stage 1 reads no posterior)."""
        return mtd_level_below(posterior, dose, self.target)

    def overdose_mcse(self, posterior: DosePosterior, dose: float) -> float:
        """Monte Carlo standard error of :meth:`overdose_probability` (the GP's draws have one)."""
        return mtd_level_below_mcse(posterior, dose, self.target)

    def describe(self) -> Described:
        """Flat record of the rule's options."""
        return {
            **self.stage2.describe(),
            "stage1_dlts": self.stage1_dlts,
            "boin_extra_safe": self.boin_extra_safe,
            "max_escalation": self.admissible.max_escalation,
            "single_dose_threshold": self.admissible.single_dose_threshold,
            "exclusion_threshold": self.admissible.exclusion_threshold,
            "stop_threshold": self.stop_threshold,
            "stop_min_patients": self.stop_min_patients,
            "prior_margin": self.margin,
            "prob_low": self.prob_low,
            "prob_high": self.prob_high,
            "prior_mtd_from_stage1": self.prior_mtd_from_stage1,
        }


def _least_ess(posterior: DosePosterior, levels: int) -> float:
    """Smallest effective sample size of ``p_dlt`` over the lowest ``levels`` levels."""
    ess = posterior.ess.get("p_dlt")
    if ess is None:
        draws = posterior.rate("p_dlt").reshape(posterior.chains, -1, len(posterior.dose_levels))
        ess = sum((effective_sample_size(chain) for chain in draws), np.zeros(draws.shape[-1]))
    return float(np.min(ess[:levels]))


#: The options of :func:`lse_design` / :func:`bo_design` that build the model.
_MODEL_OPTIONS = ("sigma_f_range", "length_scale", "scaled_doses")

#: The conduct of the two-stage designs: one kernel chain of 1000 draws after 200 burn-in,
#: two refits with twice the draws (same burn-in), a stop when every fit is refused, and a fit
#: judged by R-hat <= 1.05 and a bulk ESS of 100 per level read (``min_ess``).
TWO_STAGE_CONDUCT: dict[str, Any] = {
    "engine": "kernel",
    "draws": 1000,
    "tune": 200,
    "chains": 1,
    "refits": 2,
    "refit_factor": 2,
    "refit_tune": False,
    "on_refusal": "stop",
    "convergence": ConvergenceCriteria(max_rhat=1.05, min_ess_bulk=100.0, min_ess_tail=0.0),
}


def _two_stage_design(
    stage2: LSERule | BORule,
    dose_levels: Sequence[float],
    *,
    min_ess: float | None = 100.0,
    **options: Any,
) -> Design:
    """Build the two-stage GP design: LatentGP model, TwoStageGPRule and the conduct."""
    owner = "TwoStageGPRule"
    if min_ess is not None:
        min_ess = real_number(owner, "min_ess", min_ess)
        if min_ess <= 0:
            raise ValueError(f"{owner}: min_ess must be > 0 or None, got {min_ess!r}")
    model_options = {key: options.pop(key) for key in _MODEL_OPTIONS if key in options}
    quantiles = {key: options[key] for key in ("margin", "prob_low", "prob_high") if key in options}
    model = LatentGP.from_quantiles(dose_levels, stage2.target, **quantiles, **model_options)
    defaults = dict(TWO_STAGE_CONDUCT) | {
        "convergence": ConvergenceCriteria(
            max_rhat=1.05, min_ess_bulk=0.0 if min_ess is None else min_ess, min_ess_tail=0.0
        ),
    }
    rule_names = {f.name for f in fields(TwoStageGPRule) if f.init and f.name != "stage2"}
    rule = TwoStageGPRule(stage2, **{k: v for k, v in options.items() if k in rule_names})
    conduct = {k: v for k, v in options.items() if k not in rule_names}
    return Design(model, rule, Conduct(**(defaults | conduct)))


def lse_design(
    target: float, dose_levels: Sequence[float], *, overdose_weight: float = 1.0, **options: Any
) -> Design:
    r"""Two-stage LSE design of Seno et al. (2025) (misclassification acquisition by default).

    Parameters
    ----------
    target : float
        :math:`\phi`.
    dose_levels : sequence of float
        Candidate doses, increasing; the trial starts at the lowest.
    overdose_weight : float
        :math:`\lambda` of the acquisition's overdose control (1).
    **options
        Options of :class:`LSERule` (``acquisition``, ``credible_level``,
        ``selection_margin``), of :class:`TwoStageGPRule`, of the model
        (``sigma_f_range``, ``length_scale``, ``scaled_doses``), ``min_ess`` (the smallest
        effective sample size of each :math:`p_k` a fit needs, 100; None: no check), and of
        the :class:`~dosezoo.designs.base.Conduct`: cohorts of 3, 36 patients, the kernel
        engine with one chain of 1000 draws after 200 burn-in, two refits with twice the
        draws, a stop when every fit is refused.

    Returns
    -------
    Design
    """
    rule_options = {
        key: options.pop(key)
        for key in ("acquisition", "credible_level", "selection_margin")
        if key in options
    }
    stage2 = LSERule(
        target, overdose_weight=overdose_weight, margin=options.get("margin", 0.05), **rule_options
    )
    return _two_stage_design(stage2, dose_levels, **options)


def bo_design(target: float, dose_levels: Sequence[float], **options: Any) -> Design:
    """Two-stage BO design of Takahashi and Suzuki (2021) with the admissible set of 4.3.1.

    Options as :func:`lse_design`'s, without those of the LSE acquisition.
    """
    return _two_stage_design(BORule(target), dose_levels, **options)


# --------------------------------------------------------------------------- registry

#: Options of :class:`TwoStageGPRule` that also build the GP's prior mean (Section 4.2.1).
_SHARED = ("margin", "prob_low", "prob_high")


@dataclass(frozen=True)
class TwoStageGPParts:
    """How the two-stage GP designs are built from their configuration tables.

    ``[model]`` holds the GP's options, the target and the quantile statements of its prior
    mean (``LatentGP.from_quantiles``: ``target``, ``margin``, ``prob_low``, ``prob_high``);
    ``[rule]`` the stage-2 rule's options (its target and margin are the model's) and the
    two-stage rule's (its quantile statements are the model's), with ``admissible`` as a
    sub-table.

    Parameters
    ----------
    stage2 : type
        :class:`LSERule` or :class:`BORule`.
    """

    stage2: type[LSERule] | type[BORule]

    def model_options(self) -> tuple[Option, ...]:
        """Return ``dose_levels``, ``target``, the quantile statements, then the GP's options."""
        gp = {option.name: option for option in options_of(LatentGP, skip=("prior_mean",))}
        shared = {option.name: option for option in options_of(TwoStageGPRule)}
        target = next(option for option in options_of(self.stage2) if option.name == "target")
        return (
            gp.pop("dose_levels"),
            target,
            *(shared[name] for name in _SHARED),
            *gp.values(),
        )

    def rule_options(self) -> tuple[Option, ...]:
        """Return the stage-2 rule's options, then the two-stage rule's."""
        return (
            *options_of(self.stage2, skip=("target", "margin")),
            *options_of(TwoStageGPRule, skip=("stage2", *_SHARED)),
        )

    def build_model(self, options: dict[str, Any]) -> LatentGP:
        """Build ``LatentGP.from_quantiles`` of the ``[model]`` options."""
        gp = dict(options)
        levels, target = gp.pop("dose_levels"), gp.pop("target")
        return LatentGP.from_quantiles(levels, target, **gp)

    def build_rule(
        self, options: dict[str, Any], model_options: dict[str, Any]
    ) -> "TwoStageGPRule":
        """Build ``TwoStageGPRule(stage2(target, ...), ...)`` with the model's target."""
        own = {f.name for f in fields(self.stage2)}
        shared = {name: model_options[name] for name in _SHARED if name in model_options}
        stage2 = {key: value for key, value in options.items() if key in own}
        if "margin" in own and "margin" in shared:
            stage2["margin"] = shared["margin"]
        rule = {key: value for key, value in options.items() if key not in own}
        return TwoStageGPRule(self.stage2(model_options["target"], **stage2), **rule, **shared)

    def tables(self, model: DoseModel | None, rule: Rule) -> tuple[dict, dict]:
        """Return the ``[model]`` and ``[rule]`` tables of a two-stage design's parts."""
        assert isinstance(model, LatentGP) and isinstance(rule, TwoStageGPRule)
        shared = {name: getattr(rule, name) for name in ("target", *_SHARED)}
        values = SimpleNamespace(
            **{
                option.name: shared[option.name]
                if option.name in shared
                else getattr(model, option.name)
                for option in self.model_options()
            }
        )
        model_table = table_of(values, self.model_options())
        rule_table = table_of(rule.stage2, options_of(self.stage2, skip=("target", "margin")))
        rule_table |= table_of(rule, options_of(TwoStageGPRule, skip=("stage2", *_SHARED)))
        return model_table, rule_table

    def owns(self, model: DoseModel | None, rule: Rule) -> bool:
        """Whether the rule is a :class:`TwoStageGPRule` with this stage 2, on a LatentGP."""
        return (
            isinstance(rule, TwoStageGPRule)
            and type(rule.stage2) is self.stage2
            and isinstance(model, LatentGP)
        )


register(
    Family(
        name="lse",
        summary=(
            "two-stage level-set estimation on a latent-logit GP, BOIN first (Seno et al. 2025)"
        ),
        model=LatentGP,
        rule=TwoStageGPRule,
        conduct=TWO_STAGE_CONDUCT,
        example="lse.toml",
        example_data="seno2025_cohorts.csv",
        parts=TwoStageGPParts(LSERule),
    )
)
register(
    Family(
        name="bo",
        summary=(
            "two-stage Bayesian optimisation (expected improvement) on a latent-logit GP "
            "(Takahashi and Suzuki 2021; Seno et al. 2025)"
        ),
        model=LatentGP,
        rule=TwoStageGPRule,
        conduct=TWO_STAGE_CONDUCT,
        example="bo.toml",
        example_data="seno2025_cohorts.csv",
        parts=TwoStageGPParts(BORule),
    )
)
