r"""Latent-logit Gaussian-process dose-toxicity model (Seno et al. 2025, Sections 4.1-4.2).

Seno, Matsui, Iwazaki, Inatsu, Takeno and Matsui (2025), *Dose-finding design based on level
set estimation in phase I cancer clinical trials*, eqs 15-21, following Takahashi and Suzuki
(2021). With :math:`K` candidate doses scaled to :math:`x_1 < \dots < x_K` in [0, 1] (equally
spaced by default, :math:`x_k = (k - 1)/(K - 1)`), a patient at dose :math:`k` has a DLT with
probability :math:`p_k = \operatorname{logistic}(f(x_k))`:

.. math::

    f &\sim GP\big(m, \sigma_f^2 k_{SE}\big), \qquad
        k_{SE}(x, x') = \exp\{-(x - x')^2 / (2 \ell^2)\} \\
    \log \sigma_f &\sim N(\mu_\sigma, s_\sigma^2) \quad (21), \qquad
        \mu_\sigma = \tfrac12 (\log L_\sigma + \log U_\sigma), \quad
        s_\sigma = \frac{\log U_\sigma - \log L_\sigma}{2 \cdot 1.96} \\
    y_i \mid f &\sim \mathrm{Bernoulli}(\operatorname{logistic}(f(x_{k_i}))) \quad (18)

so that :math:`[L_\sigma, U_\sigma]` (``sigma_f_range``) is the central 95% prior interval of
:math:`\sigma_f`. The length-scale :math:`\ell` is fixed (default 1, as in the paper's Section
4.2.2 and Appendix C.3). The PyMC model is written non-centred,
:math:`f = m + \sigma_f L z` with :math:`z \sim N(0, I)` and :math:`L L^\top = k_{SE} +
\epsilon I` (a fixed jitter :math:`\epsilon`, default :math:`10^{-6}`, part of the model for
every engine), which is what NUTS and the custom samplers both sample.

Prior mean (Section 4.2.1, :func:`quantile_prior_mean`)
-------------------------------------------------------
Prior statements about the lowest and highest doses,
:math:`P(p_1 < \phi - \delta) = q_1` and :math:`P(p_K > \phi + \delta) = q_K`, with the
marginal :math:`f(x_k) \sim N(m_k, \bar\sigma_f^2)` and :math:`\sigma_f` replaced by its prior
mean :math:`\bar\sigma_f = \exp(\mu_\sigma + s_\sigma^2/2)`, give (eqs 19-20)

.. math::

    m_1 = \operatorname{logit}(\phi - \delta) - z_{q_1} \bar\sigma_f, \qquad
    m_K = \operatorname{logit}(\phi + \delta) + z_{q_K} \bar\sigma_f ,

:math:`z_q = \Phi^{-1}(q)`. Without a prior MTD location the other :math:`m_k` lie on the line
through :math:`(x_1, m_1)` and :math:`(x_K, m_K)`. With a prior MTD level :math:`k^*`:

(i) :math:`k^* = 1`: :math:`m_1 := \operatorname{logit}\phi`, line through
    :math:`(x_1, \operatorname{logit}\phi)` and :math:`(x_K, m_K)`;
(ii) :math:`1 < k^*` and :math:`x_{k^*} \le 1/2`: :math:`m_{k^*} := \operatorname{logit}\phi`,
     line through :math:`(x_{k^*}, \operatorname{logit}\phi)` and :math:`(x_K, m_K)`;
(iii) :math:`x_{k^*} > 1/2` and :math:`k^* < K`: :math:`m_{k^*} := \operatorname{logit}\phi`,
      line through :math:`(x_1, m_1)` and :math:`(x_{k^*}, \operatorname{logit}\phi)`;
(iv) :math:`k^* = K`: :math:`m_K := \operatorname{logit}\phi`, line through
     :math:`(x_1, m_1)` and :math:`(x_K, \operatorname{logit}\phi)`.

Choices where the paper's text lost its symbols (each is an option)
-------------------------------------------------------------------
* which end point anchors the line in cases (ii) and (iii): the *farther* end from
  :math:`x_{k^*}` (so the line is the least steep one through the MTD statement and one end
  statement, and the extrapolated means stay moderate); the split is at the middle of the
  scaled range, the middle dose itself falling in case (ii);
* :math:`\delta = 0.05` (``margin``; the half-width of the proper dosing interval of mTPI and
  the BLRM, to which the paper points), :math:`q_1 = q_K = 0.8` (``prob_low``, ``prob_high``);
* :math:`[L_\sigma, U_\sigma] = [0.5, 2]` (``sigma_f_range``): on the logit scale a latent
  standard deviation from 0.5 to 2 allows departures from the prior curve from modest to large
  (at :math:`p = 0.2`, :math:`\pm 2` on the logit scale spans 0.03-0.65).

An initial guess of the DLT probabilities (step 3 of Section 4.4) gives
:math:`m_k = \operatorname{logit}(\hat p_k)` (:meth:`LatentGP.from_initial_guess`).
"""

import math
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike
from scipy.special import expit, logit, ndtr, ndtri

from dosezoo.checks import doses_within, number_array, real_array, real_number, sampler_sizes
from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceReport
from dosezoo.inference import check_random_seed, random_generator
from dosezoo.levels import checked_level_pair, level_counts, level_index, validate_dose_levels
from dosezoo.models.base import DoseModel, chain_generators, engine
from dosezoo.models.workflow import (
    StatementFit,
    check_statements,
    fit_statements,
    statement_table,
)
from dosezoo.posterior import DosePosterior, Sampling
from dosezoo.samplers import latent_gp_kernels as kernels

if TYPE_CHECKING:
    import pymc as pm


#: Default plausible range of sigma_f (the central 95% prior interval).
SIGMA_F_RANGE = (0.5, 2.0)
#: 95% central normal quantile used by eq (21).
_Z95 = float(ndtri(0.975))


_real = real_number


def sigma_f_lognormal(sigma_f_range: Sequence[float]) -> tuple[float, float]:
    r"""Return :math:`(\mu_\sigma, s_\sigma)` of eq (21) from the plausible range of sigma_f.

    :math:`P(L \le \sigma_f \le U) = 0.95` with the interval central on the log scale:
    :math:`\mu = (\log L + \log U)/2`, :math:`s = (\log U - \log L) / (2 \cdot 1.96)`.

    Parameters
    ----------
    sigma_f_range : (float, float)
        ``(L, U)`` with ``0 < L < U``.
    """
    owner = "sigma_f_range"
    if isinstance(sigma_f_range, str | bytes) or len(sigma_f_range) != 2:
        raise ValueError(f"{owner} must be a pair (lower, upper), got {sigma_f_range!r}")
    lower = _real(owner, "lower", sigma_f_range[0])
    upper = _real(owner, "upper", sigma_f_range[1])
    if not 0 < lower < upper:
        raise ValueError(f"{owner} must satisfy 0 < lower < upper, got {sigma_f_range!r}")
    return 0.5 * (math.log(lower) + math.log(upper)), (math.log(upper) - math.log(lower)) / (
        2 * _Z95
    )


def equal_spacing(n_doses: int) -> np.ndarray:
    """Scaled doses ``(k - 1) / (K - 1)``, ``k = 1..K`` (``[0.5]`` for one dose)."""
    if n_doses == 1:
        return np.array([0.5])
    return np.linspace(0.0, 1.0, n_doses)


def check_quantile_statements(
    owner: str, target: object, margin: object, prob_low: object, prob_high: object
) -> tuple[float, float]:
    """Check the statements of :func:`quantile_prior_mean`; return the target and the margin.

    A target in (0, 1), a margin > 0 keeping ``target +- margin`` in (0, 1), and the two
    probabilities in (0, 1); a ValueError names the one at fault.
    """
    phi = _real(owner, "target", target)
    delta = _real(owner, "margin", margin)
    if not 0 < phi < 1:
        raise ValueError(f"{owner}: target must lie in (0, 1), got {target!r}")
    if not (delta > 0 and phi - delta > 0 and phi + delta < 1):
        raise ValueError(
            f"{owner}: margin must be > 0 with target - margin > 0 and target + margin < 1, "
            f"got margin={margin!r} for target={target!r}"
        )
    for name, value in (("prob_low", prob_low), ("prob_high", prob_high)):
        if not 0 < _real(owner, name, value) < 1:
            raise ValueError(f"{owner}: {name} must lie in (0, 1), got {value!r}")
    return phi, delta


def quantile_prior_mean(
    target: float,
    scaled_doses: ArrayLike,
    *,
    sigma_f_mean: float,
    margin: float = 0.05,
    prob_low: float = 0.8,
    prob_high: float = 0.8,
    prior_mtd_level: int | None = None,
) -> np.ndarray:
    r"""Quantile-based prior mean of the latent curve (Seno et al. 2025, Section 4.2.1).

    Parameters
    ----------
    target : float
        Target DLT probability :math:`\phi`.
    scaled_doses : array_like of float
        :math:`x_1 < \dots < x_K` in [0, 1], at least two.
    sigma_f_mean : float
        :math:`\bar\sigma_f`, the prior mean of sigma_f.
    margin : float
        :math:`\delta`, with ``0 < target - margin`` and ``target + margin < 1``.
    prob_low, prob_high : float
        :math:`q_1 = P(p_1 < \phi - \delta)` and :math:`q_K = P(p_K > \phi + \delta)`, in
        (0, 1).
    prior_mtd_level : int, optional
        0-based level :math:`k^* - 1` of the prior MTD (cases (i)-(iv) of the module
        docstring).

    Returns
    -------
    numpy.ndarray
        :math:`m_1, \dots, m_K` on the logit scale.
    """
    owner = "quantile_prior_mean"
    phi, delta = check_quantile_statements(owner, target, margin, prob_low, prob_high)
    scale = _real(owner, "sigma_f_mean", sigma_f_mean)
    if scale <= 0:
        raise ValueError(f"{owner}: sigma_f_mean must be > 0, got {sigma_f_mean!r}")
    x = real_array(owner, "scaled_doses", scaled_doses)
    if (
        np.ndim(scaled_doses) != 1
        or x.size < 2
        or not np.all(np.isfinite(x))
        or np.any(np.diff(x) <= 0)
        or x[0] < 0
        or x[-1] > 1
    ):
        raise ValueError(
            f"{owner}: scaled_doses must be >= 2 increasing values in [0, 1], got {x!r}"
        )
    low = float(logit(phi - delta) - ndtri(prob_low) * scale)
    high = float(logit(phi + delta) + ndtri(prob_high) * scale)
    at_target = float(logit(phi))
    first, last = 0, x.size - 1
    if prior_mtd_level is None:
        anchors = ((x[first], low), (x[last], high))
    else:
        if (
            isinstance(prior_mtd_level, bool)
            or not isinstance(prior_mtd_level, int | np.integer)
            or not 0 <= prior_mtd_level <= last
        ):
            raise ValueError(
                f"{owner}: prior_mtd_level must be an integer in [0, {last}], "
                f"got {prior_mtd_level!r}"
            )
        k = int(prior_mtd_level)
        if k == first:  # case (i)
            anchors = ((x[first], at_target), (x[last], high))
        elif k == last:  # case (iv)
            anchors = ((x[first], low), (x[last], at_target))
        elif x[k] <= 0.5 * (x[first] + x[last]):  # case (ii): anchor on the highest dose
            anchors = ((x[k], at_target), (x[last], high))
        else:  # case (iii): anchor on the lowest dose
            anchors = ((x[first], low), (x[k], at_target))
    (x0, m0), (x1, m1) = anchors
    if m1 < m0:  # probabilities below 1/2 move the anchors past each other
        raise ValueError(
            f"{owner}: prob_low={prob_low!r} and prob_high={prob_high!r} give a prior mean "
            f"that decreases with the dose ({m0:.3g} at {x0:g}, {m1:.3g} at {x1:g}); the "
            "latent curve's prior mean must not decrease: raise them"
        )
    return m0 + (m1 - m0) * (x - x0) / (x1 - x0)


def squared_exponential(x: np.ndarray, length_scale: float) -> np.ndarray:
    """Correlation matrix ``exp(-(x_i - x_j)^2 / (2 l^2))``."""
    x = np.asarray(x, dtype=float)
    return np.exp(-0.5 * ((x[:, None] - x[None, :]) / length_scale) ** 2)


@dataclass(frozen=True)
class LatentGP(DoseModel):
    r"""The latent-logit GP model of Seno et al. (2025) with its hyper-parameters.

    Parameters
    ----------
    dose_levels : tuple of float
        Candidate doses (original units), strictly increasing; data doses must be among them.
        Another sequence is stored as a tuple, as are ``prior_mean`` and ``scaled_doses``.
    prior_mean : tuple of float
        Prior mean :math:`m_k` of the latent curve at each dose, logit scale. Use
        :meth:`from_quantiles` or :meth:`from_initial_guess` to construct it.
    scaled_doses : tuple of float, optional
        Positions :math:`x_k` in [0, 1], strictly increasing; equally spaced by default (None).
        Unequal spacing, e.g. ``(d - d_1) / (d_K - d_1)``, is supported.
    length_scale : float
        :math:`\ell` of the squared-exponential kernel (1).
    sigma_f_range : (float, float)
        Central 95% prior interval of :math:`\sigma_f` (eq 21); default (0.5, 2).
    jitter : float
        Added to the diagonal of the correlation matrix before the Cholesky factorisation.
    slice_width : float, optional
        Initial width of the slice move on :math:`\log\sigma_f`; :math:`s_\sigma` by default
        (None).

    Examples
    --------
    >>> model = LatentGP.from_quantiles([1, 2, 3, 4, 5], target=0.3, prior_mtd_level=2)
    >>> idata = model.fit(data, engine="kernel", random_seed=1)  # doctest: +SKIP
    """

    model_name: ClassVar[str] = "LatentGP"
    outcomes: ClassVar[tuple[str, ...]] = ("dlt",)
    probability_rates: ClassVar[tuple[str, ...]] = ("p_dlt",)
    default_engine: ClassVar[str] = "kernel"
    fast_engine: ClassVar[str | None] = "kernel"
    default_tune: ClassVar[int] = 500
    min_fit_patients: ClassVar[int] = 0
    count_posterior: ClassVar[bool] = True
    #: Samples kept by :meth:`posterior` by count state (least recently used dropped first),
    #: as many as ``posterior_cache_bytes`` holds.
    posterior_cache_size: ClassVar[int] = 1 << 16

    dose_levels: tuple[float, ...]
    prior_mean: tuple[float, ...]
    _: KW_ONLY
    # scaled_doses and slice_width are never None; the init also takes None (their default),
    # which __post_init__ replaces (equal spacing, s_sigma).
    scaled_doses: tuple[float, ...] = None  # type: ignore[assignment]  # None: see above
    length_scale: float = 1.0
    sigma_f_range: tuple[float, float] = SIGMA_F_RANGE
    jitter: float = 1e-6
    slice_width: float = None  # type: ignore[assignment]  # None: see above
    log_sigma_mu: float = field(init=False, repr=False)
    log_sigma_sd: float = field(init=False, repr=False)
    chol: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the hyper-parameters, naming the one at fault."""
        owner = "LatentGP"
        levels = validate_dose_levels(owner, self.dose_levels)
        if isinstance(self.prior_mean, str | bytes) or not isinstance(
            self.prior_mean, Sequence | np.ndarray
        ):
            raise ValueError(f"{owner}: prior_mean must be a sequence, got {self.prior_mean!r}")
        mean = tuple(_real(owner, f"prior_mean[{k}]", v) for k, v in enumerate(self.prior_mean))
        if len(mean) != len(levels):
            raise ValueError(
                f"{owner}: prior_mean has {len(mean)} values but dose_levels has {len(levels)}"
            )
        if self.scaled_doses is None:
            scaled = tuple(float(v) for v in equal_spacing(len(levels)))
        else:
            if isinstance(self.scaled_doses, str | bytes) or not isinstance(
                self.scaled_doses, Sequence | np.ndarray
            ):
                raise ValueError(
                    f"{owner}: scaled_doses must be a sequence, got {self.scaled_doses!r}"
                )
            scaled = tuple(
                _real(owner, f"scaled_doses[{k}]", v) for k, v in enumerate(self.scaled_doses)
            )
            if len(scaled) != len(levels):
                raise ValueError(
                    f"{owner}: scaled_doses has {len(scaled)} values but dose_levels has "
                    f"{len(levels)}"
                )
            for k, value in enumerate(scaled):
                if not 0 <= value <= 1 or (k and value <= scaled[k - 1]):
                    raise ValueError(
                        f"{owner}: scaled_doses must increase strictly within [0, 1], got "
                        f"{value!r} at scaled_doses[{k}]"
                    )
        length_scale = _real(owner, "length_scale", self.length_scale)
        if length_scale <= 0:
            raise ValueError(f"{owner}: length_scale must be > 0, got {self.length_scale!r}")
        jitter = _real(owner, "jitter", self.jitter)
        if not 0 < jitter < 1:
            raise ValueError(f"{owner}: jitter must lie in (0, 1), got {self.jitter!r}")
        mu, sd = sigma_f_lognormal(self.sigma_f_range)
        width = sd if self.slice_width is None else _real(owner, "slice_width", self.slice_width)
        if width <= 0:
            raise ValueError(f"{owner}: slice_width must be > 0, got {self.slice_width!r}")
        correlation = squared_exponential(np.asarray(scaled), length_scale)
        chol = np.linalg.cholesky(correlation + jitter * np.eye(len(levels)))
        chol.setflags(write=False)
        values = {
            "dose_levels": levels,
            "prior_mean": mean,
            "scaled_doses": scaled,
            "length_scale": length_scale,
            "sigma_f_range": (float(self.sigma_f_range[0]), float(self.sigma_f_range[1])),
            "jitter": jitter,
            "slice_width": width,
            "log_sigma_mu": mu,
            "log_sigma_sd": sd,
            "chol": chol,
        }
        for name, setting in values.items():
            object.__setattr__(self, name, setting)

    # ------------------------------------------------------------ constructors

    @classmethod
    def from_quantiles(
        cls,
        dose_levels: Sequence[float],
        target: float,
        *,
        margin: float = 0.05,
        prob_low: float = 0.8,
        prob_high: float = 0.8,
        prior_mtd_level: int | None = None,
        **options: Any,
    ) -> "LatentGP":
        """Model whose prior mean is the quantile-based construction of Section 4.2.1.

        ``options`` are the keyword options of the class (``scaled_doses``,
        ``sigma_f_range``, ...); see :func:`quantile_prior_mean` for the others.
        """
        levels = validate_dose_levels("LatentGP", dose_levels)
        if len(levels) < 2:  # the construction pins the curve at the lowest and highest level
            raise ValueError(
                f"LatentGP: dose_levels needs at least two doses for a quantile-based prior "
                f"mean, got {dose_levels!r}"
            )
        scaled = options.get("scaled_doses")
        scaled = equal_spacing(len(levels)) if scaled is None else scaled
        mu, sd = sigma_f_lognormal(options.get("sigma_f_range", SIGMA_F_RANGE))
        mean = quantile_prior_mean(
            target,
            scaled,
            sigma_f_mean=math.exp(mu + 0.5 * sd**2),
            margin=margin,
            prob_low=prob_low,
            prob_high=prob_high,
            prior_mtd_level=prior_mtd_level,
        )
        return cls(levels, tuple(mean), **options)

    @classmethod
    def from_initial_guess(
        cls, dose_levels: Sequence[float], p_guess: Sequence[float], **options: Any
    ) -> "LatentGP":
        """Model with prior mean ``logit(p_guess)`` (an initial guess of the DLT rates)."""
        if isinstance(p_guess, str | bytes) or not isinstance(p_guess, Sequence | np.ndarray):
            raise ValueError(f"LatentGP: p_guess must be a sequence, got {p_guess!r}")
        guess = [_real("LatentGP", f"p_guess[{k}]", v) for k, v in enumerate(p_guess)]
        for k, value in enumerate(guess):
            if not 0 < value < 1:
                raise ValueError(f"LatentGP: p_guess[{k}] must lie in (0, 1), got {value!r}")
        levels = validate_dose_levels("LatentGP", dose_levels)
        return cls(levels, tuple(float(v) for v in logit(guess)), **options)

    # -------------------------------------------------------------- properties

    @property
    def n_doses(self) -> int:
        """Number of candidate doses."""
        return len(self.dose_levels)

    @property
    def sigma_f_mean(self) -> float:
        """Prior mean of sigma_f, ``exp(mu + s^2 / 2)``."""
        return math.exp(self.log_sigma_mu + 0.5 * self.log_sigma_sd**2)

    def parameters(self) -> dict[str, object]:
        """Hyper-parameters as a plain dict (recorded in every fit's attributes)."""
        return {
            "dose_levels": list(self.dose_levels),
            "prior_mean": list(self.prior_mean),
            "scaled_doses": list(self.scaled_doses),
            "length_scale": self.length_scale,
            "sigma_f_range": list(self.sigma_f_range),
            "jitter": self.jitter,
        }

    # -------------------------------------------------------------------- data

    def sufficient_statistic(self, data: TrialData) -> bytes:
        """Return the patients and DLTs per dose level: all the posterior depends on."""
        n, y = self.counts(data)
        return n.tobytes() + y.tobytes()

    def counts(self, data: TrialData) -> tuple[np.ndarray, np.ndarray]:
        """Patients and DLTs per dose level (float arrays), validating the data.

        Raises
        ------
        DataError
            If ``dlt`` is missing or a dose is not one of ``dose_levels`` (naming row and
            value).
        """
        counts = level_counts(data, self.dose_levels, owner="LatentGP")
        return counts.n.astype(float), counts.y.astype(float)

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check the data: a 0/1 ``dlt`` column and doses among the levels."""
        self._level_index(data)
        data.require("dlt", min_patients=min_patients, model="LatentGP")

    def data_values(self, data: TrialData) -> dict[str, np.ndarray]:
        """Return the values of the model's data containers: ``dose_index`` and ``dlt_obs``."""
        index, dlt = self._level_index(data)
        return {"dose_index": index, "dlt_obs": dlt}

    def _level_index(self, data: TrialData) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(data, TrialData):
            raise TypeError(f"LatentGP needs a TrialData, got {type(data).__name__}")
        data.require("dlt", min_patients=0, model="LatentGP")
        index = level_index(data.dose, self.dose_levels, owner="LatentGP")
        return index, np.asarray(data.column("dlt"), dtype=np.int64)

    # ------------------------------------------------------------------- model

    def build(self, data: TrialData) -> "pm.Model":
        """Build the non-centred PyMC model, data in ``pm.Data`` containers.

        Free variables ``sigma_f`` (log-normal, eq 21) and ``z`` (dims ``dose``);
        deterministics ``f = m + sigma_f L z`` and ``p_dlt = logistic(f)`` (dims ``dose``);
        observed ``dlt`` (dims ``patient``). The prior mean, the Cholesky factor and the
        log-normal parameters are ``pm.Data`` so the step methods read them from the model.

        Parameters
        ----------
        data : TrialData
            Doses among ``dose_levels`` and a 0/1 ``dlt`` column; may be empty.

        Returns
        -------
        pymc.Model
        """
        import pymc as pm
        import pytensor.tensor as pt

        index, dlt = self._level_index(data)
        coords = {
            "dose": np.asarray(self.dose_levels),
            "dose_col": np.arange(self.n_doses),
            "patient": np.arange(index.size),
        }
        with pm.Model(coords=coords) as model:
            prior_mean = pm.Data("prior_mean", np.asarray(self.prior_mean), dims="dose")
            chol = pm.Data("chol", np.asarray(self.chol), dims=("dose", "dose_col"))
            mu = pm.Data("log_sigma_mu", self.log_sigma_mu)
            sd = pm.Data("log_sigma_sd", self.log_sigma_sd)
            dose_index = pm.Data("dose_index", index, dims="patient")
            dlt_obs = pm.Data("dlt_obs", dlt, dims="patient")
            sigma_f = pm.LogNormal("sigma_f", mu=mu, sigma=sd)
            z = pm.Normal("z", 0.0, 1.0, dims="dose")
            f = pm.Deterministic("f", prior_mean + sigma_f * pt.dot(chol, z), dims="dose")
            pm.Deterministic("p_dlt", pm.math.sigmoid(f), dims="dose")
            pm.Bernoulli("dlt", logit_p=f[dose_index], observed=dlt_obs, dims="patient")
        return model

    # ----------------------------------------------------------------- engines

    def step_methods(self, model: "pm.Model") -> list:
        """Return the sweep of ``engine="pymc"``: elliptical slice on z, two slices on sigma."""
        # The step methods subclass PyMC's: imported here, where PyMC runs, so the fast
        # engines never load PyMC.
        from dosezoo.samplers.latent_gp import latent_gp_steps

        return latent_gp_steps(model)

    @engine("kernel")
    def _fit_kernel(
        self, data: TrialData, *, draws: int, tune: int, chains: int, random_seed, **_
    ) -> xr.DataTree:
        """Elliptical slice on ``z`` + slice on ``log sigma_f`` compiled with numba."""
        started = time.perf_counter()
        n, y = self.counts(data)
        raw = self.sample_kernel(
            n, y, draws=draws, tune=tune, chains=chains, random_seed=random_seed
        )
        free = {"sigma_f": np.exp(raw["log_sigma_f"]), "z": raw["z"]}
        stats = {name: raw[name] for name in kernels.SWEEP_STATS}
        return self._from_draws(data, free, stats, started=started, tune=tune)

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Sample the posterior of the DLT probabilities with the numba kernel (no DataTree).

        The path of simulation loops. The posterior depends on the data only through the
        patients and DLTs per level (:meth:`sufficient_statistic`), so the samples are kept
        (:attr:`posterior_cache_size`, :attr:`posterior_cache_bytes`) by those counts, the
        sampler's settings and the seed (:meth:`_draws`). Convergence is judged by the
        single-chain criterion of ``sampling.criteria``: the effective sample size of each
        :math:`p_k` (Geyer's initial monotone sequence, :func:`effective_sample_size`, summed
        over chains) on the lowest ``sampling.levels`` doses must reach its ``min_ess_bulk``;
        R-hat is not computed. The posterior's ``ess`` holds the ESS per level.

        Parameters
        ----------
        data : TrialData
            Doses among the levels and a 0/1 ``dlt`` column (may be empty: the prior).
        sampling : Sampling, optional
            Draws, burn-in (the model's default when None), chains, seed, criteria, levels.

        Returns
        -------
        DosePosterior
            ``p_dlt`` draws (chain-major), their ESS per level, and a report when checked.
        """
        sampling = Sampling() if sampling is None else sampling
        tune = self.default_tune if sampling.tune is None else sampling.tune
        n, y = self.counts(data)
        p_dlt, ess = self._draws(n, y, sampling.draws, tune, sampling.chains, sampling.random_seed)
        report = None
        if sampling.criteria is not None:
            least = float(ess[: sampling.levels].min())
            minimum = sampling.criteria.min_ess_bulk
            failures = () if least >= minimum else (f"p_dlt: ESS {least:.0f} < {minimum:g}",)
            report = ConvergenceReport(table=None, divergences=0, failures=failures)
        return DosePosterior(
            dose_levels=self.dose_levels,
            rates={"p_dlt": p_dlt.reshape(-1, self.n_doses)},
            chains=sampling.chains,
            report=report,
            ess={"p_dlt": ess},
        )

    def _draws(
        self,
        n: np.ndarray,
        y: np.ndarray,
        draws: int,
        tune: int,
        chains: int,
        random_seed: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``p_dlt`` draws (chain, draw, K) and their ESS per level, memoised by the counts.

        The draws depend on the data only through the counts and on the sampler's settings
        and seed: trials of a simulation that reach the same counts with the same seed (a
        design seeds from the count state) share one run of the sampler. The arrays are
        shared, hence read-only. Without a seed the draws are fresh every time.
        """
        key = (n.tobytes(), y.tobytes(), draws, tune, chains, random_seed)
        memo = self._memo("posterior_draws")
        found = None if random_seed is None else memo.get(key)  # unseeded: fresh draws
        if found is not None:
            return found
        raw = self.sample_kernel(
            n, y, draws=draws, tune=tune, chains=chains, random_seed=random_seed
        )
        p_dlt = raw["p_dlt"]
        ess = sum((effective_sample_size(chain) for chain in p_dlt), np.zeros(self.n_doses))
        if random_seed is None:
            return p_dlt, ess
        p_dlt.flags.writeable = False
        ess.flags.writeable = False
        memo.keep(key, (p_dlt, ess), p_dlt.nbytes + ess.nbytes)
        return p_dlt, ess

    def _prior_mean(self, owner: str, mean: object | None) -> np.ndarray:
        """Return the model's prior mean, or ``mean`` given instead: a finite number per level."""
        if mean is None:
            return np.asarray(self.prior_mean, dtype=float)
        given = real_array(owner, "mean", mean)
        if given.shape != (self.n_doses,) or not np.all(np.isfinite(given)):
            raise ValueError(
                f"{owner}: mean must be {self.n_doses} finite numbers, one per dose level, got "
                f"{given.tolist()}"
            )
        return given

    def sample_kernel(
        self,
        n: np.ndarray,
        y: np.ndarray,
        *,
        draws: int = 1000,
        tune: int = 200,
        chains: int = 1,
        random_seed: int | np.random.Generator | None = None,
        mean: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the numba sampler on per-dose counts and return raw arrays (no InferenceData).

        This is the path for simulation loops. Seeding follows ``pm.sample``: one generator
        per chain from ``spawn``, one integer drawn from each, then the sweeps, which start
        at ``z = 0``, ``log sigma_f = mu``.

        Parameters
        ----------
        n, y : numpy.ndarray
            Patients and DLTs per dose level (floats), shape (K,).
        mean : numpy.ndarray, optional
            A prior mean to use instead of the model's (a design that re-derives the mean
            from the data of its first stage passes it here without rebuilding the model).

        Returns
        -------
        dict
            ``z`` (chain, draw, K), ``log_sigma_f`` (chain, draw), ``p_dlt``
            (chain, draw, K) and the sweep statistics (chain, draw).
        """
        owner = "LatentGP.sample_kernel"
        draws, tune, chains = sampler_sizes(owner, draws, tune, chains)
        n, y = checked_level_pair(owner, n, y, self.n_doses)
        m = self._prior_mean(owner, mean)
        chol = np.ascontiguousarray(self.chol)
        z_all, t_all, s_all, p_all = [], [], [], []
        start = np.zeros(self.n_doses)
        for rng in chain_generators(random_seed, chains):
            z, t, stats = kernels.run_chain(
                rng,
                start,
                self.log_sigma_mu,
                chol,
                m,
                n,
                y,
                self.log_sigma_mu,
                self.log_sigma_sd,
                self.slice_width,
                tune,
                draws,
            )
            z_all.append(z)
            t_all.append(t)
            s_all.append(stats)
            p_all.append(kernels.dlt_probabilities(z, t, chol, m))
        stats = np.stack(s_all)
        out = {
            "z": np.stack(z_all),
            "log_sigma_f": np.stack(t_all),
            "p_dlt": np.stack(p_all),
        }
        for i, (name, dtype) in enumerate(kernels.SWEEP_STATS.items()):
            out[name] = stats[:, :, i].astype(dtype)
        return out

    # ----------------------------------------------------------- prior checks

    def prior_monotone_probability(
        self,
        n_draws: int = 20000,
        *,
        random_seed: int | np.random.Generator | None = None,
        mean: ArrayLike | None = None,
    ) -> tuple[float, float]:
        r"""Prior probability that the DLT curve increases over the dose levels (Appendix B).

        Seno et al. (2025), Section 4.2.2 and Appendix B, choose the length-scale so that
        prior curves are monotone with high probability. This is that probability at the
        doses, by Monte Carlo from the prior: :math:`\log\sigma_f \sim N(\mu_\sigma,
        s_\sigma^2)`, :math:`f = m + \sigma_f L z`, :math:`z \sim N(0, I)` (the model's
        non-centred form, jitter included), and

        .. math::

            P\big(p_1 < p_2 < \dots < p_K\big) = P\big(f(x_1) < \dots < f(x_K)\big)

        (the logistic link is increasing). Only the doses are checked, not the curve
        between them.

        Parameters
        ----------
        n_draws : int
            Prior draws (20000).
        random_seed : int or numpy.random.Generator, optional
        mean : array_like, optional
            A prior mean to use instead of the model's, shape (K,) (e.g. that of a prior MTD
            location, :func:`quantile_prior_mean`).

        Returns
        -------
        (float, float)
            The probability and its Monte Carlo standard error
            :math:`\sqrt{\hat P (1 - \hat P) / n}`.
        """
        owner = "LatentGP.prior_monotone_probability"
        if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 1:
            raise ValueError(f"{owner}: n_draws must be an integer >= 1, got {n_draws!r}")
        m = self._prior_mean(owner, mean)
        check_random_seed(owner, random_seed)
        rng = random_generator(random_seed)
        sigma = np.exp(self.log_sigma_mu + self.log_sigma_sd * rng.standard_normal(n_draws))
        z = rng.standard_normal((n_draws, self.n_doses))
        f = m[None, :] + sigma[:, None] * (z @ self.chol.T)
        monotone = np.all(np.diff(f, axis=1) > 0, axis=1)
        p = float(monotone.mean())
        return p, math.sqrt(p * (1 - p) / n_draws)

    # ------------------------------------------------------------ interpolation

    def latent_between(
        self, f_draws: np.ndarray, grid: np.ndarray, *, mean: np.ndarray | None = None
    ) -> np.ndarray:
        r"""Latent curve between the doses: the GP conditional mean given its values there.

        For each draw, :math:`f(x) = m(x) + k(x, X) C^{-1} (f_X - m_X)` with :math:`m(x)` the
        piecewise-linear interpolation of the prior mean (``sigma_f`` cancels).

        Parameters
        ----------
        f_draws : numpy.ndarray
            Latent values at the doses, shape (draws, K).
        grid : numpy.ndarray
            Scaled doses in [0, 1], shape (G,).
        mean : numpy.ndarray, optional
            The prior mean the draws were sampled with (the model's by default).

        Returns
        -------
        numpy.ndarray
            Shape (draws, G).
        """
        owner = "LatentGP.latent_between"
        x = np.asarray(self.scaled_doses)
        grid = doses_within(owner, grid, 0.0, 1.0, entry="entry", space="the scaled doses")
        if grid.ndim != 1:
            raise ValueError(f"{owner}: grid must be one sequence of scaled doses ({grid.ndim}-D)")
        f_draws = np.asarray(number_array(owner, "f_draws", f_draws), dtype=float)
        if f_draws.ndim != 2 or f_draws.shape[1] != x.size:
            raise ValueError(
                f"{owner}: f_draws must have shape (draws, {x.size}), got {f_draws.shape}"
            )
        key = ("kriging", grid.tobytes())
        weights = self._cache.get(key)
        if weights is None:
            cross = np.exp(-0.5 * ((grid[:, None] - x[None, :]) / self.length_scale) ** 2)
            weights = np.linalg.solve(self.chol.T, np.linalg.solve(self.chol, cross.T)).T
            self._cache[key] = weights
        prior = self._prior_mean(owner, mean)
        mean_grid = np.interp(grid, x, prior)
        return mean_grid[None, :] + (f_draws - prior[None, :]) @ weights.T


def effective_sample_size(draws: np.ndarray) -> np.ndarray:
    r"""Effective sample size of each column of one chain (Geyer's initial monotone sequence).

    :math:`\hat N_{eff} = N / (1 + 2 \sum_t \hat\rho_t)`, autocorrelations by FFT, the sum
    over Geyer's pairs :math:`\hat\rho_{2m} + \hat\rho_{2m+1}` while positive, made
    monotone (:func:`dosezoo.samplers.latent_gp_kernels.geyer_ess`). Cheap (a few microseconds
    for 500 x 5 draws of a well-mixing chain) where ``arviz.ess`` costs milliseconds, so a
    design can check every fit in a simulation loop. A column without variation gets ``N``.

    Parameters
    ----------
    draws : numpy.ndarray
        Shape (N,) or (N, m).

    Returns
    -------
    numpy.ndarray
        Shape (m,) (a 0-d array for 1-d input).
    """
    owner = "effective_sample_size"
    x = np.asarray(number_array(owner, "draws", draws), dtype=float)
    if x.ndim not in (1, 2) or x.shape[0] < 2 or not np.all(np.isfinite(x)):
        # NaN read as no information (ESS 0); one draw divided by zero
        raise ValueError(
            f"{owner}: draws must be at least 2 finite draws, shape (N,) or (N, m), got shape "
            f"{x.shape}{'' if np.all(np.isfinite(x)) else ' with values that are not finite'}"
        )
    flat = x.ndim == 1
    ess = kernels.geyer_ess(np.ascontiguousarray(x[:, None] if flat else x))
    return ess[0] if flat else ess


def frame_to_data(dose: Sequence[float], dlt: Sequence[int]) -> TrialData:
    """Trial data from doses and 0/1 DLTs, one cohort per patient (for tests and examples)."""
    return TrialData.from_dataframe(pd.DataFrame({"dose": list(dose), "dlt": list(dlt)}))


def latent_gp_prior_from_statements(
    dose_levels: Sequence[float],
    quantiles: ArrayLike,
    *,
    probabilities: Sequence[float] = (0.05, 0.5, 0.95),
) -> StatementFit:
    r"""Turn quantiles of the DLT probability at every level into the latent GP's prior.

    At level :math:`k`, :math:`f_k = m_k + \sigma_f g_k` with :math:`g_k \sim N(0, 1 +
    \epsilon)` and :math:`\log \sigma_f \sim N(\mu_\sigma, s_\sigma^2)` (eq 21), a symmetric
    scale mixture: the median of :math:`p_k = \operatorname{expit}(f_k)` is
    :math:`\operatorname{expit}(m_k)`, so :math:`m_k` is the logit of the stated median (or of
    the middle stated quantile's fit), and the spread fixes :math:`(\mu_\sigma, s_\sigma)`. The
    :math:`q`-quantile of :math:`\sigma_f g` solves :math:`E[\Phi(t / \sigma_f)] = q`
    (Gauss-Hermite over :math:`\log \sigma_f`, bisection in :math:`t`); all of :math:`m` and
    :math:`(\mu_\sigma, \log s_\sigma)` are the least-squares fit of the implied quantiles to the
    stated ones. The prior is returned as ``sigma_f_range``, the central 95 % interval
    :math:`\exp(\mu_\sigma \pm 1.96\, s_\sigma)` that :func:`sigma_f_lognormal` inverts.

    The quantiles of :math:`\sigma_f g` are symmetric about 0, so statements at levels
    :math:`q` and :math:`1 - q` fix one number, their spread :math:`t_q`, and the median none:
    :math:`(\mu_\sigma, s_\sigma)` is identified only by levels at two distances or more
    from 1/2 (e.g. 0.05, 0.25, 0.5, 0.75, 0.95). With fewer (the default 0.05, 0.5, 0.95),
    every prior along a ridge of :math:`(\mu_\sigma, s_\sigma)` gives the same quantiles,
    and :math:`s_\sigma` is kept at that of the default ``sigma_f_range`` (0.5, 2) while
    :math:`\mu_\sigma` is fitted: the search would otherwise drift along the ridge to a
    :math:`\sigma_f` range of thousands, where the quadrature fails.

    Parameters
    ----------
    dose_levels : sequence of float
        The levels (quantiles are stated at every one).
    quantiles : array_like
        Stated quantiles, shape (len(dose_levels), len(probabilities)).
    probabilities : sequence of float

    Returns
    -------
    StatementFit
        ``options`` are keywords of :class:`LatentGP` (``LatentGP(**fit.options)``).

    Raises
    ------
    ValueError
        If a quantile is off (0, 1) or a row does not increase, the stated spread exceeds the
        quadrature's reach, or the fitted s_sigma is at the edge of its search.
    """
    owner = "latent_gp_prior_from_statements"
    levels = validate_dose_levels(owner, dose_levels)
    stated = check_statements(owner, len(levels), quantiles, probabilities)
    q = np.asarray(probabilities, dtype=float)
    bracket = np.linspace(-40.0, 40.0, 4001)
    fine_bracket = np.linspace(-40.0, 40.0, 16001)

    def spread_quantiles(mu: float, sd: float, *, fine: bool = False) -> np.ndarray:
        nodes, weights = np.polynomial.hermite_e.hermegauss(120 if fine else 40)
        grid = fine_bracket if fine else bracket
        # Far along the ridge sigma over- or underflows: the result is then not finite, which
        # the search reads as an infinite loss and the check below as unresolved.
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            sigma = np.exp(mu + sd * nodes)
            cdf = (weights[None] / weights.sum() * ndtr(grid[:, None] / sigma[None])).sum(axis=1)
        return np.interp(q, cdf, grid)

    middle = logit(stated[:, len(q) // 2])
    distances = {round(abs(float(z)), 9) for z in ndtri(q) if z != 0.0}
    if len(distances) >= 2:

        def implied(v: np.ndarray) -> np.ndarray:
            t = spread_quantiles(v[0], math.exp(v[1]))
            return expit(v[2:, None] + t[None])

        starts = [[0.0, math.log(0.35), *middle], [-0.5, math.log(0.2), *middle]]
        best = fit_statements(
            implied, stated, starts, owner=owner, names=("log s_sigma",), bounded=slice(1, 2)
        )
    else:  # one spread stated: s_sigma is not identified (see above)
        default_sd = sigma_f_lognormal(SIGMA_F_RANGE)[1]

        def implied(v: np.ndarray) -> np.ndarray:
            t = spread_quantiles(v[0], default_sd)
            return expit(v[1:, None] + t[None])

        found = fit_statements(
            implied,
            stated,
            [[0.0, *middle], [-0.5, *middle]],
            owner=owner,
            names=(),
            bounded=slice(0, 0),
        )
        best = np.concatenate([found[:1], [math.log(default_sd)], found[1:]])
    mu, sd = float(best[0]), math.exp(best[1])
    if np.any(np.abs(spread_quantiles(mu, sd)) >= bracket[-1]):
        raise ValueError(
            f"{owner}: the stated quantiles span more than {bracket[-1]:g} on the logit scale; "
            "no latent GP prior this function fits gives them"
        )
    options = {
        "dose_levels": levels,
        "prior_mean": tuple(float(m) for m in best[2:]),
        "sigma_f_range": (math.exp(mu - _Z95 * sd), math.exp(mu + _Z95 * sd)),
    }
    labels = [f"p_dlt at {dose:g}" for dose in levels]
    # The table from a finer quadrature than the search's: a fit where the two disagree lies
    # beyond the search's reach, and its table would report an error the prior does not keep.
    fitted = expit(best[2:, None] + spread_quantiles(mu, sd, fine=True)[None])
    searched = expit(best[2:, None] + spread_quantiles(mu, sd)[None])
    if not np.all(np.abs(fitted - searched) <= 1e-3):
        raise ValueError(
            f"{owner}: the closest fit has a sigma_f range of "
            f"({options['sigma_f_range'][0]:.3g}, {options['sigma_f_range'][1]:.3g}), beyond "
            "what the fit's quadrature resolves; check the statements"
        )
    return StatementFit(options, statement_table(labels, q, stated, fitted))
