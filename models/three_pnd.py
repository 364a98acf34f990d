r"""The three-parameter non-linear dose-finder (3PND) for continuous toxicity.

Lee, S.Y. (2023). A flexible dose-response modeling framework based on continuous toxicity
outcomes in phase I cancer clinical trials. *Trials* 24, 745, eqs (5)-(9):

.. math::

    y_i \mid \beta, \nu, \sigma &\sim N\big(\beta (x_i - x_{min})^\nu, \sigma^2\big) \\
    \beta \mid \nu, \sigma &\sim U\big(l(\sigma, \nu), u(\sigma, \nu)\big), \quad
        l = \frac{\eta - \sigma z}{R^\nu}, \quad u = \frac{\eta}{R^\nu} + \sigma z \\
    \sigma &\sim C^+(0, 1) \, 1_{(0, \eta / z)} \\
    \nu &\sim \log N(0, \delta^2) \\
    \mathrm{MTD} &= x_{min} + \left(\frac{\eta - \sigma z}{\beta}\right)^{1/\nu}

with :math:`z = \Phi^{-1}(\gamma)` and :math:`R = x_{max} - x_{min}`. The MTD is the largest
dose at which :math:`P(Y \ge \eta) \le 1 - \gamma`; the prior guarantees
:math:`x_{min} < \mathrm{MTD} < x_{max}`. The uniform prior of :math:`\beta` is the
normalised density :math:`1/(u - l)`, which PyMC's ``Uniform`` with random bounds is. The
samplers and their derivations are in :mod:`dosezoo.samplers.three_pnd_kernels`.
"""

import math
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

import numpy as np
from numba import njit
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri

from dosezoo.checks import real_array, real_number, sampler_sizes
from dosezoo.data import DataError, TrialData
from dosezoo.inference import random_generator, sample_pymc
from dosezoo.models.base import DoseModel, chain_generators, engine
from dosezoo.posterior import DosePosterior, Sampling
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.samplers.three_pnd_quadrature import (
    MTD_TOLERANCE,
    QuadraturePosterior,
    posterior_quadrature,
)

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr


#: Posterior variables of every engine's output.
PARAMETERS = ("beta", "sigma", "nu", "mtd")
#: Largest ``|y|`` accepted, in units of sigma's upper end ``eta / z``. The log-likelihood of a
#: response ``y`` is of order ``-(y z / eta)^2 / 2`` whatever the parameters, and the quadrature
#: needs it to a resolution far below one unit: double precision resolves it up to ``|y| z /
#: eta`` of about 1e7. A response a million times the toxicity scale is an entry or unit error.
MAX_RESPONSE_SCALE = 1e6
#: The largest upper end of sigma, ``eta / z``, whose square a double holds.
_LARGEST_SQUARABLE = math.sqrt(sys.float_info.max)


def check_responses(
    owner: str,
    data: TrialData,
    x_min: float,
    x_max: float,
    sigma_max: float,
    *,
    min_patients: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Check ``y`` and the doses of a 3PND model; return ``(dose, y)`` as float arrays.

    Requires a ``y`` column and every dose inside ``(x_min, x_max)``; refuses responses beyond
    ``MAX_RESPONSE_SCALE * sigma_max`` (their likelihood is beyond double precision), naming
    the column, the row and the value, and the data that leave the posterior improper: every
    response 0 (as nu grows, the mean response tends to 0 inside the dose range, fitting them
    exactly while sigma goes to 0), and equal positive responses all at one dose (a curve
    through them and (x_max, eta) fits them exactly; for the plateau and groups variants the
    density of sigma grows as sigma^-2 and sigma^-3 near 0).
    """
    if not isinstance(data, TrialData):
        raise TypeError(f"{owner} needs a TrialData, got {type(data).__name__}")
    data.require("y", min_patients=min_patients, model=owner)
    data.check_dose_range(x_min, x_max, model=owner)
    y = np.asarray(data.column("y"), dtype=float)
    dose = np.asarray(data.dose, dtype=float)
    issue, row = _response_issue(dose, y, MAX_RESPONSE_SCALE * sigma_max)
    if issue == _ALL_ZERO:
        raise DataError(
            f"column 'y': all {y.size} responses are 0; the {owner} posterior is then improper "
            "(as nu grows, the mean response tends to 0 inside the dose range)"
        )
    if issue == _OUTLYING:
        raise DataError(
            f"column 'y', row {row}: response {y[row]:g} is more than {MAX_RESPONSE_SCALE:g} "
            f"times sigma's upper end eta / z = {sigma_max:g} from 0; its likelihood is beyond "
            "double precision (an entry or unit error?)"
        )
    if issue == _EQUAL_AT_ONE_DOSE:
        raise DataError(
            f"column 'y': the {y.size} responses, all at dose {dose[0]:g}, are all equal "
            f"({y[0]:g}); the {owner} posterior is then improper (a curve through them fits "
            "them exactly while sigma goes to 0): it needs responses that differ, or patients "
            "at another dose"
        )
    return dose, y


_ALL_ZERO, _OUTLYING, _EQUAL_AT_ONE_DOSE = 1, 2, 3


@njit(cache=True, error_model="numpy")
def _response_issue(dose, y, largest):
    """Return the first issue :func:`check_responses` raises for, and the row it names (or -1).

    0: none; :data:`_ALL_ZERO`: every response 0; :data:`_OUTLYING`: a response beyond
    ``largest`` in size (the first such row); :data:`_EQUAL_AT_ONE_DOSE`: two or more
    responses, all equal and positive, all at one dose. Compiled: every decision checks its
    data, and numpy's calls on a trial's few patients cost several times these loops.
    """
    nonzero = False
    for i in range(y.size):
        if y[i] != 0.0:  # NaN too, as numpy's any
            nonzero = True
            break
    if y.size and not nonzero:
        return _ALL_ZERO, -1
    for i in range(y.size):
        if abs(y[i]) > largest:
            return _OUTLYING, i
    if y.size < 2 or not y[0] > 0.0:
        return 0, -1
    for i in range(1, y.size):
        if dose[i] != dose[0] or y[i] != y[0]:
            return 0, -1
    return _EQUAL_AT_ONE_DOSE, -1


#: A response this many times sigma's upper end ``eta / z`` from the median response is named
#: when the quadrature cannot integrate the posterior: ten of the largest standard deviations
#: the prior allows, a distance that an entry or unit error, not the spread of the responses,
#: explains.
OUTLIER_SCALE = 10.0


def _outlier_advice(y: np.ndarray, sigma_max: float) -> str:
    """Name the response furthest from the median, if it is an outlier (:data:`OUTLIER_SCALE`).

    What a refusal of the quadrature says first: a response far out of scale (an entry or
    unit error) leaves the posterior concentrated against a bound of sigma, where the
    quadrature's levels do not settle. Empty when no response is that far out.
    """
    # No response lies further from the median than the range: the common case costs no sort
    # (a decision of a simulation asks for this advice whether or not it is needed).
    if not y.size or y.max() - y.min() <= OUTLIER_SCALE * sigma_max:
        return ""
    centre = float(np.median(y))
    row = int(np.argmax(np.abs(y - centre)))
    scale = abs(y[row] - centre) / sigma_max
    if scale <= OUTLIER_SCALE:
        return ""
    return (
        f"row {row}'s response {y[row]:g} lies {scale:.0f} times sigma's upper end eta / z = "
        f"{sigma_max:g} from the median response {centre:g} (an entry or unit error?)"
    )


@dataclass(frozen=True)
class ThreePND(DoseModel):
    r"""The 3PND model of Lee (2023) with its hyper-parameters.

    Parameters
    ----------
    eta : float
        Maximum toxicity level (> 0): a response ``y >= eta`` is a DLT.
    gamma : float
        Homogeneity constant in (0.5, 1); ``1 - gamma`` is the target toxicity level.
    x_min, x_max : float
        Dose range, ``0 <= x_min < x_max``; every dose must lie strictly inside it.
    delta : float
        Scale (> 0) of the log-normal prior of the non-linearity ``nu``.
    dose_unit : str, optional
        The unit of the doses, ``x_min`` and ``x_max`` (e.g. ``"mg/m^2"``), recorded in
        :meth:`parameters` (hence in ``describe()`` and in every fit's attributes, so that a
        fit made in another unit is refused); None when not given ("unspecified"). Give it:
        the model is not invariant to the dose unit (below).

    Notes
    -----
    **The dose unit matters.** Lee (2023)'s prior on beta, :math:`U(l, u)` with
    :math:`u = \eta / R^\nu + \sigma z`, mixes the scales of the response and of the dose:
    with doses in units ``c`` times smaller (mg instead of g: ``x' = c x``), the same curve has
    :math:`\beta' = \beta / c^\nu`, whose prior bound is :math:`\eta / (cR)^\nu + \sigma z`
    instead of :math:`(\eta / R^\nu + \sigma z) / c^\nu`. So the posterior, and the decisions,
    change with the unit: the O6-benzylguanine trial's first two cohorts
    (``examples/o6bg_first_cohorts.csv``, the example's design) give another next dose in g/m^2
    than in mg/m^2 (``test_the_3pnd_decision_depends_on_the_dose_unit`` in
    ``tests/test_three_pnd_model.py`` computes both). Lee sets the model up in the trial's own
    unit (mg/m^2 for O6-BG); use the unit the prior was elicited in, and record it.

    **The posterior is not monotone in the responses.** The curve passes through
    :math:`(x_{min}, 0)`, so a larger response at a low dose, with the same responses above
    it, is fitted by a more concave curve (a smaller :math:`\nu`), which lies lower at the
    higher doses: the MTD's posterior moves up, and a design can escalate after a more toxic
    response (on the O6-BG example's design, one response at 40 mg/m^2 raised from 18.9 to
    29.7 lowers P(MTD < 80) from above to below the 0.5 limit and moves the next dose from 60
    to 80: ``test_a_larger_response_at_a_low_dose_can_raise_the_next_dose``). This is Lee
    (2023)'s model as written; a design that must be coherent in the responses needs a rule
    that enforces it.

    If every response is exactly 0 the posterior is improper: as nu grows,
    ``beta (x - x_min)^nu`` tends to 0 at every dose inside the range, fits the data exactly,
    and the likelihood grows without bound as sigma shrinks. So is it when two or more
    patients, all at one dose, have the same positive response: a curve through that point
    and ``(x_max, eta)`` (where beta's prior piles up as sigma shrinks) fits them exactly, and
    the posterior mass grows like ``sigma^{2 - n}`` towards sigma = 0. Such data, and
    responses beyond ``MAX_RESPONSE_SCALE * eta / z`` (whose likelihood double precision
    cannot resolve), are refused with a :class:`~dosezoo.errors.DataError` naming the column,
    the row and the value.

    Examples
    --------
    >>> model = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5)
    >>> idata = model.fit(data, engine="kernel", random_seed=1)  # doctest: +SKIP
    """

    model_name: ClassVar[str] = "ThreePND"
    outcomes: ClassVar[tuple[str, ...]] = ("y",)
    default_engine: ClassVar[str] = "pymc"
    fast_engine: ClassVar[str | None] = "quadrature"

    eta: float
    gamma: float
    x_min: float
    x_max: float
    delta: float = 0.5
    dose_unit: str | None = None

    def __post_init__(self) -> None:
        """Validate the hyper-parameters, naming the one at fault."""
        if self.dose_unit is not None and not (
            isinstance(self.dose_unit, str) and self.dose_unit.strip()
        ):
            raise ValueError(
                f"ThreePND: dose_unit must be a non-empty string or None, got {self.dose_unit!r}"
            )
        for name in ("eta", "gamma", "x_min", "x_max", "delta"):
            object.__setattr__(self, name, real_number("ThreePND", name, getattr(self, name)))
        if self.eta <= 0:
            raise ValueError(f"ThreePND: eta must be > 0, got {self.eta!r}")
        if not 0.5 < self.gamma < 1:
            raise ValueError(f"ThreePND: gamma must lie in (0.5, 1), got {self.gamma!r}")
        if self.x_min < 0:
            raise ValueError(f"ThreePND: x_min must be >= 0, got {self.x_min!r}")
        if not self.x_min < self.x_max:
            raise ValueError(
                f"ThreePND: x_min must be < x_max, got x_min={self.x_min!r}, x_max={self.x_max!r}"
            )
        if self.delta <= 0:
            raise ValueError(f"ThreePND: delta must be > 0, got {self.delta!r}")
        if not self.sigma_max < _LARGEST_SQUARABLE:
            raise ValueError(
                f"ThreePND: eta must be below {_LARGEST_SQUARABLE * self.z:.4g} at gamma = "
                f"{self.gamma!r}, got {self.eta!r}: the posterior squares eta / Phi^-1(gamma), "
                "the upper end of sigma, and a double cannot hold its square; give the "
                "responses in a larger unit"
            )

    @property
    def z(self) -> float:
        """``Phi^-1(gamma)``."""
        return float(ndtri(self.gamma))

    @property
    def sigma_max(self) -> float:
        """Upper end ``eta / Phi^-1(gamma)`` of the support of sigma."""
        return self.eta / self.z

    @property
    def hyper(self) -> np.ndarray:
        """The hyper-parameters laid out for the numba kernels."""
        return kernels.pack_hyper(self.eta, self.z, self.x_min, self.x_max, self.delta)

    def parameters(self) -> dict[str, float | str | None]:
        """Return the hyper-parameters and the dose unit (recorded in every fit's attributes)."""
        names = ("eta", "gamma", "x_min", "x_max", "delta", "dose_unit")
        return {name: getattr(self, name) for name in names}

    # ------------------------------------------------------------------ data

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check the data: a ``y`` column, doses inside the dose range, not all responses 0."""
        self._arrays(data, min_patients=min_patients)

    def _arrays(self, data: TrialData, *, min_patients: int) -> tuple[np.ndarray, np.ndarray]:
        return check_responses(
            self.model_name,
            data,
            self.x_min,
            self.x_max,
            self.sigma_max,
            min_patients=min_patients,
        )

    # ----------------------------------------------------------------- model

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model of eqs (6)-(9), with the data in ``pm.Data`` containers.

        ``pm.set_data({"dose": ..., "response": ...}, coords={"patient": ...})`` moves it to
        new data without a rebuild. The hyper-parameters are ``pm.Data`` scalars too, so
        they are recorded in ``constant_data`` and the step methods read them from the model.

        Parameters
        ----------
        data : TrialData
            Needs ``dose`` and ``y``; may be empty (for prior checks).

        Returns
        -------
        pymc.Model
        """
        import pymc as pm
        import pytensor.tensor as pt

        dose, y = self._arrays(data, min_patients=0)
        with pm.Model(coords={"patient": np.arange(dose.size)}) as model:
            eta = pm.Data("eta", self.eta)
            gamma = pm.Data("gamma", self.gamma)
            x_min = pm.Data("x_min", self.x_min)
            x_max = pm.Data("x_max", self.x_max)
            delta = pm.Data("delta", self.delta)
            dose_data = pm.Data("dose", dose, dims="patient")
            response = pm.Data("response", y, dims="patient")
            z = math.sqrt(2.0) * pt.erfinv(2.0 * gamma - 1.0)
            sigma = pm.Truncated(
                "sigma",
                pm.HalfCauchy.dist(1.0),
                lower=0.0,
                upper=eta / z,
                initval=min(1.0, 0.5 * self.sigma_max),
            )
            nu = pm.LogNormal("nu", 0.0, delta)
            range_power = (x_max - x_min) ** nu
            beta = pm.Uniform(
                "beta", lower=(eta - sigma * z) / range_power, upper=eta / range_power + sigma * z
            )
            # Eq (5), kept strictly inside the dose range where it rounds to an end point.
            inside = (np.nextafter(self.x_min, self.x_max), np.nextafter(self.x_max, self.x_min))
            pm.Deterministic(
                "mtd", pt.clip(x_min + ((eta - sigma * z) / beta) ** (1.0 / nu), *inside)
            )
            pm.Normal(
                "y",
                mu=beta * (dose_data - x_min) ** nu,
                sigma=sigma,
                observed=response,
                dims="patient",
            )
        return model

    #: Fractions of the dose range at which :meth:`prior_moments` reports the ESS (the mean
    #: response is 0 at ``x_min`` under every prior draw).
    ess_fractions: ClassVar[tuple[float, ...]] = (0.2, 0.4, 0.6, 0.8, 1.0)

    def prior_moments(self, prior: "xr.Dataset") -> dict[str, tuple[np.ndarray, np.ndarray, list]]:
        r"""Prior draws of the mean response and of the noise variance at doses in the range.

        The mean response is :math:`\beta (x - x_{min})^\nu`, the variance :math:`\sigma^2`,
        at the doses :attr:`ess_fractions` of the range. The variance-ratio ESS at a dose is
        then the number of responses there whose mean has the prior's variance of the mean
        response.
        """
        doses = [self.x_min + f * (self.x_max - self.x_min) for f in self.ess_fractions]
        beta, sigma, nu = (
            prior[name].to_numpy().reshape(-1, 1) for name in ("beta", "sigma", "nu")
        )
        offset = np.asarray(doses)[None] - self.x_min
        mean = beta * offset**nu
        return {"mean_response": (mean, np.broadcast_to(sigma**2, mean.shape), doses)}

    # ------------------------------------------------------------------- engines

    def step_methods(self, model: "pm.Model", *, ridge: bool = True) -> list:
        """Return the sweep of ``engine="pymc"``: sigma slice and ridge move, or Lee's sweep."""
        # The step methods subclass PyMC's: imported here, where PyMC runs, so the fast
        # engines never load PyMC.
        from dosezoo.samplers.three_pnd import three_pnd_steps

        return three_pnd_steps(model, ridge=ridge)

    @engine("pymc")
    def _fit_pymc(self, data: TrialData, *, ridge: bool = True, **settings) -> "xr.DataTree":
        """``pm.sample`` with this package's step methods (the ridge sweep by default).

        ``ridge=False`` runs Lee's Algorithm 3 (beta Gibbs, sigma slice, nu elliptical slice),
        whose beta and nu mix slowly (see the benchmarks).
        """
        return sample_pymc(
            self.build(data),
            engine="pymc",
            steps=lambda model: self.step_methods(model, ridge=ridge),
            **settings,
        )

    @engine("kernel")
    def _fit_kernel(
        self, data: TrialData, *, draws, tune, chains, random_seed, ridge: bool = True, **_
    ) -> "xr.DataTree":
        """Run the sweep of ``"pymc"`` compiled with numba (milliseconds)."""
        started = time.perf_counter()
        dose, y = self._arrays(data, min_patients=1)
        arrays = self.sample_kernel(
            dose, y, draws=draws, tune=tune, chains=chains, random_seed=random_seed, ridge=ridge
        )
        free = {name: arrays[name] for name in ("sigma", "nu", "beta")}
        stats = {name: arrays[name] for name in arrays if name not in PARAMETERS}
        return self._from_draws(data, free, stats, started=started, tune=tune)

    @engine("quadrature")
    def _fit_quadrature(self, data: TrialData, *, draws, chains, random_seed, **_) -> "xr.DataTree":
        """Independent draws from the quadrature posterior of :meth:`mtd_posterior`.

        ``tune`` is unused. A node of the rule is drawn by its weight, then ``beta`` exactly
        from its truncated normal given that node's ``(sigma, nu)``: ``beta`` and the MTD are
        continuous, ``sigma`` and ``nu`` take the nodes' values only (a discrete
        approximation of their marginals; the designs read the MTD's quantiles and CDF from
        the rule itself, not from these draws).
        """
        started = time.perf_counter()
        dose, y = self._arrays(data, min_patients=1)
        posterior = self._quadrature(dose, y)
        sample = posterior.sample(draws * chains, random_generator(random_seed))
        free = {name: sample[name].reshape(chains, draws) for name in ("sigma", "nu", "beta")}
        return self._from_draws(data, free, {}, started=started, tune=0)

    def data_values(self, data: TrialData) -> dict[str, np.ndarray]:
        """Return the values of the model's data containers: ``dose`` and ``response``."""
        dose, y = self._arrays(data, min_patients=0)
        return {"dose": dose, "response": y}

    def initial_state(self) -> tuple[float, float, float]:
        """Return the constrained initial point ``(beta, sigma, nu)`` every engine starts from.

        It is the PyMC model's initial point: sigma = min(1, sigma_max / 2), nu at its
        log-normal mean ``exp(delta^2 / 2)``, beta at the middle of its support.
        """
        sigma = min(1.0, 0.5 * self.sigma_max)
        nu = math.exp(0.5 * self.delta**2)
        lower, upper = kernels.beta_bounds(sigma, nu, self.hyper)
        return 0.5 * (lower + upper), sigma, nu

    def sample_kernel(
        self,
        dose: np.ndarray,
        y: np.ndarray,
        *,
        draws: int,
        tune: int,
        chains: int,
        random_seed: int | np.random.Generator | None,
        ridge: bool = True,
    ) -> dict[str, np.ndarray]:
        """Run the numba sweep and return raw arrays, without building InferenceData.

        This is the path for simulation loops. Seeding follows ``pm.sample``: one
        generator per chain from ``spawn``, one integer drawn from each (``pm.sample``
        spends it on the initial point), then the sweep.

        Returns
        -------
        dict
            ``beta``, ``sigma``, ``nu``, ``mtd`` shaped (chain, draw), and the sweep's
            statistics of the same shape (the ridge move's only when ``ridge``).
        """
        owner = f"{self.model_name}.sample_kernel"
        draws, tune, chains = sampler_sizes(owner, draws, tune, chains)
        # Checked as data are (the simulation loops that call this pass checked data, and the
        # check costs about 1% of a fit): a dose off the range or a NaN response gives a
        # posterior that is wrong without a word.
        dose, y = self._arrays(TrialData({"dose": dose, "y": y}), min_patients=0)
        obs = kernels.summarise(dose, y, self.x_min)
        hyper = self.hyper
        start = self.initial_state()
        chain_values, chain_stats = [], []
        for rng in chain_generators(random_seed, chains):
            one_values, one_stats = kernels.run_chain(rng, *start, obs, hyper, tune, draws, ridge)
            chain_values.append(one_values)
            chain_stats.append(one_stats)
        values, stats = np.stack(chain_values), np.stack(chain_stats)
        out = {name: values[:, :, i] for i, name in enumerate(PARAMETERS)}
        made = kernels.SIGMA_STATS | (kernels.RIDGE_STATS if ridge else kernels.NU_STATS)
        for i, (name, dtype) in enumerate(kernels.SWEEP_STATS.items()):
            if name in made:
                out[name] = stats[:, :, i].astype(dtype)
        return out

    def mtd_posterior(
        self, data: TrialData, *, tolerance: float = MTD_TOLERANCE
    ) -> QuadraturePosterior:
        """Compute the posterior of the MTD by quadrature refined to ``tolerance``.

        ``beta`` is integrated out analytically, ``(log sigma, log nu)`` by a rule that is
        refined until each quantity asked for (a quantile, ``P(MTD <= x)``) agrees between two
        successive levels within ``tolerance`` (of the dose range for a quantile); see
        :mod:`dosezoo.samplers.three_pnd_quadrature`. With no patients it is the prior.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` and ``y``; may be empty.
        tolerance : float
            Stopping tolerance of the refinement, in (0, 0.1).

        Returns
        -------
        QuadraturePosterior
            ``.quantile(p)``, ``.cdf(x)`` (``P(MTD <= x)``), ``.sample(n, rng)``, ``.report``.
        """
        if isinstance(tolerance, bool) or not (
            isinstance(tolerance, int | float) and 0.0 < tolerance < 0.1
        ):
            raise ValueError(
                f"ThreePND.mtd_posterior: tolerance must be a number in (0, 0.1), got {tolerance!r}"
            )
        dose, y = self._arrays(data, min_patients=0)
        return self._quadrature(dose, y, tolerance=float(tolerance))

    def _quadrature(self, dose: np.ndarray, y: np.ndarray, **options: float):
        """Return the quadrature posterior; raise a DataError for data that leave it improper.

        Responses that a curve through (x_max, eta) fits exactly, or nearly (responses at one
        dose that nearly coincide), pile the posterior up at sigma -> 0, and the quadrature
        refuses them with a FloatingPointError (which a user saw as a traceback).
        """
        advice = _outlier_advice(y, self.sigma_max)
        try:
            return posterior_quadrature(
                kernels.summarise(dose, y, self.x_min), self.hyper, advice=advice, **options
            )
        except FloatingPointError as error:
            cause = f"{advice}; otherwise responses" if advice else "responses"
            raise DataError(
                f"column 'y': these {y.size} responses leave the 3PND posterior improper or "
                f"nearly so ({error}); {cause} that (nearly) coincide at one dose are the "
                "usual cause: record them at their measured precision, or add patients at "
                "another dose"
            ) from None

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Return the exact posterior of the MTD (:meth:`mtd_posterior`) as a DosePosterior.

        ``sampling`` is unused: the quadrature has no Monte Carlo error. The posterior has no
        per-dose rates (3PND's doses are continuous); its ``mtd`` is the quadrature.
        """
        exact = self.mtd_posterior(data)
        return DosePosterior(dose_levels=(), rates={}, mtd=exact, report=exact.report)

    # ------------------------------------------------------- derived curves

    def mean_response(
        self, idata: "xr.DataTree", doses: ArrayLike, *, group: str = "posterior"
    ) -> "xr.DataArray":
        """Dose-response curve ``beta (x - x_min)^nu`` per draw at ``doses``.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, dose)``.
        """
        draws = idata[group]
        grid = self._grid(doses)
        # beta and nu are variables of the group, DataArrays (a DataTree's [] may give a node).
        return cast("xr.DataArray", draws["beta"] * (grid - self.x_min) ** draws["nu"])

    def prob_toxicity(
        self, idata: "xr.DataTree", doses: ArrayLike, *, group: str = "posterior"
    ) -> "xr.DataArray":
        """Probability of a DLT, ``P(Y >= eta | x) = 1 - Phi((eta - mean) / sigma)``, per draw.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, dose)``.
        """
        import xarray as xr  # loaded on use: xarray slows every start-up

        mean = self.mean_response(idata, doses, group=group)
        return xr.apply_ufunc(ndtr, (mean - self.eta) / idata[group]["sigma"])

    def _grid(self, doses: ArrayLike) -> "xr.DataArray":
        import xarray as xr  # loaded on use: xarray slows every start-up

        grid = np.atleast_1d(real_array(self.model_name, "doses", doses))
        outside = (grid <= self.x_min) | (grid >= self.x_max) | ~np.isfinite(grid)
        if outside.any():
            bad = grid[outside][0]
            raise ValueError(
                f"ThreePND: dose {bad!r} is outside the dose range ({self.x_min}, {self.x_max})"
            )
        return xr.DataArray(grid, dims="dose", coords={"dose": grid})
