r"""The model contract: what every dose-response model of the zoo offers, written once.

A model is a frozen dataclass holding its hyper-parameters (validated in ``__post_init__``
with :mod:`dosezoo.checks`, naming the field at fault) and a subclass of :class:`DoseModel`,
which owns the rest:

- ``build(data) -> pymc.Model``, the specification (each model writes it);
- one ``fit(data, *, engine, draws, tune, chains, random_seed)`` template that checks the
  settings and the data, runs the engine, and records the fit's identity in the DataTree's
  root attributes (model, options, engine, package version);
- an **engine registry**: a model registers what it has with the :func:`engine` decorator
  (``"grid"``, ``"quadrature"``, ``"kernel"``, ...); ``"nuts"`` (PyMC's NUTS on ``build``, the
  reference) is every model's, and ``"pymc"`` (``pm.sample`` with the model's own step methods)
  is registered by defining :meth:`DoseModel.step_methods`;
- ``posterior(data)``, the model's fast posterior as a
  :class:`~dosezoo.posterior.DosePosterior` (what rules read in simulations), and
  ``posterior_from_idata(idata)``, the same object from any fit;
- prior and posterior predictive draws from the PyMC model;
- pickling of the options only (cached PyMC models and builders are rebuilt on demand).

A new model writes ``build``, ``parameters``, ``check_data``, ``posterior`` and its engines;
its outcome columns are declared in ``outcomes``.
"""

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar

import numpy as np
import pymc as pm
import xarray as xr
from pymc.util import get_random_generator

from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.inference import IdataBuilder, check_fit_settings, fit_identity, sample_pymc
from dosezoo.posterior import DosePosterior, Sampling

__all__ = ["DoseModel", "chain_generators", "engine"]

_ENGINE_ATTRIBUTE = "__dosezoo_engine__"


def engine(name: str) -> Callable[[Callable[..., xr.DataTree]], Callable[..., xr.DataTree]]:
    """Register the decorated method as the model's engine ``name``.

    The method is called by :meth:`DoseModel.fit` as
    ``method(data, *, draws, tune, chains, random_seed, progressbar, **options)`` after the
    settings and the data were checked, and returns the DataTree (the template adds the
    identity attributes).
    """

    def register(method: Callable[..., xr.DataTree]) -> Callable[..., xr.DataTree]:
        setattr(method, _ENGINE_ATTRIBUTE, name)
        return method

    return register


class DoseModel(ABC):
    """Base of every dose-response model (subclasses are frozen dataclasses).

    Class attributes
    ----------------
    model_name : str
        Name recorded in fits and messages.
    outcomes : tuple of str
        The outcome columns of the model's data (e.g. ``("dlt",)``).
    default_engine : str
        Engine of :meth:`fit` when none is given.
    fast_engine : str or None
        The engine whose result :meth:`posterior` computes directly (no DataTree).
    default_tune : int
        Burn-in of :meth:`fit` when none is given (MCMC engines).
    min_fit_patients : int
        Fewest patients :meth:`fit` accepts (0 for models whose fit may be the prior).
    count_posterior : bool
        Whether :meth:`posterior` depends on the data only through the patients and DLTs per
        dose level (False by default); a design whose rule reads the counts only then runs in
        lockstep in simulations.
    """

    model_name: ClassVar[str]
    outcomes: ClassVar[tuple[str, ...]]
    default_engine: ClassVar[str]
    fast_engine: ClassVar[str | None] = None
    default_tune: ClassVar[int] = 1000
    min_fit_patients: ClassVar[int] = 1
    count_posterior: ClassVar[bool] = False
    _engine_methods: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Collect the engines the class and its bases register."""
        super().__init_subclass__(**kwargs)
        registry: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attribute, value in vars(klass).items():
                name = getattr(value, _ENGINE_ATTRIBUTE, None)
                if name is not None:
                    registry[name] = attribute
        if cls.step_methods is DoseModel.step_methods:
            registry.pop("pymc", None)
        cls._engine_methods = registry

    @classmethod
    def engines(cls) -> tuple[str, ...]:
        """Return the names of the engines this model has."""
        return tuple(cls._engine_methods)

    # ------------------------------------------------------------------ to define

    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """Return the model's options as a JSON-serialisable dict."""

    @abstractmethod
    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Raise a DataError naming the column, row and value of data the model cannot use."""

    @abstractmethod
    def build(self, data: TrialData) -> pm.Model:
        """Build the PyMC model (the specification) for ``data``."""

    @abstractmethod
    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Return the model's fast posterior given ``data`` (what rules read in simulations).

        ``sampling`` sets draws, seed and checks when that posterior is sampled (exact
        posteriors ignore it).
        """

    def data_schema(self) -> dict[str, Any]:
        """Return the keywords of :class:`~dosezoo.data.TrialData` that the model's data need.

        ``{}`` (one ``dose`` column) by default; a model of drug combinations gives its
        ``dose_columns``, ``covariates`` and ``coded_doses``, so that a CSV file is read in its
        schema (``TrialData.from_csv(path, **model.data_schema())``, as the command line does).
        """
        return {}

    def step_methods(self, model: pm.Model) -> list:
        """Return the model's own PyMC step methods (registers the ``"pymc"`` engine)."""
        raise NotImplementedError(f"{self.model_name} has no step methods of its own")

    def posterior_from_idata(
        self, idata: xr.DataTree, criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> DosePosterior:
        """Read the posterior a rule needs from a fit of this model (any engine).

        ``options`` go to :meth:`DosePosterior.from_idata` (e.g. ``levels``). Models whose
        rules read a model-defined quantity (e.g. CRM's plug-in estimate) add it.
        """
        return DosePosterior.from_idata(idata, criteria, **options)

    # ------------------------------------------------------------------ shared

    @property
    def _cache(self) -> dict:
        """Per-instance store of PyMC models and builders (never pickled, never compared)."""
        try:
            return self.__dict__["_model_cache"]
        except KeyError:
            cache = self.__dict__["_model_cache"] = {}
            return cache

    def __getstate__(self) -> dict:
        """Pickle the options only: cached PyMC models are rebuilt on demand."""
        return {key: value for key, value in self.__dict__.items() if key != "_model_cache"}

    def __setstate__(self, state: dict) -> None:
        """Restore from :meth:`__getstate__` (used by process pools)."""
        self.__dict__.update(state)

    def identity(self, engine: str) -> dict:
        """Return the root attributes of a fit: the model, its options (JSON) and the engine."""
        return fit_identity(self.model_name, self.parameters(), engine)

    def _checked_data(self, data: object, min_patients: int) -> TrialData:
        if not isinstance(data, TrialData):
            raise TypeError(f"{self.model_name} needs a TrialData, got {type(data).__name__}")
        self.check_data(data, min_patients=min_patients)
        return data

    def fit(
        self,
        data: TrialData,
        *,
        engine: str | None = None,
        draws: int = 1000,
        tune: int | None = None,
        chains: int = 2,
        random_seed: int | np.random.Generator | None = None,
        progressbar: bool = False,
        **options: Any,
    ) -> xr.DataTree:
        """Compute the posterior and return it as InferenceData (an ``xarray.DataTree``).

        Parameters
        ----------
        data : TrialData
            The trial's data, with the model's outcome columns.
        engine : str, optional
            One of :meth:`engines` (the model's ``default_engine`` when None): ``"nuts"`` is
            PyMC's NUTS on :meth:`build`, the reference; ``"pymc"`` is ``pm.sample`` with the
            model's own step methods; the others are the model's fast engines.
        draws, tune, chains : int
            Kept draws and burn-in per chain (the model's ``default_tune`` when None), and the
            number of chains.
        random_seed : int or numpy.random.Generator, optional
            The same seed gives the same draws.
        progressbar : bool
            Show ``pm.sample``'s progress bar.
        **options
            Options of the model's engines (see the model's documentation).

        Returns
        -------
        xarray.DataTree
            Every engine returns ``pm.sample``'s schema for :meth:`build`'s model:
            ``posterior``, ``sample_stats``, ``observed_data``, ``constant_data``; the root
            attributes name the model, its options and the engine.
        """
        engine = self.default_engine if engine is None else engine
        tune = self.default_tune if tune is None else tune
        check_fit_settings(f"{self.model_name}.fit", engine, self.engines(), draws, tune, chains)
        data = self._checked_data(data, self.min_fit_patients)
        run = getattr(self, self._engine_methods[engine])
        idata = run(
            data,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            **options,
        )
        idata.attrs.update(self.identity(engine))
        return idata

    @engine("nuts")
    def _fit_nuts(self, data: TrialData, **settings: Any) -> xr.DataTree:
        return sample_pymc(self.build(data), engine="nuts", steps=None, **settings)

    @engine("pymc")
    def _fit_pymc(self, data: TrialData, **settings: Any) -> xr.DataTree:
        return sample_pymc(self.build(data), engine="pymc", steps=self.step_methods, **settings)

    def _builder(self, data: TrialData) -> IdataBuilder:
        """Return a DataTree builder of the PyMC model for ``data``, moved by ``pm.set_data``.

        Models whose data all live in ``pm.Data`` containers (:meth:`data_values`) keep one
        builder and move it to new data; the others rebuild it when the data change.
        """
        values = self.data_values(data)
        if values is None:
            key = ("builder", data.n_patients, np.asarray(data.dose, dtype=float).tobytes())
            builder = self._cache.get(key)
            if builder is None:
                self._cache.clear()
                builder = self._cache[key] = IdataBuilder(self.build(data))
            return builder
        builder = self._cache.get("builder")
        if builder is None:
            builder = self._cache["builder"] = IdataBuilder(self.build(data))
        else:
            pm.set_data(values, coords={"patient": np.arange(data.n_patients)}, model=builder.model)
            builder.refresh_data()
        return builder

    def data_values(self, data: TrialData) -> dict[str, np.ndarray] | None:
        """Values of the model's ``pm.Data`` containers for ``data`` (None: not all data are)."""
        return None

    def _from_draws(
        self,
        data: TrialData,
        free: dict[str, np.ndarray],
        stats: dict[str, np.ndarray],
        *,
        started: float,
        tune: int,
    ) -> xr.DataTree:
        """Build the DataTree of a fast engine's constrained draws (chain, draw, ...)."""
        return self._builder(data)(
            free, stats, sampling_time=time.perf_counter() - started, tuning_steps=tune
        )

    # ------------------------------------------------------------------ predictive

    def _predictive_context(self) -> AbstractContextManager:
        """Context in which PyMC's forward sampler runs for this model."""
        return nullcontext()

    def _add_predictive(self, idata: xr.DataTree, group: str) -> None:
        """Add derived outcome variables to a predictive group (in place; none by default)."""

    def sample_prior_predictive(
        self,
        data: TrialData | None = None,
        *,
        draws: int = 1000,
        random_seed: int | np.random.Generator | None = None,
    ) -> xr.DataTree:
        """Draw from the prior: the parameters, their deterministics and outcomes at ``data``.

        Parameters
        ----------
        data : TrialData, optional
            Patients whose outcomes to draw (``prior_predictive``); none by default (the prior
            of the parameters and deterministics only).
        draws : int
            Number of prior draws.
        random_seed : int or numpy.random.Generator, optional

        Returns
        -------
        xarray.DataTree
            Groups ``prior``, ``prior_predictive`` and ``observed_data``.
        """
        data = TrialData.empty(outcomes=self.outcomes) if data is None else data
        with self.build(data), self._predictive_context():
            idata = pm.sample_prior_predictive(draws=draws, random_seed=random_seed)
        self._add_predictive(idata, "prior_predictive")
        idata.attrs.update(self.identity("prior"))
        return idata

    def sample_posterior_predictive(
        self,
        idata: xr.DataTree,
        data: TrialData,
        *,
        random_seed: int | np.random.Generator | None = None,
    ) -> xr.DataTree:
        """Replicate each patient's outcomes once per posterior draw.

        Parameters
        ----------
        idata : xarray.DataTree
            A fit of this model (any engine) to ``data``.
        data : TrialData
            The data it was fitted to.
        random_seed : int or numpy.random.Generator, optional

        Returns
        -------
        xarray.DataTree
            A copy of ``idata`` extended with ``posterior_predictive`` (``idata`` itself is
            left unchanged).
        """
        with self.build(data), self._predictive_context():
            extended = pm.sample_posterior_predictive(
                idata.copy(), extend_inferencedata=True, random_seed=random_seed, progressbar=False
            )
        self._add_predictive(extended, "posterior_predictive")
        return extended


def chain_generators(random_seed: int | np.random.Generator | None, chains: int) -> Iterator:
    """Yield one generator per chain, seeded as ``pm.sample`` seeds its chains.

    ``pm.sample`` spawns one child per chain and spends one integer of each on the initial
    point; a kernel engine that does the same draws the same stream as the PyMC step methods.
    """
    for rng in get_random_generator(random_seed).spawn(chains):
        rng.integers(2**30)
        yield rng
