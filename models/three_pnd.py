r"""The three-parameter non-linear dose-finder (3PND) for continuous toxicity.

Lee, S.Y. (2023). A flexible dose-response modeling framework based on continuous toxicity
outcomes in phase I cancer clinical trials. *Trials* 24, 745 (seed 001), eqs (5)-(9):

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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.util import get_random_generator
from scipy.special import ndtr, ndtri

from dosezoo.data import DataError, TrialData
from dosezoo.inference import (
    IdataBuilder,
    PredictiveDraws,
    check_fit_settings,
    fit_identity,
    sample_pymc,
)
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.samplers.three_pnd_quadrature import QuadratureGrid, posterior_grid

Engine = Literal["pymc", "nuts", "kernel", "quadrature"]
ENGINES = ("pymc", "nuts", "kernel", "quadrature")
#: Posterior variables of every engine's output.
PARAMETERS = ("beta", "sigma", "nu", "mtd")


@dataclass(frozen=True)
class ThreePND(PredictiveDraws):
    """The 3PND model of seed 001 with its hyper-parameters.

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

    Notes
    -----
    If every response is exactly 0 the posterior is improper: as nu grows,
    ``beta (x - x_min)^nu`` tends to 0 at every dose inside the range, fits the data exactly,
    and the likelihood grows without bound as sigma shrinks. ``fit`` refuses such data.

    Examples
    --------
    >>> model = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5)
    >>> idata = model.fit(data, engine="kernel", random_seed=1)  # doctest: +SKIP
    """

    eta: float
    gamma: float
    x_min: float
    x_max: float
    delta: float = 0.5
    outcomes: ClassVar[tuple[str, ...]] = ("y",)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the hyper-parameters, naming the one at fault."""
        for name in ("eta", "gamma", "x_min", "x_max", "delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(
                value, int | float | np.integer | np.floating
            ):
                raise ValueError(f"ThreePND: {name} must be a real number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"ThreePND: {name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
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

    def __getstate__(self) -> dict:
        """Pickle the hyper-parameters only: the cached PyMC model is rebuilt on demand."""
        return self.parameters()

    def __setstate__(self, state: dict) -> None:
        """Restore from :meth:`__getstate__` (used by process pools)."""
        for name, value in state.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_cache", {})

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

    def parameters(self) -> dict[str, float]:
        """Return the hyper-parameters as a plain dict (recorded in every fit's attributes)."""
        return {name: getattr(self, name) for name in ("eta", "gamma", "x_min", "x_max", "delta")}

    # ------------------------------------------------------------------ data

    def _arrays(self, data: TrialData, *, min_patients: int) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(data, TrialData):
            raise TypeError(f"ThreePND needs a TrialData, got {type(data).__name__}")
        data.require("y", min_patients=min_patients, model="ThreePND")
        data.check_dose_range(self.x_min, self.x_max, model="ThreePND")
        y = np.asarray(data.column("y"), dtype=float)
        if y.size and not np.any(y):
            raise DataError(
                f"column 'y': all {y.size} responses are 0; the 3PND posterior is then improper "
                "(as nu grows, beta (x - x_min)^nu fits them exactly while sigma goes to 0)"
            )
        return np.asarray(data.dose, dtype=float), y

    # ----------------------------------------------------------------- model

    def build(self, data: TrialData) -> pm.Model:
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

    # ------------------------------------------------------------------- fit

    def fit(
        self,
        data: TrialData,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        engine: Engine = "pymc",
        random_seed: int | np.random.Generator | None = None,
        ridge: bool = True,
        progressbar: bool = False,
    ) -> xr.DataTree:
        """Sample the posterior.

        Parameters
        ----------
        data : TrialData
            At least one patient, columns ``dose`` and ``y``.
        draws, tune, chains : int
            Kept draws and burn-in iterations per chain, number of chains.
        engine : {"pymc", "nuts", "kernel", "quadrature"}
            ``"pymc"``: ``pm.sample`` with this package's step methods (the sigma slice and
            the ridge move; with ``ridge=False`` the seed's beta Gibbs, sigma slice and nu
            elliptical slice); ``"nuts"``: PyMC's NUTS, the reference;
            ``"kernel"``: the same sweep compiled with numba (milliseconds);
            ``"quadrature"``: independent draws from the quadrature posterior of
            :meth:`mtd_posterior` (``tune`` is unused; draws are exact given the grid cell,
            within which ``(log sigma, log nu)`` is uniform).
        random_seed : int or numpy.random.Generator, optional
            Seed; the same seed gives the same draws.
        ridge : bool
            Use the ridge sweep in the ``"pymc"`` and ``"kernel"`` engines (default).
            Without it the sweep is the seed's Algorithm 3, whose beta and nu mix slowly
            (see the benchmarks).
        progressbar : bool
            Show ``pm.sample``'s progress bar.

        Returns
        -------
        xarray.DataTree
            InferenceData with ``beta``, ``sigma``, ``nu`` and ``mtd`` (dims chain, draw) in
            ``posterior``, plus ``sample_stats``, ``observed_data`` and ``constant_data``; the
            root attributes name the model, its hyper-parameters and the engine.
        """
        check_fit_settings("ThreePND.fit", engine, ENGINES, draws, tune, chains)
        dose, y = self._arrays(data, min_patients=1)
        if engine == "kernel":
            idata = self._fit_kernel(
                dose, y, draws=draws, tune=tune, chains=chains, random_seed=random_seed, ridge=ridge
            )
        elif engine == "quadrature":
            idata = self._fit_quadrature(
                dose, y, draws=draws, chains=chains, random_seed=random_seed
            )
        else:
            from dosezoo.samplers.three_pnd import three_pnd_steps

            idata = sample_pymc(
                self.build(data),
                engine=engine,
                steps=lambda model: three_pnd_steps(model, ridge=ridge),
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                progressbar=progressbar,
            )
        idata.attrs.update(self._identity(engine))
        return idata

    def _identity(self, engine: str) -> dict:
        return fit_identity("ThreePND", self.parameters(), engine)

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
        obs = kernels.summarise(dose, y, self.x_min)
        hyper = self.hyper
        start = self.initial_state()
        values, stats = [], []
        for rng in get_random_generator(random_seed).spawn(chains):
            rng.integers(2**30)
            chain_values, chain_stats = kernels.run_chain(
                rng, *start, obs, hyper, tune, draws, ridge
            )
            values.append(chain_values)
            stats.append(chain_stats)
        values, stats = np.stack(values), np.stack(stats)
        out = {name: values[:, :, i] for i, name in enumerate(PARAMETERS)}
        made = kernels.SIGMA_STATS | (kernels.RIDGE_STATS if ridge else kernels.NU_STATS)
        for i, (name, dtype) in enumerate(kernels.SWEEP_STATS.items()):
            if name in made:
                out[name] = stats[:, :, i].astype(dtype)
        return out

    def _builder(self, dose: np.ndarray, y: np.ndarray) -> IdataBuilder:
        """Return the cached model and DataTree builder, moved to this data by ``pm.set_data``."""
        builder = self._cache.get("builder")
        if builder is None:
            builder = self._cache["builder"] = IdataBuilder(
                self.build(TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": y})))
            )
        else:
            pm.set_data(
                {"dose": dose, "response": y},
                coords={"patient": np.arange(dose.size)},
                model=builder.model,
            )
            builder.refresh_data()
        return builder

    def _fit_kernel(self, dose, y, *, draws, tune, chains, random_seed, ridge) -> xr.DataTree:
        started = time.perf_counter()
        arrays = self.sample_kernel(
            dose, y, draws=draws, tune=tune, chains=chains, random_seed=random_seed, ridge=ridge
        )
        elapsed = time.perf_counter() - started
        free = {name: arrays[name] for name in ("sigma", "nu", "beta")}
        stats = {name: arrays[name] for name in arrays if name not in PARAMETERS}
        return self._builder(dose, y)(free, stats, sampling_time=elapsed, tuning_steps=tune)

    def _fit_quadrature(self, dose, y, *, draws, chains, random_seed) -> xr.DataTree:
        started = time.perf_counter()
        grid = posterior_grid(kernels.summarise(dose, y, self.x_min), self.hyper)
        sample = grid.sample(draws * chains, get_random_generator(random_seed))
        free = {name: sample[name].reshape(chains, draws) for name in ("sigma", "nu", "beta")}
        return self._builder(dose, y)(
            free, {}, sampling_time=time.perf_counter() - started, tuning_steps=0
        )

    def mtd_posterior(self, data: TrialData, *, grid_size: int = 48) -> QuadratureGrid:
        """Compute the exact posterior of the MTD by quadrature (no Monte Carlo error).

        ``beta`` is integrated out analytically, ``(log sigma, log nu)`` on an adaptive
        ``grid_size x grid_size`` grid, and the MTD's CDF is a sum of normal masses; see
        :mod:`dosezoo.samplers.three_pnd_quadrature`. With no patients it is the prior.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` and ``y``; may be empty.
        grid_size : int
            Cells per direction of the grid.

        Returns
        -------
        QuadratureGrid
            ``.quantile(p)``, ``.cdf(x)`` (``P(MTD <= x)``), ``.sample(n, rng)``, ``.report``.
        """
        if isinstance(grid_size, bool) or int(grid_size) != grid_size or grid_size < 8:
            raise ValueError(
                f"ThreePND.mtd_posterior: grid_size must be an integer >= 8, got {grid_size!r}"
            )
        dose, y = self._arrays(data, min_patients=0)
        return posterior_grid(
            kernels.summarise(dose, y, self.x_min), self.hyper, size=int(grid_size)
        )

    # ------------------------------------------------------- derived curves

    def mean_response(
        self, idata: xr.DataTree, doses: Sequence[float], *, group: str = "posterior"
    ) -> xr.DataArray:
        """Dose-response curve ``beta (x - x_min)^nu`` per draw at ``doses``.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, dose)``.
        """
        draws = idata[group]
        grid = self._grid(doses)
        return draws["beta"] * (grid - self.x_min) ** draws["nu"]

    def prob_toxicity(
        self, idata: xr.DataTree, doses: Sequence[float], *, group: str = "posterior"
    ) -> xr.DataArray:
        """Probability of a DLT, ``P(Y >= eta | x) = 1 - Phi((eta - mean) / sigma)``, per draw.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, dose)``.
        """
        mean = self.mean_response(idata, doses, group=group)
        return xr.apply_ufunc(ndtr, (mean - self.eta) / idata[group]["sigma"])

    def _grid(self, doses: Sequence[float]) -> xr.DataArray:
        grid = np.atleast_1d(np.asarray(doses, dtype=float))
        outside = (grid <= self.x_min) | (grid >= self.x_max) | ~np.isfinite(grid)
        if outside.any():
            bad = grid[outside][0]
            raise ValueError(
                f"ThreePND: dose {bad!r} is outside the dose range ({self.x_min}, {self.x_max})"
            )
        return xr.DataArray(grid, dims="dose", coords={"dose": grid})
