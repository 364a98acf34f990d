r"""The 3PND model for several patient groups (Lee 2023, Discussion, "Accommodation of ...").

Lee, S.Y. (2023). A flexible dose-response modeling framework based on continuous toxicity
outcomes in phase I cancer clinical trials. *Trials* 24, 745. The Discussion extends the 3PND
(eqs 6-9) to groups :math:`g = 1, \dots, G` (the paper's A and B) with their own slope and a
shared noise:

.. math::

    y_i \mid \beta, \nu, \sigma &\sim N\big(\beta_{g(i)} (x_i - x_{min})^\nu, \sigma^2\big) \\
    \beta_g \mid \nu, \sigma &\overset{iid}{\sim} U\big(l(\sigma, \nu), u(\sigma, \nu)\big),
        \quad l = \frac{\eta - \sigma z}{R^\nu}, \quad u = \frac{\eta}{R^\nu} + \sigma z \\
    \sigma &\sim C^+(0, 1) \, 1_{(0, \eta / z)} \\
    \nu &\sim \log N(0, \delta^2) \\
    \mathrm{MTD}_g &= x_{min} + \left(\frac{\eta - \sigma z}{\beta_g}\right)^{1/\nu}

with :math:`z = \Phi^{-1}(\gamma)`, :math:`R = x_{max} - x_{min}`. Theorem 1 applies to each
group: given :math:`(\beta_g, \nu, \sigma)`, group g's responses are those of a 3PND, so its
MTD (the largest dose with :math:`P(Y \ge \eta) \le 1 - \gamma`) is :math:`\xi(\beta_g, \nu,
\sigma)` and lies in :math:`(x_{min}, x_{max})` because :math:`\beta_g > l`. The groups borrow
strength through :math:`\sigma` (and :math:`\nu`): Lee notes that without a shared
:math:`\sigma` the groups' estimates would run in parallel.

Where the paper is ambiguous, and what this module does:

- Lee takes :math:`\nu` "the same and known" between groups "for simplicity". Here
  :math:`\nu` is shared and has the 3PND's log-normal prior by default; ``nu=<value>`` fixes
  it at a known value, as in the paper's illustration.
- The paper writes the priors of :math:`\beta_A, \beta_B` as conditionally independent
  uniforms on the same interval; that is what is built (no hierarchical pooling of the
  slopes).
- The paper does not say how a group is recorded in the data. Here it is a covariate column
  (``group_column``, default ``"group"``) whose values are the declared labels ``groups``;
  numbers are read as their shortest text (``1.0`` is ``"1"``).

**Sampling on the slopes' conditional quantiles.** Given :math:`(\sigma, \nu)` each slope's
posterior is known exactly: with :math:`w_i = (x_i - x_{min})^\nu` and a group's
:math:`S_{ww} = \sum w_i^2`, :math:`S_{wy} = \sum w_i y_i`, it is the normal
:math:`N(\mu_g, s_g^2)`, :math:`\mu_g = S_{wy} / S_{ww}`, :math:`s_g = \sigma / \sqrt{S_{ww}}`,
truncated to :math:`(l, u)`; a group without patients keeps its uniform prior. NUTS samples
``beta_quantile`` :math:`q_g \in (0, 1)` and sets :math:`\beta_g` to the :math:`q_g`-quantile
of that conditional, :math:`\beta_g = \mu_g + s_g \Phi^{-1}(\Phi(a_g) + q_g (\Phi(b_g) -
\Phi(a_g)))` with :math:`a_g, b_g = (l - \mu_g) / s_g, (u - \mu_g) / s_g` (or
:math:`l + (u - l) q_g`), and adds the potential

.. math::

    \log\left|\frac{d\beta_g}{dq_g}\right| - \log(u - l)
        = \log s_g + \log(\Phi(b_g) - \Phi(a_g)) - \log\phi(t_g) - \log(u - l),
        \quad t_g = (\beta_g - \mu_g) / s_g,

the uniform prior density of :math:`\beta_g` times the Jacobian. The model is the one above,
written in other coordinates, and its posterior of :math:`q` is exactly uniform, independent
of :math:`(\sigma, \nu)`: NUTS works on the marginal posterior of :math:`(\sigma, \nu)` alone.
Normal CDFs are taken in the lower tail (an interval above :math:`\mu_g` is reflected) and in
logs. NUTS on :math:`(\beta_g, \sigma, \nu)` crawls along the ridge :math:`\beta_g (\bar x -
x_{min})^\nu \approx` const of the likelihood; on the MTD scale (:math:`\xi_g` uniform on its
:math:`\sigma`-dependent support, with a potential) a group's coordinate has a conditional
spread proportional to :math:`\sigma` while :math:`\sigma` ranges over decades, a funnel: with
one patient in a group NUTS diverged hundreds of times and undersampled small :math:`\sigma`,
which moved even an empty group's MTD (one patient at 40 with response 1.5, :math:`\nu = 1.2`
known: the empty group's 0.9-quantile was 65.4 against 72.4 by quadrature).
:meth:`log_density` gives the density on the MTD scale with scipy, an independent check of
:meth:`build`'s. PyMC's forward sampler ignores potentials, so prior draws
(``sample_prior_predictive``, the prior checks) come from the model written the other way
round: ``beta`` uniform on :math:`(l, u)` and ``mtd`` its deterministic, the prior as stated
above.

**Sigma about its cliff (known nu).** On the slopes' quantiles the marginal of
:math:`\sigma` can end in a cliff: where a group's mean lies above every curve the prior allows
as :math:`\sigma \to 0` (:math:`\mu_g > m_0 = \eta R^{-\nu}`), its mass :math:`\Phi(b_g)` falls
from about one to nothing as :math:`\sigma` drops below :math:`h_g = (\mu_g - m_0) / z`, within
:math:`1 / (z \sqrt{S_{ww}})` in :math:`\log\sigma` (below :math:`m_0`: :math:`h_g = (m_0 -
\mu_g) / (z R^{-\nu})`, the same with :math:`z R^{-\nu}`). One patient at 40 with response
1.5 (:math:`\nu = 1.2`) gives a marginal nearly flat in :math:`\log\sigma` from 1 down to
0.0033, where it drops within about 1 % of :math:`\sigma`: NUTS on the logit of
:math:`\sigma / \sigma_{max}` met it with hundreds of divergent transitions. So with a known
:math:`\nu` sigma is sampled on ``sigma_position`` :math:`\zeta`, with

.. math::

    \operatorname{logit}(\sigma / \sigma_{max}) = \operatorname{logit}(h / \sigma_{max})
        + (\zeta - S) / K + S, \qquad S = \log(1 + e^{\zeta - c}),

:math:`h` the largest :math:`h_g` (clipped to :math:`[10^{-12}, 0.5] \, \sigma_{max}`),
:math:`K` that group's :math:`z_g \sqrt{S_{ww}}` and :math:`c = 4`: below :math:`c` one unit
of :math:`\zeta` is the cliff's width, above it one unit of the logit. The map is a bijection;
its Jacobian :math:`\sigma_{max} \, s(x) (1 - s(x)) ((1 - s(\zeta - c)) / K + s(\zeta - c))`
(:math:`s` the logistic function) and sigma's truncated half-Cauchy density are a potential.
The one patient above then gives no divergent transition, with a step size of 0.53 where the
logit had 0.05. With :math:`\nu` free the cliff moves with :math:`\nu`, and a map that follows
it ties :math:`\zeta` to :math:`\nu` (60 patients: step size 2.5e-4, R-hat 1.87), so sigma
keeps its logit there; one patient with a free :math:`\nu` still gives divergent transitions
(the posterior narrows to the curve through the patient as :math:`\sigma \to 0`), and
:meth:`group_mtds` warns whenever a fit fails its convergence checks.

Only NUTS fits it (``engine="nuts"``); there is no design for it (a per-group dose rule would
be the 3PND's posterior-quantile rule applied to each group's MTD, with ``Decision.strata``).
"""

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr
from scipy.special import ndtri

from dosezoo.checks import real_array, real_number
from dosezoo.data import DataError, TrialData
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.models.base import DoseModel
from dosezoo.models.three_pnd import check_responses
from dosezoo.posterior import DosePosterior, SampledDistribution, Sampling
from dosezoo.protocols import number_text

if TYPE_CHECKING:
    import pymc as pm


#: Widths of the cliff of sigma's marginal over which ``sigma_position`` resolves it finely,
#: before it turns to the log scale (module notes).
_CLIFF_WIDTHS = 4.0
#: Below this log-probability the normal quantile is taken from its asymptotic series
#: (``erfcinv`` of the probability itself would underflow).
_LOG_TAIL = -700.0


def _log_ndtr(x: Any) -> Any:
    """``log Phi(x)`` as a PyTensor expression, accurate in the lower tail (PyMC's)."""
    from pymc.distributions.dist_math import normal_lcdf

    return normal_lcdf(0.0, 1.0, x)


def _log_ndtr_ratio(a: Any, b: Any, gap: Any) -> Any:
    """``log Phi(a) - log Phi(b)`` for ``a < b``, given ``gap = a - b`` computed apart.

    Far in the tail ``a`` and ``b`` may round to one number and their logs cancel: below
    ``b = -1`` each log is ``log(erfcx(-z / sqrt 2) / 2) - z^2 / 2`` (PyMC's form), and the
    squares' difference is ``gap (a + b)``.
    """
    import pytensor.tensor as pt

    root_half = math.sqrt(0.5)
    tails = (
        pt.log(pt.erfcx(-pt.minimum(a, -1.0) * root_half))
        - pt.log(pt.erfcx(-pt.minimum(b, -1.0) * root_half))
        - 0.5 * gap * (a + b)
    )
    return pt.switch(b < -1.0, tails, _log_ndtr(a) - _log_ndtr(b))


def _ndtri_of_log(log_p: Any) -> Any:
    r"""``Phi^{-1}(exp(log_p))`` as a PyTensor expression, for any ``log_p <= 0``.

    ``erfcinv`` down to :data:`_LOG_TAIL`; below it three fixed-point steps of
    :math:`t^2 = -2 L - \log(2\pi) - 2 \log(-t)`, the series :math:`\Phi(t) \approx
    \phi(t) / (-t)` (relative error :math:`1/t^2 < 10^{-3}` there). Each branch reads its
    input clipped to its own range, so neither gives the other's gradient a NaN.
    """
    import pytensor.tensor as pt

    central = -math.sqrt(2.0) * pt.erfcinv(2.0 * pt.exp(pt.maximum(log_p, _LOG_TAIL)))
    far = pt.minimum(log_p, _LOG_TAIL)
    tail = -pt.sqrt(-2.0 * far)
    for _ in range(3):
        tail = -pt.sqrt(-2.0 * far - math.log(2.0 * math.pi) - 2.0 * pt.log(-tail))
    return pt.switch(log_p > _LOG_TAIL, central, tail)


def truncated_normal_quantile(
    centre: Any, spread: Any, lower: Any, width: Any, quantile: Any
) -> tuple[Any, Any]:
    r"""Return the ``quantile`` of :math:`N(\mu, s^2)` truncated to :math:`(l, l + w)`, in PyTensor.

    Returns the quantile's standard score :math:`t` (the value is :math:`\mu + s t`) and
    :math:`\log|d(\mu + s t) / dq| = \log s + \log(\Phi(b) - \Phi(a)) - \log\phi(t)`,
    :math:`a, b = (l - \mu) / s, (l + w - \mu) / s`. The width :math:`w` is given apart from
    :math:`l` (it may be below the precision of :math:`l`). Normal CDFs are taken in the lower
    tail, where they keep their precision (an interval above :math:`\mu` is reflected), and
    in logs.
    """
    import pytensor.tensor as pt

    gap = -width / spread
    a = (lower - centre) / spread
    b = a - gap
    flip = a + b > 0.0
    a_low, b_low = pt.switch(flip, -b, a), pt.switch(flip, -a, b)
    q_low = pt.switch(flip, 1.0 - quantile, quantile)
    log_a, log_b = _log_ndtr(a_low), _log_ndtr(b_low)
    log_p = pt.logaddexp(pt.log1p(-q_low) + log_a, pt.log(q_low) + log_b)
    score = _ndtri_of_log(log_p)
    score = pt.switch(flip, -score, score)
    log_mass = log_b + pt.log1mexp(_log_ndtr_ratio(a_low, b_low, gap))
    log_jacobian = pt.log(spread) + log_mass + 0.5 * score**2 + 0.5 * math.log(2.0 * math.pi)
    return score, log_jacobian


class ThreePNDScale:
    """The 3PND's ``z`` and ``sigma_max``, shared by the extensions (fields eta, gamma)."""

    eta: float
    gamma: float

    @property
    def z(self) -> float:
        """``Phi^-1(gamma)``."""
        return float(ndtri(self.gamma))

    @property
    def sigma_max(self) -> float:
        """Upper end ``eta / z`` of the support of sigma."""
        return self.eta / self.z

    def sigma_prior(self, name: str | None = "sigma") -> Any:
        """Return sigma's prior, ``C+(0, 1)`` truncated to ``(0, eta / z)``.

        A variable ``name`` of the PyMC model in context, or (``name=None``) the distribution.
        """
        import pymc as pm

        if name is None:
            return pm.Truncated.dist(pm.HalfCauchy.dist(1.0), lower=0.0, upper=self.sigma_max)
        return pm.Truncated(
            name,
            pm.HalfCauchy.dist(1.0),
            lower=0.0,
            upper=self.sigma_max,
            initval=min(1.0, 0.5 * self.sigma_max),
        )


def scalar_means(post: xr.Dataset) -> dict[str, float]:
    """Return the posterior mean of every scalar parameter (dims ``chain, draw``)."""
    return {
        str(name): float(value.mean())
        for name, value in post.data_vars.items()
        if value.dims == ("chain", "draw")
    }


def check_curve_parameters(
    owner: str, sigma: object, sigma_max: float, above: Mapping[str, tuple[object, float]]
) -> None:
    """Raise ValueError unless ``0 < sigma < sigma_max`` and each ``above`` value exceeds its bound.

    ``above`` maps a name to ``(value, bound)``, a value or an array of them, finite. Beyond
    ``sigma_max = eta / z`` the threshold ``eta - sigma z`` of the MTD is negative: the MTD's
    power would be a complex number, or the MTD below ``x_min``.
    """
    sigma = real_number(owner, "sigma", sigma)
    if not 0.0 < sigma < sigma_max:
        raise ValueError(f"{owner}: sigma must lie in (0, {sigma_max:g}) (eta / z), got {sigma!r}")
    for name, (value, bound) in above.items():
        values = np.atleast_1d(real_array(owner, name, value))
        if not np.all(np.isfinite(values) & (values > bound)):
            raise ValueError(f"{owner}: {name} must be finite and > {bound:g}, got {value!r}")


def check_hyper(owner: str, model: Any) -> None:
    """Validate the 3PND hyper-parameters ``eta, gamma, x_min, x_max, delta, dose_unit``.

    Shared by the 3PND extensions; the message names ``owner`` and the field at fault.
    """
    unit = model.dose_unit
    if unit is not None and not (isinstance(unit, str) and unit.strip()):
        raise ValueError(f"{owner}: dose_unit must be a non-empty string or None, got {unit!r}")
    for name in ("eta", "gamma", "x_min", "x_max", "delta"):
        object.__setattr__(model, name, real_number(owner, name, getattr(model, name)))
    if model.eta <= 0:
        raise ValueError(f"{owner}: eta must be > 0, got {model.eta!r}")
    if not 0.5 < model.gamma < 1:
        raise ValueError(f"{owner}: gamma must lie in (0.5, 1), got {model.gamma!r}")
    if model.x_min < 0:
        raise ValueError(f"{owner}: x_min must be >= 0, got {model.x_min!r}")
    if not model.x_min < model.x_max:
        raise ValueError(
            f"{owner}: x_min must be < x_max, got x_min={model.x_min!r}, x_max={model.x_max!r}"
        )
    if model.delta <= 0:
        raise ValueError(f"{owner}: delta must be > 0, got {model.delta!r}")


def label_text(value: Any) -> str:
    """Return a label as text, numbers by the shortest text that reads back (``1.0`` -> ``"1"``)."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        # Exactly, as it reads back: f"{value:g}" kept six digits and merged the patients
        # 1010001 and 1010002 into one.
        return number_text(float(value))
    return str(value)


def labels_column(
    owner: str, data: TrialData, column: str, allowed: Sequence[str] | None = None
) -> np.ndarray:
    """Return the covariate ``column`` as text labels, checking them against ``allowed``.

    Raises a DataError naming the column when the data have patients but do not declare it
    (data without patients, e.g. a prior check's, have no labels to read), and the column, row
    and value of the first label not in ``allowed`` (when given).
    """
    if not data.n_patients and column not in data.covariates:
        return np.zeros(0, dtype=object)
    if column not in data.covariates:
        raise DataError(
            f"column {column!r}: {owner} needs it as a covariate of the data "
            f"(TrialData.from_dataframe(frame, covariates=({column!r},))); the data declare "
            f"{list(data.covariates)}"
        )
    labels = np.asarray([label_text(v) for v in data.column(column)], dtype=object)
    if allowed is not None:
        unknown = np.flatnonzero(~np.isin(labels, list(allowed)))
        if unknown.size:
            row = int(unknown[0])
            raise DataError(
                f"column {column!r}, row {row}: value {data.column(column)[row]!r} is not one "
                f"of the model's groups {list(allowed)}"
            )
    return labels


@dataclass(frozen=True)
class ThreePNDGroups(ThreePNDScale, DoseModel):
    r"""Lee (2023)'s 3PND for several groups: a slope per group, shared sigma and nu.

    Parameters
    ----------
    eta, gamma, x_min, x_max, delta
        As in :class:`~dosezoo.models.ThreePND` (DLT threshold, homogeneity constant, dose
        range, scale of nu's log-normal prior).
    groups : tuple of str
        The labels of the groups (at least two, distinct), in the order of the ``group`` dim.
    group_column : str
        The data's covariate column holding each patient's group.
    nu : float, optional
        A known non-linearity shared by the groups (Lee's illustration); None (default) gives
        it the log-normal prior.
    dose_unit : str, optional
        Unit of the doses, recorded in :meth:`parameters`.

    Examples
    --------
    >>> model = ThreePNDGroups(eta=3, gamma=0.9, x_min=5, x_max=80, groups=("A", "B"))
    >>> data = TrialData.from_dataframe(frame, covariates=("group",))  # doctest: +SKIP
    >>> idata = model.fit(data, random_seed=1)  # doctest: +SKIP
    >>> idata.posterior["mtd"].sel(group="B")  # doctest: +SKIP
    """

    model_name: ClassVar[str] = "ThreePNDGroups"
    outcomes: ClassVar[tuple[str, ...]] = ("y",)
    default_engine: ClassVar[str] = "nuts"

    eta: float
    gamma: float
    x_min: float
    x_max: float
    groups: tuple[str, ...]
    delta: float = 0.5
    group_column: str = "group"
    nu: float | None = None
    dose_unit: str | None = None

    def __post_init__(self) -> None:
        """Validate the hyper-parameters and the groups, naming the field at fault."""
        owner = self.model_name
        check_hyper(owner, self)
        if isinstance(self.groups, str) or not isinstance(self.groups, Sequence):
            raise ValueError(f"{owner}: groups must be a sequence of labels, got {self.groups!r}")
        groups = tuple(label_text(g) for g in self.groups)
        if len(groups) < 2 or len(set(groups)) != len(groups) or not all(groups):
            raise ValueError(
                f"{owner}: groups must be at least two distinct non-empty labels, got "
                f"{self.groups!r}"
            )
        object.__setattr__(self, "groups", groups)
        if not (isinstance(self.group_column, str) and self.group_column.strip()):
            raise ValueError(
                f"{owner}: group_column must be a non-empty string, got {self.group_column!r}"
            )
        if self.nu is not None:
            object.__setattr__(self, "nu", real_number(owner, "nu", self.nu))
            if self.nu <= 0:
                raise ValueError(f"{owner}: nu must be > 0 or None, got {self.nu!r}")

    def parameters(self) -> dict[str, Any]:
        """Return the hyper-parameters, groups, group column, nu and dose unit."""
        names = ("eta", "gamma", "x_min", "x_max", "delta", "nu", "dose_unit", "group_column")
        return {name: getattr(self, name) for name in names} | {"groups": list(self.groups)}

    def data_schema(self) -> dict[str, Any]:
        """Return the TrialData keywords: the group column is a covariate."""
        return {"covariates": (self.group_column,)}

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check ``y``, the doses and the group labels (DataError naming column, row, value)."""
        self._arrays(data, min_patients=min_patients)

    def _arrays(
        self, data: TrialData, *, min_patients: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dose, y = check_responses(self.model_name, data, self.x_min, self.x_max, self.sigma_max)
        if data.n_patients < min_patients:
            data.require("y", min_patients=min_patients, model=self.model_name)
        labels = labels_column(self.model_name, data, self.group_column, self.groups)
        index = np.array([self.groups.index(label) for label in labels], dtype=np.int64)
        return dose, y, index

    def predictive_groups(self, data: TrialData) -> tuple[np.ndarray, list]:
        """Group patients by group and dose (labels ``"B: 40"``), groups in declared order.

        Each group has its own curve: pooled over groups at a dose, one group's misfit could
        hide behind the other's.
        """
        dose, _, index = self._arrays(data, min_patients=0)
        if not dose.size:
            return np.zeros(0, dtype=int), []
        keys = np.column_stack([index.astype(float), dose])
        distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
        labels = [f"{self.groups[int(g)]}: {value:g}" for g, value in distinct]
        return inverse.reshape(-1), labels

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model: sigma, nu (or the known nu), one beta per group, the MTDs.

        The posterior has ``beta`` and ``mtd`` with dims ``("group",)`` (coordinates: the
        labels), scalars ``sigma`` and ``nu`` (a Data value when ``nu`` is known). It is
        sampled on the slopes' conditional quantiles (module notes).
        """
        return self._pymc_model(data, slopes_drawn=False)

    def _prior_model(self, data: TrialData) -> "pm.Model":
        """Return the same model with ``beta`` drawn uniform and ``mtd`` its deterministic.

        :meth:`build`'s form needs a potential, which PyMC's forward sampler (the
        prior draws) ignores.
        """
        return self._pymc_model(data, slopes_drawn=True)

    def _pymc_model(self, data: TrialData, *, slopes_drawn: bool) -> "pm.Model":
        import pymc as pm

        dose, y, index = self._arrays(data, min_patients=0)
        coords = {"patient": np.arange(dose.size), "group": list(self.groups)}
        with pm.Model(coords=coords) as model:
            dose_data = pm.Data("dose", dose, dims="patient")
            group_data = pm.Data("group_index", index, dims="patient")
            nu = pm.LogNormal("nu", 0.0, self.delta) if self.nu is None else pm.Data("nu", self.nu)
            # Each group's observed flag, S_ww and S_wy / S_ww (the posterior's coordinates).
            statistics = None if slopes_drawn else self._group_statistics(dose_data, y, index, nu)
            if statistics is None or self.nu is None:
                sigma = self.sigma_prior()
            else:
                # Resolved about the cliff of its marginal (module notes).
                position = pm.Flat("sigma_position")
                sigma = pm.Deterministic(
                    "sigma", self._sigma_about_the_cliff(position, *statistics, nu)
                )
            lower, width = self._slope_support(sigma, nu)
            if statistics is None:
                beta = pm.Uniform("beta", lower=lower, upper=lower + width, dims="group")
            else:
                # Sampled on the slopes' conditional quantiles (module notes).
                quantile = pm.Uniform("beta_quantile", 0.0, 1.0, dims="group")
                beta = pm.Deterministic(
                    "beta",
                    self._slopes_from_quantiles(*statistics, sigma, lower, width, quantile),
                    dims="group",
                )
            pm.Deterministic("mtd", self._mtd_tensor(beta, sigma, nu), dims="group")
            pm.Normal(
                "y",
                mu=beta[group_data] * (dose_data - self.x_min) ** nu,
                sigma=sigma,
                observed=y,
                dims="patient",
            )
        return model

    def _mtd_tensor(self, beta: Any, sigma: Any, nu: Any) -> Any:
        """Theorem 1's MTD of each slope, kept strictly below x_max where it rounds to it."""
        import pytensor.tensor as pt

        return pt.minimum(
            self.x_min + ((self.eta - sigma * self.z) / beta) ** (1.0 / nu),
            np.nextafter(self.x_max, self.x_min),
        )

    def _slope_support(self, sigma: Any, nu: Any) -> tuple[Any, Any]:
        """Return ``l`` and ``u - l`` of the slopes' uniform prior given sigma and nu.

        The width ``sigma z (1 + R^-nu)`` is formed apart: ``u - l`` rounds to 0 once it is
        below the precision of ``eta R^-nu``.
        """
        range_power = (self.x_max - self.x_min) ** nu
        return (self.eta - sigma * self.z) / range_power, sigma * self.z * (1.0 + 1.0 / range_power)

    def _group_statistics(
        self, dose: Any, y: np.ndarray, index: np.ndarray, nu: Any
    ) -> tuple[np.ndarray, Any, Any]:
        """Return which groups have patients, their ``S_ww`` (1 if none) and ``S_wy / S_ww``."""
        import pytensor.tensor as pt

        observed = np.bincount(index, minlength=len(self.groups)) > 0
        one_hot = np.eye(len(self.groups))[index]
        w = (dose - self.x_min) ** nu
        s_ww = pt.switch(observed, pt.dot(w**2, one_hot), 1.0)
        return observed, s_ww, pt.dot(w * y, one_hot) / s_ww

    def _sigma_about_the_cliff(
        self, position: Any, observed: np.ndarray, s_ww: Any, centre: Any, nu: Any
    ) -> Any:
        r"""Return sigma at ``position``, resolved about the cliff of its marginal; add its prior.

        The logit :math:`x` of :math:`\sigma / \sigma_{max}` is :math:`x_c + (\zeta - S) / K +
        S`, :math:`S = \log(1 + e^{\zeta - c})` (:math:`\zeta` = ``position``, :math:`c` =
        :data:`_CLIFF_WIDTHS`), with :math:`x_c` the logit of the cliff :math:`h = \max_g
        |\mu_g - \eta R^{-\nu}| / z_g` (:math:`z_g = z` for a group mean above
        :math:`\eta R^{-\nu}`, :math:`z R^{-\nu}` below) and :math:`K = z_g \sqrt{S_{ww}}` of
        that group, the rate at which the group's mass :math:`\Phi(b_g)` falls there per unit of
        :math:`\log\sigma` (module notes). Add the truncated half-Cauchy density of sigma and
        the Jacobian :math:`|d\sigma / d\zeta|` as a potential.
        """
        import pymc as pm
        import pytensor.tensor as pt

        range_power = (self.x_max - self.x_min) ** nu
        above = centre > self.eta / range_power
        edge_rate = pt.switch(above, self.z, self.z / range_power)
        cliffs = pt.switch(observed, pt.abs(centre - self.eta / range_power) / edge_rate, 0.0)
        widest = pt.argmax(cliffs)
        # Clipped so the logit stays finite; the map is a bijection whatever x_c is.
        ratio = pt.clip(cliffs[widest] / self.sigma_max, 1e-12, 0.5)
        sharpness = edge_rate[widest] * pt.sqrt(s_ww[widest])
        beyond = pt.softplus(position - _CLIFF_WIDTHS)
        logit = pt.log(ratio) - pt.log1p(-ratio) + (position - beyond) / sharpness + beyond
        sigma = self.sigma_max * pt.sigmoid(logit)
        # dx/dzeta = (1 - s) / K + s with s the logistic function of zeta - c.
        log_slope = pt.logaddexp(
            -pt.softplus(position - _CLIFF_WIDTHS) - pt.log(sharpness),
            -pt.softplus(_CLIFF_WIDTHS - position),
        )
        log_jacobian = (
            math.log(self.sigma_max) - pt.softplus(-logit) - pt.softplus(logit) + log_slope
        )
        log_prior = pm.logp(self.sigma_prior(name=None), sigma)
        pm.Potential("sigma_prior", log_prior + log_jacobian)
        return sigma

    def _slopes_from_quantiles(
        self,
        observed: np.ndarray,
        s_ww: Any,
        centre: Any,
        sigma: Any,
        lower: Any,
        width: Any,
        quantile: Any,
    ) -> Any:
        r"""Return each slope as the ``quantile`` of its conditional posterior given sigma and nu.

        A group with data has the truncated normal :math:`N(\mu_g, s_g^2)` on :math:`(l, u)`,
        with :math:`\mu_g = S_{wy} / S_{ww}`, :math:`s_g = \sigma / \sqrt{S_{ww}}`; a group
        without data its uniform prior. Add the potential that makes ``quantile`` uniform:
        :math:`\log|d\beta_g / dq_g| - \log(u - l)` (module notes).
        """
        import pymc as pm
        import pytensor.tensor as pt

        spread = sigma / pt.sqrt(s_ww)
        score, log_jacobian = truncated_normal_quantile(centre, spread, lower, width, quantile)
        pm.Potential("beta_prior", pt.sum(pt.switch(observed, log_jacobian - pt.log(width), 0.0)))
        return pt.switch(observed, centre + spread * score, lower + width * quantile)

    def log_density(
        self, data: TrialData, mtd: Sequence[float], sigma: float, nu: float | None = None
    ) -> float:
        r"""Return the log posterior density (unnormalised) of ``(mtd, sigma, nu)``, with scipy.

        The normal log-likelihood of eq (6) at :math:`\beta_g = (\eta - \sigma z) / (\xi_g -
        x_{min})^\nu`, the uniform prior density :math:`1 / (u - l)` of each slope times the
        Jacobian :math:`|d\beta_g / d\xi_g|`, the truncated half-Cauchy of sigma and the
        log-normal of nu (unless known); ``-inf`` outside the support. With the Jacobian
        :math:`|d\xi_g / dq_g|` of the slopes' quantiles it is the density :meth:`build`'s
        model has on its constrained values: an independent check of it.
        """
        from scipy import stats

        dose, y, index = self._arrays(data, min_patients=0)
        xi = np.asarray(mtd, dtype=float)
        nu = self.nu if self.nu is not None else nu
        if nu is None:
            raise ValueError(f"{self.model_name}.log_density: nu is needed (it is not known)")
        if not 0 < sigma < self.sigma_max or np.any(xi <= self.x_min):
            return -math.inf
        z, power = self.z, (self.x_max - self.x_min) ** nu
        lower, upper = (self.eta - sigma * z) / power, self.eta / power + sigma * z
        beta = (self.eta - sigma * z) / (xi - self.x_min) ** nu
        if np.any((beta <= lower) | (beta >= upper)):
            return -math.inf
        mean = beta[index] * (dose - self.x_min) ** nu
        total = float(np.sum(stats.norm.logpdf(y, mean, sigma)))
        jacobian = nu * (self.eta - sigma * z) * (xi - self.x_min) ** (-nu - 1.0)
        total += float(np.sum(np.log(jacobian))) - xi.size * math.log(upper - lower)
        total += float(stats.halfcauchy.logpdf(sigma)) - math.log(
            stats.halfcauchy.cdf(self.sigma_max)
        )
        if self.nu is None:
            total += float(stats.lognorm.logpdf(nu, s=self.delta))
        return total

    def mtd_of(self, beta: Sequence[float], sigma: float, nu: float) -> np.ndarray:
        """Return each group's MTD, ``x_min + ((eta - sigma z) / beta_g)^(1 / nu)`` (Theorem 1)."""
        owner = f"{self.model_name}.mtd_of"
        check_curve_parameters(owner, sigma, self.sigma_max, {"beta": (beta, 0.0), "nu": (nu, 0.0)})
        slopes = np.asarray(beta, dtype=float)
        return self.x_min + ((self.eta - sigma * self.z) / slopes) ** (1.0 / nu)

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Fit NUTS and return the posterior means of the scalars with the fit's diagnostics.

        A DosePosterior has one MTD; this model has one per group: read them with
        :meth:`group_mtds`. The convergence report judges ``beta`` and ``mtd``.
        """
        return self.fitted_posterior(data, sampling)

    def posterior_from_idata(
        self, idata: xr.DataTree, criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> DosePosterior:
        """Read the scalar parameters' means and the convergence of ``beta`` and ``mtd``."""
        post = idata["posterior"].to_dataset()
        # sigma_position is a coordinate of the sampler, not a parameter of the model.
        scalars = {k: v for k, v in scalar_means(post).items() if k != "sigma_position"}
        return DosePosterior(
            dose_levels=(),
            rates={},
            chains=post.sizes["chain"],
            parameter_mean=scalars,
            report=(criteria or ConvergenceCriteria()).check(idata, ["beta", "mtd"]),
        )

    def group_mtds(
        self, idata: xr.DataTree, criteria: ConvergenceCriteria | None = None
    ) -> dict[str, SampledDistribution]:
        """Return each group's MTD posterior (draws of a fit), by group label.

        Parameters
        ----------
        idata : xarray.DataTree
            A fit of this model.
        criteria : ConvergenceCriteria, optional
            What the fit must meet (default: :class:`~dosezoo.diagnostics.ConvergenceCriteria`).

        Warns
        -----
        RuntimeWarning
            When the fit fails ``criteria`` on ``beta`` and ``mtd``, naming each failure: the
            draws are returned, but their quantiles may be wrong (module notes: with one or two
            patients a group's MTD meets a funnel in sigma).
        """
        if criteria is not None and not isinstance(criteria, ConvergenceCriteria):
            raise TypeError(
                f"{self.model_name}.group_mtds: criteria must be a ConvergenceCriteria or None, "
                f"got {criteria!r}"
            )
        report = (criteria or ConvergenceCriteria()).check(idata, ["beta", "mtd"])
        if not report.ok:
            warnings.warn(
                f"{self.model_name}.group_mtds: the fit fails its convergence checks "
                f"({'; '.join(report.failures)}), so the MTDs' quantiles may be wrong; with one "
                "or two patients in a group NUTS meets a funnel in sigma, and more draws or "
                "tuning do not remove it",
                RuntimeWarning,
                stacklevel=2,
            )
        mtd = idata["posterior"]["mtd"]
        return {
            label: SampledDistribution(mtd.sel(group=label).transpose("chain", "draw").to_numpy())
            for label in self.groups
        }
