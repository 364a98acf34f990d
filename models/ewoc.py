r"""Escalation with overdose control (EWOC): the logistic model parameterised by the MTD.

Babb, J., Rogatko, A. and Zacks, S. (1998). Cancer phase I clinical trials: efficient dose
escalation with overdose control. *Statistics in Medicine* 17, 1103-1120; Tighiouart, M. and
Rogatko, A. (2010), *Statistical Science* 25, 217-226. Lee (2023) compares against it.

The dose-toxicity model is :math:`\operatorname{logit} p(x) = \beta_0 + \beta_1 x` on the dose
range :math:`[x_{min}, x_{max}]`, reparameterised by :math:`\rho_0 = p(x_{min})`, the DLT
probability at the lowest dose, and :math:`\gamma`, the MTD, defined by :math:`p(\gamma) =
\theta`:

.. math::

    \beta_1 = \frac{\operatorname{logit}\theta - \operatorname{logit}\rho_0}{\gamma - x_{min}},
    \qquad \beta_0 = \operatorname{logit}\rho_0 - \beta_1 x_{min}.

The prior makes :math:`\rho_0 / \theta` and :math:`(\gamma - x_{min}) / (x_{max} - x_{min})`
independent Beta variables; Beta(1, 1) (the default) gives Babb et al.'s independent uniform
priors on :math:`(0, \theta)` and :math:`(x_{min}, x_{max})`, and other shapes give Tighiouart
and Rogatko's beta priors. So :math:`\rho_0 < \theta` and :math:`\beta_1 > 0`: toxicity
increases with dose.

The range is part of the prior, and its ends are assumptions about the dose levels. The MTD
lies in :math:`(x_{min}, x_{max})` with certainty: a level at :math:`x_{min}` (Babb et al.'s
starting dose, "believed to be safe") has :math:`p = \rho_0 < \theta` whatever the data, so
its patients never inform :math:`\gamma`, and :math:`P(\mathrm{MTD} < x_{min}) = 0`: no
amount of toxicity there can stop a trial for overdosing (a 3/3 DLT cohort at it leaves the
MTD's posterior at its prior). A level at :math:`x_{max}` has :math:`P(\mathrm{MTD} <
x_{max}) = 1` and is never given. To let the data say that the lowest level is too toxic,
put :math:`x_{min}` below it (e.g. 0, no drug, whose DLT rate is below :math:`\theta`), and
:math:`x_{max}` above the highest level to let the design reach it (``examples/ewoc.toml``
puts :math:`x_{min}` at 0).

The PyMC model's free variables are the two fractions (``rho0_fraction``, ``mtd_fraction``),
with deterministics ``rho0``, ``mtd`` and ``p_dlt`` per dose level. The exact posterior is
integrated in :math:`(\operatorname{logit} \text{rho0\_fraction}, \operatorname{logit}
\text{mtd\_fraction})`, with the Beta densities and the Jacobian :math:`f(1 - f)` of each logit
in the prior: for decisions by a tensor Gauss-Legendre rule fitted to it
(:mod:`dosezoo.samplers.logistic_quadrature`), for the grid engine's exact draws on an adaptive
128 x 128 grid. The MTD is the last coordinate, so its posterior CDF at a dose :math:`x` is the
rule's mass below a cut of each row (:class:`QuadratureMTD`); its quantiles invert that CDF.
"""

import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy.special import expit, log_expit, logit

from dosezoo.checks import check_cdf_point, check_quantile_level, real_number
from dosezoo.data import TrialData
from dosezoo.errors import DataError
from dosezoo.models.binary import DoseSummary, LogisticQuadratureModel
from dosezoo.models.workflow import (
    StatementFit,
    check_statements,
    fit_statements,
    statement_table,
)
from dosezoo.samplers import logistic_quadrature
from dosezoo.samplers.logistic_kernels import logistic_log_likelihood
from dosezoo.samplers.logistic_quadrature import LogisticQuadrature

if TYPE_CHECKING:
    import pymc as pm


__all__ = ["EWOC", "ewoc_prior_from_statements"]


def _beta_shape(owner: str, name: str, value: object) -> tuple[float, float]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{owner}: {name} must be a pair (a, b) of Beta shapes, got {value!r}")
    shape = (real_number(owner, f"{name}[0]", value[0]), real_number(owner, f"{name}[1]", value[1]))
    for i, v in enumerate(shape):
        if v <= 0:
            raise ValueError(f"{owner}: {name}[{i}] must be > 0, got {v!r}")
    return shape


@dataclass(frozen=True, eq=False)
class QuadratureMTD:
    r"""The MTD's posterior by quadrature: its CDF and quantiles, integrated along the rows.

    The MTD is the rule's last coordinate (the logit MTD fraction :math:`\theta_2`) mapped to
    doses, so :math:`P(\mathrm{MTD} \le x)` is the mass where :math:`\theta_2 \le
    \operatorname{logit}((x - x_{min}) / (x_{max} - x_{min}))`
    (:meth:`~dosezoo.samplers.logistic_quadrature.LogisticQuadrature.cdf`), and a quantile
    inverts it (:meth:`~dosezoo.samplers.logistic_quadrature.LogisticQuadrature.quantile`).
    """

    quadrature: LogisticQuadrature
    x_min: float
    x_max: float
    #: The CDF at each dose computed so far: a decision reads it at its dose twice (the rule's
    #: ``p_overdose``, then the overdose limit), each an integration along the rows.
    _cdf: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def cdf(self, x: float) -> float:
        """Posterior probability that the MTD is below ``x``."""
        check_cdf_point(x)
        x = float(x)
        value = self._cdf.get(x)
        if value is None:
            fraction = (x - self.x_min) / (self.x_max - self.x_min)
            if fraction <= 0:
                value = 0.0
            elif fraction >= 1:
                value = 1.0
            else:
                value = self.quadrature.cdf(math.log(fraction / (1.0 - fraction)))
            self._cdf[x] = value
        return value

    def quantile(self, p: float) -> float:
        """Posterior ``p``-quantile of the MTD."""
        check_quantile_level(p)
        theta = self.quadrature.quantile(float(p))
        return self.x_min + (self.x_max - self.x_min) * float(expit(theta))


@dataclass(frozen=True)
class EWOC(LogisticQuadratureModel):
    r"""The EWOC logistic model with parameters :math:`(\rho_0, \gamma)`.

    Parameters
    ----------
    theta : float
        Target DLT probability at the MTD, in (0, 1).
    x_min, x_max : float
        Dose range; every dose must lie in ``[x_min, x_max]``. The MTD lies inside it with
        certainty: a level at ``x_min`` is assumed safe and never stops a trial, a level at
        ``x_max`` is never given (see the module's notes).
    dose_levels : tuple of float, optional
        Doses at which ``p_dlt`` is reported (and the levels of a discrete design), inside the
        range; by default (None) 11 equally spaced doses from ``x_min`` to ``x_max``. Another
        sequence is stored as a tuple.
    rho0_prior, mtd_prior : tuple of float
        Beta shapes of :math:`\rho_0/\theta` and of the MTD's position in the range ((1, 1):
        uniform).
    """

    model_name: ClassVar[str] = "EWOC"
    coordinates: ClassVar[tuple[str, ...]] = ("logit_rho0_fraction", "logit_mtd_fraction")
    grid_size: ClassVar[int] = 128
    quadrature_model: ClassVar[int] = logistic_quadrature.EWOC

    theta: float
    x_min: float
    x_max: float
    _: KW_ONLY
    # The attribute is a tuple; the init also takes None (the default), made 11 doses in
    # __post_init__.
    dose_levels: tuple[float, ...] = None  # type: ignore[assignment]  # None: see above
    rho0_prior: tuple[float, float] = (1.0, 1.0)
    mtd_prior: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "EWOC"
        theta = real_number(owner, "theta", self.theta)
        if not 0 < theta < 1:
            raise ValueError(f"{owner}: theta must lie in (0, 1), got {self.theta!r}")
        x_min = real_number(owner, "x_min", self.x_min)
        x_max = real_number(owner, "x_max", self.x_max)
        if x_min < 0:
            raise ValueError(f"{owner}: x_min must be >= 0 (a dose is not negative), got {x_min!r}")
        if not x_min < x_max:
            raise ValueError(f"{owner}: x_min must be < x_max, got {x_min!r} and {x_max!r}")
        if self.dose_levels is None:
            levels = tuple(float(v) for v in np.linspace(x_min, x_max, 11))
        else:
            if isinstance(self.dose_levels, str) or not isinstance(
                self.dose_levels, Sequence | np.ndarray
            ):
                raise ValueError(
                    f"{owner}: dose_levels must be a sequence of doses, got {self.dose_levels!r}"
                )
            levels = tuple(
                real_number(owner, f"dose_levels[{i}]", v) for i, v in enumerate(self.dose_levels)
            )
            if any(not x_min <= v <= x_max for v in levels):
                raise ValueError(
                    f"{owner}: dose_levels must lie in [x_min, x_max] = [{x_min:g}, {x_max:g}], "
                    f"got {levels}"
                )
            if not levels or any(np.diff(levels) <= 0):
                raise ValueError(f"{owner}: dose_levels must be strictly increasing, got {levels}")
        values = {
            "theta": theta,
            "x_min": x_min,
            "x_max": x_max,
            "dose_levels": levels,
            "rho0_prior": _beta_shape(owner, "rho0_prior", self.rho0_prior),
            "mtd_prior": _beta_shape(owner, "mtd_prior", self.mtd_prior),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def mtd_target(self) -> float:
        """Return the target DLT probability at the MTD (``theta``)."""
        return self.theta

    def parameters(self) -> dict:
        """Return the options as a plain dict (recorded in every fit's attributes)."""
        return {
            "theta": self.theta,
            "x_min": self.x_min,
            "x_max": self.x_max,
            "dose_levels": list(self.dose_levels),
            "rho0_prior": list(self.rho0_prior),
            "mtd_prior": list(self.mtd_prior),
        }

    def check_doses(self, dose: np.ndarray) -> None:
        """Raise a DataError naming the row of a dose outside ``[x_min, x_max]``."""
        bad = ~((dose >= self.x_min) & (dose <= self.x_max))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"EWOC: column 'dose', row {row}: dose {float(dose[row])!r} is outside the dose "
                f"range [{self.x_min:g}, {self.x_max:g}]"
            )

    # ------------------------------------------------------------ parameters

    def _natural(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rho0, mtd)`` of unconstrained points (m, 2)."""
        rho0 = self.theta * expit(theta[:, 0])
        mtd = self.x_min + (self.x_max - self.x_min) * expit(theta[:, 1])
        return rho0, mtd

    def _logistic(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Return :math:`\operatorname{logit}\rho_0` and the slope in ``x - x_min``.

        Computed in log space, and with the MTD's position floored at 1e-12 of the range,
        so that points deep in the prior's tails give finite values.
        """
        log_rho0 = math.log(self.theta) + log_expit(theta[:, 0])
        logit_rho0 = log_rho0 - np.log1p(-np.exp(log_rho0))
        position = np.maximum(expit(theta[:, 1]), 1e-12) * (self.x_max - self.x_min)
        return logit_rho0, (logit(self.theta) - logit_rho0) / position

    # ------------------------------------------------------------ grid engine

    def prob(self, theta: np.ndarray, dose: np.ndarray) -> np.ndarray:
        """Return the DLT probability at ``dose``, shape (m, u)."""
        logit_rho0, slope = self._logistic(theta)
        return expit(logit_rho0[:, None] + slope[:, None] * (dose - self.x_min))

    def log_likelihood(self, theta: np.ndarray, summary: DoseSummary) -> np.ndarray:
        """Return the binomial log likelihood of points ``theta`` (m, 2), shape (m,)."""
        logit_rho0, slope = self._logistic(theta)
        return logistic_log_likelihood(
            logit_rho0, slope, summary.dose - self.x_min, summary.n, summary.y
        )

    def scaled_dose(self, dose: np.ndarray) -> np.ndarray:
        """Return ``d - x_min``."""
        return np.asarray(dose, dtype=float) - self.x_min

    def prior_constants(self) -> np.ndarray:
        """Return log and logit of theta, the range's width and the two Beta shapes."""
        return np.array(
            [
                math.log(self.theta),
                float(logit(self.theta)),
                self.x_max - self.x_min,
                *self.rho0_prior,
                *self.mtd_prior,
            ]
        )

    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        """Return the Beta log densities of the two fractions, with the logits' Jacobians."""
        total = np.zeros(theta.shape[0])
        for column, (a, b) in zip(theta.T, (self.rho0_prior, self.mtd_prior), strict=True):
            total += a * log_expit(column) + b * log_expit(-column)
        return total

    def prior_location(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Return a centre and scale of the logit fractions under the prior.

        The scale is three times the logit-Beta's standard deviation (about
        :math:`\sqrt{1/a + 1/b}`): its tails are exponential, not normal, so the grid's first
        span must be wider than for a normal prior.
        """
        centre = [math.log(a / b) for a, b in (self.rho0_prior, self.mtd_prior)]
        scale = [3 * math.sqrt(1 / a + 1 / b) for a, b in (self.rho0_prior, self.mtd_prior)]
        return np.asarray(centre), np.asarray(scale)

    def free_values(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Return the two fractions (the PyMC model's free variables)."""
        return {"rho0_fraction": expit(theta[:, 0]), "mtd_fraction": expit(theta[:, 1])}

    def rate_cut(self, leading: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        r"""Where :math:`p_k = t` in the logit MTD fraction given the logit rho0 fraction.

        With :math:`r = \operatorname{logit}\rho_0 < \operatorname{logit}\theta` and
        :math:`c = \operatorname{logit} t`, :math:`p_k > t` iff
        :math:`(\operatorname{logit}\theta - r)(d_k - x_{min}) / (\gamma - x_{min}) > c - r`:
        always when :math:`c \le r` (or at :math:`d_k = x_{min}` iff :math:`r > c`), otherwise
        iff the MTD fraction is below :math:`q = (\operatorname{logit}\theta - r)(d_k -
        x_{min}) / ((c - r)(x_{max} - x_{min}))` (always when :math:`q \ge 1`).
        """
        levels = np.asarray(self.dose_levels)[None, :] - self.x_min
        log_rho0 = math.log(self.theta) + log_expit(leading[:, :1])
        r = log_rho0 - np.log1p(-np.exp(log_rho0))
        gap = float(logit(threshold)) - r
        with np.errstate(divide="ignore", invalid="ignore"):
            q = (logit(self.theta) - r) * levels / (gap * (self.x_max - self.x_min))
            cut = np.where(q >= 1, np.inf, logit(np.clip(q, 0.0, 1.0)))
        cut = np.where(gap <= 0, np.inf, cut)
        cut = np.where(levels == 0, np.where(gap < 0, np.inf, -np.inf), cut)
        return cut, np.zeros(cut.shape, dtype=bool)

    def parameter_means(self, quadrature: LogisticQuadrature) -> dict[str, float]:
        """Return the posterior means of the two fractions, ``rho0`` and ``mtd``."""
        rho0, mtd = self._natural(quadrature.nodes)
        weights = quadrature.weights
        return super().parameter_means(quadrature) | {
            "rho0": float(weights @ rho0),
            "mtd": float(weights @ mtd),
        }

    def _posterior_fields(self, quadrature: LogisticQuadrature) -> dict:
        """Return the MTD's distribution (its CDF and quantiles) on the posterior's quadrature."""
        return {"mtd": QuadratureMTD(quadrature, self.x_min, self.x_max)}

    # ------------------------------------------------------------ PyMC model

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model: Beta fractions, ``rho0``, ``mtd``, ``p_dlt``, Bernoulli DLTs.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` (in the range) and ``dlt``; may be empty.

        Returns
        -------
        pymc.Model
        """
        import pymc as pm

        self.summarise(data)
        dose = np.asarray(data.dose, dtype=float)
        dlt = np.asarray(data.column("dlt"), dtype=np.int64)
        coords = {"dose": list(self.dose_levels), "patient": np.arange(dose.size)}
        with pm.Model(coords=coords) as model:
            levels = pm.Data("level_dose", np.asarray(self.dose_levels), dims="dose")
            patient_dose = pm.Data("patient_dose", dose, dims="patient")
            rho0_fraction = pm.Beta("rho0_fraction", *self.rho0_prior)
            mtd_fraction = pm.Beta("mtd_fraction", *self.mtd_prior)
            rho0 = pm.Deterministic("rho0", self.theta * rho0_fraction)
            mtd = pm.Deterministic("mtd", self.x_min + (self.x_max - self.x_min) * mtd_fraction)
            logit_rho0 = pm.math.logit(rho0)
            slope = (logit(self.theta) - logit_rho0) / (mtd - self.x_min)
            pm.Deterministic(
                "p_dlt", pm.math.sigmoid(logit_rho0 + slope * (levels - self.x_min)), dims="dose"
            )
            pm.Bernoulli(
                "dlt",
                logit_p=logit_rho0 + slope * (patient_dose - self.x_min),
                observed=dlt,
                dims="patient",
            )
        return model


def ewoc_prior_from_statements(
    theta: float,
    x_min: float,
    x_max: float,
    mtd_quantiles: Sequence[float],
    *,
    rho0_quantiles: Sequence[float] | None = None,
    probabilities: Sequence[float] = (0.05, 0.5, 0.95),
) -> StatementFit:
    r"""Turn a prior guess of the MTD (and of the DLT rate at ``x_min``) into EWOC's Beta shapes.

    The MTD's position :math:`(\gamma - x_{min}) / (x_{max} - x_{min})` and, optionally,
    :math:`\rho_0 / \theta` are Beta variables (Tighiouart and Rogatko 2010); each Beta's shapes
    are the least-squares fit (over log shapes) of its quantiles to the stated ones. Without
    ``rho0_quantiles`` the uniform Beta(1, 1) of Babb et al. (1998) is kept for :math:`\rho_0`.

    Parameters
    ----------
    theta, x_min, x_max : float
        As :class:`EWOC`.
    mtd_quantiles : sequence of float
        Stated quantiles of the MTD, increasing inside ``(x_min, x_max)``.
    rho0_quantiles : sequence of float, optional
        Stated quantiles of the DLT probability at ``x_min``, increasing inside ``(0, theta)``.
    probabilities : sequence of float
        The quantile levels of both statements.

    Returns
    -------
    StatementFit
        ``options`` are keywords of :class:`EWOC` (``EWOC(**fit.options)``).

    Raises
    ------
    ValueError
        If the MTD's quantiles leave (x_min, x_max) or rho0's leave (0, theta), either does
        not increase, or a Beta's fitted shapes are at the edge of their search (e^-5, e^5).
    """
    import pandas as pd
    from scipy import stats  # scipy.stats costs ~0.3 s at start-up, pandas 0.2 s

    owner = "ewoc_prior_from_statements"
    model = EWOC(theta, x_min, x_max)  # validates theta and the range
    width = model.x_max - model.x_min
    levels = np.asarray(probabilities, dtype=float)
    statements = [
        (
            "MTD",
            "mtd_prior",
            "mtd_quantiles",
            mtd_quantiles,
            (model.x_min, model.x_max),
            model.x_min,
            width,
        )
    ]
    if rho0_quantiles is not None:
        statements.append(
            (
                "p_dlt at x_min",
                "rho0_prior",
                "rho0_quantiles",
                rho0_quantiles,
                (0.0, model.theta),
                0.0,
                model.theta,
            )
        )
    options: dict[str, object] = {"theta": model.theta, "x_min": model.x_min, "x_max": model.x_max}
    tables = []
    for label, name, argument, quantiles, bounds, offset, scale in statements:
        stated = check_statements(owner, 1, [list(quantiles)], levels, bounds, field=argument)

        def implied(v: np.ndarray, offset: float = offset, scale: float = scale) -> np.ndarray:
            return offset + scale * stats.beta.ppf(levels, math.exp(v[0]), math.exp(v[1]))[None]

        best = fit_statements(
            implied,
            stated,
            [[0.0, 0.0], [1.0, 1.0], [0.5, 1.5], [1.5, 0.5]],
            owner=owner,
            names=(f"log {name}[0]", f"log {name}[1]"),
        )
        options[name] = (float(math.exp(best[0])), float(math.exp(best[1])))
        tables.append(statement_table([label], levels, stated, implied(best)))
    return StatementFit(options, pd.concat(tables, ignore_index=True))
