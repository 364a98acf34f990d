r"""The 3PND for repeated measurements: a non-linear mixed model (Lee 2023, Discussion).

Lee, S.Y. (2023). A flexible dose-response modeling framework based on continuous toxicity
outcomes in phase I cancer clinical trials. *Trials* 24, 745, Discussion, "Repeated
measurement of toxicity response": when patients get several doses the 3PND becomes

.. math::

    y_{ij} \sim N\big(\beta_i (x_{ij} - x_{min})^{\nu_i}, \sigma^2\big),
    \quad i = 1, \dots, N, \; j = 1, \dots, M_i,

with patient-specific slope :math:`\beta_i` and non-linearity :math:`\nu_i`, a shared
:math:`\sigma`, "a joint prior ... similarly given as the prior of 3PND (7)-(9) to ensure that
the individualized MTD belong to the dose range, while individual model parameters
:math:`(\beta_i, \nu_i)` follow a population-level model", and both the individual MTDs and a
population MTD as targets. The paper gives no population model; this module's (documented
choices):

.. math::

    \xi_i &= x_{min} + R \, \operatorname{logit}^{-1}(\mu_\xi + \tau_\xi f_i), \quad
        f_i \sim N(0, 1) \\
    \log \nu_i &= \mu_\nu + \tau_\nu e_i, \quad e_i \sim N(0, 1) \\
    \beta_i &= \frac{\eta - \sigma z}{(\xi_i - x_{min})^{\nu_i}} \\
    \mu_\xi &\sim N(0, s_\xi^2), \; \tau_\xi \sim N^+(0, t_\xi^2), \;
    \mu_\nu \sim N(0, \delta^2), \; \tau_\nu \sim N^+(0, t_\nu^2), \;
    \sigma \sim C^+(0, 1) \, 1_{(0, \eta / z)}.

**Individual MTDs.** Given :math:`(\beta_i, \nu_i, \sigma)`, patient i's responses follow a
3PND, so by Theorem 1 the patient's MTD (largest dose with :math:`P(Y_{ij} \ge \eta) \le 1 -
\gamma`) is :math:`\xi(\beta_i, \nu_i, \sigma) = x_{min} + ((\eta - \sigma z) /
\beta_i)^{1/\nu_i}`, which is :math:`\xi_i` above: the model is written in the individual
MTDs (the coordinates in which NUTS samples well, as for
:mod:`dosezoo.models.three_pnd_groups`) and :math:`\beta_i` is their deterministic.
:math:`\xi_i \in (x_{min}, x_{max})` with probability 1, the property the paper asks of the
prior (Theorem 1's :math:`\beta_i > l(\sigma, \nu_i)`). Unlike the 3PND's uniform slope, the
slope has no upper cap :math:`u(\sigma, \nu_i)`: the cap keeps the 3PND's flat prior proper,
which the logit-normal population model does not need.

**Population MTD.** ``mtd_population`` :math:`= x_{min} + R \operatorname{logit}^{-1}(\mu_\xi)`,
the median of the population distribution of individual MTDs (:math:`\xi_i` is increasing in
:math:`f_i` alone). The paper does not define it; another reading, the MTD of the marginal
response over patients, would mix the between-patient spread into the toxicity probability.
:math:`\sigma` is the within-patient SD here; the between-patient spread sits in
:math:`\tau_\xi, \tau_\nu`.

The data have one row per **measurement** (not per patient): ``dose``, ``y`` and the
patient's label in the covariate column ``subject_column`` (default ``"subject"``). The fit's
``mtd``, ``beta`` and ``nu`` have dims ``("subject",)``, labelled in order of first
appearance. Only NUTS fits it (``engine="nuts"``); no design is needed for the analysis (the
pre-clinical repeated-dose setting the paper mentions).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr
from scipy.special import expit

from dosezoo.checks import real_number
from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.models.base import DoseModel
from dosezoo.models.three_pnd import check_responses
from dosezoo.models.three_pnd_groups import (
    ThreePNDScale,
    check_hyper,
    labels_column,
    scalar_means,
)
from dosezoo.posterior import DosePosterior, SampledDistribution, Sampling

if TYPE_CHECKING:
    import pymc as pm

#: The free variables, in the order of :meth:`ThreePNDRepeated.log_density`'s ``values``.
FREE = ("sigma", "mu_mtd", "tau_mtd", "mu_log_nu", "tau_log_nu", "f", "e")


@dataclass(frozen=True)
class ThreePNDRepeated(ThreePNDScale, DoseModel):
    r"""Lee (2023)'s 3PND as a non-linear mixed model: patient-level MTD and nu, shared sigma.

    Parameters
    ----------
    eta, gamma, x_min, x_max, delta
        As in :class:`~dosezoo.models.ThreePND`; ``delta`` is the prior SD of
        :math:`\mu_\nu`, the population's median log non-linearity.
    subject_column : str
        The data's covariate column naming the patient of each measurement.
    mtd_location_scale : float
        Prior SD :math:`s_\xi` (> 0) of :math:`\mu_\xi`, the logit of the population MTD's
        place in the dose range.
    mtd_spread_scale : float
        Scale :math:`t_\xi` (> 0) of the half-normal prior of :math:`\tau_\xi`.
    nu_spread_scale : float
        Scale :math:`t_\nu` (> 0) of the half-normal prior of :math:`\tau_\nu`.
    dose_unit : str, optional
        Unit of the doses, recorded in :meth:`parameters`.
    """

    model_name: ClassVar[str] = "ThreePNDRepeated"
    outcomes: ClassVar[tuple[str, ...]] = ("y",)
    default_engine: ClassVar[str] = "nuts"
    #: Rows are measurements and the fit's subjects are in order of first appearance: a fit
    #: of the rows in another order lays its subjects out otherwise.
    exchangeable_patients: ClassVar[bool] = False

    eta: float
    gamma: float
    x_min: float
    x_max: float
    delta: float = 0.5
    subject_column: str = "subject"
    mtd_location_scale: float = 1.5
    mtd_spread_scale: float = 1.0
    nu_spread_scale: float = 0.5
    dose_unit: str | None = None

    def __post_init__(self) -> None:
        """Validate the hyper-parameters, naming the field at fault."""
        owner = self.model_name
        check_hyper(owner, self)
        for name in ("mtd_location_scale", "mtd_spread_scale", "nu_spread_scale"):
            value = real_number(owner, name, getattr(self, name))
            if value <= 0:
                raise ValueError(f"{owner}: {name} must be > 0, got {value!r}")
            object.__setattr__(self, name, value)
        if not (isinstance(self.subject_column, str) and self.subject_column.strip()):
            raise ValueError(
                f"{owner}: subject_column must be a non-empty string, got {self.subject_column!r}"
            )

    def parameters(self) -> dict[str, Any]:
        """Return the hyper-parameters, the subject column and the dose unit."""
        names = (
            "eta",
            "gamma",
            "x_min",
            "x_max",
            "delta",
            "subject_column",
            "mtd_location_scale",
            "mtd_spread_scale",
            "nu_spread_scale",
            "dose_unit",
        )
        return {name: getattr(self, name) for name in names}

    def data_schema(self) -> dict[str, Any]:
        """Return the TrialData keywords: the subject column is a covariate."""
        return {"covariates": (self.subject_column,)}

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check ``y``, the doses and the subject column (DataError naming column, row, value).

        ``min_patients`` counts measurements (rows).
        """
        self._arrays(data)
        data.require("y", min_patients=min_patients, model=self.model_name)

    def _arrays(self, data: TrialData) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        dose, y = check_responses(self.model_name, data, self.x_min, self.x_max, self.sigma_max)
        labels = labels_column(self.model_name, data, self.subject_column)
        subjects = list(dict.fromkeys(labels.tolist()))
        index = np.array([subjects.index(label) for label in labels], dtype=np.int64)
        return dose, y, index, subjects

    def subjects(self, data: TrialData) -> list[str]:
        """Return the patients' labels, in order of first appearance (the ``subject`` dim)."""
        return self._arrays(data)[3]

    def build(self, data: TrialData) -> "pm.Model":
        """Build the non-centred PyMC model of the module notes.

        Free: ``sigma``, ``mu_mtd``, ``tau_mtd``, ``mu_log_nu``, ``tau_log_nu``, ``f`` and
        ``e`` (dims ``subject``); deterministics ``mtd``, ``nu``, ``beta`` (dims ``subject``)
        and ``mtd_population``.
        """
        import pymc as pm
        import pytensor.tensor as pt

        dose, y, index, subjects = self._arrays(data)
        coords = {"measurement": np.arange(dose.size), "subject": subjects}
        span = self.x_max - self.x_min
        inside = (np.nextafter(self.x_min, self.x_max), np.nextafter(self.x_max, self.x_min))
        with pm.Model(coords=coords) as model:
            dose_data = pm.Data("dose", dose, dims="measurement")
            subject = pm.Data("subject_index", index, dims="measurement")
            sigma = self.sigma_prior()
            mu_mtd = pm.Normal("mu_mtd", 0.0, self.mtd_location_scale)
            tau_mtd = pm.HalfNormal("tau_mtd", self.mtd_spread_scale)
            mu_log_nu = pm.Normal("mu_log_nu", 0.0, self.delta)
            tau_log_nu = pm.HalfNormal("tau_log_nu", self.nu_spread_scale)
            f = pm.Normal("f", 0.0, 1.0, dims="subject")
            e = pm.Normal("e", 0.0, 1.0, dims="subject")
            mtd = pm.Deterministic(
                "mtd",
                pt.clip(self.x_min + span * pt.sigmoid(mu_mtd + tau_mtd * f), *inside),
                dims="subject",
            )
            nu = pm.Deterministic("nu", pt.exp(mu_log_nu + tau_log_nu * e), dims="subject")
            beta = pm.Deterministic(
                "beta", (self.eta - sigma * self.z) / (mtd - self.x_min) ** nu, dims="subject"
            )
            pm.Deterministic("mtd_population", self.x_min + span * pt.sigmoid(mu_mtd))
            pm.Normal(
                "y",
                mu=beta[subject] * (dose_data - self.x_min) ** nu[subject],
                sigma=sigma,
                observed=y,
                dims="measurement",
            )
        return model

    def log_density(self, data: TrialData, values: Mapping[str, Any]) -> float:
        """Return the log posterior density (unnormalised) of the free variables, by scipy.

        ``values`` maps each name of :data:`FREE` to its value (``f``, ``e`` one per
        subject). The likelihood is computed from the individual MTDs and nu's as the module
        notes define them; ``-inf`` outside the support. It is :meth:`build`'s density of its
        constrained values, computed independently.
        """
        from scipy import stats

        dose, y, index, _ = self._arrays(data)
        sigma, mu_mtd, tau_mtd, mu_log_nu, tau_log_nu = (float(values[k]) for k in FREE[:5])
        f, e = (np.asarray(values[k], dtype=float) for k in ("f", "e"))
        if not (0 < sigma < self.sigma_max and tau_mtd > 0 and tau_log_nu > 0):
            return -math.inf
        mtd = self.x_min + (self.x_max - self.x_min) * expit(mu_mtd + tau_mtd * f)
        nu = np.exp(mu_log_nu + tau_log_nu * e)
        beta = (self.eta - sigma * self.z) / (mtd - self.x_min) ** nu
        mean = beta[index] * (dose - self.x_min) ** nu[index]
        total = float(np.sum(stats.norm.logpdf(y, mean, sigma)))
        total += float(stats.halfcauchy.logpdf(sigma)) - math.log(
            stats.halfcauchy.cdf(self.sigma_max)
        )
        total += float(stats.norm.logpdf(mu_mtd, 0, self.mtd_location_scale))
        total += float(stats.halfnorm.logpdf(tau_mtd, scale=self.mtd_spread_scale))
        total += float(stats.norm.logpdf(mu_log_nu, 0, self.delta))
        total += float(stats.halfnorm.logpdf(tau_log_nu, scale=self.nu_spread_scale))
        return total + float(np.sum(stats.norm.logpdf(f)) + np.sum(stats.norm.logpdf(e)))

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Fit NUTS and read the population MTD's draws as the posterior's ``mtd``.

        The individual MTDs are the fit's ``mtd`` (dims ``subject``); the DosePosterior
        carries the population MTD, judged by the convergence criteria.
        """
        return self.fitted_posterior(data, sampling)

    def posterior_from_idata(
        self, idata: xr.DataTree, criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> DosePosterior:
        """Read the population MTD's draws, the scalars' means and the convergence of a fit."""
        post = idata["posterior"].to_dataset()
        scalars = scalar_means(post)
        draws = post["mtd_population"].transpose("chain", "draw").to_numpy()
        return DosePosterior(
            dose_levels=(),
            rates={},
            chains=post.sizes["chain"],
            parameter_mean=scalars,
            mtd=SampledDistribution(draws),
            report=(criteria or ConvergenceCriteria()).check(idata, ["mtd_population", "mtd"]),
        )
