r"""A plateau dose-response in the 3PND framework: the sigmoid Emax (Hill) curve and its MTD.

Lee, S.Y. (2023). A flexible dose-response modeling framework based on continuous toxicity
outcomes in phase I cancer clinical trials. *Trials* 24, 745, Discussion: the power mean of
eq (6) "can be replaced and generalized to a more complex growth curve shape, such as the
Richards growth curve or the Gompertz growth curve", which "can describe a plateau on the
dose-toxicity curve"; the paper leaves the priors open ("specifying prior distributions
requires extensive research"). This module takes the sigmoid Emax (Hill) curve, the usual
plateau curve of dose-response work, started at :math:`x_{min}` as the 3PND's mean is
(:math:`E[Y(x_{min})] = 0`, Lee's assumption):

.. math::

    y_i \mid E, D, h, \sigma \sim N\big(f(x_i), \sigma^2\big), \qquad
    f(x) = E \, \frac{(x - x_{min})^h}{D^h + (x - x_{min})^h},

with plateau :math:`E > 0`, :math:`D > 0` the distance from :math:`x_{min}` to the dose of
half the plateau (the ED50 is :math:`x_{min} + D`), Hill coefficient :math:`h > 0`. (The
Richards curve :math:`E (1 + e^{-k(x - m)})^{-1/s}` does not start at 0 at :math:`x_{min}`,
which is why the Hill form is taken.)

**The MTD.** As in the 3PND (Lee's eq 2 and Theorem 1), the MTD is the largest dose with
:math:`P(Y \ge \eta \mid x) \le 1 - \gamma`, i.e.
:math:`\Phi((\eta - f(x)) / \sigma) \ge \gamma`, i.e. :math:`f(x) \le \eta^* := \eta - \sigma
z` with :math:`z = \Phi^{-1}(\gamma)`. :math:`f` increases from 0 to :math:`E`, so if
:math:`E \le \eta^*` every dose is tolerated (no MTD); otherwise :math:`f(x) = \eta^*` has the
one root

.. math::

    (x - x_{min})^h (E - \eta^*) = \eta^* D^h
    \iff \mathrm{MTD} = x_{min} + D \left(\frac{\eta^*}{E - \eta^*}\right)^{1/h},

the dose at which the mean response reaches the threshold :math:`\eta^*` (the same
:math:`\eta - \sigma \Phi^{-1}(\gamma)` as in eq 5), and every dose below it is tolerated.

**The prior** (this module's choice, in the spirit of eqs 7-9: weakly informative, with the
MTD inside the dose range with probability 1, as Theorem 2's proof needs). Write
:math:`E = \eta^* (1 + \rho)`, :math:`\rho > 0` the plateau's excess over the threshold:

.. math::

    \sigma &\sim C^+(0, 1) \, 1_{(0, \eta / z)} \\
    h &\sim \log N(0, \delta^2) \\
    \rho &\sim \log N(0, s^2) \\
    \mathrm{MTD} \mid \sigma, h, \rho &\sim U(x_{min}, x_{max}), \qquad
        D = (\mathrm{MTD} - x_{min}) \, \rho^{1/h}.

So :math:`E > \eta^*` (the curve crosses the threshold) and, given the shape, :math:`D \sim
U(0, R \rho^{1/h})`: the MTD is uniform on the dose range conditionally, where the 3PND's
uniform slope induces the MTD density of Lee's proof of Theorem 2. ``delta`` (0.5) plays the
role of the 3PND's, ``plateau_scale`` :math:`s` (1) puts the plateau's median at
:math:`2 \eta^*`. The model is written in these coordinates (``sigma``, ``hill``,
``rho``, ``mtd``); ``emax`` and ``ed50`` (:math:`x_{min} + D`) are deterministics. With data
NUTS samples the MTD on another coordinate (below).

**Sampling on the anchor dose's mean.** With one patient, NUTS on ``(sigma, hill, rho, mtd)``
met a funnel: the marginal of :math:`\sigma` keeps mass near 0 (the curve can pass through the
patient), where the MTD's conditional narrows in proportion to :math:`\sigma`. One patient at
40 with response 3.5 (4 chains of 5000 draws): :math:`P(\sigma < 0.05)` was 0.045 +- 0.007
with 451 divergent transitions, and with another seed a chain stuck (0.089 +- 0.046), against
0.075 by importance sampling; with response 1.5 it was 0.002-0.004 against 0.018.
So with data the MTD is sampled through the mean response :math:`m = f(x_a)` at an *anchor*
dose :math:`x_a` with :math:`n_a` patients of mean response :math:`\bar y_a`: the dose with
the largest :math:`n_d (x_d - x_{min})`, the highest of those tied. (Near :math:`x_{min}` the
mean is near 0 whatever the MTD, and the map from it to the MTD is steep: two patients at
:math:`x_{min} + 10^{-4}` and one at 30, anchored at the former, gave 811 divergent
transitions in 2000 and MTD draws piled at :math:`x_{max}`; anchored at 30, 1.) Given
:math:`(\sigma, h, \rho)`, :math:`m` falls from :math:`E` to :math:`m_{lo} = E / (1 + \rho
(R / u_a)^h)` as the MTD runs over the dose range (:math:`u_a = x_a - x_{min}`), with inverse

.. math::

    \mathrm{MTD} = x_{min} + u_a \left(\frac{E - m}{\rho \, m}\right)^{1/h}, \qquad
    \left|\frac{d\,\mathrm{MTD}}{dm}\right| = \frac{(\mathrm{MTD} - x_{min}) E}{h \, m (E - m)}.

NUTS samples ``mtd_quantile`` :math:`q \in (0, 1)` and sets :math:`m` to the
:math:`q`-quantile of :math:`N(\bar y_a, \sigma^2 / n_a)` truncated to :math:`(m_{lo}, E)`,
the anchor dose's likelihood as a function of :math:`m`; the potential :math:`-\log R + \log
|d\mathrm{MTD}/dm| + \log|dm/dq|` is the MTD's uniform prior density times the Jacobian. The
model is the one above in other coordinates. The anchor's likelihood cancels in :math:`q`, so
with every patient at one dose the posterior of :math:`q` given :math:`(\sigma, h, \rho)` is
proportional to the smooth :math:`|d\mathrm{MTD}/dm|` however small :math:`\sigma` is. The
patient with response 3.5 then gives 0.077 +- 0.003 and 0.075 +- 0.003 (two seeds;
``test_plateau_nuts_matches_importance_sampling_with_one_patient`` checks it), the one with
1.5 gives 0.020 +- 0.003 and 0.025 +- 0.003. About 1 % of transitions still diverge with one
patient, at the edge of the region of :math:`(h, \rho)` whose curves reach the patient as
:math:`\sigma \to 0`. With one patient at each of two or three doses the curve can pass
through every patient as :math:`\sigma \to 0`, a funnel in :math:`(h, \rho)` that the anchor
does not remove: NUTS diverges on 2-6 % of transitions there and a chain can stick, which the
convergence report shows. Without data the MTD is uniform (PyMC's forward sampler, which
draws the prior, ignores potentials, so prior draws always come from that form).

Only NUTS fits it (``engine="nuts"``). No design is needed: the 3PND's rule (the posterior
``alpha``-quantile of the MTD) reads any model's ``mtd``, but ``MTDQuantileRule`` is written
for the 3PND's exact posterior; with this model, take the quantile of the fit's ``mtd``.
"""

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy.special import ndtr

from dosezoo.checks import doses_within, real_number
from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.models.base import DoseModel
from dosezoo.models.three_pnd import check_responses
from dosezoo.models.three_pnd_groups import (
    ThreePNDScale,
    check_curve_parameters,
    check_hyper,
    truncated_normal_quantile,
)
from dosezoo.posterior import DosePosterior, Sampling

if TYPE_CHECKING:
    import pymc as pm


@dataclass(frozen=True)
class ThreePNDPlateau(ThreePNDScale, DoseModel):
    r"""The sigmoid Emax (Hill) dose-response with the 3PND's MTD and a range-bound prior.

    Parameters
    ----------
    eta, gamma, x_min, x_max, delta
        As in :class:`~dosezoo.models.ThreePND`; ``delta`` is the scale of the Hill
        coefficient's log-normal prior.
    plateau_scale : float
        Scale (> 0) of the log-normal prior of ``rho = emax / (eta - sigma z) - 1``.
    dose_unit : str, optional
        Unit of the doses, recorded in :meth:`parameters`.

    Examples
    --------
    >>> model = ThreePNDPlateau(eta=3, gamma=0.9, x_min=5, x_max=80)
    >>> idata = model.fit(data, random_seed=1)  # doctest: +SKIP
    >>> idata.posterior["mtd"].quantile(0.05)  # doctest: +SKIP
    """

    model_name: ClassVar[str] = "ThreePNDPlateau"
    outcomes: ClassVar[tuple[str, ...]] = ("y",)
    default_engine: ClassVar[str] = "nuts"

    eta: float
    gamma: float
    x_min: float
    x_max: float
    delta: float = 0.5
    plateau_scale: float = 1.0
    dose_unit: str | None = None

    def __post_init__(self) -> None:
        """Validate the hyper-parameters, naming the field at fault."""
        check_hyper(self.model_name, self)
        scale = real_number(self.model_name, "plateau_scale", self.plateau_scale)
        if scale <= 0:
            raise ValueError(f"{self.model_name}: plateau_scale must be > 0, got {scale!r}")
        object.__setattr__(self, "plateau_scale", scale)

    def parameters(self) -> dict[str, Any]:
        """Return the hyper-parameters and the dose unit."""
        names = ("eta", "gamma", "x_min", "x_max", "delta", "plateau_scale", "dose_unit")
        return {name: getattr(self, name) for name in names}

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check ``y`` and the doses (a DataError names the column, the row and the value)."""
        check_responses(self.model_name, data, self.x_min, self.x_max, self.sigma_max)
        data.require("y", min_patients=min_patients, model=self.model_name)

    # ------------------------------------------------------------------ the curve

    def curve(
        self, doses: ArrayLike, emax: ArrayLike, ed50: ArrayLike, hill: ArrayLike
    ) -> np.ndarray:
        """Return the mean response ``f(x) = emax u^h / ((ed50 - x_min)^h + u^h)``.

        Here ``u = x - x_min``; written as ``emax / (1 + ((ed50 - x_min) / u)^h)``;
        broadcasts numpy arrays.
        """
        owner, space = f"{self.model_name}.curve", "the model's dose range"
        doses = doses_within(owner, doses, self.x_min, self.x_max, entry="entry", space=space)
        offset = doses - self.x_min
        ratio = (np.asarray(ed50, dtype=float) - self.x_min) / offset
        return np.asarray(emax, dtype=float) / (1.0 + ratio ** np.asarray(hill, dtype=float))

    def mtd_of(self, emax: float, ed50: float, hill: float, sigma: float) -> float:
        """Return the MTD of the module's derivation; ``inf`` when ``emax <= eta - sigma z``."""
        check_curve_parameters(
            f"{self.model_name}.mtd_of",
            sigma,
            self.sigma_max,
            {"emax": (emax, 0.0), "ed50": (ed50, self.x_min), "hill": (hill, 0.0)},
        )
        threshold = self.eta - sigma * self.z
        if emax <= threshold:
            return math.inf
        return self.x_min + (ed50 - self.x_min) * (threshold / (emax - threshold)) ** (1 / hill)

    def truth(self, *, emax: float, mtd: float, hill: float, sigma: float) -> dict[str, float]:
        """Return all parameters of the curve with plateau ``emax`` and the given MTD.

        For simulations: ``rho``, ``ed50`` from the MTD by the module's relation
        ``D = (MTD - x_min) rho^(1/h)``; refuses a plateau at or below the threshold.
        """
        check_curve_parameters(
            f"{self.model_name}.truth",
            sigma,
            self.sigma_max,
            {"emax": (emax, 0.0), "mtd": (mtd, self.x_min), "hill": (hill, 0.0)},
        )
        threshold = self.eta - sigma * self.z
        if not emax > threshold:
            raise ValueError(
                f"{self.model_name}.truth: emax must exceed eta - sigma z = {threshold:g}, "
                f"got {emax!r}"
            )
        rho = emax / threshold - 1.0
        ed50 = self.x_min + (mtd - self.x_min) * rho ** (1.0 / hill)
        return {"emax": emax, "ed50": ed50, "hill": hill, "sigma": sigma, "rho": rho, "mtd": mtd}

    # ------------------------------------------------------------------ model

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model: ``sigma, hill, rho`` and the MTD on the anchor's quantile.

        Free: ``sigma``, ``hill``, ``rho`` and ``mtd_quantile`` (``mtd`` itself, uniform,
        without data); deterministics ``mtd``, ``emax`` and ``ed50`` (module notes).
        """
        return self._pymc_model(data, mtd_drawn=False)

    def _prior_model(self, data: TrialData) -> "pm.Model":
        """Return the same model with ``mtd`` drawn uniform, as PyMC's forward sampler needs."""
        return self._pymc_model(data, mtd_drawn=True)

    def _pymc_model(self, data: TrialData, *, mtd_drawn: bool) -> "pm.Model":
        import pymc as pm

        self.check_data(data)
        dose = np.asarray(data.dose, dtype=float)
        y = np.asarray(data.column("y"), dtype=float)
        with pm.Model(coords={"patient": np.arange(dose.size)}) as model:
            dose_data = pm.Data("dose", dose, dims="patient")
            sigma = self.sigma_prior()
            hill = pm.LogNormal("hill", 0.0, self.delta)
            rho = pm.LogNormal("rho", 0.0, self.plateau_scale)
            threshold = self.eta - sigma * self.z
            emax = pm.Deterministic("emax", threshold * (1.0 + rho))
            if mtd_drawn or not dose.size:
                mtd = pm.Uniform("mtd", lower=self.x_min, upper=self.x_max)
            else:
                anchored = self._mtd_from_anchor(self.anchor(data), hill, rho, sigma, emax)
                mtd = pm.Deterministic("mtd", anchored)
            ed50 = pm.Deterministic("ed50", self.x_min + (mtd - self.x_min) * rho ** (1.0 / hill))
            offset = dose_data - self.x_min
            pm.Normal(
                "y",
                mu=emax / (1.0 + ((ed50 - self.x_min) / offset) ** hill),
                sigma=sigma,
                observed=y,
                dims="patient",
            )
        return model

    def anchor(self, data: TrialData) -> tuple[float, int, float]:
        """Return the anchor dose, its number of patients and their mean response (module notes).

        The dose with the largest ``n_d (x_d - x_min)``, the highest of those tied.
        """
        self.check_data(data, min_patients=1)
        dose = np.asarray(data.dose, dtype=float)
        levels, counts = np.unique(dose, return_counts=True)
        reach = counts * (levels - self.x_min)
        level = levels[np.flatnonzero(reach == reach.max())[-1]]
        at_anchor = dose == level
        mean = float(np.mean(np.asarray(data.column("y"), dtype=float)[at_anchor]))
        return float(level), int(at_anchor.sum()), mean

    def _mtd_from_anchor(
        self, anchor: tuple[float, int, float], hill: Any, rho: Any, sigma: Any, emax: Any
    ) -> Any:
        """Return the MTD of ``mtd_quantile``'s mean at the ``anchor`` dose; add its potential."""
        import pymc as pm
        import pytensor.tensor as pt

        level, n_anchor, mean = anchor
        span, reach = self.x_max - self.x_min, level - self.x_min
        beyond = rho * (span / reach) ** hill
        # m runs over (E / (1 + beyond), E); its width is formed apart from its lower end.
        spread = sigma / math.sqrt(n_anchor)
        quantile = pm.Uniform("mtd_quantile", 0.0, 1.0)
        score, log_dm_dq = truncated_normal_quantile(
            mean, spread, emax / (1.0 + beyond), emax / (1.0 + 1.0 / beyond), quantile
        )
        at_anchor = mean + spread * score
        # E - m from the score: m itself rounds to E where the MTD nears x_min.
        below_plateau = pt.maximum((emax - mean) - spread * score, np.finfo(float).tiny)
        offset = reach * (below_plateau / (rho * at_anchor)) ** (1.0 / hill)
        log_dmtd_dm = (
            pt.log(offset) + pt.log(emax) - pt.log(hill) - pt.log(at_anchor) - pt.log(below_plateau)
        )
        pm.Potential("mtd_prior", log_dmtd_dm + log_dm_dq - math.log(span))
        inside = (np.nextafter(self.x_min, self.x_max), np.nextafter(self.x_max, self.x_min))
        return pt.clip(self.x_min + offset, *inside)

    def log_density(self, data: TrialData, values: Mapping[str, float]) -> float:
        """Return the log posterior density (unnormalised) of ``sigma, hill, rho, mtd``, by scipy.

        The normal log-likelihood at the curve's mean, the truncated half-Cauchy of sigma, the
        log-normals of ``hill`` and ``rho`` and the uniform ``1 / R`` of the MTD; ``-inf``
        outside the support. It is :meth:`build`'s density of its constrained values, computed
        independently.
        """
        from scipy import stats

        self.check_data(data)
        sigma, hill, rho, mtd = (float(values[k]) for k in ("sigma", "hill", "rho", "mtd"))
        if not (0 < sigma < self.sigma_max and hill > 0 and rho > 0):
            return -math.inf
        if not self.x_min < mtd < self.x_max:
            return -math.inf
        threshold = self.eta - sigma * self.z
        emax = threshold * (1 + rho)
        ed50 = self.x_min + (mtd - self.x_min) * rho ** (1 / hill)
        mean = self.curve(data.dose, emax, ed50, hill)
        y = np.asarray(data.column("y"), dtype=float)
        total = float(np.sum(stats.norm.logpdf(y, mean, sigma)))
        total += float(stats.halfcauchy.logpdf(sigma)) - math.log(
            stats.halfcauchy.cdf(self.sigma_max)
        )
        total += float(stats.lognorm.logpdf(hill, s=self.delta))
        total += float(stats.lognorm.logpdf(rho, s=self.plateau_scale))
        return total - math.log(self.x_max - self.x_min)

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Fit NUTS and read the MTD's posterior draws (judged by the convergence criteria)."""
        return self.fitted_posterior(data, sampling)

    def posterior_from_idata(
        self, idata: xr.DataTree, criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> DosePosterior:
        """Read the MTD's draws, the parameters' means and the convergence of a fit."""
        posterior = DosePosterior.from_idata(idata, criteria, **options)
        # mtd_quantile is a coordinate of the sampler, not a parameter of the model.
        means = {k: v for k, v in posterior.parameter_mean.items() if k != "mtd_quantile"}
        return dataclasses.replace(posterior, parameter_mean=means)

    def prob_toxicity(self, idata: xr.DataTree, doses: ArrayLike) -> xr.DataArray:
        """Return ``P(Y >= eta | x) = 1 - Phi((eta - f(x)) / sigma)`` per draw.

        Dims ``(chain, draw, dose)``; the doses must lie inside the dose range.
        """
        grid = np.atleast_1d(np.asarray(doses, dtype=float))
        if np.any((grid <= self.x_min) | (grid >= self.x_max) | ~np.isfinite(grid)):
            raise ValueError(
                f"{self.model_name}: doses must lie inside ({self.x_min}, {self.x_max}), "
                f"got {grid.tolist()}"
            )
        post = idata["posterior"]
        dose = xr.DataArray(grid, dims="dose", coords={"dose": grid})
        mean = post["emax"] / (
            1.0 + ((post["ed50"] - self.x_min) / (dose - self.x_min)) ** post["hill"]
        )
        return xr.apply_ufunc(ndtr, (mean - self.eta) / post["sigma"])
