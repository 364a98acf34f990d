r"""The continual reassessment method (CRM) for binary DLTs, with dfcrm's conventions.

O'Quigley, Pepe and Fisher (1990); Cheung (2011), *Dose Finding by the Continual Reassessment
Method*, whose R package dfcrm fixes the conventions followed here. With skeleton
:math:`s_1 < \dots < s_K` (prior guesses of the DLT probabilities at the dose levels), the
one-parameter working models are

.. math::

    \text{empiric:}\quad p_k(\beta) = s_k^{\exp(\beta)}, \qquad
    \text{logistic:}\quad \operatorname{logit} p_k(\beta) = a_0 + \exp(\beta)\, x_k, \quad
    x_k = \operatorname{logit}(s_k) - a_0,

with fixed intercept :math:`a_0 = 3` and :math:`\beta \sim N(0, 1.34)` (dfcrm's ``scale`` is
:math:`\sqrt{1.34}`). Both give :math:`p_k(0) = s_k`. The posterior of :math:`\beta` is
integrated by Gauss-Legendre panels fitted to it (:mod:`dosezoo.samplers.crm_quadrature`,
numba; tail probabilities by integration up to their cuts), with NUTS as the reference; the
engine keeps the name ``"grid"`` of the binary models' exact engines. dfcrm's ``crm`` reports
:math:`\hat p_k = p_k(E[\beta \mid \text{data}])`, the model evaluated at the posterior mean
(``estimate="plugin"``); the posterior mean :math:`E[p_k \mid \text{data}]` (``"mean"``, used
by Seno et al. 2025, Appendix C.1) is reported too.

Skeleton calibration (:func:`crm_skeleton`) follows Lee and Cheung (2009, *Clin. Trials* 6,
227-238; dfcrm's ``getprior``). For half-width :math:`\delta` and prior MTD level :math:`\nu`,
set :math:`s_\nu = \phi` and require the indifference interval of every level to be
:math:`(\phi - \delta, \phi + \delta)`: level :math:`k` is the model's choice for
:math:`\beta \in (b_k, b_{k+1})`, where :math:`p_k(b_k) = \phi + \delta` and
:math:`p_{k-1}(b_k) = \phi - \delta`. For the empiric model this gives, downwards from
:math:`\nu`, :math:`\exp(b_k) = \log(\phi + \delta) / \log s_k` and
:math:`s_{k-1} = \exp(\log(\phi - \delta) / \exp(b_k))`; upwards,
:math:`\exp(b_{k+1}) = \log(\phi - \delta) / \log s_k` and
:math:`s_{k+1} = \exp(\log(\phi + \delta) / \exp(b_{k+1}))`. For the logistic model the same
recursion runs on the scaled doses :math:`x_k` with :math:`\operatorname{logit}(\phi \pm \delta)
- a_0` in place of :math:`\log(\phi \pm \delta)`, and :math:`s_k = \operatorname{expit}(a_0 +
x_k)`.
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike

from dosezoo.checks import positive_int, real_number
from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.levels import level_index, validate_dose_levels
from dosezoo.models.binary import DoseSummary, GridDoseModel
from dosezoo.models.workflow import (
    StatementFit,
    check_statements,
    fit_statements,
    statement_table,
)
from dosezoo.posterior import DosePosterior
from dosezoo.samplers.crm_quadrature import EMPIRIC, LOGISTIC, CRMQuadrature, level_cuts

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr


__all__ = ["CRM", "CRMTails", "crm_prior_from_statements", "crm_skeleton"]

WorkingModel = Literal["empiric", "logistic"]
_WORKING_MODELS = ("empiric", "logistic")


def crm_skeleton(
    target: float,
    half_width: float,
    prior_mtd_level: int,
    n_doses: int,
    *,
    model: WorkingModel = "empiric",
    intercept: float = 3.0,
) -> tuple[float, ...]:
    r"""Calibrate a CRM skeleton by indifference intervals (Lee and Cheung 2009).

    Parameters
    ----------
    target : float
        Target DLT rate :math:`\phi` in (0, 1).
    half_width : float
        Half-width :math:`\delta` of the indifference intervals, with
        :math:`0 < \phi - \delta` and :math:`\phi + \delta < 1`.
    prior_mtd_level : int
        The prior guess of the MTD, 1-based as dfcrm's ``nu`` (1 <= level <= n_doses).
    n_doses : int
        Number of dose levels.
    model : {"empiric", "logistic"}
        The working model the skeleton is calibrated for.
    intercept : float
        The logistic model's fixed intercept :math:`a_0`.

    Returns
    -------
    tuple of float
        The skeleton, increasing, with ``skeleton[prior_mtd_level - 1]`` the target (to
        rounding: it is the target's round trip through the working model's scale).

    Raises
    ------
    ValueError
        Naming the argument at fault.
    """
    from scipy.special import expit, logit  # loaded on use: scipy.special slows start-up

    owner = "crm_skeleton"
    phi = real_number(owner, "target", target)
    delta = real_number(owner, "half_width", half_width)
    if not 0 < phi < 1:
        raise ValueError(f"{owner}: target must lie in (0, 1), got {target!r}")
    if not 0 < delta < min(phi, 1 - phi):
        raise ValueError(
            f"{owner}: half_width must lie in (0, min(target, 1 - target)) = "
            f"(0, {min(phi, 1 - phi):g}), got {half_width!r}"
        )
    size = positive_int(owner, "n_doses", n_doses)
    nu = positive_int(owner, "prior_mtd_level", prior_mtd_level)
    if nu > size:
        raise ValueError(
            f"{owner}: prior_mtd_level must be between 1 and n_doses={size}, got {nu!r}"
        )
    if model not in _WORKING_MODELS:
        raise ValueError(f"{owner}: model must be one of {_WORKING_MODELS}, got {model!r}")
    a0 = real_number(owner, "intercept", intercept)
    if model == "empiric":
        low, high, centre = math.log(phi - delta), math.log(phi + delta), math.log(phi)
    else:
        low, high, centre = (logit(phi - delta) - a0, logit(phi + delta) - a0, logit(phi) - a0)
    if centre == 0:  # the logistic model at the prior MTD with b = -inf: no slope to scale
        raise ValueError(
            f"{owner}: intercept must differ from logit(target) = {logit(phi):g}, got {intercept!r}"
        )
    # Scaled doses: log s_k (empiric) or x_k (logistic); both models are exp(b) * scaled.
    scaled = [math.nan] * size
    scaled[nu - 1] = centre
    for k in range(nu - 1, 0, -1):
        slope = high / scaled[k]
        scaled[k - 1] = low / slope
    for k in range(nu - 1, size - 1):
        slope = low / scaled[k]
        scaled[k + 1] = high / slope
    if model == "empiric":
        skeleton = tuple(math.exp(x) for x in scaled)
    else:  # expit: a level far out overflows exp(-(a0 + x)), where expit gives 0 or 1
        skeleton = tuple(float(expit(a0 + x)) for x in scaled)
    # Wide intervals over many levels push the outer guesses to 0 or 1 in floating point, and a
    # logistic intercept on the wrong side of logit(target) reverses the slopes: no skeleton.
    if not all(0 < p < 1 for p in skeleton) or any(
        low >= high for low, high in itertools.pairwise(skeleton)
    ):
        shown = ", ".join(f"{p:.3g}" for p in skeleton)
        raise ValueError(
            f"{owner}: the calibrated skeleton ({shown}) is not strictly increasing inside "
            f"(0, 1): half_width={half_width!r} is too wide for {size} levels around level "
            f"{nu}"
            + (f", or intercept={intercept!r} does not suit it" if model != "empiric" else "")
        )
    return skeleton


@dataclass(frozen=True)
class CRM(GridDoseModel):
    r"""The one-parameter CRM (empiric or logistic working model) with a normal prior on beta.

    Parameters
    ----------
    skeleton : tuple of float
        Prior guesses of the DLT probability per level, strictly increasing in (0, 1); another
        sequence is stored as a tuple.
    target : float
        Target DLT rate in (0, 1) (used by :meth:`estimate` to select the MTD).
    model : {"empiric", "logistic"}
        The working model.
    prior_mean, prior_sd : float
        Normal prior of :math:`\beta`; dfcrm's defaults 0 and :math:`\sqrt{1.34}`.
    intercept : float
        Fixed intercept :math:`a_0` of the logistic model (3).
    dose_levels : tuple of float, optional
        The dose of each level, increasing; by default (None) the level numbers ``1, ..., K``
        as in dfcrm. Data doses must be among them. Another sequence is stored as a tuple.

    Examples
    --------
    >>> crm = CRM(crm_skeleton(0.25, 0.05, 3, 5), target=0.25)
    >>> posterior = crm.posterior(data)  # doctest: +SKIP
    """

    model_name: ClassVar[str] = "CRM"
    coordinates: ClassVar[tuple[str, ...]] = ("beta",)
    grid_size: ClassVar[int] = 512
    #: A CRM posterior is a one-dimensional quadrature (some 100 nodes, 7 kB): a simulation
    #: keeps those of the count states it reaches, at most some 14 MB (with the grid models'
    #: 64, three in four posteriors of a backfill study's trials were integrated anew).
    posterior_cache_size: ClassVar[int] = 2048

    skeleton: tuple[float, ...]
    target: float
    _: KW_ONLY
    model: WorkingModel = "empiric"
    prior_mean: float = 0.0
    prior_sd: float = 1.34**0.5
    intercept: float = 3.0
    # The attribute is a tuple; the init also takes None (the default), made 1..K in __post_init__.
    dose_levels: tuple[float, ...] = None  # type: ignore[assignment]  # None: see above

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "CRM"
        if isinstance(self.skeleton, str | bytes) or not isinstance(
            self.skeleton, Sequence | np.ndarray
        ):
            raise ValueError(f"{owner}: skeleton must be a sequence of probabilities")
        skeleton = tuple(
            real_number(owner, f"skeleton[{k}]", value) for k, value in enumerate(self.skeleton)
        )
        if not skeleton:
            raise ValueError(f"{owner}: skeleton must hold at least one probability")
        for k, value in enumerate(skeleton):
            if not 0 < value < 1:
                raise ValueError(f"{owner}: skeleton[{k}] must lie in (0, 1), got {value!r}")
            if k and value <= skeleton[k - 1]:
                raise ValueError(
                    f"{owner}: skeleton must be strictly increasing, got {value!r} after "
                    f"{skeleton[k - 1]!r} (skeleton[{k}])"
                )
        target = real_number(owner, "target", self.target)
        if not 0 < target < 1:
            raise ValueError(f"{owner}: target must lie in (0, 1), got {self.target!r}")
        if self.model not in _WORKING_MODELS:
            raise ValueError(f"{owner}: model must be one of {_WORKING_MODELS}, got {self.model!r}")
        prior_sd = real_number(owner, "prior_sd", self.prior_sd)
        if prior_sd <= 0:
            raise ValueError(f"{owner}: prior_sd must be > 0, got {self.prior_sd!r}")
        levels = (
            tuple(float(k) for k in range(1, len(skeleton) + 1))
            if self.dose_levels is None
            else validate_dose_levels(owner, self.dose_levels)
        )
        if len(levels) != len(skeleton):
            raise ValueError(
                f"{owner}: dose_levels has {len(levels)} doses but skeleton has {len(skeleton)}"
            )
        values = {
            "skeleton": skeleton,
            "target": target,
            "prior_mean": real_number(owner, "prior_mean", self.prior_mean),
            "prior_sd": prior_sd,
            "intercept": real_number(owner, "intercept", self.intercept),
            "dose_levels": levels,
        }
        for name, setting in values.items():
            object.__setattr__(self, name, setting)

    def mtd_target(self) -> float:
        """Return the target DLT probability at the MTD (``target``)."""
        return self.target

    def parameters(self) -> dict:
        """Return the options as a plain dict (recorded in every fit's attributes)."""
        return {
            "skeleton": list(self.skeleton),
            "target": self.target,
            "model": self.model,
            "prior_mean": self.prior_mean,
            "prior_sd": self.prior_sd,
            "intercept": self.intercept,
            "dose_levels": list(self.dose_levels),
        }

    @property
    def scaled_doses(self) -> np.ndarray:
        """``log s_k`` (empiric) or ``x_k = logit(s_k) - a0`` (logistic), shape (K,)."""
        scaled = self._cache.get("scaled_doses")
        if scaled is None:
            skeleton = np.asarray(self.skeleton)
            if self.model == "empiric":
                scaled = np.log(skeleton)
            else:
                from scipy.special import logit  # loaded on use: scipy.special slows every start-up

                scaled = logit(skeleton) - self.intercept
            scaled.setflags(write=False)
            self._cache["scaled_doses"] = scaled
        return scaled

    def check_doses(self, dose: np.ndarray) -> None:
        """Raise a DataError naming the row of a dose that is not one of the levels."""
        level_index(dose, self.dose_levels, owner=self.model_name)

    def p_dlt(self, beta: float | np.ndarray) -> np.ndarray:
        """Return the DLT probability per level at ``beta`` (shape ``beta.shape + (K,)``)."""
        log_p, _ = self._log_p_levels(np.asarray(beta, dtype=float)[..., None])
        return np.exp(log_p)

    def _log_p_levels(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log p`` and ``log(1 - p)`` at every level for ``beta`` of shape (..., 1)."""
        slope = np.exp(beta) * self.scaled_doses
        if self.model == "empiric":
            log_p = slope
            return log_p, np.log(-np.expm1(log_p))
        from scipy.special import log_expit  # loaded on use: scipy.special slows every start-up

        eta = self.intercept + slope
        return log_expit(eta), log_expit(-eta)

    # ------------------------------------------------------------ grid engine

    def prob(self, theta: np.ndarray, dose: np.ndarray) -> np.ndarray:
        """Return the DLT probability at doses on the levels, shape (m, u)."""
        index = self.level_array.searchsorted(dose)
        return np.exp(self._log_p_levels(theta[:, :1])[0][:, index])

    def log_likelihood(self, theta: np.ndarray, summary: DoseSummary) -> np.ndarray:
        """Return the binomial log likelihood of points ``theta`` (m, 1), shape (m,)."""
        index = self.level_array.searchsorted(summary.dose)
        log_p, log_q = self._log_p_levels(theta[:, :1])
        return log_p[:, index] @ summary.y + log_q[:, index] @ (summary.n - summary.y)

    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        """Return the normal log density of ``beta`` (up to a constant)."""
        return -0.5 * ((theta[:, 0] - self.prior_mean) / self.prior_sd) ** 2

    def prior_location(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the prior mean and sd of ``beta``."""
        return np.array([self.prior_mean]), np.array([self.prior_sd])

    def free_values(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Return ``beta``, the grid coordinate itself (it is unconstrained)."""
        return {"beta": theta[:, 0]}

    def rate_constant(self, threshold: float) -> float:
        r"""Return the :math:`c` of :math:`p_k > t \iff e^\beta x_k > c`, for a DLT rate t.

        Both working models are :math:`e^\beta x_k` past a constant: :math:`c = \log t`
        (empiric) or :math:`\operatorname{logit} t - a_0` (logistic).
        """
        if self.model == "empiric":
            return math.log(threshold)
        return math.log(threshold / (1.0 - threshold)) - self.intercept

    def rate_cut(self, leading: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        r"""Where :math:`p_k(\beta) > t`, per level: :math:`\beta` above or below a cut.

        :math:`\beta > \log(c / x_k)` when :math:`x_k > 0`, below it when :math:`x_k < 0`
        (:meth:`rate_constant`, :func:`~dosezoo.samplers.crm_quadrature.level_cuts`); the
        same on every row.
        """
        cut, above = level_cuts(self.scaled_doses, self.rate_constant(threshold))
        rows = leading.shape[0]
        return np.broadcast_to(cut, (rows, cut.size)), np.broadcast_to(above, (rows, cut.size))

    def _with_plugin(self, posterior: DosePosterior) -> DosePosterior:
        """Add dfcrm's plug-in estimate (``p_dlt`` at the posterior mean of beta)."""
        plugin = self.p_dlt(posterior.parameter_mean["beta"])
        return replace(posterior, point_estimates={"p_dlt": plugin})

    def quadrature(self, summary: DoseSummary) -> CRMQuadrature:
        """Fit the Gauss-Legendre rule to the posterior given the patients and DLTs per dose."""
        levels = self.level_array
        n = np.zeros(levels.size)
        y = np.zeros(levels.size)
        index = levels.searchsorted(summary.dose)
        n[index] = summary.n
        y[index] = summary.y
        try:
            return CRMQuadrature.fit(
                EMPIRIC if self.model == "empiric" else LOGISTIC,
                self.scaled_doses,
                n,
                y,
                self.intercept,
                self.prior_mean,
                self.prior_sd,
            )
        except FloatingPointError as error:
            raise self._unintegrable(error) from None

    def _posterior(self, summary: DoseSummary) -> DosePosterior:
        """Integrate the posterior by quadrature, with the plug-in estimate (no cache)."""
        quadrature = self.quadrature(summary)
        return DosePosterior._of_engine(
            dose_levels=self.dose_levels,
            rates={"p_dlt": quadrature.rates},
            weights=quadrature.weights,
            means={"p_dlt": quadrature.means},
            tails={"p_dlt": CRMTails(quadrature, self)},
            quadrature_points=True,
            parameter_mean={"beta": quadrature.beta_mean},
            point_estimates={"p_dlt": quadrature.plugin},
            grid=quadrature,
        )

    def exact_draws(
        self, data: TrialData, n: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Return ``n`` independent draws of ``beta`` by inverting the posterior CDF."""
        return {"beta": self.quadrature(self.summarise(data)).draws(rng.random(n))}

    def unconstrained_mean(self, posterior: DosePosterior) -> np.ndarray:
        """Return the posterior mean of ``beta`` (the grid's coordinate), shape (1,)."""
        return np.array([posterior.parameter_mean["beta"]])

    def posterior_from_idata(
        self, idata: "xr.DataTree", criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> DosePosterior:
        """Read ``p_dlt`` and ``beta`` from a fit, with the plug-in estimate."""
        return self._with_plugin(super().posterior_from_idata(idata, criteria, **options))

    # ------------------------------------------------------------ PyMC model

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model: ``beta`` ~ Normal, ``p_dlt`` per level, Bernoulli DLTs.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` (on the levels) and ``dlt``; may be empty.

        Returns
        -------
        pymc.Model
        """
        import pymc as pm
        import pytensor.tensor as pt

        self.summarise(data)
        level = level_index(data.dose, self.dose_levels, owner=self.model_name)
        dlt = np.asarray(data.column("dlt"), dtype=np.int64)
        coords = {"dose": list(self.dose_levels), "patient": np.arange(level.size)}
        with pm.Model(coords=coords) as model:
            scaled = pm.Data("scaled_dose", self.scaled_doses, dims="dose")
            level_data = pm.Data("level", level, dims="patient")
            beta = pm.Normal("beta", self.prior_mean, self.prior_sd)
            if self.model == "empiric":
                log_p = pt.exp(beta) * scaled
                logit_p = log_p - pt.log(-pt.expm1(log_p))
            else:
                logit_p = self.intercept + pt.exp(beta) * scaled
            pm.Deterministic("p_dlt", pm.math.sigmoid(logit_p), dims="dose")
            pm.Bernoulli("dlt", logit_p=logit_p[level_data], observed=dlt, dims="patient")
        return model


@dataclass(frozen=True, eq=False)
class CRMTails:
    r"""Exact tails of the CRM's ``p_dlt`` (:class:`~dosezoo.posterior.OrderedLevelTails`).

    Every quantity is an integral of the posterior of :math:`\beta` up to cuts
    (:class:`~dosezoo.samplers.crm_quadrature.CRMQuadrature`): :math:`p_k > t` is a half-line
    of :math:`\beta` (:meth:`CRM.rate_cut`); the rates are increasing across the levels at
    every :math:`\beta` (the skeleton is), so the level closest to a target is below level
    :math:`j` iff :math:`p_{j-1} + p_j \ge 2 \phi`; and :math:`p_k` is monotone in
    :math:`\beta`, so its quantiles are :math:`p_k` at quantiles of :math:`\beta`.
    """

    quadrature: CRMQuadrature
    model: CRM

    def prob_above(self, threshold: float) -> np.ndarray:
        """Return ``P(p_k > threshold)`` per level, shape (K,)."""
        return self.quadrature.prob_above(self.model.rate_constant(float(threshold)))

    def prob_above_at(self, threshold: float, level: int) -> float:
        """Return ``P(p_level > threshold)``, integrated for that level (0-based) alone."""
        constant = self.model.rate_constant(float(threshold))
        return self.quadrature.prob_above_level(constant, level)

    def prob_closest_below(self, target: float, index: int) -> float:
        """Return ``P(level closest to target < index)``, a placebo level of rate 0 included."""
        return self.quadrature.mass_closest_below(index, target)

    def quantile(self, q: float) -> np.ndarray:
        """Return the ``q``-quantile of ``p_k`` per level, shape (K,)."""
        beta = self.quadrature.draws(np.array([q, 1.0 - q]))
        p = self.model.p_dlt(beta)
        # p_k increases in beta where the scaled dose is positive, decreases where negative.
        return np.where(self.model.scaled_doses > 0, p[0], p[1])


def crm_prior_from_statements(
    target: float,
    prior_mtd_level: int,
    n_doses: int,
    levels: Sequence[int],
    quantiles: ArrayLike,
    *,
    probabilities: Sequence[float] = (0.05, 0.5, 0.95),
    half_width: float = 0.05,
    model: WorkingModel = "empiric",
    intercept: float = 3.0,
) -> StatementFit:
    r"""Turn a prior MTD guess and quantiles of the DLT probability into a CRM prior.

    The skeleton is calibrated from the MTD guess (:func:`crm_skeleton`, Lee and Cheung
    2009); then the normal prior of :math:`\beta` is the least-squares fit of the implied
    quantiles of :math:`p_k` to the stated ones. Since :math:`p_k(\beta)` is monotone in
    :math:`\beta` (decreasing when the scaled dose is negative, as for every empiric skeleton),
    the :math:`q`-quantile of :math:`p_k` is :math:`p_k(\mu + \sigma z_{1-q})` (or
    :math:`z_q` when increasing).

    Parameters
    ----------
    target : float
        Target DLT rate.
    prior_mtd_level : int
        The prior guess of the MTD, 1-based.
    n_doses : int
        Number of dose levels.
    levels : sequence of int
        1-based levels at which quantiles are stated.
    quantiles : array_like
        Stated quantiles of the DLT probability, shape (len(levels), len(probabilities)).
    probabilities : sequence of float
        The quantile levels.
    half_width, model, intercept
        As :func:`crm_skeleton` and :class:`CRM`.

    Returns
    -------
    StatementFit
        ``options`` are keywords of :class:`CRM` (``CRM(**fit.options)``); ``table`` the
        stated and fitted quantiles.

    Raises
    ------
    ValueError
        If the levels repeat or leave 1..n_doses, a quantile is off (0, 1), a row does not
        increase, a higher level's quantiles lie below a lower one's, or the fitted prior sd
        is at the edge of its search (:func:`~dosezoo.models.workflow.fit_statements`).
    """
    from scipy.special import ndtri  # loaded on use: scipy.special slows every start-up

    owner = "crm_prior_from_statements"
    skeleton = crm_skeleton(
        target, half_width, prior_mtd_level, n_doses, model=model, intercept=intercept
    )
    index = [positive_int(owner, f"levels[{i}]", level) - 1 for i, level in enumerate(levels)]
    if not index or any(k >= n_doses for k in index) or len(set(index)) < len(index):
        raise ValueError(
            f"{owner}: levels must be distinct levels between 1 and n_doses={n_doses}, at least "
            f"one, got {levels!r}"
        )
    # Every skeleton increases, and p_k is monotone in beta the same way at every level.
    stated = check_statements(owner, len(index), quantiles, probabilities, dose_order=index)
    reference = CRM(skeleton, target, model=model, intercept=intercept)
    decreasing = reference.scaled_doses[index] < 0
    z = ndtri(np.asarray(probabilities, dtype=float))
    z_beta = np.where(decreasing[:, None], -z[None], z[None])  # (levels, probabilities)

    def implied(v: np.ndarray) -> np.ndarray:
        p = reference.p_dlt(v[0] + math.exp(v[1]) * z_beta)  # (levels, probabilities, K)
        return np.take_along_axis(p, np.asarray(index)[:, None, None], axis=2)[..., 0]

    best = fit_statements(
        implied,
        stated,
        [[0.0, 0.5 * math.log(1.34)], [1.0, -1.0]],
        owner=owner,
        names=("log prior_sd",),
        bounded=slice(1, None),
    )
    options = {
        "skeleton": skeleton,
        "target": target,
        "model": model,
        "intercept": intercept,
        "prior_mean": float(best[0]),
        "prior_sd": float(math.exp(best[1])),
    }
    labels = [f"p_dlt at level {k + 1}" for k in index]
    return StatementFit(options, statement_table(labels, probabilities, stated, implied(best)))
