r"""Joint latent-probit model of binary toxicity and ordinal efficacy (Lin 2023).

Lin (2023) ("Safety-PD Biomarker Joint Modeling", Project Optimus slides) proposes to model the
dose relation to toxicity and to an efficacy biomarker jointly by latent probit regression,
with binary toxicity and ordinal efficacy :math:`E \in \{0, 1, 2\}` (none, medium, high). The
slides give no equations; this module states the model mathematically.

Model
-----
Doses are standardised on the log scale so that the lowest and highest dose levels sit at
:math:`x = -1` and :math:`x = +1`:
:math:`x(d) = (\log d - \tfrac12(\log d_1 + \log d_K)) / \tfrac12(\log d_K - \log d_1)`.
Patient :math:`i` at dose :math:`d_i` has a latent pair

.. math::

    (Z_{T,i}, Z_{E,i}) \sim N_2\Big((\mu_T(x_i), \mu_E(x_i)),
        \begin{pmatrix} 1 & \rho \\ \rho & 1 \end{pmatrix}\Big), \qquad
    \mu_T(x) = \alpha_T + \beta_T x, \quad
    \mu_E(x) = \alpha_E + \beta_E x + \gamma_E x^2,

toxicity :math:`T_i = 1\{Z_{T,i} > 0\}` and efficacy :math:`E_i = 0` if :math:`Z_{E,i} \le 0`,
:math:`1` if :math:`0 < Z_{E,i} \le c`, :math:`2` if :math:`Z_{E,i} > c`. Hence
:math:`P(T = 1 \mid d) = \Phi(\mu_T)`, :math:`P(E \ge 1 \mid d) = \Phi(\mu_E)`,
:math:`P(E = 2 \mid d) = \Phi(\mu_E - c)`, and :math:`\rho` is the latent correlation of
toxicity and efficacy within a patient.

Choices Lin (2023) leaves open, and why:

- *Increasing toxicity*: :math:`\beta_T > 0` (a normal prior truncated at 0), so
  :math:`P(T = 1)` increases in dose, which the overdose control presumes.
- *Efficacy form*: quadratic in log dose. It can rise, plateau (vertex near the top dose) or
  fall (vertex inside the range), it is linear in its coefficients, so their full conditional
  given the latent variables is normal (exact Gibbs), and NUTS handles it without the
  ridges of an Emax curve's ED50/Hill parameters, which five dose levels hardly identify.
- *Identifiability of the ordinal cut points*: the first cut point is fixed at 0 and the
  intercept :math:`\alpha_E` is kept; the second cut point :math:`c > 0` is free (log-normal
  prior). An intercept plus two free cut points would be one location too many.
- *Priors*: weakly informative on the probit scale. :func:`JointProbitPrior.from_statements`
  derives the prior means from prior statements about the toxicity and response rates at the
  lowest and highest doses (two equations, two unknowns at :math:`x = \mp 1`) and the share of
  high responses among responses at the highest dose; the curvature :math:`\gamma_E` is
  centred at 0 (no prior preference for rising or falling efficacy); :math:`\rho \sim U(-1, 1)`.

Likelihood: the exact bivariate-normal rectangle probabilities. With :math:`h = -\mu_T`,
:math:`k_0 = -\mu_E`, :math:`k_1 = c - \mu_E` and :math:`F(a, b) = \Phi_2(a, b; \rho)`,

.. math::

    P(T{=}0, E{=}0) &= F(h, k_0), & P(T{=}1, E{=}0) &= \Phi(k_0) - F(h, k_0), \\
    P(T{=}0, E{=}1) &= F(h, k_1) - F(h, k_0), &
        P(T{=}1, E{=}1) &= \Phi(k_1) - \Phi(k_0) - F(h, k_1) + F(h, k_0), \\
    P(T{=}0, E{=}2) &= \Phi(h) - F(h, k_1), &
        P(T{=}1, E{=}2) &= 1 - \Phi(k_1) - \Phi(h) + F(h, k_1).

:math:`\Phi_2` is computed from Sheppard's formula
:math:`\Phi_2(a, b; \rho) = \Phi(a)\Phi(b) + \frac{1}{2\pi}\int_0^{\arcsin\rho}
\exp\{-(a^2 + b^2 - 2ab\sin t)/(2\cos^2 t)\}\,dt` by 32-point Gauss-Legendre quadrature
(:func:`bivariate_normal_cdf`), differentiable for NUTS; its error against SciPy is measured in
the tests. The observation of a patient is the cell :math:`3T + E` (a categorical variable
``outcome``), so prior and posterior predictive draws are joint outcomes.

Deterministics per dose level: ``p_tox``, ``p_response`` (:math:`E \ge 1`),
``p_high_response`` (:math:`E = 2`), ``p_response_no_tox`` (:math:`T = 0, E \ge 1`, which
involves :math:`\rho`) and ``target_met``, the indicator that the toxicity
probability lies in ``tox_interval`` and the response probability is at least
``efficacy_threshold``; its posterior mean is the joint posterior probability of Lin (2023)'s
criterion.

Engines: ``"nuts"`` (PyMC's NUTS, the reference), ``"pymc"`` (``pm.sample`` with the
data-augmentation step methods of :mod:`dosezoo.samplers.joint_probit`), ``"kernel"`` (the
same Gibbs sampler compiled with numba, :mod:`dosezoo.samplers.joint_probit_kernels`, where the
full conditionals are derived) and ``"imh"`` (independence Metropolis-Hastings on the outcome
counts with a t proposal at the posterior moments of a pilot importance sampler started from
the Laplace approximation, :mod:`dosezoo.samplers.joint_probit_imh`, falling back to the Gibbs
kernel when the Pareto
:math:`\hat k` of its importance ratios exceeds ``MAX_PARETO_K``). All return the same
InferenceData schema (the sampler statistics are each sampler's own).

The likelihood depends on the data only through the patients in each cell at each distinct
dose (:meth:`JointProbit.outcome_counts`): :meth:`JointProbit.posterior`, the path of
simulations, runs the ``"imh"`` engine on those counts with no DataTree and keeps the
posteriors by them, the least recently used dropped first beyond ``posterior_cache_bytes``.
"""

import contextlib
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri

from dosezoo.checks import (
    first_true,
    index_text,
    number_array,
    positive_int,
    probability,
    real_array,
    real_number,
    sampler_sizes,
)
from dosezoo.data import DataError, TrialData
from dosezoo.diagnostics import ConvergenceCriteria, ConvergenceReport, pareto_khat
from dosezoo.inference import _attrs, check_random_seed, random_generator
from dosezoo.levels import checked_counts, validate_dose_levels
from dosezoo.models.base import DoseModel, chain_generators, engine
from dosezoo.posterior import DosePosterior, Sampling
from dosezoo.samplers import joint_probit_imh as imh
from dosezoo.samplers import joint_probit_kernels as kernels

if TYPE_CHECKING:
    import pymc as pm


#: Free parameters of the model, in the kernels' ``theta`` layout.
PARAMETERS = kernels.PARAMETERS
#: Names of the six joint outcome cells, index ``3 T + E``.
CELLS = ("T0E0", "T0E1", "T0E2", "T1E0", "T1E1", "T1E2")
#: The posterior predictive check's statistic of the two outcomes together, per dose: the
#: margins (DLTs, responses by category) do not read the correlation rho, this count does.
TOXIC_RESPONSES = "dlt and response count"
#: Gauss-Legendre nodes of the bivariate normal CDF (checked against SciPy in the tests).
QUADRATURE_NODES = 32
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
#: Cell probabilities are floored here before normalising (a cell's rounding error is ~1e-10).
_CELL_FLOOR = imh.CELL_FLOOR
#: Largest Pareto k-hat of the independence sampler's importance ratios it is trusted with;
#: above it, the proposal misses the posterior's tails and the Gibbs kernel runs instead
#: (Vehtari et al. 2024: beyond 0.7 importance sampling is unreliable).
MAX_PARETO_K = 0.7


@contextlib.contextmanager
def forward_sampling() -> Iterator[None]:
    """Silence one known warning of PyMC's forward sampler for this model.

    PyTensor's numba backend has no native ``TruncatedNormal`` random variable (``beta_tox``'s
    prior) and says it falls back to object mode; the draws are correct, only slower.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="Numba will use object mode to run truncated_normal_rv",
            category=UserWarning,
        )
        yield


# --------------------------------------------------------------------------- Phi_2


def bivariate_normal_cdf(a, b, rho):
    r"""Return the bivariate normal CDF :math:`\Phi_2(a, b; \rho)` as a PyTensor expression.

    Sheppard's formula integrated over :math:`t \in [0, \arcsin\rho]` by Gauss-Legendre
    quadrature with ``QUADRATURE_NODES`` nodes; broadcasts over ``a`` and ``b``.
    """
    import pytensor.tensor as pt

    a = pt.as_tensor_variable(a)[..., None]
    b = pt.as_tensor_variable(b)[..., None]
    half = 0.5 * pt.arcsin(rho)
    t = half * (_NODES + 1.0)
    cos2 = pt.cos(t) ** 2
    integrand = pt.exp(-(a * a + b * b - 2.0 * a * b * pt.sin(t)) / (2.0 * cos2))
    integral = half * pt.sum(_WEIGHTS * integrand, axis=-1)
    return _phi(a[..., 0]) * _phi(b[..., 0]) + integral / (2.0 * np.pi)


def bivariate_normal_cdf_numpy(a, b, rho) -> np.ndarray:
    """Compute :func:`bivariate_normal_cdf`'s quadrature in numpy (scenarios and tests)."""
    a = np.asarray(a, float)[..., None]
    b = np.asarray(b, float)[..., None]
    half = 0.5 * np.arcsin(np.asarray(rho, float))[..., None]
    t = half * (_NODES + 1.0)
    integrand = np.exp(-(a * a + b * b - 2.0 * a * b * np.sin(t)) / (2.0 * np.cos(t) ** 2))
    integral = half[..., 0] * np.sum(_WEIGHTS * integrand, axis=-1)
    return ndtr(a[..., 0]) * ndtr(b[..., 0]) + integral / (2.0 * np.pi)


def _phi(z):
    import pytensor.tensor as pt

    return 0.5 * pt.erfc(-z / math.sqrt(2.0))


def cell_probabilities(mu_tox, mu_eff, threshold, rho, *, lib=None):
    """Probabilities of the six cells ``3 T + E`` (last axis) by the rectangle formulas.

    Parameters
    ----------
    mu_tox, mu_eff : tensor or numpy.ndarray
        Latent means, same shape.
    threshold, rho : scalar
        Second cut point ``c`` and latent correlation.
    lib : module, optional
        ``numpy``, or ``pytensor.tensor`` (None, the default, for the PyMC model).

    Returns
    -------
    tensor or numpy.ndarray
        Shape ``(*mu_tox.shape, 6)``; each row sums to 1.

    Raises
    ------
    ValueError
        With ``lib=numpy``: a value that is not a finite number, a threshold <= 0 (the cells
        of ``E = 1`` would be negative) or ``|rho| >= 1``, naming the first at fault.
    """
    if lib is None:
        import pytensor.tensor as lib  # imported here: the numpy path never loads PyTensor
    if lib is np:
        mu_tox, mu_eff, threshold, rho = _checked_cell_parameters(mu_tox, mu_eff, threshold, rho)
        cdf2, cdf = bivariate_normal_cdf_numpy, ndtr
    else:
        cdf2, cdf = bivariate_normal_cdf, _phi
    h, k0, k1 = -mu_tox, -mu_eff, threshold - mu_eff
    f0, f1 = cdf2(h, k0, rho), cdf2(h, k1, rho)
    ph, p0, p1 = cdf(h), cdf(k0), cdf(k1)
    cells = [f0, f1 - f0, ph - f1, p0 - f0, p1 - p0 - f1 + f0, 1.0 - p1 - ph + f1]
    return lib.stack(cells, axis=-1)


def _checked_cell_parameters(*values: object) -> list[np.ndarray]:
    """``mu_tox, mu_eff, threshold, rho`` as float arrays, in the model's support.

    Finite numbers, ``threshold > 0`` and ``-1 < rho < 1``; a ValueError names the first
    value at fault and its index.
    """
    owner = "cell_probabilities"
    names = ("mu_tox", "mu_eff", "threshold", "rho")
    arrays = [
        np.asarray(number_array(owner, name, value, entry="index"), dtype=float)
        for name, value in zip(names, values, strict=True)
    ]
    supports = (
        np.isfinite(arrays[0]),
        np.isfinite(arrays[1]),
        np.isfinite(arrays[2]) & (arrays[2] > 0.0),
        np.abs(arrays[3]) < 1.0,
    )
    wanted = ("finite", "finite", "finite and > 0", "in (-1, 1)")
    for name, array, inside, text in zip(names, arrays, supports, wanted, strict=True):
        index = first_true(~inside)
        if index is not None:
            raise ValueError(
                f"{owner}: {name}{index_text(index)} must be {text}, got {float(array[index])!r}"
            )
    return arrays


# --------------------------------------------------------------------------- prior


def _median_matched_tox_locations(
    z_lowest: float, z_highest: float, sd: float
) -> tuple[float, float]:
    r"""Intercept mean and slope location giving the toxicity medians of prior statements.

    With :math:`\alpha = a + s\varepsilon`, :math:`\varepsilon \sim N(0, 1)`, and
    :math:`\beta \sim N(b, s^2)` truncated to :math:`(0, \infty)`, independent, the medians of
    :math:`\alpha - \beta` and :math:`\alpha + \beta` are :math:`z_1` and :math:`z_K` when
    :math:`a = (z_1 + z_K) / 2` and the median of :math:`s\varepsilon + \beta` is
    :math:`h = (z_K - z_1) / 2`: since :math:`\varepsilon` is symmetric,
    :math:`P(\alpha - \beta \le z_1) = P(s\varepsilon + \beta \ge a - z_1)`. With
    :math:`\beta = b + s t`, :math:`t` a standard normal truncated below at :math:`l = -b/s`,
    and :math:`t = l + u`,

    .. math::

        P(s\varepsilon + \beta \le h) = \int_0^\infty \Phi(c - l - u)\,
        \frac{\phi(l)}{\Phi(-l)} e^{-lu - u^2/2}\, du, \qquad c = (h - b) / s,

    free of under- and overflow for any :math:`l` (the ratio by ``log_ndtr``). It falls from
    :math:`\Phi(h / s) > 1/2` (:math:`b \to -\infty`) to 0 (:math:`b \to \infty`): one root
    in :math:`b`, bracketed by doubling and found by Brent's method. (A two-dimensional root
    search with the truncated density unscaled underflowed to a zero mass, a
    ``ZeroDivisionError``, for slope locations of -70 and below, e.g. statements 0.3 and 0.31
    or a ``coefficient_sd`` of 50, and stalled on others that have a solution.)
    """
    from scipy.integrate import quad
    from scipy.optimize import brentq
    from scipy.special import log_ndtr

    half = (z_highest - z_lowest) / 2

    def excess(b: float) -> float:
        low = -b / sd
        ratio = math.exp(-0.5 * low * low - 0.5 * math.log(2 * math.pi) - log_ndtr(-low))
        c = (half - b) / sd

        def integrand(u: float) -> float:
            return float(ndtr(c - low - u)) * ratio * math.exp(-low * u - 0.5 * u * u)

        return quad(integrand, 0.0, np.inf, epsabs=1e-14, epsrel=1e-12, limit=200)[0] - 0.5

    lower, upper, step = half - sd, half + sd, sd
    while excess(lower) <= 0:
        step *= 2
        lower = half - step
    while excess(upper) >= 0:
        step *= 2
        upper = half + step
    slope = brentq(excess, lower, upper, xtol=1e-12, rtol=1e-14)
    return (z_lowest + z_highest) / 2, float(slope)


def _count_toxic_responses(cells: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per dose group, the patients with a DLT and a response: cells T1E1 and T1E2 (3T + E >= 4).

    ``cells`` is (n,) or (S, n); the counts are ``cells.shape[:-1] + (n_groups,)``.
    """
    one_hot = np.zeros((group.size, n_groups))
    one_hot[np.arange(group.size), group] = 1.0
    return (np.asarray(cells) >= CELLS.index("T1E1")).astype(float) @ one_hot


@dataclass(frozen=True)
class JointProbitPrior:
    """Prior of the joint probit model: normal coefficients and a log-normal cut point.

    ``beta_tox``'s normal is truncated to (0, inf); ``log(threshold)`` is normal; ``rho`` is
    uniform on (-1, 1). Build it from prior statements with :meth:`from_statements`.

    Parameters
    ----------
    alpha_tox_mean, alpha_tox_sd, beta_tox_mean, beta_tox_sd : float
        Toxicity intercept and slope (probit scale, standardised log dose).
    alpha_eff_mean, alpha_eff_sd, beta_eff_mean, beta_eff_sd, gamma_eff_mean, gamma_eff_sd : float
        Efficacy intercept, linear and quadratic coefficients.
    log_threshold_mean, log_threshold_sd : float
        Normal prior of the log of the second cut point ``c``.
    """

    alpha_tox_mean: float
    alpha_tox_sd: float
    beta_tox_mean: float
    beta_tox_sd: float
    alpha_eff_mean: float
    alpha_eff_sd: float
    beta_eff_mean: float
    beta_eff_sd: float
    gamma_eff_mean: float
    gamma_eff_sd: float
    log_threshold_mean: float
    log_threshold_sd: float

    def __post_init__(self) -> None:
        """Validate: finite numbers, positive sds."""
        for f in fields(self):
            value = real_number("JointProbitPrior", f.name, getattr(self, f.name))
            if f.name.endswith("_sd") and value <= 0:
                raise ValueError(f"JointProbitPrior: {f.name} must be > 0, got {value!r}")
            object.__setattr__(self, f.name, value)

    @classmethod
    def from_statements(
        cls,
        *,
        tox_lowest: float = 0.05,
        tox_highest: float = 0.45,
        response_lowest: float = 0.1,
        response_highest: float = 0.4,
        high_share_highest: float = 0.5,
        coefficient_sd: float = 1.0,
        curvature_sd: float = 1.0,
        log_threshold_sd: float = 0.5,
    ) -> "JointProbitPrior":
        r"""Derive the prior from statements about rates at the lowest and highest doses.

        At :math:`x = \mp 1`, :math:`\Phi^{-1}(p) = \alpha \mp \beta` (plus :math:`\gamma`
        for response, centred at 0), and the statements are the prior *medians* of the rates
        there. For response (:math:`E \ge 1`), whose coefficients are normal,
        :math:`\alpha = \tfrac12(\Phi^{-1}(p_K) + \Phi^{-1}(p_1))` and
        :math:`\beta = \tfrac12(\Phi^{-1}(p_K) - \Phi^{-1}(p_1))` give them. For toxicity
        the slope's normal is truncated to :math:`(0, \infty)`, which moves the medians of
        :math:`\alpha \pm \beta` up (with the default statements and sds, these means would put
        the prior median toxicity at the highest dose at 0.59 instead of 0.45); so the intercept
        mean and the slope's location are solved for (the intercept in closed form, the slope
        by quadrature over the truncated slope and a root search), such that the medians of
        :math:`\alpha - \beta` and :math:`\alpha + \beta` are :math:`\Phi^{-1}(p_1)` and
        :math:`\Phi^{-1}(p_K)` exactly. The cut point's median is
        the :math:`c` giving :math:`P(E = 2) = s \, P(E \ge 1)` at the highest dose:
        :math:`c = \Phi^{-1}(p_K) - \Phi^{-1}(s \, p_K)`.

        Parameters
        ----------
        tox_lowest, tox_highest : float
            Prior guesses of the toxicity rate at the lowest and highest doses
            (``tox_lowest < tox_highest``: toxicity increases with dose).
        response_lowest, response_highest : float
            Prior guesses of the response rate (E >= 1) at the lowest and highest doses.
        high_share_highest : float
            Prior guess of the share of high responses (E = 2) among responses at the highest
            dose, in (0, 1).
        coefficient_sd, curvature_sd, log_threshold_sd : float
            Prior sds of the intercepts and slopes, of ``gamma_eff``, and of
            ``log(threshold)``.

        Returns
        -------
        JointProbitPrior
        """
        owner = "JointProbitPrior.from_statements"
        t1, tk = (
            probability(owner, "tox_lowest", tox_lowest),
            probability(owner, "tox_highest", tox_highest),
        )
        if not t1 < tk:
            raise ValueError(
                f"{owner}: tox_lowest must be < tox_highest (toxicity increases with dose), "
                f"got {tox_lowest!r} and {tox_highest!r}"
            )
        r1 = probability(owner, "response_lowest", response_lowest)
        rk = probability(owner, "response_highest", response_highest)
        share = probability(owner, "high_share_highest", high_share_highest)
        threshold = float(ndtri(rk) - ndtri(share * rk))
        coefficient_sd = real_number(owner, "coefficient_sd", coefficient_sd)
        if coefficient_sd <= 0:
            raise ValueError(f"{owner}: coefficient_sd must be > 0, got {coefficient_sd!r}")
        alpha_tox, beta_tox = _median_matched_tox_locations(
            float(ndtri(t1)), float(ndtri(tk)), coefficient_sd
        )
        return cls(
            alpha_tox_mean=alpha_tox,
            alpha_tox_sd=coefficient_sd,
            beta_tox_mean=beta_tox,
            beta_tox_sd=coefficient_sd,
            alpha_eff_mean=float(ndtri(rk) + ndtri(r1)) / 2,
            alpha_eff_sd=coefficient_sd,
            beta_eff_mean=float(ndtri(rk) - ndtri(r1)) / 2,
            beta_eff_sd=coefficient_sd,
            gamma_eff_mean=0.0,
            gamma_eff_sd=curvature_sd,
            log_threshold_mean=math.log(threshold),
            log_threshold_sd=log_threshold_sd,
        )

    def packed(self) -> np.ndarray:
        """Return the prior laid out for the kernels (:func:`~joint_probit_kernels.pack_prior`)."""
        names = ("alpha_tox", "beta_tox", "alpha_eff", "beta_eff", "gamma_eff")
        return kernels.pack_prior(
            [getattr(self, f"{n}_mean") for n in names],
            [getattr(self, f"{n}_sd") for n in names],
            (self.log_threshold_mean, self.log_threshold_sd),
        )

    def as_dict(self) -> dict[str, float]:
        """Return the hyper-parameters as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class JointProbit(DoseModel):
    """The joint latent-probit model of toxicity and ordinal efficacy (Lin 2023).

    Parameters
    ----------
    dose_levels : tuple of float
        Candidate doses, strictly increasing, at least two; the deterministics are per level
        and the log-dose scale is standardised on the lowest and highest. Another sequence is
        stored as a tuple.
    prior : JointProbitPrior
        Default: :meth:`JointProbitPrior.from_statements` with its defaults.
    tox_interval : tuple of float
        Target toxicity interval ``(low, high)`` of the ``target_met`` deterministic
        (Lin 2023: 0.16 and 0.33).
    efficacy_threshold : float
        Smallest acceptable response rate ``P(E >= 1)`` (Lin 2023: 0.2).

    Examples
    --------
    >>> model = JointProbit([10, 20, 40, 80, 160])
    >>> idata = model.fit(data, engine="kernel", random_seed=1)  # doctest: +SKIP
    """

    model_name: ClassVar[str] = "JointProbit"
    outcomes: ClassVar[tuple[str, ...]] = ("dlt", "efficacy")
    probability_rates: ClassVar[tuple[str, ...]] = ("p_tox", "p_response")
    toxicity_rate: ClassVar[str] = "p_tox"
    default_engine: ClassVar[str] = "imh"
    fast_engine: ClassVar[str | None] = "imh"
    count_posterior: ClassVar[bool] = True
    #: Posteriors :meth:`posterior` keeps, by outcome counts, settings and seed: as many as
    #: ``posterior_cache_bytes`` holds (some 1200 of 2 chains of 700 draws). Count states
    #: recur across the trials of a simulation long after they were first reached.
    posterior_cache_size: ClassVar[int] = 1 << 16

    dose_levels: tuple[float, ...]
    _: KW_ONLY
    prior: JointProbitPrior = field(default_factory=JointProbitPrior.from_statements)
    tox_interval: tuple[float, float] = (0.16, 0.33)
    efficacy_threshold: float = 0.2

    def __post_init__(self) -> None:
        """Validate the options, naming the one at fault."""
        owner = "JointProbit"
        levels = validate_dose_levels(owner, self.dose_levels)
        if len(levels) < 2:
            raise ValueError(f"{owner}: dose_levels needs at least two doses, got {levels!r}")
        if not isinstance(self.prior, JointProbitPrior):
            raise TypeError(f"{owner}: prior must be a JointProbitPrior, got {self.prior!r}")
        try:
            low, high = self.tox_interval
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner}: tox_interval must be a pair (low, high), got {self.tox_interval!r}"
            ) from None
        low = probability(owner, "tox_interval[0]", low)
        high = probability(owner, "tox_interval[1]", high)
        if not low < high:
            raise ValueError(f"{owner}: tox_interval must have low < high, got {(low, high)!r}")
        object.__setattr__(self, "dose_levels", levels)
        object.__setattr__(self, "tox_interval", (low, high))
        object.__setattr__(
            self,
            "efficacy_threshold",
            probability(owner, "efficacy_threshold", self.efficacy_threshold),
        )

    def parameters(self) -> dict[str, object]:
        """Return the options as a flat dict (recorded in every fit's attributes)."""
        return {
            "dose_levels": list(self.dose_levels),
            **self.prior.as_dict(),
            "tox_interval": list(self.tox_interval),
            "efficacy_threshold": self.efficacy_threshold,
        }

    def standardise(self, doses: ArrayLike) -> np.ndarray:
        """Standardised log dose: -1 at the lowest level, +1 at the highest (doses > 0)."""
        logs = np.log(np.asarray(self.dose_levels))
        centre, half = 0.5 * (logs[0] + logs[-1]), 0.5 * (logs[-1] - logs[0])
        values = np.asarray(number_array("JointProbit.standardise", "doses", doses), float)
        if not np.all(np.isfinite(values) & (values > 0)):  # a log dose: -inf, or NaN
            raise ValueError(
                f"JointProbit.standardise: doses must be finite and > 0, got "
                f"{values[~(np.isfinite(values) & (values > 0))][:5].tolist()}"
            )
        return (np.log(values) - centre) / half

    # ------------------------------------------------------------------ data

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check the data: ``dlt`` and ``efficacy`` columns, doses in the levels' range."""
        self.arrays(data, min_patients=min_patients)

    def data_values(self, data: TrialData) -> dict[str, np.ndarray]:
        """Return the values of the model's data containers: ``x`` and ``cell``."""
        x, tox, eff = self.arrays(data)
        return {"x": x, "cell": 3 * tox + eff}

    def arrays(self, data: TrialData, *, min_patients: int = 0) -> tuple[np.ndarray, ...]:
        """Validate the data and return ``(x, dlt, efficacy)`` per patient.

        Raises
        ------
        DataError
            If ``dlt`` or ``efficacy`` is missing, or a dose lies outside the dose levels'
            range (naming the row and value). Values of ``dlt`` outside {0, 1} and of
            ``efficacy`` outside {0, 1, 2} are refused by :class:`TrialData` itself.
        """
        if not isinstance(data, TrialData):
            raise TypeError(f"JointProbit needs a TrialData, got {type(data).__name__}")
        data.require("dlt", "efficacy", min_patients=min_patients, model="JointProbit")
        dose = np.asarray(data.dose, dtype=float)
        lo, hi = self.dose_levels[0], self.dose_levels[-1]
        outside = (dose < lo) | (dose > hi)
        if outside.any():
            row = int(np.argmax(outside))
            raise DataError(
                f"JointProbit: column 'dose', row {row}: dose {float(dose[row])!r} is outside "
                f"the dose levels' range [{lo:g}, {hi:g}]"
            )
        tox = np.asarray(data.column("dlt"), dtype=np.int64)
        eff = np.asarray(data.column("efficacy"), dtype=np.int64)
        return self.standardise(dose), tox, eff

    # ----------------------------------------------------------------- model

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model (rectangle likelihood), data in ``pm.Data`` containers.

        Parameters
        ----------
        data : TrialData
            Columns ``dose``, ``dlt`` and ``efficacy``; may be empty (prior checks).

        Returns
        -------
        pymc.Model
            Free variables ``alpha_tox, beta_tox, alpha_eff, beta_eff, gamma_eff, threshold,
            rho``; observed ``outcome`` (cell ``3 dlt + efficacy``, dims patient);
            deterministics ``p_tox, p_response, p_high_response, p_response_no_tox,
            target_met`` (dims dose).
        """
        import pymc as pm
        import pytensor.tensor as pt

        x, tox, eff = self.arrays(data)
        coords = {
            "patient": np.arange(x.size),
            "dose": np.asarray(self.dose_levels),
            "hyper": list(kernels.PRIOR_NAMES),
        }
        with pm.Model(coords=coords) as model:
            x_data = pm.Data("x", x, dims="patient")
            cell = pm.Data("cell", 3 * tox + eff, dims="patient")
            x_levels = pm.Data("x_levels", self.standardise(self.dose_levels), dims="dose")
            # The prior as data, so that the step methods read it from the model itself.
            hyper = pm.Data("prior_hyper", self.prior.packed(), dims="hyper")
            mean, sd = hyper[: kernels.N_COEF], hyper[kernels.N_COEF : 2 * kernels.N_COEF]
            alpha_tox = pm.Normal("alpha_tox", mean[0], sd[0])
            beta_tox = pm.TruncatedNormal("beta_tox", mean[1], sd[1], lower=0.0)
            alpha_eff = pm.Normal("alpha_eff", mean[2], sd[2])
            beta_eff = pm.Normal("beta_eff", mean[3], sd[3])
            gamma_eff = pm.Normal("gamma_eff", mean[4], sd[4])
            threshold = pm.LogNormal(
                "threshold",
                hyper[kernels.LOG_THRESHOLD_MEAN],
                hyper[kernels.LOG_THRESHOLD_SD],
            )
            rho = pm.Uniform("rho", -1.0, 1.0)

            def mu_tox(x):
                return alpha_tox + beta_tox * x

            def mu_eff(x):
                return alpha_eff + beta_eff * x + gamma_eff * x**2

            cells = cell_probabilities(mu_tox(x_data), mu_eff(x_data), threshold, rho)
            cells = pt.clip(cells, _CELL_FLOOR, 1.0)
            cells = cells / pt.sum(cells, axis=-1, keepdims=True)
            pm.Categorical("outcome", p=cells, observed=cell, dims="patient")

            p_tox = pm.Deterministic("p_tox", _phi(mu_tox(x_levels)), dims="dose")
            p_response = pm.Deterministic("p_response", _phi(mu_eff(x_levels)), dims="dose")
            pm.Deterministic("p_high_response", _phi(mu_eff(x_levels) - threshold), dims="dose")
            # P(T = 0, E >= 1) = Phi(h) - Phi_2(h, k_0): a response without a DLT.
            h_levels = -mu_tox(x_levels)
            pm.Deterministic(
                "p_response_no_tox",
                _phi(h_levels) - bivariate_normal_cdf(h_levels, -mu_eff(x_levels), rho),
                dims="dose",
            )
            low, high = self.tox_interval
            met = (p_tox >= low) & (p_tox <= high) & (p_response >= self.efficacy_threshold)
            pm.Deterministic("target_met", pt.cast(met, "float64"), dims="dose")
        return model

    # ------------------------------------------------------------------- engines

    def step_methods(self, model: "pm.Model") -> list:
        """Return the sweep of ``engine="pymc"``: the data-augmentation Gibbs sampler."""
        # The step methods subclass PyMC's: imported here, where PyMC runs, so the fast
        # engines never load PyMC.
        from dosezoo.samplers.joint_probit import joint_probit_steps

        return joint_probit_steps(model)

    @engine("kernel")
    def _fit_kernel(
        self, data: TrialData, *, draws: int, tune: int, chains: int, random_seed, **_
    ) -> xr.DataTree:
        """Run the data-augmentation Gibbs sampler in numba (milliseconds)."""
        started = time.perf_counter()
        arrays = self.sample_kernel(
            data, draws=draws, tune=tune, chains=chains, random_seed=random_seed
        )
        free = {name: arrays[name] for name in PARAMETERS}
        stats = {name: arrays[name] for name in kernels.SWEEP_STATS}
        return self._from_draws(data, free, stats, started=started, tune=tune)

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Sample the posterior by the ``"imh"`` engine (no DataTree): ``p_tox``, ``p_response``.

        The path of simulations. The draws depend on the data only through
        :meth:`outcome_counts`, so they are kept (:attr:`posterior_cache_size`,
        :attr:`posterior_cache_bytes`), with their convergence reports, by those counts, the
        sampler's settings and the seed. The fit is judged by ``sampling.criteria`` (R-hat and
        ESS as ArviZ computes them) on ``p_tox`` and ``p_response``, the rates the Project
        Optimus rule reads, at the lowest ``sampling.levels`` levels.
        """
        sampling = Sampling() if sampling is None else sampling
        tune = self.default_tune if sampling.tune is None else sampling.tune
        x, counts = self.outcome_counts(data)
        key = (x.tobytes(), counts.tobytes(), sampling.draws, tune, sampling.chains)
        memo = self._memo("posterior_rates")
        seed = sampling.random_seed
        found = None if seed is None else memo.get((*key, seed))  # unseeded: fresh draws
        if found is None:
            draws = self.sample_imh(
                x,
                counts,
                draws=sampling.draws,
                tune=tune,
                chains=sampling.chains,
                random_seed=seed,
            )
            x_levels = self.standardise(self.dose_levels)
            mu_t = draws["alpha_tox"][..., None] + draws["beta_tox"][..., None] * x_levels
            mu_e = (
                draws["alpha_eff"][..., None]
                + draws["beta_eff"][..., None] * x_levels
                + draws["gamma_eff"][..., None] * x_levels**2
            )
            rates = {"p_tox": ndtr(mu_t), "p_response": ndtr(mu_e)}
            for value in rates.values():
                value.flags.writeable = False  # kept and shared by every posterior of the counts
            means = {name: float(np.mean(draws[name])) for name in PARAMETERS}
            reports: dict[tuple[ConvergenceCriteria, int | None], ConvergenceReport] = {}
            found = (rates, means, reports)
            if seed is not None:
                memo.keep((*key, seed), found, sum(value.nbytes for value in rates.values()))
        rates, means, reports = found
        report: ConvergenceReport | None = None
        if sampling.criteria is not None:
            judgement = (sampling.criteria, sampling.levels)
            report = reports.get(judgement)
            if report is None:
                judged = {name: value[:, :, : sampling.levels] for name, value in rates.items()}
                report = reports[judgement] = sampling.criteria.check_draws(judged)
        return DosePosterior(
            dose_levels=self.dose_levels,
            rates={name: value.reshape(-1, value.shape[-1]) for name, value in rates.items()},
            chains=sampling.chains,
            parameter_mean=means,
            report=report,
        )

    def posterior_from_idata(
        self, idata: xr.DataTree, criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> DosePosterior:
        """Read the per-dose rates of a fit, judged on ``p_tox`` and ``p_response``."""
        return DosePosterior.from_idata(idata, criteria, checked=("p_tox", "p_response"), **options)

    def initial_theta(self) -> np.ndarray:
        """Return the kernel chains' initial parameters: prior means, median cut point, rho = 0."""
        p = self.prior
        theta = np.empty(len(PARAMETERS))
        theta[kernels.ALPHA_TOX] = p.alpha_tox_mean
        theta[kernels.BETA_TOX] = max(p.beta_tox_mean, p.beta_tox_sd)
        theta[kernels.ALPHA_EFF] = p.alpha_eff_mean
        theta[kernels.BETA_EFF] = p.beta_eff_mean
        theta[kernels.GAMMA_EFF] = p.gamma_eff_mean
        theta[kernels.THRESHOLD] = math.exp(p.log_threshold_mean)
        theta[kernels.RHO] = 0.0
        return theta

    def sample_kernel(
        self,
        data: TrialData,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        random_seed: int | np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the numba Gibbs sampler and return raw arrays (the path of simulation loops).

        Seeding follows ``pm.sample``: one generator per chain from ``spawn``, one integer
        drawn from each, then the sweep.

        Returns
        -------
        dict
            The seven parameters and the sweep statistics, each shaped (chain, draw).
        """
        x, tox, eff = self.arrays(data, min_patients=1)
        return self._gibbs(
            x, tox, eff, draws=draws, tune=tune, chains=chains, random_seed=random_seed
        )

    def _gibbs(
        self,
        x: np.ndarray,
        tox: np.ndarray,
        eff: np.ndarray,
        *,
        draws: int,
        tune: int,
        chains: int,
        random_seed: int | np.random.Generator | None,
    ) -> dict[str, np.ndarray]:
        """Run the Gibbs kernel's chains on per-patient arrays (see :meth:`sample_kernel`)."""
        prior, start = self.prior.packed(), self.initial_theta()
        chain_values, chain_stats = [], []
        for rng in chain_generators(random_seed, chains):
            one_values, one_stats = kernels.run_chain(rng, start, x, tox, eff, prior, tune, draws)
            chain_values.append(one_values)
            chain_stats.append(one_stats)
        values, stats = np.stack(chain_values), np.stack(chain_stats)
        out = {name: values[:, :, i] for i, name in enumerate(PARAMETERS)}
        for i, (name, dtype) in enumerate(kernels.SWEEP_STATS.items()):
            out[name] = stats[:, :, i].astype(dtype)
        return out

    def outcome_counts(self, data: TrialData) -> tuple[np.ndarray, np.ndarray]:
        """Distinct standardised doses and the patients in each cell ``3 T + E`` there.

        Returns
        -------
        x : numpy.ndarray
            Standardised log dose of each distinct dose given, increasing, shape (L,).
        counts : numpy.ndarray
            Patients per dose and cell, shape (L, 6), float.
        """
        x, tox, eff = self.arrays(data)
        distinct, where = np.unique(x, return_inverse=True)
        counts = np.zeros((distinct.size, len(CELLS)))
        np.add.at(counts, (where, 3 * tox + eff), 1.0)
        return distinct, counts

    def sufficient_statistic(self, data: TrialData) -> bytes:
        """Return the patients per cell at each distinct dose: all the posterior depends on."""
        x, counts = self.outcome_counts(data)
        return x.tobytes() + counts.tobytes()

    @engine("imh")
    def _fit_imh(
        self, data: TrialData, *, draws: int, tune: int, chains: int, random_seed, **_
    ) -> xr.DataTree:
        """Run the independence Metropolis-Hastings sampler (Gibbs if its proposal fails)."""
        started = time.perf_counter()
        x, counts = self.outcome_counts(data)
        result = self.sample_imh(
            x, counts, draws=draws, tune=tune, chains=chains, random_seed=random_seed
        )
        free = {name: result[name] for name in PARAMETERS}
        stats = {name: result[name] for name in result if name not in PARAMETERS}
        stats.pop("pareto_k")
        idata = self._from_draws(data, free, stats, started=started, tune=tune)
        idata.attrs["pareto_k"] = float(result["pareto_k"])
        idata.attrs["sampler"] = "gibbs" if "accepted" not in result else "imh"
        return idata

    def sample_imh(
        self,
        x: np.ndarray,
        counts: np.ndarray,
        *,
        draws: int = 1000,
        tune: int = 200,
        chains: int = 2,
        random_seed: int | np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        r"""Sample the posterior of outcome counts by independence Metropolis-Hastings.

        The mode and the precision of the log density (unconstrained parameters) start a
        pilot importance sampler whose moments set the t proposal
        (:mod:`dosezoo.samplers.joint_probit_imh`); each chain starts at a proposal draw and
        runs ``tune + draws`` iterations, seeded as :meth:`sample_kernel`'s chains (the pilot
        draws from one more generator). If the mode is not found or the Pareto
        :math:`\hat k` of all the proposals' importance ratios exceeds ``MAX_PARETO_K``, the
        data-augmentation Gibbs kernel samples the same posterior instead (same seed).

        Parameters
        ----------
        x, counts : numpy.ndarray
            From :meth:`outcome_counts`.
        draws, tune, chains : int
            Kept iterations and burn-in per chain, and chains.
        random_seed : int or numpy.random.Generator, optional

        Returns
        -------
        dict
            The seven parameters shaped (chain, draw); ``accepted`` (chain, draw) from the
            independence sampler, or the Gibbs sweep statistics from the fallback; and
            ``pareto_k``, a 0-d array (infinite when the mode was not found).
        """
        owner = "JointProbit.sample_imh"
        draws, tune, chains = sampler_sizes(owner, draws, tune, chains)
        x = real_array(owner, "x", x)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{owner}: x must hold finite standardised doses, got {x.tolist()}")
        counts = checked_counts(owner, "counts", counts)
        if counts.shape != (x.size, len(CELLS)) or (counts < 0).any():
            raise ValueError(
                f"{owner}: counts must hold patients >= 0 per dose of x and cell "
                f"{', '.join(CELLS)}: shape ({x.size}, {len(CELLS)}), got {counts.tolist()}"
            )
        counts = counts.astype(float)
        prior = self.prior.packed()
        start = imh.unconstrained(self.initial_theta())
        *generators, pilot = chain_generators(random_seed, chains + 1)
        centre, root, found = imh.fit_proposal(pilot, start, x, counts, prior)
        pareto_k = math.inf
        if found:
            values, accepted, ratios = [], [], []
            for rng in generators:
                chain, chain_accepted, chain_ratios = imh.run_chain(
                    rng, centre, root, x, counts, prior, tune, draws
                )
                values.append(chain)
                accepted.append(chain_accepted)
                ratios.append(chain_ratios)
            pareto_k = pareto_khat(np.concatenate(ratios))
        if pareto_k > MAX_PARETO_K:
            # Each patient once, in a canonical order (dose, then cell): the draws are a
            # function of the counts and the seed.
            cells = np.tile(np.arange(len(CELLS)), x.size)
            repeats = counts.astype(np.int64).ravel()
            out = self._gibbs(
                np.repeat(np.repeat(x, len(CELLS)), repeats),
                np.repeat(cells // 3, repeats),
                np.repeat(cells % 3, repeats),
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
            )
            out["pareto_k"] = np.asarray(pareto_k)
            return out
        stacked = np.stack(values)
        out = {name: stacked[:, :, i] for i, name in enumerate(PARAMETERS)}
        out["accepted"] = np.stack(accepted)
        out["pareto_k"] = np.asarray(pareto_k)
        return out

    def dose_probabilities(self, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-dose rates of every draw (numpy), as the model's deterministics.

        Parameters
        ----------
        draws : dict
            Parameter draws of any common shape ``S`` (e.g. from :meth:`sample_kernel`).

        Returns
        -------
        dict
            Arrays shaped ``(*S, n_levels)``.
        """
        owner = "JointProbit.dose_probabilities"
        missing = [name for name in PARAMETERS if name not in draws]
        if missing:
            raise ValueError(f"{owner}: draws have no {', '.join(missing)}")
        values = {
            name: np.asarray(number_array(owner, name, draws[name]), float) for name in PARAMETERS
        }
        if not all(np.all(np.isfinite(v)) for v in values.values()):
            raise ValueError(f"{owner}: every draw must be finite")
        # the model's support: a threshold > 0 orders the response levels, |rho| < 1
        if np.any(values["threshold"] <= 0) or np.any(np.abs(values["rho"]) >= 1):
            raise ValueError(f"{owner}: draws need threshold > 0 and -1 < rho < 1")
        draws = values
        x = self.standardise(self.dose_levels)
        a_t, b_t = (np.asarray(draws[n])[..., None] for n in ("alpha_tox", "beta_tox"))
        a_e, b_e, g_e = (
            np.asarray(draws[n])[..., None] for n in ("alpha_eff", "beta_eff", "gamma_eff")
        )
        mu_t, mu_e = a_t + b_t * x, a_e + b_e * x + g_e * x**2
        rho = np.asarray(draws["rho"])[..., None]
        return {
            "p_tox": ndtr(mu_t),
            "p_response": ndtr(mu_e),
            "p_high_response": ndtr(mu_e - np.asarray(draws["threshold"])[..., None]),
            "p_response_no_tox": ndtr(-mu_t) - bivariate_normal_cdf_numpy(-mu_t, -mu_e, rho),
        }

    # ------------------------------------------------------------ predictive

    def sample_prior_predictive(
        self,
        data: TrialData | None = None,
        *,
        draws: int = 1000,
        random_seed: int | np.random.Generator | None = None,
    ) -> xr.DataTree:
        r"""Draw from the prior in numpy: parameters, per-dose rates and outcomes at ``data``.

        The parameters are drawn from their priors (normal coefficients, :math:`\beta_T`
        truncated to :math:`(0, \infty)`, log-normal :math:`c`, :math:`\rho \sim U(-1, 1)`),
        the rates are :meth:`dose_probabilities`, and each patient's cell ``3 T + E`` is drawn
        from the rectangle probabilities (:func:`cell_probabilities`). The schema is that of
        ``pm.sample_prior_predictive`` on :meth:`build` (groups ``prior``,
        ``prior_predictive`` with ``outcome``, ``dlt`` and ``efficacy``, ``observed_data``,
        ``constant_data``), without PyMC's forward sampler, which compiles the bivariate
        normal quadrature on every call (about 11 s of CPU).

        Parameters
        ----------
        data : TrialData, optional
            Patients whose outcomes to draw; none by default.
        draws : int
            Number of prior draws.
        random_seed : int or numpy.random.Generator, optional

        Returns
        -------
        xarray.DataTree
        """
        from scipy.stats import truncnorm

        data = TrialData.empty(outcomes=self.outcomes) if data is None else data
        draws = positive_int("JointProbit.sample_prior_predictive", "draws", draws)
        check_random_seed("JointProbit.sample_prior_predictive", random_seed)
        x, tox, eff = self.arrays(data)
        rng = random_generator(random_seed)
        p = self.prior

        def normal(name: str) -> np.ndarray:
            return rng.normal(getattr(p, f"{name}_mean"), getattr(p, f"{name}_sd"), draws)

        parameters = {
            "alpha_tox": normal("alpha_tox"),
            "beta_tox": truncnorm.rvs(
                -p.beta_tox_mean / p.beta_tox_sd,
                np.inf,
                loc=p.beta_tox_mean,
                scale=p.beta_tox_sd,
                size=draws,
                random_state=rng,
            ),
            "alpha_eff": normal("alpha_eff"),
            "beta_eff": normal("beta_eff"),
            "gamma_eff": normal("gamma_eff"),
            "threshold": np.exp(rng.normal(p.log_threshold_mean, p.log_threshold_sd, draws)),
            "rho": rng.uniform(-1.0, 1.0, draws),
        }
        draws_of = {name: value[None] for name, value in parameters.items()}  # (chain=1, draw)
        outcome = self._draw_outcomes(draws_of, x, rng)
        tree = self._predictive_tree(
            data, x, tox, eff, "prior", {**draws_of, **self._deterministics(draws_of)}, outcome
        )
        tree.attrs.update(self.identity("prior"))
        return tree

    def sample_posterior_predictive(
        self,
        idata: xr.DataTree,
        data: TrialData,
        *,
        random_seed: int | np.random.Generator | None = None,
    ) -> xr.DataTree:
        """Replicate each patient's outcome cell once per posterior draw (numpy).

        As :meth:`DoseModel.sample_posterior_predictive` (a copy of ``idata`` with
        ``posterior_predictive``: ``outcome``, ``dlt``, ``efficacy``), the cells drawn from
        the rectangle probabilities of each draw's parameters; a fit that is not this model's
        fit to ``data`` is refused (:meth:`check_fit`).
        """
        check_random_seed("JointProbit.sample_posterior_predictive", random_seed)
        self.check_fit(idata, data, same_order=True)
        x, tox, eff = self.arrays(data)
        posterior = idata["posterior"]
        draws_of = {name: posterior[name].to_numpy() for name in PARAMETERS}
        outcome = self._draw_outcomes(draws_of, x, random_generator(random_seed))
        predictive = self._predictive_tree(data, x, tox, eff, "posterior", {}, outcome)
        extended = idata.copy()
        extended["posterior_predictive"] = predictive["posterior_predictive"]
        return extended

    def _observe(self, data: TrialData, group: np.ndarray, labels: list) -> dict[str, np.ndarray]:
        """Return the margins' statistics per dose and :data:`TOXIC_RESPONSES`, (G,) each."""
        cells = 3 * np.asarray(data.column("dlt")) + np.asarray(data.column("efficacy"))
        toxic_responses = _count_toxic_responses(cells, group, len(labels))
        return super()._observe(data, group, labels) | {TOXIC_RESPONSES: toxic_responses}

    def _replicate(
        self, replicates: xr.Dataset, group: np.ndarray, labels: list
    ) -> dict[str, np.ndarray]:
        """Return the replicated statistics of :meth:`_observe`, shape (S, G) each."""
        cells = replicates["outcome"].stack(sample=("chain", "draw")).transpose("sample", ...)
        toxic_responses = _count_toxic_responses(cells.to_numpy(), group, len(labels))
        return super()._replicate(replicates, group, labels) | {TOXIC_RESPONSES: toxic_responses}

    def _deterministics(self, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the per-dose deterministics of parameter draws, ``target_met`` included."""
        rates = self.dose_probabilities(draws)
        low, high = self.tox_interval
        met = (rates["p_tox"] >= low) & (rates["p_tox"] <= high)
        met &= rates["p_response"] >= self.efficacy_threshold
        return {**rates, "target_met": met.astype(float)}

    @staticmethod
    def _draw_outcomes(
        draws: dict[str, np.ndarray], x: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw each patient's cell ``3 T + E`` given parameter draws of shape S: (*S, n)."""
        a_t, b_t, a_e, b_e, g_e, c, rho = (
            np.asarray(draws[name], dtype=float)[..., None] for name in PARAMETERS
        )
        cells = cell_probabilities(a_t + b_t * x, a_e + b_e * x + g_e * x**2, c, rho, lib=np)
        cells = np.clip(cells, _CELL_FLOOR, 1.0)
        cumulative = np.cumsum(cells / cells.sum(axis=-1, keepdims=True), axis=-1)
        uniform = rng.random(cumulative.shape[:-1])
        return np.minimum((cumulative < uniform[..., None]).sum(axis=-1), len(CELLS) - 1)

    def _predictive_tree(
        self,
        data: TrialData,
        x: np.ndarray,
        tox: np.ndarray,
        eff: np.ndarray,
        kind: str,
        parameters: dict[str, np.ndarray],
        outcome: np.ndarray,
    ) -> xr.DataTree:
        """Assemble PyMC's predictive groups for ``kind`` ("prior" or "posterior")."""
        chains, draws = outcome.shape[:2]
        sample = {"chain": np.arange(chains), "draw": np.arange(draws)}
        patients = {"patient": np.arange(data.n_patients)}
        doses = {"dose": np.asarray(self.dose_levels)}
        attrs = {"inference_library": "dosezoo", **_attrs(("chain", "draw"))}
        per_patient = ("chain", "draw", "patient")
        predictive = xr.Dataset(
            {
                "outcome": (per_patient, outcome.astype(np.int64)),
                "dlt": (per_patient, (outcome // 3).astype(np.int64)),
                "efficacy": (per_patient, (outcome % 3).astype(np.int64)),
            },
            coords=sample | patients,
            attrs=attrs,
        )
        groups = {f"{kind}_predictive": predictive}
        if kind == "prior":
            groups["prior"] = xr.Dataset(
                {
                    name: (("chain", "draw", "dose")[: value.ndim], value)
                    for name, value in parameters.items()
                },
                coords=sample | doses,
                attrs=attrs,
            )
            groups["observed_data"] = xr.Dataset(
                {"outcome": ("patient", (3 * tox + eff).astype(np.int64))},
                coords=patients,
                attrs=attrs,
            )
            groups["constant_data"] = xr.Dataset(
                {
                    "x": ("patient", x),
                    "cell": ("patient", (3 * tox + eff).astype(np.int32)),
                    "x_levels": ("dose", self.standardise(self.dose_levels)),
                    "prior_hyper": ("hyper", self.prior.packed()),
                },
                coords=patients | doses | {"hyper": list(kernels.PRIOR_NAMES)},
                attrs=attrs,
            )
        return xr.DataTree(children={g: xr.DataTree(ds) for g, ds in groups.items()})

    def prior_rates(
        self, *, draws: int = 4000, random_seed: int | np.random.Generator | None = None
    ) -> pd.DataFrame:
        """Summarise what the prior says about each dose: quantiles of the rates, P(target met).

        Returns
        -------
        pandas.DataFrame
            Indexed by dose; for ``p_tox``, ``p_response`` and ``p_high_response`` the prior
            5 %, 50 % and 95 % quantiles, and the prior probability of ``target_met``.
        """
        prior = self.sample_prior_predictive(draws=draws, random_seed=random_seed)["prior"]
        table = {}
        for name in ("p_tox", "p_response", "p_high_response"):
            values = prior[name].stack(sample=("chain", "draw")).transpose("dose", "sample")
            for q in (0.05, 0.5, 0.95):
                table[f"{name}_q{q:g}"] = np.quantile(values.to_numpy(), q, axis=1)
        table["p_target_met"] = prior["target_met"].mean(("chain", "draw")).to_numpy()
        return pd.DataFrame(table, index=pd.Index(self.dose_levels, name="dose"))
