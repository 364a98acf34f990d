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

**Sampling on the MTD scale.** NUTS on :math:`(\beta_g, \sigma, \nu)` crawls along the ridge
:math:`\beta_g (\bar x - x_{min})^\nu \approx` const of the likelihood (long trajectories,
slow fits). The model is the same written in :math:`\xi_g = \xi(\beta_g, \nu, \sigma)`:
:math:`\beta_g = (\eta - \sigma z) / (\xi_g - x_{min})^\nu` is decreasing in :math:`\xi_g`, so
:math:`\beta_g \in (l, u)` is :math:`\xi_g \in (x^*_{min}(\sigma, \nu), x_{max})` with
Lee's eq (13), :math:`x^*_{min} = x_{min} + ((\eta - \sigma z) / u)^{1/\nu}`, and the uniform
density :math:`1 / (u - l)` of :math:`\beta_g` becomes

.. math::

    \pi(\xi_g \mid \sigma, \nu) = \frac{1}{u - l} \left|\frac{d\beta_g}{d\xi_g}\right|
        = \frac{\nu (\eta - \sigma z) (\xi_g - x_{min})^{-\nu - 1}}{u - l},
        \quad x^*_{min} < \xi_g < x_{max}.

The PyMC model draws ``mtd`` uniform on that interval and adds
:math:`\log \pi(\xi_g \mid \sigma, \nu) + \log(x_{max} - x^*_{min})` as a potential;
``beta`` is a deterministic. :meth:`ThreePNDGroups.log_density` computes the same density
with scipy from the slopes' uniform prior and the Jacobian, an independent check. PyMC's
forward sampler ignores potentials, so prior draws (``sample_prior_predictive``, the prior
checks) come from the model written the other way round: ``beta`` uniform on
:math:`(l, u)` and ``mtd`` its deterministic, the prior as stated above.

Only NUTS fits it (``engine="nuts"``); there is no design for it (a per-group dose rule would
be the 3PND's posterior-quantile rule applied to each group's MTD, with ``Decision.strata``).
"""

import math
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
        sampled on the MTD scale (module notes).
        """
        return self._pymc_model(data, slopes_drawn=False)

    def _prior_model(self, data: TrialData) -> "pm.Model":
        """Return the same model with ``beta`` drawn uniform and ``mtd`` its deterministic.

        :meth:`build`'s MTD-scale form needs a potential, which PyMC's forward sampler (the
        prior draws) ignores.
        """
        return self._pymc_model(data, slopes_drawn=True)

    def _pymc_model(self, data: TrialData, *, slopes_drawn: bool) -> "pm.Model":
        import pymc as pm
        import pytensor.tensor as pt

        dose, y, index = self._arrays(data, min_patients=0)
        coords = {"patient": np.arange(dose.size), "group": list(self.groups)}
        z = self.z
        with pm.Model(coords=coords) as model:
            dose_data = pm.Data("dose", dose, dims="patient")
            group_data = pm.Data("group_index", index, dims="patient")
            sigma = pm.Truncated(
                "sigma",
                pm.HalfCauchy.dist(1.0),
                lower=0.0,
                upper=self.sigma_max,
                initval=min(1.0, 0.5 * self.sigma_max),
            )
            nu = pm.LogNormal("nu", 0.0, self.delta) if self.nu is None else pm.Data("nu", self.nu)
            range_power = (self.x_max - self.x_min) ** nu
            lower = (self.eta - sigma * z) / range_power
            upper = self.eta / range_power + sigma * z
            if slopes_drawn:
                beta = pm.Uniform("beta", lower=lower, upper=upper, dims="group")
                # Theorem 1, kept strictly inside the dose range where it rounds to x_max.
                pm.Deterministic(
                    "mtd",
                    pt.minimum(
                        self.x_min + ((self.eta - sigma * z) / beta) ** (1.0 / nu),
                        np.nextafter(self.x_max, self.x_min),
                    ),
                    dims="group",
                )
            else:
                # Sampled on the MTD scale (module notes): xi_g uniform on its support, and
                # the potential turns that uniform into the density of beta_g's uniform prior.
                support = self.x_min + ((self.eta - sigma * z) / upper) ** (1.0 / nu)
                mtd = pm.Uniform("mtd", lower=support, upper=self.x_max, dims="group")
                pm.Potential(
                    "beta_prior",
                    pt.sum(
                        pt.log(nu * (self.eta - sigma * z))
                        - (nu + 1.0) * pt.log(mtd - self.x_min)
                        - pt.log(upper - lower)
                        + pt.log(self.x_max - support)
                    ),
                )
                beta = pm.Deterministic(
                    "beta", (self.eta - sigma * z) / (mtd - self.x_min) ** nu, dims="group"
                )
            pm.Normal(
                "y",
                mu=beta[group_data] * (dose_data - self.x_min) ** nu,
                sigma=sigma,
                observed=y,
                dims="patient",
            )
        return model

    def log_density(
        self, data: TrialData, mtd: Sequence[float], sigma: float, nu: float | None = None
    ) -> float:
        r"""Return the log posterior density (unnormalised) of ``(mtd, sigma, nu)``, with scipy.

        The normal log-likelihood of eq (6) at :math:`\beta_g = (\eta - \sigma z) / (\xi_g -
        x_{min})^\nu`, the uniform prior density :math:`1 / (u - l)` of each slope times the
        Jacobian :math:`|d\beta_g / d\xi_g|`, the truncated half-Cauchy of sigma and the
        log-normal of nu (unless known); ``-inf`` outside the support. It is the density
        :meth:`build`'s model has on its constrained values: an independent check of it.
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
        scalars = scalar_means(post)
        return DosePosterior(
            dose_levels=(),
            rates={},
            chains=post.sizes["chain"],
            parameter_mean=scalars,
            report=(criteria or ConvergenceCriteria()).check(idata, ["beta", "mtd"]),
        )

    def group_mtds(self, idata: xr.DataTree) -> dict[str, SampledDistribution]:
        """Return each group's MTD posterior (draws of a fit), by group label."""
        mtd = idata["posterior"]["mtd"]
        return {
            label: SampledDistribution(mtd.sel(group=label).transpose("chain", "draw").to_numpy())
            for label in self.groups
        }
