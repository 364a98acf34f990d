r"""The Bayesian logistic regression model (BLRM) of Neuenschwander, Branson and Gsponer (2008).

Neuenschwander, B., Branson, M. and Gsponer, T. (2008). Critical aspects of the Bayesian approach
to phase I cancer trials. *Statistics in Medicine* 27, 2420-2439 (Lin 2023 builds on it):

.. math::

    \operatorname{logit} p(d) = \log\alpha + \beta \log(d / d^*), \qquad
    (\log\alpha, \log\beta) \sim N_2\big((\mu_\alpha, \mu_\beta),
        \begin{pmatrix} \sigma_\alpha^2 & \rho\sigma_\alpha\sigma_\beta \\
        \rho\sigma_\alpha\sigma_\beta & \sigma_\beta^2 \end{pmatrix}\big),

with reference dose :math:`d^*` (:math:`\alpha` is the odds of a DLT at :math:`d^*`) and
:math:`\beta > 0`, so that :math:`p` increases with dose. The PyMC model writes the bivariate
normal as :math:`\log\alpha` and :math:`\log\beta \mid \log\alpha`. Decisions integrate the
posterior over :math:`(\log\beta, \log\alpha)` by a tensor Gauss-Legendre rule fitted to it
(:mod:`dosezoo.samplers.logistic_quadrature`); the grid engine (exact draws) on an adaptive
96 x 96 grid.

Default prior: :math:`\mu = (\operatorname{logit} 0.2, 0)`, :math:`\sigma = (2, 1)`,
:math:`\rho = 0`, the weakly informative prior of OncoBayes2's examples. Two constructions of the
paper are helpers:

- :func:`blrm_prior_from_quantiles`: the bivariate normal whose implied 2.5%, 50% and 97.5%
  quantiles of :math:`p(d)` at given doses are closest (least squares on the probability
  scale, as crmPack's ``Quantiles2LogisticNormal`` measures its distance) to stated ones.
  The quantiles of :math:`\operatorname{logit} p(d) = \log\alpha + e^{\log\beta} x`
  (:math:`x = \log(d/d^*)`) are exact: given :math:`\log\beta` it is normal, so its CDF is a
  Gauss-Hermite average of normal CDFs over :math:`\log\beta`, inverted by root finding.
- :func:`blrm_minimal_informative_prior`: the paper's minimally informative prior (Appendix
  A.1), constructed as crmPack's ``MinimalInformative`` does with ``logNormal = TRUE`` (the
  slope log-normal, as in this model; crmPack's default is a normal slope). The *minimal
  informative* beta with :math:`P(X \le q) = p` is :math:`\mathrm{Beta}(\log p / \log q, 1)` when
  :math:`q > p` and :math:`\mathrm{Beta}(1, \log(1-p) / \log(1-q))` otherwise. At the lowest
  dose it is the one with :math:`P(p > q_{min}) = \pi_{min}`, at the highest the one with
  :math:`P(p < q_{max}) = \pi_{max}`; their medians are joined by a line in log dose on the
  logit scale, which gives a median at every dose of the grid; at each dose the minimal
  informative beta with that median gives the 2.5% and 97.5% quantiles; and the bivariate
  normal is fitted to the three quantiles at every dose by :func:`blrm_prior_from_quantiles`
  (least squares, where crmPack minimises the largest absolute distance by a stochastic
  search; the end-point statements therefore hold approximately, as in crmPack). The
  minimally informative intervals are nearly parallel on the logit scale, so the fit puts the
  uncertainty in :math:`\log\alpha` and gives :math:`\log\beta` a small sd with a strong
  correlation: that is the bivariate normal closest to the construction, not a failure of the
  fit (``tests/test_blrm_ewoc_boin.py`` bounds its distance to the constructed quantiles).
"""

import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy.special import expit, logit, ndtr, ndtri

from dosezoo.checks import real_number
from dosezoo.data import TrialData
from dosezoo.errors import DataError
from dosezoo.levels import validate_dose_levels
from dosezoo.models.binary import DoseSummary, LogisticQuadratureModel
from dosezoo.models.workflow import check_statements, fit_statements
from dosezoo.samplers import logistic_quadrature
from dosezoo.samplers.logistic_kernels import logistic_log_likelihood

if TYPE_CHECKING:
    import pymc as pm


__all__ = ["BLRM", "BLRMPrior", "blrm_minimal_informative_prior", "blrm_prior_from_quantiles"]

_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(48)
#: Most steps of a quantile's root search: enough to bisect the doubles' range to 1e-10.
_ROOT_STEPS = 1200
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()


@dataclass(frozen=True)
class BLRMPrior:
    r"""Bivariate normal prior of :math:`(\log\alpha, \log\beta)`.

    Parameters
    ----------
    mean : tuple of float
        :math:`(\mu_\alpha, \mu_\beta)`.
    sd : tuple of float
        :math:`(\sigma_\alpha, \sigma_\beta)`, both > 0.
    correlation : float
        :math:`\rho` in (-1, 1).
    """

    mean: tuple[float, float] = (float(logit(0.2)), 0.0)
    sd: tuple[float, float] = (2.0, 1.0)
    correlation: float = 0.0

    def __post_init__(self) -> None:
        """Validate the parameters, naming the one at fault."""
        owner = "BLRMPrior"
        for name in ("mean", "sd"):
            value = getattr(self, name)
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
                raise ValueError(f"{owner}: {name} must be a pair of numbers, got {value!r}")
            if len(value) != 2:
                raise ValueError(f"{owner}: {name} must be a pair of numbers, got {value!r}")
            pair = tuple(real_number(owner, f"{name}[{i}]", v) for i, v in enumerate(value))
            object.__setattr__(self, name, pair)
        for i, value in enumerate(self.sd):
            if value <= 0:
                raise ValueError(f"{owner}: sd[{i}] must be > 0, got {value!r}")
        correlation = real_number(owner, "correlation", self.correlation)
        if not -1 < correlation < 1:
            raise ValueError(f"{owner}: correlation must lie in (-1, 1), got {correlation!r}")
        object.__setattr__(self, "correlation", correlation)

    def logit_quantiles(self, x: np.ndarray, probabilities: Sequence[float]) -> np.ndarray:
        r"""Return quantiles of :math:`\log\alpha + e^{\log\beta} x`, shape (len(x), len(p)).

        Given :math:`\log\beta = \mu_\beta + \sigma_\beta z`, the sum is normal with mean
        :math:`\mu_\alpha + \rho\sigma_\alpha z + e^{\log\beta} x` and sd
        :math:`\sigma_\alpha\sqrt{1 - \rho^2}`; its CDF is the 48-point Gauss-Hermite average
        over :math:`z`. Against adaptive quadrature (:math:`\mu = 0`, :math:`\sigma_\alpha = 1`,
        :math:`x = 1`): within 3e-8 in logit for :math:`\sigma_\beta = 0.5`; for
        :math:`\sigma_\beta = 1` within 3e-5 at the median and 0.12 at the 97.5 % quantile
        (logit 7.43 for 7.31: DLT probabilities 0.99941 for 0.99933), as the average over
        :math:`z` of a CDF that steepens in :math:`z` far out converges slowly.
        """
        from scipy import optimize

        (mu_a, mu_b), (sd_a, sd_b), rho = self.mean, self.sd, self.correlation
        slope = np.exp(mu_b + sd_b * _HERMITE_NODES)
        centre = mu_a + rho * sd_a * _HERMITE_NODES
        scale = sd_a * math.sqrt(1 - rho**2)
        out = np.empty((len(x), len(probabilities)))
        for i, xi in enumerate(np.asarray(x, dtype=float)):
            means = centre + slope * xi

            def cdf(t: float, means: np.ndarray = means) -> float:
                return float(_HERMITE_WEIGHTS @ ndtr((t - means) / scale))

            for j, p in enumerate(probabilities):
                # A mixture's quantile lies between its components' quantiles (here a scale
                # beyond them). A fit may try slopes so steep that they lie 1e100 apart:
                # bisection then needs some 400 steps to reach 1e-10, beyond brentq's default
                # 100 (a RuntimeError).
                spread = scale * float(ndtri(p))
                low, high = means.min() + spread - scale, means.max() + spread + scale
                out[i, j] = optimize.brentq(
                    lambda t, p=p: cdf(t) - p, low, high, xtol=1e-10, maxiter=_ROOT_STEPS
                )
        return out


def blrm_prior_from_quantiles(
    doses: Sequence[float],
    reference_dose: float,
    quantiles: np.ndarray,
    *,
    probabilities: Sequence[float] = (0.025, 0.5, 0.975),
) -> BLRMPrior:
    r"""Fit the bivariate normal prior whose implied quantiles of p(d) match stated ones.

    Parameters
    ----------
    doses : sequence of float
        Doses at which quantiles are stated (> 0).
    reference_dose : float
        :math:`d^*` of the model.
    quantiles : array-like
        Stated quantiles of the DLT probability, shape (len(doses), len(probabilities)),
        increasing along each row, in (0, 1).
    probabilities : sequence of float
        The quantile levels (2.5%, 50%, 97.5% by default).

    Returns
    -------
    BLRMPrior
        The least-squares fit of the implied quantiles to the stated ones (Nelder-Mead from
        three starts over means, log sds and the Fisher transform of the correlation).

    Raises
    ------
    ValueError
        If a quantile is off (0, 1) or a row does not increase, quantiles fall at a higher
        dose, or the fit's sds or correlation are at the edge of their search.
    """
    return _fit_prior("blrm_prior_from_quantiles", doses, reference_dose, quantiles, probabilities)


def _fit_prior(
    owner: str,
    doses: Sequence[float],
    reference_dose: float,
    quantiles: np.ndarray,
    probabilities: Sequence[float],
    *,
    refuse_edge: bool = True,
) -> BLRMPrior:
    """Fit the prior as :func:`blrm_prior_from_quantiles` says (``refuse_edge``: its Raises)."""
    x = np.log(
        np.asarray(validate_dose_levels(owner, doses))
        / _positive(owner, "reference_dose", reference_dose)
    )
    if x.size < 2:
        raise ValueError(
            f"{owner}: doses needs at least two doses (statements at one dose cannot tell the "
            f"intercept from the slope), got {doses!r}"
        )
    # p(d) increases with the dose at every (alpha, beta): the slope exp(log beta) > 0.
    stated = check_statements(owner, x.size, quantiles, probabilities, dose_order=x)

    def unpack(v: np.ndarray) -> BLRMPrior:
        return BLRMPrior((v[0], v[1]), (math.exp(v[2]), math.exp(v[3])), math.tanh(v[4]))

    def implied(v: np.ndarray) -> np.ndarray:
        return expit(unpack(v).logit_quantiles(x, probabilities))

    # Several starts: the loss has flat ridges along the correlation.
    centre = float(np.interp(0.0, x, logit(stated[:, len(probabilities) // 2])))
    starts = [
        [centre, 0.0, math.log(1.5), math.log(0.7), 0.0],
        [centre, 0.0, 0.0, math.log(0.3), 1.0],
        [centre, -0.5, math.log(0.7), 0.0, -0.5],
    ]
    names = ("log sd of log(alpha)", "log sd of log(beta)", "atanh of the correlation")
    return unpack(
        fit_statements(
            implied,
            stated,
            starts,
            owner=owner,
            names=names,
            bounded=slice(2, None),
            refuse_edge=refuse_edge,
        )
    )


def blrm_minimal_informative_prior(
    dose_levels: Sequence[float],
    reference_dose: float,
    *,
    threshold_min: float = 0.2,
    threshold_max: float = 0.3,
    prob_min: float = 0.05,
    prob_max: float = 0.05,
) -> BLRMPrior:
    r"""Build Neuenschwander et al.'s minimally informative prior (see the module docstring).

    Parameters
    ----------
    dose_levels : sequence of float
        The dose grid; its lowest and highest doses carry the prior statements.
    reference_dose : float
        :math:`d^*`.
    threshold_min, prob_min : float
        At the lowest dose, :math:`P(p > \text{threshold\_min}) = \text{prob\_min}`.
    threshold_max, prob_max : float
        At the highest dose, :math:`P(p < \text{threshold\_max}) = \text{prob\_max}`.

    Returns
    -------
    BLRMPrior
    """
    owner = "blrm_minimal_informative_prior"
    valid_levels = validate_dose_levels(owner, dose_levels)
    levels = np.asarray(valid_levels)
    if levels.size < 2:
        raise ValueError(f"{owner}: dose_levels needs at least two doses, got {dose_levels!r}")
    values = {}
    for name, value in (
        ("threshold_min", threshold_min),
        ("threshold_max", threshold_max),
        ("prob_min", prob_min),
        ("prob_max", prob_max),
    ):
        values[name] = real_number(owner, name, value)
        if not 0 < values[name] < 1:
            raise ValueError(f"{owner}: {name} must lie in (0, 1), got {value!r}")
    levels_probs = (0.025, 0.5, 0.975)
    lowest = _minimal_informative_beta(1 - values["prob_min"], values["threshold_min"])
    highest = _minimal_informative_beta(values["prob_max"], values["threshold_max"])
    log_dose = np.log(levels)
    share = (log_dose - log_dose[0]) / (log_dose[-1] - log_dose[0])
    end_medians = logit([lowest.median(), highest.median()])
    medians = expit(end_medians[0] + share * (end_medians[1] - end_medians[0]))
    quantiles = np.array(
        [_minimal_informative_beta(0.5, median).ppf(levels_probs) for median in medians]
    )
    # The intervals are nearly parallel: the closest normal may have the slope's sd or the
    # correlation at the search's bounds, by design (the module docstring), not refused.
    return _fit_prior(
        owner, valid_levels, reference_dose, quantiles, levels_probs, refuse_edge=False
    )


def _minimal_informative_beta(p: float, q: float):
    """Return the minimal informative unimodal beta with ``P(X <= q) = p`` (scipy frozen)."""
    from scipy import stats

    if q > p:
        return stats.beta(math.log(p) / math.log(q), 1.0)
    return stats.beta(1.0, math.log(1 - p) / math.log(1 - q))


def _positive(owner: str, name: str, value: object) -> float:
    number = real_number(owner, name, value)
    if number <= 0:
        raise ValueError(f"{owner}: {name} must be > 0, got {value!r}")
    return number


@dataclass(frozen=True)
class BLRM(LogisticQuadratureModel):
    r"""Two-parameter logistic model of DLT in log dose with a bivariate normal prior.

    Parameters
    ----------
    dose_levels : tuple of float
        The candidate doses (> 0, increasing); ``p_dlt`` is reported at them. Another
        sequence is stored as a tuple.
    reference_dose : float
        :math:`d^*` (> 0).
    prior : BLRMPrior
        Prior of :math:`(\log\alpha, \log\beta)`.

    Notes
    -----
    Data doses may be any positive dose (they need not be levels).
    """

    model_name: ClassVar[str] = "BLRM"
    # log_beta first: given it, every event p_k > t is a half-line of log_alpha (rate_cut).
    coordinates: ClassVar[tuple[str, ...]] = ("log_beta", "log_alpha")
    grid_size: ClassVar[int] = 96
    quadrature_model: ClassVar[int] = logistic_quadrature.BLRM

    dose_levels: tuple[float, ...]
    reference_dose: float
    _: KW_ONLY
    prior: BLRMPrior = field(default_factory=BLRMPrior)

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        object.__setattr__(self, "dose_levels", validate_dose_levels("BLRM", self.dose_levels))
        object.__setattr__(
            self, "reference_dose", _positive("BLRM", "reference_dose", self.reference_dose)
        )
        if not isinstance(self.prior, BLRMPrior):
            raise TypeError(f"BLRM: prior must be a BLRMPrior, got {self.prior!r}")

    def parameters(self) -> dict:
        """Return the options as a plain dict (recorded in every fit's attributes)."""
        return {
            "dose_levels": list(self.dose_levels),
            "reference_dose": self.reference_dose,
            "prior_mean": list(self.prior.mean),
            "prior_sd": list(self.prior.sd),
            "prior_correlation": self.prior.correlation,
        }

    def check_doses(self, dose: np.ndarray) -> None:
        """Raise a DataError naming the row of a dose that is not > 0 or too far from d*.

        The model reads ``log(d / d*)``: a positive dose so small (or large) that the ratio
        underflows to 0 (or overflows) would make it infinite and the posterior NaN.
        """
        bad = ~(dose > 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"BLRM: column 'dose', row {row}: dose {float(dose[row])!r} must be > 0 "
                "(the model is linear in log dose)"
            )
        with np.errstate(divide="ignore", over="ignore"):
            infinite = ~np.isfinite(np.log(dose / self.reference_dose))
        if infinite.any():
            row = int(np.argmax(infinite))
            raise DataError(
                f"BLRM: column 'dose', row {row}: dose {float(dose[row])!r} is too far from the "
                f"reference dose {self.reference_dose:g}: log(dose / reference) is not finite"
            )

    # ------------------------------------------------------------ grid engine

    def prob(self, theta: np.ndarray, dose: np.ndarray) -> np.ndarray:
        """Return the DLT probability at ``dose``, shape (m, u)."""
        return expit(theta[:, 1:2] + np.exp(theta[:, :1]) * np.log(dose / self.reference_dose))

    def log_likelihood(self, theta: np.ndarray, summary: DoseSummary) -> np.ndarray:
        """Return the binomial log likelihood of points ``theta`` (m, 2), shape (m,)."""
        return logistic_log_likelihood(
            np.ascontiguousarray(theta[:, 1]),
            np.exp(theta[:, 0]),
            np.log(summary.dose / self.reference_dose),
            summary.n,
            summary.y,
        )

    def scaled_dose(self, dose: np.ndarray) -> np.ndarray:
        """Return ``log(d / d*)``."""
        return np.log(np.asarray(dose, dtype=float) / self.reference_dose)

    def prior_constants(self) -> np.ndarray:
        """Return the means and sds of ``log_alpha`` and ``log_beta`` and the correlation."""
        return np.array([*self.prior.mean, *self.prior.sd, self.prior.correlation])

    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        """Return the bivariate normal log density (up to a constant)."""
        (mu_a, mu_b), (sd_a, sd_b), rho = self.prior.mean, self.prior.sd, self.prior.correlation
        za = (theta[:, 1] - mu_a) / sd_a
        zb = (theta[:, 0] - mu_b) / sd_b
        return -0.5 * (za**2 - 2 * rho * za * zb + zb**2) / (1 - rho**2)

    def prior_location(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the prior means and sds (``log_beta`` first, as the grid's coordinates)."""
        return np.asarray(self.prior.mean[::-1]), np.asarray(self.prior.sd[::-1])

    def free_values(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Return ``log_alpha`` and ``log_beta``, the grid coordinates themselves."""
        return {"log_alpha": theta[:, 1], "log_beta": theta[:, 0]}

    def rate_cut(self, leading: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        r"""Where :math:`p_k = t` in :math:`\log\alpha` given :math:`\log\beta`.

        :math:`p_k > t` iff :math:`\log\alpha > \operatorname{logit} t - e^{\log\beta} x_k`
        with :math:`x_k = \log(d_k / d^*)`.
        """
        x = np.log(np.asarray(self.dose_levels) / self.reference_dose)[None, :]
        # A vague prior's slope may overflow: cuts of +-inf, except at the reference dose
        # (x = 0), where the cut is logit t whatever the slope (inf * 0 would make it NaN).
        with np.errstate(over="ignore"):
            slope = np.exp(leading[:, :1])
            term = np.multiply(slope, x, out=np.zeros((slope.shape[0], x.shape[1])), where=x != 0)
        cut = float(logit(threshold)) - term
        return cut, np.ones(cut.shape, dtype=bool)

    # ------------------------------------------------------------ PyMC model

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model: bivariate normal prior, ``p_dlt`` per level, Bernoulli DLTs.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` (> 0) and ``dlt``; may be empty.

        Returns
        -------
        pymc.Model
        """
        import pymc as pm

        self.summarise(data)
        dose = np.asarray(data.dose, dtype=float)
        dlt = np.asarray(data.column("dlt"), dtype=np.int64)
        (mu_a, mu_b), (sd_a, sd_b), rho = self.prior.mean, self.prior.sd, self.prior.correlation
        coords = {"dose": list(self.dose_levels), "patient": np.arange(dose.size)}
        with pm.Model(coords=coords) as model:
            level_x = pm.Data(
                "level_log_dose",
                np.log(np.asarray(self.dose_levels) / self.reference_dose),
                dims="dose",
            )
            patient_x = pm.Data("log_dose", np.log(dose / self.reference_dose), dims="patient")
            log_alpha = pm.Normal("log_alpha", mu_a, sd_a)
            log_beta = pm.Normal(
                "log_beta",
                mu_b + rho * sd_b / sd_a * (log_alpha - mu_a),
                sd_b * math.sqrt(1 - rho**2),
            )
            beta = pm.math.exp(log_beta)
            pm.Deterministic("p_dlt", pm.math.sigmoid(log_alpha + beta * level_x), dims="dose")
            pm.Bernoulli("dlt", logit_p=log_alpha + beta * patient_x, observed=dlt, dims="patient")
        return model
