r"""Bayesian optimisation of drug combinations, standard and personalised (Willard et al. 2024).

Willard, Golchi, Moodie, Boulanger and Carlin (2024), *Bayesian optimization for personalized
dose-finding trials with combination therapies*, Section 2 and Algorithms 1-2. The model is
:class:`dosezoo.models.gp_surface.GPSurface`; the rule reads the posterior mean :math:`\mu`
and standard deviation :math:`\sigma` of the surface on the candidate grid (the exact kriging
moments of the empirical-Bayes fit, or the moments of the draws of a full-Bayes fit) and the
noise standard deviation :math:`\tau = \sigma_y` (its estimate, or its posterior mean). The
design seeks the minimum of the surface; ``goal="maximize"`` seeks the maximum (it works on
:math:`-f`).

Acquisition (eq 3; Jones et al. 1998, Huang et al. 2006)
--------------------------------------------------------
With :math:`u = (f^* - \mu) / \sigma`,

.. math::

    \alpha_{EI} = (f^* - \mu)\,\Phi(u) + \sigma\,\phi(u), \qquad
    \alpha_{AEI} = \alpha_{EI}\Big(1 - \frac{\tau}{\sqrt{\sigma^2 + \tau^2}}\Big),

:math:`\alpha_{EI} = \max(f^* - \mu, 0)` where :math:`\sigma = 0`. For AEI, :math:`f^* =
\mu(d^*)` at the effective best point :math:`d^* = \arg\min_d \mu(d) + \gamma\sigma(d)` over
the grid (:math:`\gamma = 1`: the 0.84 posterior quantile); for plain EI under noise,
:math:`f^* = \min_d \mu(d)`. :math:`\tau` in eq (3) is the noise standard deviation on the
scale of :math:`\sigma`: with the :math:`(\nu, \tau^2)` parameterisation of the model that is
:math:`\sqrt{\nu\tau^2} = \sigma_y`, not the nugget :math:`\tau` itself (the paper writes
:math:`\tau`). The next combination maximises the acquisition over the grid (the first such
grid point on ties); combinations may be repeated. AEI is at most EI and tends to 0 where
:math:`\sigma \to 0`.

Stopping (eq 4)
---------------
A stratum stops once :math:`\max_d \alpha_{AEI}(d) < \delta` (:math:`\alpha_{EI}` with
``acquisition="ei"``, which is larger: the paper's :math:`\delta` is AEI's) has held at
``consecutive`` (default :math:`J + 1`) consecutive iterations of the algorithm, counting the
fits after the first new combination (Algorithm 1 updates the rule only inside its loop);
:math:`\delta = 0` never stops. Decisions are functions of the data: the maximum AEI at earlier
iterations is that of the fits to the data's prefixes (the patients of the first cohorts), which
the rule remembers as it decides, and recomputes for a prefix it has not seen (a new design, a
trial resumed from a file) with the fit the decision on it read: the conduct's engine, seeded
from the prefix (:func:`~dosezoo.designs.base.conduct_posterior`); a fit that fails the
conduct's convergence checks, which no decision could have read, raises
:class:`ConvergenceError`. With a full-Bayes engine an empirical-Bayes fit in its place changed
the stop (``tests/test_combination_bo.py``). The cohort column numbers the iterations: one
cohort per iteration, every arm of a personalised iteration in one cohort.

Algorithms
----------
* Initial design: ``n_initial`` (:math:`c`) distinct grid combinations from a scrambled Sobol
  sequence (``scipy.stats.qmc.Sobol``, seeded by ``sobol_seed``, else the conduct's
  ``random_seed``), each snapped to the nearest grid combination (doses must be
  manufacturable; a combination snapped onto one already chosen is skipped for the next
  Sobol point), one cohort of ``cohort_size`` (:math:`r`) patients each.
* Standard (Algorithm 1, a model without covariates): one combination per iteration for the
  next :math:`r` patients, whoever they are (a trial whose patients carry strata draws them
  from its population); stop by eq (4) or at the sample size :math:`N`.
* Personalised (Algorithm 2, a model with covariates): one GP over doses and strata; every
  iteration each stratum still going on gets the argmax of its own AEI (with its own
  :math:`f^*_k`) for :math:`r` patients of that stratum, all in one cohort, and stops by its
  own eq (4). With ``reallocate`` (the paper's implant design) the strata share the budget
  :math:`N`, so a stratum that stops leaves its patients to the others; otherwise each
  stratum has :math:`N / K` and stops when it is spent. A stratum that got no patients in
  the last cohort has stopped.

Every decision records, per stratum, the acquisition surface (``aei``), the posterior mean
and standard deviation on the grid (``mean``, ``sd``), :math:`d^*`, :math:`f^*`, the
maximum AEI, the stopping count, and the point estimate of the optimum
:math:`\hat d = \arg\min_d \mu(d)` with :math:`\mu(\hat d)` and :math:`\sigma(\hat d)`
(scalars also on the decision itself, suffixed ``_s<k>`` for stratum ``k`` of a personalised
design, so that simulations keep them), and the hyper-parameters an empirical-Bayes fit put
on a bound (``on_bound_<name>``: -1 lower, +1 upper, 0 inside). The final recommendation is
:math:`\hat d` per stratum; ``optimum_draws`` adds the posterior probability that it is the
optimum, from joint draws of the surface.
"""

import hashlib
import math
from collections import OrderedDict
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Literal, cast

import numpy as np
import pandas as pd
from scipy.special import ndtr

from dosezoo.checks import choice, flag, integer, number_array, positive_int, real_number
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import (
    Conduct,
    Design,
    ModelRule,
    compose,
    conduct_posterior,
    dataclass_options,
)
from dosezoo.designs.registry import Derived, Family, register
from dosezoo.errors import ConvergenceError
from dosezoo.models.gp_surface import RESPONSE, GPSurface, GPSurfacePosterior
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described

__all__ = [
    "CombinationBORule",
    "augmented_expected_improvement",
    "combination_bo_design",
    "default_cohort_size",
    "effective_best",
    "expected_improvement",
    "sobol_start",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
#: Patients per iteration in Willard et al. (2024)'s designs S1 and P1: each iteration gives
#: :math:`r` patients to one combination per stratum, with :math:`r` = 4, 2 and 1 for 1, 2
#: and 4 strata.
PATIENTS_PER_ITERATION = 4

#: Prefixes of data whose maximum AEI per stratum a rule remembers.
_HISTORY_SIZE = 8192


# --------------------------------------------------------------------------- acquisitions


def _mean_and_sd(owner: str, mean: object, sd: object) -> tuple[np.ndarray, np.ndarray]:
    """Return the posterior means and sds of the points, one finite number each, sd >= 0.

    A ValueError names the argument and the value: text or bools (numpy reads them as
    numbers), NaN or inf (read as 0 or giving NaN), a negative sd, or arrays of two shapes
    (numpy would broadcast one sd to every point). Checked whole: the acquisitions run at
    every decision of a simulation.
    """
    values = {}
    for name, given in (("mean", mean), ("sd", sd)):
        array = np.asarray(number_array(owner, name, given), dtype=float)
        finite = np.isfinite(array)
        if not finite.all():
            raise ValueError(
                f"{owner}: {name} must be finite, got {float(array[~finite].flat[0])!r}"
            )
        values[name] = array
    if values["mean"].shape != values["sd"].shape:
        raise ValueError(
            f"{owner}: mean and sd must be of one shape (one each per point), got shapes "
            f"{values['mean'].shape} and {values['sd'].shape}"
        )
    mean, sd = values["mean"], values["sd"]
    if np.any(sd < 0):
        raise ValueError(f"{owner}: sd must be >= 0, got {float(sd[sd < 0].flat[0])!r}")
    return mean, sd


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    r"""Return the expected improvement below ``best`` of :math:`f \sim N(\mu, \sigma^2)`.

    :math:`E[\max(0, f^* - f)] = (f^* - \mu)\Phi(u) + \sigma\phi(u)`,
    :math:`u = (f^* - \mu)/\sigma` (Jones et al. 1998); :math:`\max(f^* - \mu, 0)` where
    :math:`\sigma = 0`.

    Parameters
    ----------
    mean, sd : array_like
        Posterior mean and standard deviation (>= 0) of the objective at each point.
    best : float
        The current best value :math:`f^*` (to be improved upon by going below it).

    Returns
    -------
    numpy.ndarray
        The expected improvement at each point, >= 0.

    Raises
    ------
    ValueError
        For a mean, sd or ``best`` that is not finite (NaN would read as 0 or give NaN), or
        a negative sd, naming the argument and the value.
    """
    owner = "expected_improvement"
    mean, sd = _mean_and_sd(owner, mean, sd)
    best = real_number(owner, "best", best)
    gap = best - mean
    positive = sd > 0
    safe = np.where(positive, sd, 1.0)
    u = gap / safe
    value = gap * ndtr(u) + safe * np.exp(-0.5 * u * u) / _SQRT_2PI
    return np.where(positive, np.maximum(value, 0.0), np.maximum(gap, 0.0))


def augmented_expected_improvement(
    mean: np.ndarray, sd: np.ndarray, best: float, noise_sd: float
) -> np.ndarray:
    r"""Augmented expected improvement (Huang et al. 2006; eq 3 of Willard et al. 2024).

    :math:`\alpha_{EI}\,(1 - \tau / \sqrt{\sigma^2 + \tau^2})`, with :math:`\tau` the noise
    standard deviation on the scale of :math:`\sigma` (:math:`\sigma_y`): at most the EI, and
    0 where :math:`\sigma = 0` (a point known exactly is not worth another observation).

    Parameters
    ----------
    mean, sd : array_like
        Posterior mean and standard deviation of the objective.
    best : float
        :math:`f^* = \mu(d^*)` at the effective best point (:func:`effective_best`).
    noise_sd : float
        :math:`\tau = \sigma_y` (> 0).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        For a ``noise_sd`` that is not finite and positive, or the arguments that
        :func:`expected_improvement` refuses.
    """
    owner = "augmented_expected_improvement"
    sd = np.asarray(sd, dtype=float)
    tau = real_number(owner, "noise_sd", noise_sd)
    if not tau > 0:
        raise ValueError(f"{owner}: noise_sd must be > 0, got {noise_sd!r}")
    return expected_improvement(mean, sd, best) * (1.0 - tau / np.sqrt(sd * sd + tau * tau))


def effective_best(mean: np.ndarray, sd: np.ndarray, gamma: float = 1.0) -> tuple[int, float]:
    r"""Return the effective best point :math:`d^* = \arg\min \mu + \gamma\sigma` and :math:`f^*`.

    :math:`f^* = \mu(d^*)`.

    Returns
    -------
    (int, float)
        The index of :math:`d^*` (the first on ties) and :math:`f^*`.

    Raises
    ------
    ValueError
        For a mean or sd that is not finite, a negative sd or gamma, naming the value.
    """
    owner = "effective_best"
    mean, sd = _mean_and_sd(owner, mean, sd)
    if not mean.size:
        raise ValueError(f"{owner}: there are no points (mean and sd are empty)")
    gamma = real_number(owner, "gamma", gamma)
    if gamma < 0:
        raise ValueError(f"{owner}: gamma must be >= 0, got {gamma!r}")
    index = int(np.argmin(mean + gamma * sd))
    return index, float(mean[index])


def sobol_start(model: GPSurface, n_initial: int, random_seed: int) -> np.ndarray:
    """``n_initial`` distinct grid combinations from a scrambled Sobol sequence, snapped.

    The points of ``scipy.stats.qmc.Sobol(J, scramble=True, seed=random_seed)`` in order,
    each mapped to the dose box and snapped to the nearest grid combination; a point that
    snaps onto a combination already chosen is skipped.

    Returns
    -------
    numpy.ndarray
        Shape (n_initial, J), doses in the model's units.
    """
    from scipy.stats import qmc

    owner = "sobol_start"
    count = positive_int(owner, "n_initial", n_initial)
    seed = integer(owner, "random_seed", random_seed, minimum=0)
    if count > len(model.grid):
        raise ValueError(
            f"{owner}: n_initial {count} exceeds the {len(model.grid)} grid combinations"
        )
    steps = round(1.0 / model.grid_step)
    power = 3
    while 2**power < 8 * count:
        power += 1
    unit = qmc.Sobol(len(model.dose_columns), scramble=True, seed=seed).random_base2(power + 2)
    chosen: list[tuple[float, ...]] = []
    for point in unit:
        snapped = np.round(point * steps) / steps
        doses = tuple(
            float(low + s * (high - low))
            for s, (low, high) in zip(snapped, model.dose_bounds, strict=True)
        )
        if doses not in chosen:
            chosen.append(doses)
        if len(chosen) == count:
            break
    if len(chosen) < count:  # pragma: no cover - 2^power points cover the grid
        raise RuntimeError(f"{owner}: the Sobol points give only {len(chosen)} combinations")
    return np.array(chosen)


# --------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class _Surface:
    """The acquisition of one stratum at one fit."""

    mean: np.ndarray
    sd: np.ndarray
    acquisition: np.ndarray
    star: int
    f_star: float
    best: int

    @property
    def max_acquisition(self) -> float:
        return float(self.acquisition.max())


@dataclass(frozen=True)
class CombinationBORule(ModelRule):
    r"""Algorithms 1 and 2 of Willard et al. (2024): AEI over the grid, per stratum.

    Parameters
    ----------
    n_initial : int
        :math:`c`, distinct initial combinations (Sobol, snapped to the grid), 5.
    acquisition : {"aei", "ei"}
        Augmented expected improvement (the paper's) or plain expected improvement.
    gamma : float
        :math:`\gamma` of the effective best point, 1.
    goal : {"minimize", "maximize"}
        Whether the design seeks the minimum (the paper's convention) or the maximum.
    delta : float
        :math:`\delta` of the stopping rule (eq 4), >= 0; 0 never stops.
    consecutive : int, optional
        Consecutive iterations with max AEI < delta before a stratum stops; :math:`J + 1`
        by default.
    reallocate : bool
        Personalised designs: strata share the sample size (a stopped stratum's patients go
        to the others), True; False gives each stratum :math:`N / K`.
    optimum_draws : int
        Joint draws of the surface for the posterior probability that the recommended
        combination is optimal (0: not computed; a full-Bayes fit uses all its draws). Their
        seed is a hash of the data XOR the conduct's ``random_seed``, so designs that differ
        in their seed differ in this Monte Carlo too.
    aei_noise : {"sd", "variance"}
        What stands for :math:`\tau` in eq (3): the noise standard deviation
        :math:`\sigma_y` (default: the units of :math:`\sigma`, as Huang et al. 2006), or
        the noise variance :math:`\sigma_y^2` (hetGP's ``nugs``), which makes AEI much smaller
        when :math:`\sigma_y > 1`. The paper's values of :math:`\delta` are 3 to 5 times below
        the maximum AEI with :math:`\sigma_y` (``docs/models_and_designs.md``; the study runs
        them as given and also calibrates :math:`\delta`, ``docs/results/combination_bo.md``).
    sobol_seed : int, optional
        Seed of the scrambled Sobol initial design; the conduct's ``random_seed`` when None.
    """

    model_type: ClassVar[type] = GPSurface
    label: ClassVar[str] = "combination-bo"
    uses_start_dose: ClassVar[bool] = False

    _: KW_ONLY
    n_initial: int = 5
    acquisition: Literal["aei", "ei"] = "aei"
    gamma: float = 1.0
    goal: Literal["minimize", "maximize"] = "minimize"
    delta: float = 0.0
    consecutive: int | None = None
    reallocate: bool = True
    optimum_draws: int = 0
    sobol_seed: int | None = None
    aei_noise: Literal["sd", "variance"] = "sd"
    _initial: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _cohort_size: int = field(default=0, init=False, repr=False, compare=False)
    _sample_size: int = field(default=0, init=False, repr=False, compare=False)
    _random_seed: int = field(default=0, init=False, repr=False, compare=False)
    _conduct: Conduct | None = field(default=None, init=False, repr=False, compare=False)
    _history: OrderedDict = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "CombinationBORule"
        object.__setattr__(self, "n_initial", positive_int(owner, "n_initial", self.n_initial))
        choice(owner, "acquisition", self.acquisition, ("aei", "ei"))
        choice(owner, "goal", self.goal, ("minimize", "maximize"))
        choice(owner, "aei_noise", self.aei_noise, ("sd", "variance"))
        gamma = real_number(owner, "gamma", self.gamma)
        if gamma < 0:
            raise ValueError(f"{owner}: gamma must be >= 0, got {self.gamma!r}")
        delta = real_number(owner, "delta", self.delta)
        if delta < 0:
            raise ValueError(f"{owner}: delta must be >= 0, got {self.delta!r}")
        if self.consecutive is not None:
            object.__setattr__(
                self, "consecutive", positive_int(owner, "consecutive", self.consecutive)
            )
        object.__setattr__(self, "reallocate", flag(owner, "reallocate", self.reallocate))
        object.__setattr__(
            self, "optimum_draws", integer(owner, "optimum_draws", self.optimum_draws, minimum=0)
        )
        if self.sobol_seed is not None:
            object.__setattr__(
                self, "sobol_seed", integer(owner, "sobol_seed", self.sobol_seed, minimum=0)
            )
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "delta", delta)

    def __getstate__(self) -> dict:
        """Pickle the options and bound settings, not the remembered history."""
        state = dict(self.__dict__)
        state["_history"] = OrderedDict()
        return state

    def __setstate__(self, state: dict) -> None:
        """Restore from :meth:`__getstate__`."""
        self.__dict__.update(state)

    # ------------------------------------------------------------------ binding

    def bind(self, model: Any, conduct: Conduct) -> "CombinationBORule":
        """Check the model, draw the initial design and keep the cohort and sample sizes."""
        bound = super().bind(model, conduct)
        seed = conduct.random_seed if self.sobol_seed is None else self.sobol_seed
        initial = sobol_start(model, self.n_initial, seed)
        strata = len(model.strata)
        if self.n_initial * conduct.cohort_size * strata > conduct.sample_size:
            raise ValueError(
                f"{type(self).__name__}: the initial design needs n_initial x cohort_size x "
                f"strata = {self.n_initial} x {conduct.cohort_size} x {strata} patients, more "
                f"than the sample size {conduct.sample_size}"
            )
        return bound._bound(
            _initial=initial,
            _cohort_size=conduct.cohort_size,
            _sample_size=conduct.sample_size,
            _random_seed=conduct.random_seed,
            _conduct=conduct,
            _history=OrderedDict(),
        )

    @property
    def initial_design(self) -> np.ndarray:
        """The initial combinations, (n_initial, J) (once bound to a design)."""
        if self._initial is None:
            raise ValueError(f"{type(self).__name__} is not bound to a model; use it in a Design")
        return self._initial

    @property
    def personalised(self) -> bool:
        """Whether the design doses each stratum separately (a model with covariates)."""
        return bool(self.model.covariates)

    @property
    def stop_after(self) -> int:
        """Consecutive iterations with max AEI < delta before a stratum stops."""
        return self.consecutive or len(self.model.dose_columns) + 1

    def describe(self) -> Described:
        """Return the rule's options, flat."""
        record: Described = {"label": self.label}
        for key, value in dataclass_options(self, skip=("label",)).items():
            record[key] = value
        record["personalised"] = self.personalised if self._model is not None else None
        if self._initial is not None:
            record["initial_design"] = ";".join(
                ",".join(f"{v:g}" for v in point) for point in self._initial
            )
        return record

    # ------------------------------------------------------------------ data helpers

    def _iteration(self, data: TrialData) -> int:
        """Return the iterations done after the initial design (negative during it)."""
        return data.n_cohorts - self.n_initial

    def reads_cohorts(self) -> bool:
        """Return True: each cohort is an iteration (the initial design's, then the AEI's)."""
        return True

    def needs_posterior(self, data: TrialData, *, final: bool) -> bool:
        """Return whether a posterior is read: not in the initial design, otherwise always."""
        return final or self._iteration(data) >= 0

    def _stratum_rows(self, data: TrialData) -> np.ndarray:
        """Return the stratum index of each patient (all 0 for a standard design)."""
        if not self.personalised:
            return np.zeros(data.n_patients, dtype=np.int64)
        points = np.column_stack(
            [np.asarray(data.column(c), dtype=float) for c in self.model.covariates]
        )
        strata = np.asarray(self.model.strata, dtype=float)
        matches = np.all(points[:, None, :] == strata[None, :, :], axis=2)
        return np.argmax(matches, axis=1)

    def _prefix_rows(self, data: TrialData, cohorts: int) -> int:
        """Return the number of patients in the first ``cohorts`` cohorts."""
        starts = np.flatnonzero(np.diff(data.cohort)) + 1
        return int(starts[cohorts - 1]) if cohorts <= starts.size else data.n_patients

    def _prefix(self, data: TrialData, rows: int) -> TrialData:
        """Return the first ``rows`` patients of ``data`` as trial data."""
        frame = data.to_dataframe().iloc[:rows]
        return TrialData.from_dataframe(
            frame,
            dose_columns=data.dose_columns,
            covariates=data.covariates,
            dose_range=data.dose_range,
            coded_doses=data.coded_doses,
        )

    @staticmethod
    def _key(data: TrialData, rows: int) -> str:
        """Return a digest of the first ``rows`` patients (doses, covariates, responses)."""
        digest = hashlib.sha1(np.asarray(data.doses[:rows], float).tobytes())
        for name in data.covariates:
            digest.update(np.asarray(data.column(name)[:rows]).astype(str).tobytes())
        digest.update(np.asarray(data.column(RESPONSE)[:rows], float).tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------ acquisition

    def surfaces(self, posterior: DosePosterior) -> list[_Surface]:
        """Compute the acquisition of every stratum from a posterior of the model's surface."""
        sign = 1.0 if self.goal == "minimize" else -1.0
        mean = sign * np.asarray(posterior.mean("f"), dtype=float)
        sd = np.sqrt(np.maximum(np.asarray(posterior.variance("f"), dtype=float), 0.0))
        tau = float(posterior.parameter_mean["sigma_y"])
        if self.aei_noise == "variance":
            tau = tau**2
        n_grid = len(self.model.grid)
        out = []
        for k in range(len(self.model.strata)):
            block = slice(k * n_grid, (k + 1) * n_grid)
            mu, s = mean[block], sd[block]
            if self.acquisition == "aei":
                star, f_star = effective_best(mu, s, self.gamma)
                values = augmented_expected_improvement(mu, s, f_star, tau)
            else:
                star = int(np.argmin(mu))
                f_star = float(mu[star])
                values = expected_improvement(mu, s, f_star)
            out.append(
                _Surface(
                    mean=sign * mu,
                    sd=s,
                    acquisition=values,
                    star=star,
                    f_star=sign * f_star,
                    best=int(np.argmin(mu)),
                )
            )
        return out

    def _remember(self, key: str, values: tuple[float, ...]) -> None:
        history = self._history
        history[key] = values
        history.move_to_end(key)
        while len(history) > _HISTORY_SIZE:
            history.popitem(last=False)

    def _max_acquisitions(self, data: TrialData, cohorts: int) -> tuple[float, ...]:
        """Max acquisition per stratum at the fit to the first ``cohorts`` cohorts."""
        rows = self._prefix_rows(data, cohorts)
        key = self._key(data, rows)
        if key not in self._history:
            prefix = self._prefix(data, rows)
            assert self._conduct is not None  # bound with the model
            # The fit the decision on the prefix read (same engine, same seed from the data).
            posterior = conduct_posterior(
                self.model, prefix, self._conduct, levels=self.levels_read(prefix, final=False)
            )
            report = posterior.report
            if report is not None and not report.ok:
                # No decision on the prefix could have read this fit: the conduct refuses it.
                raise ConvergenceError(
                    f"{type(self).__name__}: the stopping rule reads the fit to the first "
                    f"{cohorts} cohorts, which failed its checks ({'; '.join(report.failures)}); "
                    "give the conduct more draws or refits",
                    report,
                )
            values = tuple(s.max_acquisition for s in self.surfaces(posterior))
            self._remember(key, values)
        return self._history[key]

    def _stop_counts(self, data: TrialData, current: list[_Surface]) -> list[int]:
        """Consecutive iterations (ending now, from iteration 1) with max AEI < delta."""
        strata = len(current)
        counts = [0] * strata
        iteration = self._iteration(data)
        self._remember(self._key(data, data.n_patients), tuple(s.max_acquisition for s in current))
        if self.delta <= 0 or iteration < 1:
            return counts
        running = [True] * strata
        for back in range(0, min(iteration, self.stop_after)):
            if back == 0:
                values = tuple(s.max_acquisition for s in current)
            else:
                values = self._max_acquisitions(data, self.n_initial + iteration - back)
            for k in range(strata):
                if running[k] and values[k] < self.delta:
                    counts[k] += 1
                else:
                    running[k] = False
            if not any(running):
                break
        return counts

    # ------------------------------------------------------------------ decisions

    def _point(self, index: int) -> tuple[float, ...]:
        return tuple(float(v) for v in self.model.grid[index])

    def _stratum_quantities(
        self, surface: _Surface, count: int, suffix: str, chosen: int | None
    ) -> dict[str, float]:
        """Return the scalars of one stratum's decision (``suffix`` names the stratum)."""
        columns = self.model.dose_columns
        q: dict[str, float] = {f"max_{self.acquisition}{suffix}": surface.max_acquisition}
        q[f"f_star{suffix}"] = surface.f_star
        for c, v in zip(columns, self._point(surface.star), strict=True):
            q[f"d_star_{c}{suffix}"] = v
        for c, v in zip(columns, self._point(surface.best), strict=True):
            q[f"d_hat_{c}{suffix}"] = v
        q[f"mu_hat{suffix}"] = float(surface.mean[surface.best])
        q[f"sd_hat{suffix}"] = float(surface.sd[surface.best])
        q[f"stop_count{suffix}"] = float(count)
        if chosen is not None:
            for c, v in zip(columns, self._point(chosen), strict=True):
                q[f"next_{c}{suffix}"] = v
            q[f"mu_next{suffix}"] = float(surface.mean[chosen])
            q[f"sd_next{suffix}"] = float(surface.sd[chosen])
        return q

    def _arrays(self, surface: _Surface) -> dict[str, np.ndarray]:
        return {self.acquisition: surface.acquisition, "mean": surface.mean, "sd": surface.sd}

    @staticmethod
    def _fit_quantities(posterior: DosePosterior) -> dict[str, float]:
        """Which hyper-parameters an empirical-Bayes fit put on a bound (-1, 0, +1)."""
        if not isinstance(posterior, GPSurfacePosterior):
            return {}
        q = {"log_likelihood": float(posterior.log_likelihood)}
        for name in posterior.bounds:
            side = posterior.on_bound.get(name, "")
            q[f"on_bound_{name}"] = -1.0 if side == "lower" else (1.0 if side == "upper" else 0.0)
        return q

    @staticmethod
    def _diagnostics(posterior: DosePosterior) -> pd.DataFrame | None:
        """Return the convergence table of a sampled fit (None for an empirical-Bayes fit).

        An empirical-Bayes fit's diagnostics (estimates, bounds, which are on a bound) are
        its posterior's ``diagnostics`` and, as scalars, the decision's ``on_bound_<name>``:
        building a table for each of a simulation's decisions would cost a third of it.
        """
        if isinstance(posterior, GPSurfacePosterior) or posterior.report is None:
            return None
        return posterior.report.table

    def _initial_decision(self, data: TrialData) -> Decision:
        cohort = data.n_cohorts
        point = tuple(float(v) for v in self.initial_design[cohort])
        quantities = {"initial": float(cohort + 1)}
        if not self.personalised:
            return Decision(point, quantities=quantities, bound_by=("initial_design",))
        strata = tuple(
            Decision(point, stratum=self.model.stratum_values(k), bound_by=("initial_design",))
            for k in range(len(self.model.strata))
        )
        return Decision(None, quantities=quantities, bound_by=("initial_design",), strata=strata)

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide the next combination (per stratum), or a stop by eq (4) or by the budgets."""
        if self._iteration(data) < 0:
            return self._initial_decision(data)
        assert posterior is not None
        current = self.surfaces(posterior)
        counts = self._stop_counts(data, current)
        iteration = self._iteration(data)
        base = {"iteration": float(iteration), **self._fit_quantities(posterior)}
        diagnostics = self._diagnostics(posterior)
        if not self.personalised:
            surface = current[0]
            if counts[0] >= self.stop_after:
                q = base | self._stratum_quantities(surface, counts[0], "", None)
                return Decision(
                    None,
                    stop_reason=self._stop_text(counts[0]),
                    quantities=q,
                    diagnostics=diagnostics,
                )
            best = int(np.argmax(surface.acquisition))
            q = base | self._stratum_quantities(surface, counts[0], "", best)
            return Decision(
                self._point(best),
                quantities=q | self._arrays(surface),
                diagnostics=diagnostics,
            )
        rows = self._stratum_rows(data)
        last = data.cohort == data.cohort[-1] if data.n_patients else np.zeros(0, bool)
        enrolled = np.bincount(rows, minlength=len(current))
        in_last = np.bincount(rows[last], minlength=len(current))
        budget = self._sample_size / len(current)
        strata, q = [], dict(base)
        for k, surface in enumerate(current):
            suffix = f"_s{k}"
            stratum = self.model.stratum_values(k)
            reason = None
            if iteration > 0 and in_last[k] == 0:
                reason = "stopped earlier"
            elif counts[k] >= self.stop_after:
                reason = self._stop_text(counts[k])
            elif not self.reallocate and enrolled[k] >= budget:
                reason = f"stratum budget reached: {enrolled[k]} of N/K = {budget:g}"
            chosen = None if reason else int(np.argmax(surface.acquisition))
            q |= self._stratum_quantities(surface, counts[k], suffix, chosen)
            q[f"running{suffix}"] = 0.0 if reason else 1.0
            own = self._stratum_quantities(surface, counts[k], "", chosen) | self._arrays(surface)
            if chosen is None:
                strata.append(Decision(None, stop_reason=reason, quantities=own, stratum=stratum))
            else:
                strata.append(
                    Decision(
                        self._point(chosen),
                        quantities=own,
                        stratum=stratum,
                    )
                )
        everyone_stopped = all(d.stopped for d in strata)
        return Decision(
            None,
            stop_reason="every stratum stopped" if everyone_stopped else None,
            quantities=q,
            diagnostics=diagnostics,
            strata=tuple(strata),
        )

    def _stop_text(self, count: int) -> str:
        return (
            f"max {self.acquisition.upper()} < delta = {self.delta:g} for {count} consecutive "
            "iterations"
        )

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        r"""Recommend :math:`\hat d = \arg\min_d \mu(d)` per stratum (the paper's estimate)."""
        if posterior is None:  # pragma: no cover - needs_posterior is True when final
            raise ValueError("the recommendation needs a posterior")
        current = self.surfaces(posterior)
        q: dict[str, Any] = {
            "iteration": float(max(self._iteration(data), 0)),
            **self._fit_quantities(posterior),
        }
        optimum = None
        if self.optimum_draws:
            digest = hashlib.sha256(self._key(data, data.n_patients).encode()).digest()
            optimum = self.model.optimum_probabilities(
                posterior,
                draws=self.optimum_draws,
                random_seed=int.from_bytes(digest[:8], "little") ^ self._random_seed,
                goal=self.goal,
            )
        diagnostics = self._diagnostics(posterior)
        decisions = []
        for k, surface in enumerate(current):
            suffix = f"_s{k}" if self.personalised else ""
            own = self._stratum_quantities(surface, 0, "", None) | self._arrays(surface)
            del own["stop_count"]
            if optimum is not None:
                own["p_optimal"] = float(optimum[k, surface.best])
                own["optimum_probabilities"] = optimum[k]
            for key, value in own.items():
                if np.ndim(value) == 0:
                    q[f"{key}{suffix}"] = value
            decisions.append((self._point(surface.best), own, self.model.stratum_values(k)))
        if not self.personalised:
            point, own, _ = decisions[0]
            return Decision(point, quantities=q | own, diagnostics=diagnostics)
        strata = tuple(
            Decision(point, quantities=own, stratum=stratum) for point, own, stratum in decisions
        )
        return Decision(None, quantities=q, diagnostics=diagnostics, strata=strata)


def default_cohort_size(model: GPSurface) -> int:
    """Willard et al. (2024)'s :math:`r`: :data:`PATIENTS_PER_ITERATION` shared by the strata.

    4 for the standard algorithm, 2 per stratum with 2 strata, 1 with 4 (at least 1).
    """
    return max(1, PATIENTS_PER_ITERATION // len(model.strata))


def combination_bo_design(model: GPSurface, **options: Any) -> Design:
    """Build ``Design(model, CombinationBORule(...), Conduct(...))`` from one set of options.

    The standard algorithm for a model without covariates, the personalised one for a model
    with covariates. Conduct defaults: ``cohort_size`` :math:`r` (:func:`default_cohort_size`,
    4 patients per iteration in all strata), ``sample_size`` 80.

    Parameters
    ----------
    model : GPSurface
        The surface model.
    **options
        Options of :class:`CombinationBORule` and of :class:`~dosezoo.designs.base.Conduct`
        (``cohort_size``, ``sample_size``, ``random_seed``, ``engine``, ...).

    Returns
    -------
    Design
    """
    return compose(
        model, CombinationBORule, options, cohort_size=default_cohort_size(model), sample_size=80
    )


register(
    Family(
        name="combination-bo",
        summary=(
            "Bayesian optimisation of a drug combination with a GP surface and augmented expected "
            "improvement, standard or personalised by strata (Willard et al. 2024)"
        ),
        model=GPSurface,
        rule=CombinationBORule,
        conduct={
            "cohort_size": Derived(
                f"{PATIENTS_PER_ITERATION} patients per iteration shared by the strata: 4, 2, 1 "
                "for 1, 2, 4 strata",
                lambda model, rule, conduct: default_cohort_size(cast(GPSurface, model)),
            ),
            "sample_size": 80,
        },
        example="combination_bo.toml",
        example_data="combination_cohorts.csv",
    )
)
