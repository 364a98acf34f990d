r"""The model contract: what every dose-response model of the zoo offers, written once.

A model is a frozen dataclass holding its hyper-parameters (validated in ``__post_init__``
with :mod:`dosezoo.checks`, naming the field at fault) and a subclass of :class:`DoseModel`,
which owns the rest:

- ``build(data) -> pymc.Model``, the specification (each model writes it);
- one ``fit(data, *, engine, draws, tune, chains, random_seed)`` template that checks the
  settings and the data, runs the engine, and records the fit's identity in the DataTree's
  root attributes (model name and class, options, engine, package version) with a fingerprint
  of the data it was fitted to; :meth:`DoseModel.check_fit` refuses a fit of other data or of
  another model (what ``Design.decide`` does before it reads a fit);
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

import json
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from dosezoo.checks import positive_int, probability
from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.errors import FitMismatchError
from dosezoo.inference import (
    IdataBuilder,
    check_engine_options,
    check_fit_settings,
    check_random_seed,
    fit_identity,
    random_generator,
    sample_pymc,
)
from dosezoo.levels import data_from_counts
from dosezoo.models.workflow import dose_groups, outcome_statistics, ppp_dataset, variance_ratio_ess
from dosezoo.posterior import DosePosterior, Sampling

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr


__all__ = ["DoseModel", "PosteriorMemo", "chain_generators", "engine"]

_ENGINE_ATTRIBUTE = "__dosezoo_engine__"


def engine(name: str) -> "Callable[[Callable[..., xr.DataTree]], Callable[..., xr.DataTree]]":
    """Register the decorated method as the model's engine ``name``.

    The method is called by :meth:`DoseModel.fit` as
    ``method(data, *, draws, tune, chains, random_seed, progressbar, **options)`` after the
    settings and the data were checked, and returns the DataTree (the template adds the
    identity attributes).
    """

    def register(method: "Callable[..., xr.DataTree]") -> "Callable[..., xr.DataTree]":
        setattr(method, _ENGINE_ATTRIBUTE, name)
        return method

    return register


class PosteriorMemo:
    """Posteriors kept by key, the least recently used dropped first, bounded in number and bytes.

    A model whose posterior is a function of a key (the counts of a count posterior, the
    sampler's settings and seed) keeps the posteriors it computed: in a simulation the states
    early in a trial recur in trial after trial. The bound in bytes keeps a memo of MCMC draws
    (some 100 kB a posterior) in memory; the newest entry is always kept.

    Parameters
    ----------
    max_entries : int
        Most posteriors kept.
    max_bytes : int
        Most bytes kept, as the callers of :meth:`keep` count them.
    """

    __slots__ = ("_entries", "max_bytes", "max_entries", "nbytes")

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        #: Bytes of the posteriors kept.
        self.nbytes = 0

    def __len__(self) -> int:
        """Return the number of posteriors kept."""
        return len(self._entries)

    def get(self, key: Hashable) -> Any:
        """Return the posterior kept under ``key`` (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def keep(self, key: Hashable, value: Any, nbytes: int) -> None:
        """Keep ``value`` (of ``nbytes`` bytes) under ``key``; drop the oldest beyond the bounds."""
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.nbytes -= previous[1]
        self._entries[key] = (value, nbytes)
        self.nbytes += nbytes
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_entries or self.nbytes > self.max_bytes
        ):
            _, (_, dropped) = self._entries.popitem(last=False)
            self.nbytes -= dropped


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
    exact_posterior : bool
        Whether :meth:`posterior` integrates the posterior exactly (quadrature): no Monte Carlo
        error, no convergence report, and neither a seed nor the ``Sampling`` read (False by
        default). A design then asks the model for it directly, without deriving a seed and
        without keeping it, so such a model must memoise its own posteriors (the grid models
        do, by the counts; the 3PND quadrature does not and is not flagged).
    default_tune : int
        Burn-in of :meth:`fit` when none is given (MCMC engines).
    min_fit_patients : int
        Fewest patients :meth:`fit` accepts (0 for models whose fit may be the prior).
    posterior_cache_size, posterior_cache_bytes : int
        Bounds of the memo of posteriors :meth:`posterior` may keep (:meth:`_memo`): how many
        and how many bytes.
    exchangeable_patients : bool
        Whether the likelihood depends on the data only through the multiset of their rows
        (doses, outcomes, covariates), so that a fit to the rows in another order is a fit to
        the same data (True by default; False for a model whose posterior's layout follows
        the row order, e.g. the repeated-measures 3PND's subjects in order of appearance).
        :meth:`check_fit` then accepts a fit of the same patients in any order, as the seed of
        a design's fits (:meth:`~dosezoo.designs.base.Conduct.seed_for`) and the posterior
        memo (:meth:`sufficient_statistic`) already ignore it.
    count_posterior : bool
        Whether :meth:`posterior` depends on the data only through counts of outcomes per dose
        (the patients and DLTs per level of a binary model, the patients per outcome cell of
        the joint probit; False by default), which :meth:`sufficient_statistic` then returns. A
        design seeds a sampled posterior from that statistic (trials that reach the same counts
        by different paths get the same posterior, which the model may memoise), and one whose
        rule reads the counts only runs in lockstep in simulations.
    """

    model_name: ClassVar[str]
    outcomes: ClassVar[tuple[str, ...]]
    default_engine: ClassVar[str]
    fast_engine: ClassVar[str | None] = None
    exact_posterior: ClassVar[bool] = False
    default_tune: ClassVar[int] = 1000
    min_fit_patients: ClassVar[int] = 1
    #: Prior variables of dims ``(dose,)`` that are probabilities of a binary outcome: their
    #: variance-ratio ESS uses the Bernoulli variance ``p (1 - p)``.
    probability_rates: ClassVar[tuple[str, ...]] = ()
    #: The rate whose distance to :meth:`mtd_target` defines the MTD among the dose levels.
    toxicity_rate: ClassVar[str] = "p_dlt"
    count_posterior: ClassVar[bool] = False
    exchangeable_patients: ClassVar[bool] = True
    posterior_cache_size: ClassVar[int] = 64
    #: 128 MiB per model (a design with several models, e.g. the two-stage GP's one per prior
    #: MTD level, has several memos): the local worker processes (loky's) are restarted,
    #: losing their memos but no results, when their memory grows by 300 MB.
    posterior_cache_bytes: ClassVar[int] = 128 << 20
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
    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model (the specification) for ``data``."""

    @abstractmethod
    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Return the model's fast posterior given ``data`` (what rules read in simulations).

        ``sampling`` sets draws, seed and checks when that posterior is sampled (exact
        posteriors ignore it).
        """

    def fitted_posterior(
        self, data: TrialData, sampling: Sampling | None = None, *, engine: str | None = None
    ) -> DosePosterior:
        """Fit the model by ``engine`` with ``sampling``'s settings; read the rule's posterior.

        Convergence is judged by ``sampling.criteria`` on its ``levels``. The :meth:`posterior`
        of a model whose only engine is a fit (no exact posterior), and the fit of a design
        whose conduct names an engine.
        """
        sampling = Sampling() if sampling is None else sampling
        idata = self.fit(
            data,
            engine=engine,
            draws=sampling.draws,
            tune=sampling.tune,
            chains=sampling.chains,
            random_seed=sampling.random_seed,
        )
        return self.posterior_from_idata(idata, sampling.criteria, levels=sampling.levels)

    def data_schema(self) -> dict[str, Any]:
        """Return the keywords of :class:`~dosezoo.data.TrialData` that the model's data need.

        ``{}`` (one ``dose`` column) by default; a model of drug combinations gives its
        ``dose_columns``, ``covariates`` and ``coded_doses``, so that a CSV file is read in its
        schema (``TrialData.from_csv(path, **model.data_schema())``, as the command line does).
        """
        return {}

    def step_methods(self, model: "pm.Model") -> list:
        """Return the model's own PyMC step methods (registers the ``"pymc"`` engine)."""
        raise NotImplementedError(f"{self.model_name} has no step methods of its own")

    def posterior_from_idata(
        self, idata: "xr.DataTree", criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> DosePosterior:
        """Read the posterior a rule needs from a fit of this model (any engine).

        ``options`` go to :meth:`DosePosterior.from_idata` (e.g. ``levels``). Models whose
        rules read a model-defined quantity (e.g. CRM's plug-in estimate) add it.
        """
        return DosePosterior.from_idata(idata, criteria, **options)

    def sufficient_statistic(self, data: TrialData) -> Hashable:
        """Return what the posterior depends on in ``data`` (a hashable key).

        Patients are exchangeable given their doses and covariates, so by default the multiset
        of rows (doses, outcomes, covariates) in a canonical order. Models with a smaller
        statistic (the DLTs and patients per dose of a binary model) override it.
        """
        columns = [np.asarray(data.doses, dtype=float).astype(str)]
        columns += [np.asarray(data.column(name)).astype(str)[:, None] for name in self.outcomes]
        columns += [np.asarray(data.column(name)).astype(str)[:, None] for name in data.covariates]
        rows = np.concatenate(columns, axis=1) if data.n_patients else np.empty((0, 0), str)
        return tuple(sorted(map(tuple, rows.tolist())))

    def data_from_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: int,
        last_cohort: tuple[int, int] | None = None,
        *,
        checked: bool = False,
    ) -> TrialData:
        """Return data with ``n`` patients and ``y`` DLTs per dose level, ``current`` the last.

        :func:`dosezoo.levels.data_from_counts` on the model's ``dose_levels`` (``checked``:
        a state the lockstep engine checked already): the data a design whose decisions read
        the counts per level decides a count state on. A model whose decisions count the data
        keeps the counts given with them (:meth:`_keep_counts`).

        Raises
        ------
        ValueError
            If the counts are not a state a trial can reach, naming them.
        """
        levels = getattr(self, "dose_levels")
        data = data_from_counts(n, y, current, levels, last_cohort, checked=checked)
        self._keep_counts(data, n, y)
        return data

    def _keep_counts(self, data: TrialData, n: np.ndarray, y: np.ndarray) -> None:
        """Keep what the model reads of ``data``, made from ``n`` and ``y`` per level (nothing)."""

    def mtd_target(self) -> float | None:
        """Return the target DLT probability that defines the MTD (None: the model has none)."""
        return None

    # ------------------------------------------------------------------ prior checks

    def prior_predictive_summary(
        self,
        data: TrialData | None = None,
        *,
        target: float | None = None,
        draws: int = 2000,
        random_seed: int | np.random.Generator | None = None,
    ) -> "xr.Dataset":
        """Summarise the prior: rates per dose, the MTD, and outcomes of a planned trial.

        Parameters
        ----------
        data : TrialData, optional
            Planned patients whose outcomes the prior predicts, summarised per dose by the
            statistics of :meth:`posterior_predictive_check`: their doses, with outcomes the
            model accepts (checked as any data: e.g. 3PND responses not all 0), whose values
            the prior draws do not read.
        target : float, optional
            Target DLT probability of the MTD (the model's :meth:`mtd_target` by default).
        draws : int
            Prior draws.
        random_seed : int or numpy.random.Generator, optional

        Returns
        -------
        xarray.Dataset
            For every prior variable of dims ``(dose,)`` (e.g. ``p_dlt``): ``<name>_mean`` and
            ``<name>_quantile`` (5 %, 50 %, 95 %); ``mtd_quantile`` when the model has an
            ``mtd`` (per group or subject where it has one each), ``mtd_population_quantile``
            when it has a population MTD; ``p_mtd`` (dims ``dose``), the prior probability
            that each level is the MTD (the level whose toxicity rate is closest to the
            target, or the level nearest the MTD of a model that has one); with ``data``,
            ``predictive_mean``, ``predictive_low`` and ``predictive_high`` (5 % and 95 %)
            per statistic and ``data_dose``.
        """
        import xarray as xr  # loaded on use: xarray slows every start-up

        owner = f"{self.model_name}.prior_predictive_summary"
        target = self.mtd_target() if target is None else probability(owner, "target", target)
        draws = positive_int(owner, "draws", draws)
        idata = self.sample_prior_predictive(data, draws=draws, random_seed=random_seed)
        prior = idata["prior"].to_dataset()
        sample = ("chain", "draw")
        # Models on a continuous dose range have no levels.
        levels = np.asarray(getattr(self, "dose_levels", None) or (), dtype=float)
        quantiles = [0.05, 0.5, 0.95]
        out: dict[str, xr.DataArray] = {}
        for name, variable in prior.data_vars.items():
            dims = [dim for dim in variable.dims if dim not in sample]
            if dims == ["dose"]:
                out[f"{name}_mean"] = variable.mean(sample)
                out[f"{name}_quantile"] = variable.quantile(quantiles, dim=sample)
        for name in ("mtd", "mtd_population"):  # one per group or subject, or a population's
            if name in prior.data_vars and prior[name].size:  # no subjects: no MTD of one
                out[f"{name}_quantile"] = prior[name].quantile(quantiles, dim=sample)
        rate = prior.get(self.toxicity_rate)
        mtd_level = None
        if target is not None and rate is not None and rate.dims[-1:] == ("dose",):
            values = rate.stack(sample=sample).transpose("sample", "dose").to_numpy()
            mtd_level = np.argmin(np.abs(values - target), axis=1)
        elif "mtd" in prior.data_vars and prior["mtd"].ndim == 2 and levels.size:
            values = prior["mtd"].to_numpy().reshape(-1)
            mtd_level = np.argmin(np.abs(values[:, None] - levels[None]), axis=1)
        if mtd_level is not None and levels.size:
            share = np.bincount(mtd_level, minlength=levels.size) / mtd_level.size
            out["p_mtd"] = xr.DataArray(share, dims="dose", coords={"dose": levels})
        summary = xr.Dataset(out)
        if data is not None and data.n_patients:
            group, labels = self.predictive_groups(data)
            replicated = self._replicate(idata["prior_predictive"].to_dataset(), group, labels)
            names = list(replicated)
            stacked = np.stack([replicated[name] for name in names], axis=1)  # (S, stat, G)
            predictive_dims = ("statistic", "data_dose")
            low, high = np.quantile(stacked, [0.05, 0.95], axis=0)
            summary = summary.assign(
                predictive_mean=(predictive_dims, stacked.mean(axis=0)),
                predictive_low=(predictive_dims, low),
                predictive_high=(predictive_dims, high),
            ).assign_coords(statistic=names, data_dose=labels)
        summary.attrs["target"] = np.nan if target is None else target
        summary.attrs["draws"] = int(draws)
        return summary

    def prior_moments(self, prior: "xr.Dataset") -> dict[str, tuple[np.ndarray, np.ndarray, list]]:
        """Prior draws of each observation's mean and variance per dose, for the ESS.

        The default reads the :attr:`probability_rates` (Bernoulli: mean ``p``, variance
        ``p (1 - p)``); models of other outcomes override it.

        Returns
        -------
        dict
            Name -> (mean draws (S, K), variance draws (S, K), the K dose labels).
        """
        moments = {}
        for name in self.probability_rates:
            rate = prior[name].stack(sample=("chain", "draw")).transpose("sample", "dose")
            p = rate.to_numpy()
            moments[name] = (p, p * (1 - p), list(rate["dose"].values))
        return moments

    def prior_effective_sample_size(
        self, *, draws: int = 4000, random_seed: int | np.random.Generator | None = 0
    ) -> float | dict[str, float]:
        r"""Return the prior's effective sample size, in patients.

        By default the variance ratio :math:`E[\sigma^2] / \operatorname{Var}[\mu]` of one
        observation's mean :math:`\mu` and variance :math:`\sigma^2` at each dose, from
        ``draws`` prior draws (:mod:`dosezoo.models.workflow`; for a Beta(a, b) prior on a
        DLT probability it is a + b). Models with a conjugate or a Morita-Thall-Mueller
        definition override it.

        Returns
        -------
        float or dict of str to float
            A number, or ``"<quantity>[<dose>]"`` -> ESS.
        """
        prior = self.sample_prior_predictive(draws=draws, random_seed=random_seed)["prior"]
        out: dict[str, float] = {}
        for name, (mean, variance, labels) in self.prior_moments(prior.to_dataset()).items():
            for label, value in zip(labels, variance_ratio_ess(mean, variance), strict=True):
                key = f"{label:g}" if isinstance(label, float | np.floating) else str(label)
                out[f"{name}[{key}]"] = float(value)
        if not out:
            raise NotImplementedError(f"{self.model_name} defines no prior effective sample size")
        return out

    # ------------------------------------------------------------------ predictive checks

    def predictive_groups(self, data: TrialData) -> tuple[np.ndarray, list]:
        """Each patient's group index and the group labels of the predictive statistics.

        The distinct doses (dose tuples of a combination) by default.
        """
        return dose_groups(data)

    @property
    def predictive_outcomes(self) -> tuple[str, ...]:
        """The outcomes whose statistics the predictive checks compare: all by default."""
        return self.outcomes

    def _observe(self, data: TrialData, group: np.ndarray, labels: list) -> dict[str, np.ndarray]:
        """Statistics per group of each observed outcome, shape (G,) each."""
        out: dict[str, np.ndarray] = {}
        for name in self.predictive_outcomes:
            values = np.asarray(data.column(name), dtype=float)
            out.update(outcome_statistics(name, values, group, len(labels)))
        return out

    def _replicate(
        self, replicates: "xr.Dataset", group: np.ndarray, labels: list
    ) -> dict[str, np.ndarray]:
        """Statistics per group of each replicated outcome, shape (S, G) each."""
        out: dict[str, np.ndarray] = {}
        for name in self.predictive_outcomes:
            values = replicates[name].stack(sample=("chain", "draw")).transpose("sample", ...)
            out.update(outcome_statistics(name, values.to_numpy(), group, len(labels)))
        return out

    def predictive_statistics(
        self,
        idata: "xr.DataTree",
        data: TrialData,
        *,
        random_seed: int | np.random.Generator | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list]:
        """Observed and replicated statistics per dose of :meth:`posterior_predictive_check`.

        Returns
        -------
        tuple
            (observed: name -> (G,), replicated: name -> (S, G), the G dose labels).
        """
        group, labels = self.predictive_groups(data)
        observed = self._observe(data, group, labels)
        extended = self.sample_posterior_predictive(idata, data, random_seed=random_seed)
        replicates = extended["posterior_predictive"].to_dataset()
        return observed, self._replicate(replicates, group, labels), labels

    def posterior_predictive_check(
        self,
        idata: "xr.DataTree",
        data: TrialData,
        *,
        random_seed: int | np.random.Generator | None = None,
    ) -> "xr.Dataset":
        """Compare the data with replicates from the posterior predictive, per dose.

        Parameters
        ----------
        idata : xarray.DataTree
            A fit of this model (any engine) to ``data``.
        data : TrialData
            The data it was fitted to.
        random_seed : int or numpy.random.Generator, optional

        Returns
        -------
        xarray.Dataset
            Dims ``(statistic, dose)``: ``ppp`` (the mid-p posterior predictive p-value,
            :mod:`dosezoo.models.workflow`), ``observed``, ``replicated_mean``,
            ``replicated_low`` and ``replicated_high``. Statistics: the count of each binary
            outcome, the count per category of an ordinal one, the mean and sd of a continuous
            one. :func:`dosezoo.models.workflow.plot_ppc` draws it.
        """
        self._checked_data(data, 1)
        observed, replicated, labels = self.predictive_statistics(
            idata, data, random_seed=random_seed
        )
        return ppp_dataset(observed, replicated, labels)

    # ------------------------------------------------------------------ shared

    @property
    def _cache(self) -> dict:
        """Per-instance store of PyMC models and builders (never pickled, never compared)."""
        try:
            return self.__dict__["_model_cache"]
        except KeyError:
            cache = self.__dict__["_model_cache"] = {}
            return cache

    def _memo(self, name: str) -> PosteriorMemo:
        """Return the memo of posteriors ``name``, bounded by the class's cache sizes."""
        memo = self._cache.get(name)
        if memo is None:
            memo = self._cache[name] = PosteriorMemo(
                self.posterior_cache_size, self.posterior_cache_bytes
            )
        return memo

    def __getstate__(self) -> dict:
        """Pickle the options only: cached PyMC models are rebuilt on demand."""
        return {key: value for key, value in self.__dict__.items() if key != "_model_cache"}

    def __setstate__(self, state: dict) -> None:
        """Restore from :meth:`__getstate__` (used by process pools)."""
        self.__dict__.update(state)

    def identity(self, engine: str) -> dict:
        """Return the root attributes of a fit: the model and its class, options (JSON), engine."""
        return fit_identity(self.model_name, self.parameters(), engine) | {
            "model_class": f"{type(self).__module__}.{type(self).__qualname__}"
        }

    def stamp(self, idata: "xr.DataTree", data: TrialData, engine: str = "user") -> "xr.DataTree":
        """Record in ``idata``'s root attributes that it is a fit of this model to ``data``.

        :meth:`fit` does it for every fit; call it for a fit made otherwise (e.g.
        ``pm.sample`` on :meth:`build`), which :meth:`check_fit` refuses until stamped.

        Returns
        -------
        xarray.DataTree
            ``idata`` itself, with the attributes ``model``, ``model_class``,
            ``model_parameters``, ``engine``, ``dosezoo_version``, ``data_fingerprint`` (of
            the doses, the model's outcome columns and the covariates, in patient order:
            :meth:`~dosezoo.data.TrialData.fingerprint`), ``data_fingerprint_exchangeable``
            (the same, of the patients in a canonical order) and ``data_patients``.
        """
        idata.attrs.update(self.identity(engine))
        idata.attrs["data_fingerprint"] = data.fingerprint(self.outcomes)
        idata.attrs["data_fingerprint_exchangeable"] = data.fingerprint(
            self.outcomes, exchangeable=True
        )
        idata.attrs["data_patients"] = data.n_patients
        return idata

    def check_fit(self, idata: object, data: TrialData, *, same_order: bool = False) -> None:
        """Refuse a fit that is not this model's fit to ``data``.

        Compares the fit's root attributes (:meth:`stamp`) with this model and ``data``: the
        model class, the model's settings (:meth:`parameters`: hyper-parameters, dose levels)
        and the data's fingerprint: of the patients in any order when the model's patients
        are exchangeable (:attr:`exchangeable_patients`) and ``same_order`` is False, else in
        their order (as for a fit stamped before the order-free fingerprint was recorded).

        Parameters
        ----------
        idata : xarray.DataTree
            The fit.
        data : TrialData
            The data it should be a fit to.
        same_order : bool
            Require the rows in the fit's order: for a caller that sets quantities per
            patient of ``data`` beside the fit's own per-patient groups (posterior predictive
            replicates beside its ``observed_data``).

        Raises
        ------
        TypeError
            If ``idata`` is not a DataTree.
        FitMismatchError
            Naming what differs (data, model class, model settings), or saying that the fit
            records no fingerprint (it was not made by :meth:`fit` nor stamped).
        """
        import xarray as xr  # loaded on use: xarray slows every start-up

        if not isinstance(idata, xr.DataTree):
            raise TypeError(
                f"{self.model_name}: expected an InferenceData (xarray.DataTree), "
                f"got {type(idata).__name__}"
            )
        attrs = idata.attrs
        if "data_fingerprint" not in attrs or "model_class" not in attrs:
            raise FitMismatchError(
                f"{self.model_name}: the fit records no fingerprint of its data and model (made "
                "otherwise than by model.fit?); fit with model.fit(data), or record a fit of "
                "your own with model.stamp(idata, data)"
            )
        mine = self.identity(str(attrs.get("engine")))
        if attrs["model_class"] != mine["model_class"]:
            raise FitMismatchError(
                f"{self.model_name}: the model class differs: the fit is of "
                f"{attrs.get('model')} ({attrs['model_class']}), this model is "
                f"{self.model_name} ({mine['model_class']})"
            )
        theirs, ours = json.loads(attrs["model_parameters"]), json.loads(mine["model_parameters"])
        if theirs != ours:
            differ = [key for key in {**ours, **theirs} if theirs.get(key) != ours.get(key)]
            shown = "; ".join(
                f"{key}: fit {theirs.get(key)!r}, model {ours.get(key)!r}" for key in differ
            )
            raise FitMismatchError(f"{self.model_name}: the model settings differ: {shown}")
        key, exchangeable = "data_fingerprint", False
        if self.exchangeable_patients and not same_order and f"{key}_exchangeable" in attrs:
            key, exchangeable = f"{key}_exchangeable", True
        fingerprint = data.fingerprint(self.outcomes, exchangeable=exchangeable)
        if attrs[key] != fingerprint:
            reordered = attrs.get("data_fingerprint_exchangeable") == data.fingerprint(
                self.outcomes, exchangeable=True
            )
            what = (
                "the fit was made on these patients with their rows in another order"
                if reordered
                else f"the fit was made on {attrs.get('data_patients', '?')} patients, these "
                f"data have {data.n_patients} patients"
            )
            order = "in any row order" if exchangeable else "in row order"
            raise FitMismatchError(
                f"{self.model_name}: the data differ: {what} (fingerprints "
                f"{str(attrs[key])[:12]}... and {fingerprint[:12]}... of the doses, "
                f"{', '.join(self.outcomes)} and covariates, {order}); fit the model to these "
                "data"
            )

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
    ) -> "xr.DataTree":
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
            attributes name the model, its class, its options and the engine, with the
            data's fingerprint (:meth:`stamp`).
        """
        engine = self.default_engine if engine is None else engine
        tune = self.default_tune if tune is None else tune
        owner = f"{self.model_name}.fit"
        check_fit_settings(owner, engine, self.engines(), draws, tune, chains, random_seed)
        run = getattr(self, self._engine_methods[engine])
        check_engine_options(owner, engine, run, options)
        data = self._checked_data(data, self.min_fit_patients)
        idata = run(
            data,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            **options,
        )
        return self.stamp(idata, data, engine)

    @engine("nuts")
    def _fit_nuts(self, data: TrialData, **settings: Any) -> "xr.DataTree":
        return sample_pymc(self.build(data), engine="nuts", steps=None, **settings)

    @engine("pymc")
    def _fit_pymc(self, data: TrialData, **settings: Any) -> "xr.DataTree":
        return sample_pymc(self.build(data), engine="pymc", steps=self.step_methods, **settings)

    def _builder(self, data: TrialData) -> IdataBuilder:
        """Return a DataTree builder of the PyMC model for ``data``, moved by ``pm.set_data``.

        Models whose data all live in ``pm.Data`` containers (:meth:`data_values`) keep one
        builder and move it to new data; the others rebuild it when the data change.
        """
        import pymc as pm

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
    ) -> "xr.DataTree":
        """Build the DataTree of a fast engine's constrained draws (chain, draw, ...)."""
        return self._builder(data)(
            free, stats, sampling_time=time.perf_counter() - started, tuning_steps=tune
        )

    # ------------------------------------------------------------------ predictive

    def _predictive_context(self) -> AbstractContextManager:
        """Context in which PyMC's forward sampler runs for this model."""
        return nullcontext()

    def _add_predictive(self, idata: "xr.DataTree", group: str) -> None:
        """Add derived outcome variables to a predictive group (in place; none by default)."""

    def _prior_model(self, data: TrialData) -> "pm.Model":
        """Return the PyMC model whose prior :meth:`sample_prior_predictive` draws: :meth:`build`.

        A model whose deterministics are written given the observed outcomes (a
        parameterisation for the posterior) returns one that does not read them.
        """
        return self.build(data)

    def _posterior_predictive_model(self, data: TrialData) -> "pm.Model":
        """Return the PyMC model whose outcomes :meth:`sample_posterior_predictive` replicates.

        :meth:`build` by default. A model whose likelihood is a marginal over latent values
        that its posterior holds (e.g. a marginal GP) returns one whose outcomes are drawn
        given them.
        """
        return self.build(data)

    def sample_prior_predictive(
        self,
        data: TrialData | None = None,
        *,
        draws: int = 1000,
        random_seed: int | np.random.Generator | None = None,
    ) -> "xr.DataTree":
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
        import pymc as pm

        check_random_seed(f"{self.model_name}.sample_prior_predictive", random_seed)
        data = TrialData.empty(outcomes=self.outcomes) if data is None else data
        with self._prior_model(data), self._predictive_context():
            idata = pm.sample_prior_predictive(
                draws=draws, random_seed=random_generator(random_seed)
            )
        self._add_predictive(idata, "prior_predictive")
        idata.attrs.update(self.identity("prior"))
        return idata

    def sample_posterior_predictive(
        self,
        idata: "xr.DataTree",
        data: TrialData,
        *,
        random_seed: int | np.random.Generator | None = None,
    ) -> "xr.DataTree":
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

        Raises
        ------
        FitMismatchError
            If ``idata`` is not this model's fit to ``data`` (:meth:`check_fit`): replicates of
            another fit, checked against these data, would read as a misfit.
        """
        import pymc as pm

        check_random_seed(f"{self.model_name}.sample_posterior_predictive", random_seed)
        self.check_fit(idata, self._checked_data(data, 1), same_order=True)
        with self._posterior_predictive_model(data), self._predictive_context():
            extended = pm.sample_posterior_predictive(
                idata.copy(),
                extend_inferencedata=True,
                random_seed=random_generator(random_seed),
                progressbar=False,
            )
        self._add_predictive(extended, "posterior_predictive")
        return extended


def chain_generators(random_seed: int | np.random.Generator | None, chains: int) -> Iterator:
    """Yield one generator per chain, seeded as ``pm.sample`` seeds its chains.

    ``pm.sample`` spawns one child per chain and spends one integer of each on the initial
    point; a kernel engine that does the same draws the same stream as the PyMC step methods.
    """
    for rng in random_generator(random_seed).spawn(chains):
        rng.integers(2**30)
        yield rng
