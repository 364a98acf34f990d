r"""The one posterior every rule reads: per-dose rates as weighted points, and an MTD.

A model's fast engine (a grid, a quadrature, a closed form, a numba sampler) and any fit in an
InferenceData (:meth:`DosePosterior.from_idata`) give the same object, so a rule is written once,
against :class:`DosePosterior`, and works on every engine's output.

What it holds
-------------
Rates per dose level (``p_dlt``; ``p_tox`` and ``p_response`` for a joint model; any name a
model defines) as ``m`` points of shape ``(m, K)``: either the cells of a grid with their masses
(``weights``), or ``m`` equally weighted MCMC draws (``weights`` None, stored chain-major so
that their Monte Carlo error can be estimated). A scalar with a distribution of its own, the
MTD, is a :class:`Distribution` (``quantile`` and ``cdf``). Posterior probabilities are
expectations of indicators,

.. math:: P(p_k > t \mid \text{data}) = \sum_i w_i \, 1\{p_k^{(i)} > t\},

computed for draws as the plain mean (so that a probability of ``250 / 1000`` draws is
exactly 0.25). An engine that integrates the posterior (a grid) gives these tail
probabilities exactly instead (``tails``; see :class:`dosezoo.samplers.grid.GridPosterior`):
counting whole cells would miss them by up to a cell's mass along the threshold.

Levels that are points, and exact normal posteriors
----------------------------------------------------
A level need not be a single dose: for a surface over drug combinations (and strata of
patients) each level is a point, a tuple of numbers named by ``level_columns`` (e.g.
``("d1", "d2", "z")``), and a quantity per level is the surface on those points. A quantity
whose posterior is exactly multivariate normal over the levels (a Gaussian process with its
hyper-parameters fixed, e.g. at their empirical-Bayes estimates) is held as a
:class:`NormalLevels` (mean, variance and covariance) in ``normal`` instead of draws;
:meth:`DosePosterior.mean`, :meth:`~DosePosterior.variance` and
:meth:`~DosePosterior.joint_draws` read either form, so a rule reads an exact posterior and
an MCMC fit the same way.

Monte Carlo error
-----------------
A probability estimated from draws carries the Monte Carlo standard error
:math:`\sqrt{\hat p (1 - \hat p) / \mathrm{ESS}}` with the effective sample size of the
indicator (ArviZ's rank-normalised bulk ESS over the chains); a grid or a closed form carries
none (:meth:`DosePosterior.mcse`).

A rule compares such a probability with its threshold through :meth:`DosePosterior.exceeds`,
which records the comparison (:class:`Comparison`, with its MCSE) on a posterior that a design
reads for a decision (:meth:`DosePosterior.deciding`): the design then resolves a comparison
within its MCSE of the threshold by more draws, or by the cautious side
(:meth:`dosezoo.designs.base.Design.next`).
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from dosezoo.checks import (
    check_cdf_point,
    check_quantile_level,
    first_true,
    index_text,
    integer,
    real_number,
)
from dosezoo.diagnostics import ConvergenceCriteria, ConvergenceReport, mean_ess
from dosezoo.inference import check_random_seed, random_generator

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "Comparison",
    "Deferred",
    "Distribution",
    "DosePosterior",
    "LevelTails",
    "NormalLevels",
    "OrderedLevelTails",
    "QuantileLevelTails",
    "SampledDistribution",
    "indicator_mcse",
]


@dataclass(frozen=True)
class Sampling:
    """Settings of a posterior computed by sampling (ignored by exact posteriors).

    Attributes
    ----------
    draws, tune, chains : int
        Kept draws and burn-in per chain (None: the model's default), and chains.
    random_seed : int or None
        Seed of the draws.
    criteria : ConvergenceCriteria or None
        Checks recorded in the posterior's ``report`` (None: none).
    levels : int or None
        Judge the convergence on the lowest ``levels`` dose levels only (None: all).
    """

    draws: int = 1000
    tune: int | None = None
    chains: int = 2
    random_seed: int | None = None
    criteria: ConvergenceCriteria | None = None
    levels: int | None = None


def indicator_mcse(indicator: np.ndarray, chains: int) -> np.ndarray:
    r"""Monte Carlo standard error of the mean of equally weighted draws of indicators.

    :math:`\sqrt{\hat p (1 - \hat p) / \mathrm{ESS}}` per column, with ArviZ's bulk ESS of the
    indicator over the chains (:func:`dosezoo.diagnostics.mean_ess`, which is that ESS for
    draws of two values, at a fraction of ``arviz.ess``'s cost: a decision on draws asks for
    it at every comparison near a cutoff); an indicator constant over the draws has no error.

    Parameters
    ----------
    indicator : numpy.ndarray
        Draws of the indicators, shape (m, K), chain-major.
    chains : int
        Chains the draws come from.

    Returns
    -------
    numpy.ndarray
        Shape (K,).
    """
    indicator = np.asarray(indicator, dtype=float)
    p = indicator.mean(axis=0)
    by_chain = indicator.reshape(chains, -1, indicator.shape[1])
    errors = np.zeros(p.size)
    varying = np.flatnonzero((p > 0) & (p < 1))
    if varying.size:
        ess = mean_ess(by_chain[:, :, varying])
        errors[varying] = np.sqrt(p[varying] * (1 - p[varying]) / ess)
    return errors


@dataclass(frozen=True)
class Comparison:
    """A comparison a decision turned on: a posterior probability of a risk against its cutoff.

    At or beyond the cutoff lies the cautious action (a dose not given, a stop).

    Attributes
    ----------
    quantity : str
        What is compared, e.g. ``"p_excessive_0"``.
    value, threshold, mcse : float
        The estimate, its cutoff and the estimate's Monte Carlo standard error.
    """

    quantity: str
    value: float
    threshold: float
    mcse: float

    def margin(self) -> float:
        """Distance of the estimate from the cutoff in MCSEs (infinite without error)."""
        distance = abs(self.value - self.threshold)
        return distance / self.mcse if self.mcse > 0 else np.inf


@runtime_checkable
class LevelTails(Protocol):
    """Exact tail probabilities of a rate at every level (e.g. by integration along a cut).

    Tails that can integrate one level alone may also offer ``prob_above_at(threshold,
    level) -> float``, equal to ``prob_above(threshold)[level]``; a rule that reads one level
    (:meth:`DosePosterior.prob_above_at`) then costs that level's integral only.
    """

    def prob_above(self, threshold: float) -> np.ndarray:
        """Return ``P(rate_k > threshold)`` per level, shape (K,)."""
        ...


@runtime_checkable
class QuantileLevelTails(LevelTails, Protocol):
    """Exact tails that also give the rate's quantiles per level (inverting the tails)."""

    def quantile(self, q: float) -> np.ndarray:
        """Return the posterior ``q``-quantile of the rate per level, shape (K,)."""
        ...


@runtime_checkable
class OrderedLevelTails(QuantileLevelTails, Protocol):
    """Exact tails of a rate that increases across the levels at every point of the posterior.

    What a one-parameter model gives (the CRM): the rate at each level monotone in the
    parameter, the levels' rates ordered.
    """

    def prob_closest_below(self, target: float, index: int) -> float:
        """Return the probability that the level closest to ``target`` is below level ``index``.

        The level whose rate is closest to the target, the lower among ties, a placebo level
        of rate 0 below the lowest included.
        """
        ...


@runtime_checkable
class Distribution(Protocol):
    """The posterior of a scalar quantity (e.g. the MTD): its quantiles and its CDF."""

    def quantile(self, p: float) -> float:
        """Return the posterior ``p``-quantile."""
        ...

    def cdf(self, x: float) -> float:
        """Return the posterior probability that the quantity is below ``x``."""
        ...


@dataclass(frozen=True, eq=False)
class SampledDistribution:
    """A scalar's posterior as MCMC draws.

    Attributes
    ----------
    draws : numpy.ndarray
        The draws, shape (chains, draws per chain).
    """

    draws: np.ndarray
    _sorted: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Keep a sorted copy for the CDF."""
        draws = np.atleast_2d(np.asarray(self.draws, dtype=float))
        object.__setattr__(self, "draws", draws)
        object.__setattr__(self, "_sorted", np.sort(draws.ravel()))

    def quantile(self, p: float) -> float:
        """Empirical ``p``-quantile of all draws."""
        check_quantile_level(p)
        return float(np.quantile(self._sorted, p))

    def cdf(self, x: float) -> float:
        """Fraction of draws below ``x``."""
        check_cdf_point(x)
        return float(np.searchsorted(self._sorted, x, side="left") / self._sorted.size)

    def mcse_cdf(self, x: float) -> float:
        """Monte Carlo standard error of :meth:`cdf` at ``x`` (over the chains)."""
        indicator = (self.draws < x).reshape(-1, 1)
        return float(indicator_mcse(indicator, self.draws.shape[0])[0])

    def mcse_quantile(self, p: float) -> float:
        """Monte Carlo standard error of the ``p``-quantile (ArviZ, over the chains)."""
        import arviz as az

        return float(az.mcse(self.draws, method="quantile", prob=p))


@dataclass(frozen=True, eq=False)
class NormalLevels:
    r"""The exact multivariate normal posterior of a quantity at the levels.

    Attributes
    ----------
    mean, variance : numpy.ndarray
        Posterior mean and variance per level, shape (K,).
    covariance : numpy.ndarray or callable
        The posterior covariance, shape (K, K), or a function of no argument returning it
        (computed on the first call of :meth:`cov`, for posteriors whose rules mostly read
        the variance only).
    """

    mean: np.ndarray
    variance: np.ndarray
    covariance: np.ndarray | Callable[[], np.ndarray]
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def cov(self) -> np.ndarray:
        """Return the posterior covariance, shape (K, K)."""
        if "cov" not in self._cache:
            covariance = self.covariance
            self._cache["cov"] = np.asarray(
                covariance() if callable(covariance) else covariance, dtype=float
            )
        return self._cache["cov"]

    def sample(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``draws`` joint values of the quantity at every level, shape (draws, K).

        The square root of the covariance is its symmetric eigen-decomposition with negative
        round-off eigenvalues set to 0, which a covariance of rank below K (a surface known
        without error at some levels) needs.
        """
        values, vectors = np.linalg.eigh(self.cov())
        root = vectors * np.sqrt(np.clip(values, 0.0, None))
        return self.mean + rng.standard_normal((draws, self.mean.size)) @ root.T


class Deferred(Mapping):
    """A read-only mapping computed by ``compute`` when first read, then kept.

    ``keys``, when given, are the mapping's keys: iterating over them, their number and
    :meth:`DosePosterior.nbytes` then leave the values uncomputed.
    """

    def __init__(self, compute: Callable[[], Mapping], keys: Sequence[str] | None = None) -> None:
        """Keep ``compute`` until a value is first read."""
        self._compute: Callable[[], Mapping] | None = compute
        self._values: Mapping = {}
        self._keys = None if keys is None else tuple(keys)

    @property
    def computed(self) -> bool:
        """Whether the values have been computed."""
        return self._compute is None

    @property
    def declared_keys(self) -> tuple[str, ...] | None:
        """The keys given on construction (None when they are known only once computed)."""
        return self._keys

    def _mapping(self) -> Mapping:
        if self._compute is not None:
            values = self._compute()
            if self._keys is not None and tuple(values) != self._keys:
                raise ValueError(
                    f"Deferred: computed the keys {tuple(values)}, declared {self._keys}"
                )
            self._values, self._compute = values, None
        return self._values

    def __getitem__(self, key: object) -> object:
        """Return the value of ``key``."""
        return self._mapping()[key]

    def __iter__(self) -> Iterator:
        """Iterate over the keys."""
        return iter(self._keys if self._keys is not None else self._mapping())

    def __len__(self) -> int:
        """Return the number of keys."""
        return len(self._keys if self._keys is not None else self._mapping())


def _check_threshold(method: str, threshold: float, name: str, exact_tails: bool) -> None:
    """Raise ValueError for a NaN threshold, or one outside (0, 1) of a rate with exact tails.

    Exact tails (CRM, BLRM, EWOC) integrate the rate's probability scale to a cut on the
    model's parameters, which a threshold at or beyond 0 or 1 does not have.
    """
    if threshold != threshold:
        raise ValueError(f"{method}: the threshold of {name!r} is NaN")
    if exact_tails and not 0.0 < threshold < 1.0:
        raise ValueError(
            f"{method}: the threshold of the probability {name!r} must lie in (0, 1), got "
            f"{threshold!r}"
        )


def _refuse_nan_comparison(quantities: Sequence[str], values: np.ndarray, cutoff: float) -> None:
    """Raise ValueError for a comparison of a risk with its cutoff where either is NaN.

    A NaN compares as not beyond any cutoff: the decision would take the side opposite to
    caution (escalate, not stop) on a quantity that is not a number.
    """
    raise ValueError(
        f"a risk compared with its cutoff {cutoff!r} is not a number: "
        + ", ".join(f"{name} = {value!r}" for name, value in zip(quantities, values.tolist()))
    )


@dataclass(frozen=True, eq=False)
class DosePosterior:
    r"""Posterior of per-dose rates as weighted points, with an optional MTD distribution.

    Attributes
    ----------
    dose_levels : tuple of float, or tuple of tuples of float
        The doses of the columns of every rate; for levels that are points (combinations of
        doses, with the covariates of a stratum), one tuple per level.
    rates : mapping of str to numpy.ndarray
        Each rate per point and level, shape (m, K): ``p_dlt`` for the binary-toxicity models.
    weights : numpy.ndarray or None
        Mass of each point, shape (m,), summing to 1; None for ``m`` equally weighted draws.
    chains : int
        Chains the draws come from, in chain-major order (draws only; for :meth:`mcse`).
    parameter_mean : mapping of str to float
        Posterior mean of each scalar parameter of the model.
    point_estimates : mapping of str to numpy.ndarray
        Model-defined point estimates per level, e.g. CRM's plug-in :math:`p_k(E[\beta])`.
    mtd : Distribution or None
        The posterior of the MTD, for models that define one.
    report : ConvergenceReport or None
        Convergence diagnostics of a fit (None for a posterior with no Monte Carlo error).
    ess : mapping of str to numpy.ndarray
        Effective sample size of each rate per level, when the engine computed it.
    refits : int
        How many times the fit was redone with more draws before it passed its checks.
    grid : object or None
        The grid the points are the cells of, when they are (e.g. for exact draws).
    level_columns : tuple of str
        Names of the components of levels that are points (e.g. ``("d1", "d2", "z")``);
        empty for levels that are doses.
    normal : mapping of str to NormalLevels
        Quantities per level whose posterior is exactly multivariate normal, held by their
        moments instead of points.
    tails : mapping of str to LevelTails
        Rates whose tail probabilities the engine computes exactly (by integration); the
        probabilities above, below and between thresholds read these instead of the points
        (and, for a :class:`QuantileLevelTails`, the rates' quantiles; for an
        :class:`OrderedLevelTails`, the MTD level's probabilities too).
    means : mapping of str to numpy.ndarray
        Posterior means of rates per level, shape (K,), that the engine computed with its
        weights (the CRM's kernel), each within the range of the rate's points: the weights
        sum to 1 only within rounding, so ``weights @ points`` of points all at 1 can exceed 1
        by an ulp. :meth:`mean` reads these first; read-only arrays.
    variances : mapping of str to numpy.ndarray
        Posterior variances of rates per level that the engine computed (the BLRM's and EWOC's
        quadrature, whose nodes resolve the density but not a rate's sigmoid); read first by
        :meth:`variance`.
    quadrature_points : bool
        Whether the points are a quadrature rule fitted to the density (the CRM's, BLRM's and
        EWOC's exact engines, the grid) or each level's own quantiles (BOIN), not joint draws:
        their weights integrate smooth functions, not an event's indicator (off by up to 0.08)
        nor, for BOIN, a function across levels. :meth:`probability`, :meth:`mcse` and
        :meth:`joint_draws` refuse them; the tails (:meth:`prob_above`, :meth:`prob_below`,
        :meth:`prob_between`) are exact.
    caution : float
        In :meth:`exceeds`, an estimate within ``caution`` MCSEs of its cutoff counts as
        beyond it (0: the estimate decides); set by :meth:`deciding`.
    """

    dose_levels: tuple[float, ...] | tuple[tuple[float, ...], ...]
    rates: Mapping[str, np.ndarray]
    weights: np.ndarray | None = None
    chains: int = 1
    parameter_mean: Mapping[str, float] = field(default_factory=dict)
    point_estimates: Mapping[str, np.ndarray] = field(default_factory=dict)
    mtd: Distribution | None = None
    report: ConvergenceReport | None = None
    ess: Mapping[str, np.ndarray] = field(default_factory=dict)
    refits: int = 0
    grid: object | None = None
    level_columns: tuple[str, ...] = ()
    normal: Mapping[str, NormalLevels] = field(default_factory=dict)
    tails: Mapping[str, LevelTails] = field(default_factory=dict)
    means: Mapping[str, np.ndarray] = field(default_factory=dict)
    variances: Mapping[str, np.ndarray] = field(default_factory=dict)
    quadrature_points: bool = False
    caution: float = 0.0
    #: The comparisons :meth:`exceeds` made, on a posterior read for a decision (None: not
    #: recorded).
    _comparisons: list[Comparison] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    #: ``P(rate > t)`` per (rate, t) computed so far: a decision reads some twice (a rule's
    #: interval, then the overdose limit at the same threshold), each an integration.
    _above: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check the fields, naming the one at fault (:meth:`validate`)."""
        self.validate()

    @classmethod
    def _of_engine(cls, **fields: object) -> "DosePosterior":
        """Build the posterior an exact engine made without :meth:`validate` or ``__init__``.

        For the engines whose fields are right by construction (the CRM's and the logistic
        models' quadratures, the grid) and that build one per count state of a simulation,
        where a frozen dataclass's ``__init__`` and the checks cost about 2% of a CRM
        decision; the contract tests validate every model's posterior
        (``tests/test_contract.py``). The fields not given take their defaults; a name that is
        no field (``weight=`` for ``weights=``) is a programming error, caught here rather than
        left as an attribute beside a default field.
        """
        assert fields.keys() <= _FIELD_NAMES, (
            f"not DosePosterior fields: {fields.keys() - _FIELD_NAMES}"
        )
        posterior = object.__new__(cls)
        values = posterior.__dict__
        values.update(_DEFAULTS)
        for name, factory in _DEFAULT_FACTORIES.items():
            values[name] = factory()
        values.update(fields)
        return posterior

    def validate(self) -> "DosePosterior":
        """Check the fields; return the posterior, or raise a ValueError naming the field.

        The doses a tuple; each rate computed (not :class:`Deferred`) an array of finite
        numbers of shape ``(m, K)``, one ``m`` for all, ``K`` the number of levels; the
        weights, when given, ``m`` finite numbers >= 0 summing to 1 (within 1e-6); for
        draws, ``m`` a multiple of ``chains``; each of ``means`` ``K`` finite numbers;
        ``chains >= 1``, ``refits >= 0`` and ``caution >= 0``. A posterior built by hand with
        its rates transposed, its weights unnormalised or NaN draws would have every rule read
        it silently.
        """
        owner = "DosePosterior"
        if not isinstance(self.dose_levels, tuple):
            raise ValueError(
                f"{owner}: dose_levels must be a tuple, got {type(self.dose_levels).__name__}"
            )
        chains = integer(owner, "chains", self.chains, minimum=1)
        integer(owner, "refits", self.refits, minimum=0)
        if real_number(owner, "caution", self.caution) < 0.0:
            raise ValueError(f"{owner}: caution must be >= 0, got {self.caution!r}")
        points = None
        if self.weights is not None:
            weights = self.weights
            if not (isinstance(weights, np.ndarray) and weights.ndim == 1):
                raise ValueError(f"{owner}: weights must be a 1-D array, one per point")
            index = first_true(~(np.isfinite(weights) & (weights >= 0.0)))
            if index is not None:
                raise ValueError(
                    f"{owner}: weights{index_text(index)} must be a finite number >= 0, got "
                    f"{float(weights[index])!r}"
                )
            if not abs(float(weights.sum()) - 1.0) <= 1e-6:
                raise ValueError(f"{owner}: weights must sum to 1, got {float(weights.sum())!r}")
            points = weights.size
        for field_name, moments in (("means", self.means), ("variances", self.variances)):
            for name, value in moments.items():
                shape = (len(self.dose_levels),)
                if not (isinstance(value, np.ndarray) and value.shape == shape):
                    raise ValueError(
                        f"{owner}: {field_name}[{name!r}] must be an array of shape "
                        f"({len(self.dose_levels)},), one per level"
                    )
                index = first_true(~np.isfinite(value))
                if index is not None:
                    raise ValueError(
                        f"{owner}: {field_name}[{name!r}]{index_text(index)} must be finite, "
                        f"got {float(value[index])!r}"
                    )
        rates = self.rates
        if isinstance(rates, Deferred) and not rates.computed:
            return self
        for name, value in rates.items():
            if not (isinstance(value, np.ndarray) and value.ndim == 2):
                raise ValueError(f"{owner}: rate {name!r} must be a 2-D array (points, levels)")
            if value.shape[1] != len(self.dose_levels) or (
                points is not None and value.shape[0] != points
            ):
                raise ValueError(
                    f"{owner}: rate {name!r} has shape {value.shape}, not (points, levels) = "
                    f"({points or 'm'}, {len(self.dose_levels)})"
                )
            points = value.shape[0]
            index = first_true(~np.isfinite(value))
            if index is not None:
                raise ValueError(
                    f"{owner}: rate {name!r}{index_text(index)} must be finite, got "
                    f"{float(value[index])!r}"
                )
        if self.weights is None and points is not None and points % chains:
            raise ValueError(
                f"{owner}: {points} draws do not split into {chains} chains of equal length"
            )
        return self

    @property
    def nbytes(self) -> int:
        """Bytes of the rates' draws or nodes and of the weights (what a memo of it weighs).

        Rates not computed yet (a :class:`Deferred` with its keys) are counted as the floats
        they will be, one per point and level, without computing them.
        """
        weights = 0 if self.weights is None else self.weights.nbytes
        rates = self.rates
        if (
            isinstance(rates, Deferred)
            and not rates.computed
            and rates.declared_keys is not None
            and self.weights is not None
        ):
            floats = len(rates.declared_keys) * self.weights.size * len(self.dose_levels)
            return weights + 8 * floats
        return weights + sum(np.asarray(value).nbytes for value in rates.values())

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_idata(
        cls,
        idata: "xr.DataTree",
        criteria: ConvergenceCriteria | None = None,
        *,
        checked: Sequence[str] | None = None,
        levels: int | None = None,
    ) -> "DosePosterior":
        """Read every per-dose rate, the scalar parameters and the MTD from a fit.

        Parameters
        ----------
        idata : xarray.DataTree
            A fit (any engine) whose ``posterior`` has variables with dims
            ``(chain, draw, dose)`` (the rates), or ``mtd`` (chain, draw), or both.
        criteria : ConvergenceCriteria, optional
            Checks recorded in :attr:`report` (default thresholds when None).
        checked : sequence of str, optional
            The variables judged by ``criteria``: every rate and ``mtd`` by default.
        levels : int, optional
            Judge the rates on the lowest ``levels`` dose levels only (all by default): the
            levels a decision reads.

        Returns
        -------
        DosePosterior

        Raises
        ------
        TypeError
            If ``idata`` is not a DataTree with a ``posterior`` group.
        ValueError
            If the posterior has neither a per-dose rate nor an MTD.
        """
        import xarray as xr  # loaded on use: xarray slows every start-up

        if not isinstance(idata, xr.DataTree) or "posterior" not in idata.children:
            raise TypeError(
                "expected an InferenceData (xarray.DataTree) with a posterior group, got "
                f"{type(idata).__name__}"
            )
        posterior = idata["posterior"].to_dataset()
        per_dose = [
            name
            for name, value in posterior.data_vars.items()
            if set(value.dims) == {"chain", "draw", "dose"}
        ]
        if not per_dose and "mtd" not in posterior.data_vars:
            raise ValueError(
                "the posterior has neither a per-dose rate (a variable with dims chain, draw, "
                f"dose) nor an 'mtd'; it has {sorted(map(str, posterior.data_vars))}"
            )
        chains = posterior.sizes["chain"]
        rates = {
            str(name): posterior[name]
            .transpose("chain", "draw", "dose")
            .to_numpy()
            .reshape(-1, posterior.sizes["dose"])
            for name in per_dose
        }
        dose_levels: tuple = ()
        level_columns = tuple(
            str(name)
            for name, coord in posterior.coords.items()
            if coord.dims == ("dose",) and name != "dose"
        )
        if per_dose and level_columns:
            components = [posterior[name].to_numpy().astype(float) for name in level_columns]
            dose_levels = tuple(tuple(map(float, point)) for point in zip(*components))
        elif per_dose:
            dose_levels = tuple(float(d) for d in posterior["dose"].values)
        scalars = {
            str(name): float(value.mean())
            for name, value in posterior.data_vars.items()
            if value.dims == ("chain", "draw")
        }
        mtd = None
        if "mtd" in posterior.data_vars:
            mtd = SampledDistribution(posterior["mtd"].transpose("chain", "draw").to_numpy())
        names = list(checked) if checked is not None else [*rates, *(["mtd"] if mtd else [])]
        judged = idata
        if levels is not None and per_dose:
            judged = xr.DataTree(
                children={
                    name: xr.DataTree(
                        node.to_dataset().isel(dose=slice(0, levels), missing_dims="ignore")
                    )
                    for name, node in idata.children.items()
                    if name in ("posterior", "sample_stats")
                }
            )
        return cls(
            dose_levels=dose_levels,
            rates=rates,
            chains=chains,
            level_columns=level_columns,
            parameter_mean=scalars,
            mtd=mtd,
            report=(criteria or ConvergenceCriteria()).check(judged, names),
        )

    # ------------------------------------------------------------------ quantities

    @property
    def sampled(self) -> bool:
        """Whether the points are MCMC draws (with Monte Carlo error)."""
        return self.weights is None

    def rate(self, name: str = "p_dlt") -> np.ndarray:
        """Return the points of rate ``name``, shape (m, K)."""
        try:
            return self.rates[name]
        except KeyError:
            raise KeyError(
                f"the posterior has no rate {name!r}; it has {sorted(self.rates)}"
            ) from None

    def expectation(self, values: np.ndarray) -> np.ndarray:
        """Return the posterior mean of per-point ``values`` (m, ...)."""
        if self.weights is None:
            return np.mean(values, axis=0)
        return self.weights @ values

    def mean(self, name: str = "p_dlt") -> np.ndarray:
        """Posterior mean of a rate (or of a quantity in ``normal``) per level, shape (K,).

        The engine's own (``means``) when it computed it, else the (weighted) mean of the
        points.
        """
        if name in self.normal:
            return self.normal[name].mean
        if name in self.means:
            return self.means[name]
        return self.expectation(self.rate(name))

    def variance(self, name: str) -> np.ndarray:
        """Posterior variance of a quantity per level, shape (K,).

        Exact for a quantity in ``normal``; the engine's own (``variances``) when it computed
        it; otherwise the (weighted) variance of the points.
        """
        if name in self.normal:
            return self.normal[name].variance
        if name in self.variances:
            return self.variances[name]
        points = self.rate(name)
        return self.expectation((points - self.expectation(points)) ** 2)

    def joint_draws(
        self,
        name: str,
        draws: int | None = None,
        random_seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Joint posterior draws of a quantity at every level, shape (draws, K).

        The points themselves for MCMC draws (``draws`` None: all of them); ``draws`` points
        resampled by their weights for a grid; ``draws`` draws of the normal for a quantity
        in ``normal``. Functions of the whole surface, such as the level where it is
        smallest, are read from these.

        Parameters
        ----------
        name : str
            The quantity.
        draws : int, optional
            Number of draws (required for a grid or a normal quantity).
        random_seed : int or numpy.random.Generator, optional
            Seed of the resampling or of the normal draws.
        """
        check_random_seed("joint_draws", random_seed)
        self._refuse_quadrature_points("joint_draws")
        rng = random_generator(random_seed)
        if name in self.normal:
            if draws is None:
                raise ValueError(f"joint_draws: {name!r} is exactly normal; give draws")
            return self.normal[name].sample(draws, rng)
        points = self.rate(name)
        if self.weights is None:
            return points if draws is None else points[rng.choice(points.shape[0], draws)]
        if draws is None:
            raise ValueError(f"joint_draws: {name!r} is on a grid with weights; give draws")
        return points[rng.choice(points.shape[0], draws, p=self.weights)]

    def _fraction_above(self, name: str, threshold: float) -> np.ndarray:
        return self.rate(name) > threshold

    def _fraction_below(self, name: str, threshold: float) -> np.ndarray:
        return self.rate(name) < threshold

    def prob_above(self, threshold: float, name: str = "p_dlt") -> np.ndarray:
        """Posterior probability that the rate exceeds ``threshold``, per level, shape (K,)."""
        _check_threshold("prob_above", threshold, name, name in self.tails)
        key = (name, float(threshold))
        above = self._above.get(key)
        if above is None:
            if name in self.tails:
                above = self.tails[name].prob_above(threshold)
            else:
                above = self.expectation(self._fraction_above(name, threshold))
            self._above[key] = above
        return above.copy()  # the caller's to modify, as a freshly computed one

    def prob_above_at(self, threshold: float, level: int, name: str = "p_dlt") -> float:
        """Posterior probability that the rate exceeds ``threshold`` at level ``level`` (0-based).

        :meth:`prob_above` at that level; exact tails that integrate one level alone (the
        CRM's, ``prob_above_at``) are asked for that level only, unless every level's
        probability was computed already.
        """
        _check_threshold("prob_above_at", threshold, name, name in self.tails)
        levels = len(self.dose_levels)
        if isinstance(level, bool) or not isinstance(level, int | np.integer):
            raise ValueError(f"prob_above_at: level must be an integer, got {level!r}")
        if not 0 <= level < levels:  # -1 would read the top level
            raise ValueError(f"prob_above_at: level must lie in [0, {levels}), got {level}")
        above = self._above.get((name, float(threshold)))
        if above is None:
            one_level = getattr(self.tails.get(name), "prob_above_at", None)
            if one_level is not None:
                return float(one_level(threshold, level))
            above = self.prob_above(threshold, name)
        return float(above[level])

    def prob_below(self, threshold: float, name: str = "p_dlt") -> np.ndarray:
        """Posterior probability that the rate is below ``threshold``, per level, shape (K,)."""
        _check_threshold("prob_below", threshold, name, name in self.tails)
        if name in self.tails:
            return 1.0 - self.prob_above(threshold, name)
        return self.expectation(self._fraction_below(name, threshold))

    def prob_between(self, lower: float, upper: float, name: str = "p_dlt") -> np.ndarray:
        """Posterior probability that ``lower <= rate < upper``, per level, shape (K,)."""
        if not lower <= upper:
            raise ValueError(
                f"prob_between: the interval of {name!r} must have lower <= upper, got "
                f"{lower!r} and {upper!r}"
            )
        if name in self.tails:
            return self.prob_above(lower, name) - self.prob_above(upper, name)
        above_lower = np.asarray(self._fraction_above(name, lower), dtype=float)
        return self.expectation(above_lower - self._fraction_above(name, upper))

    def probability(self, event: Callable[[Mapping[str, np.ndarray]], np.ndarray]) -> np.ndarray:
        """Posterior probability of an event of the rates, per level.

        Parameters
        ----------
        event : callable
            Maps :attr:`rates` to a boolean array (m, K), e.g.
            ``lambda r: (r["p_tox"] <= 0.33) & (r["p_response"] >= 0.2)``.

        Returns
        -------
        numpy.ndarray
            Shape (K,).
        """
        self._refuse_quadrature_points("probability")
        return self.expectation(event(self.rates))

    def _refuse_quadrature_points(self, method: str) -> None:
        """Raise ValueError when the points are a quadrature rule (``quadrature_points``)."""
        if self.quadrature_points:
            raise ValueError(
                f"{method}: this posterior's points are a quadrature rule fitted to its density "
                "(or each level's quantiles), not joint draws: they integrate smooth functions, "
                "not an event's indicator (off by up to 0.08) nor a function across levels. "
                "Read prob_above, prob_below or prob_between (exact) for an event of one level, "
                "or fit the model (engine 'grid' or 'nuts') and read DosePosterior.from_idata "
                "for events across levels"
            )

    def mcse(self, event: Callable[[Mapping[str, np.ndarray]], np.ndarray]) -> np.ndarray:
        r"""Monte Carlo standard error of :meth:`probability` of ``event``, per level.

        :math:`\sqrt{\hat p (1 - \hat p) / \mathrm{ESS}}`, with the bulk ESS of the indicator
        over the chains (:func:`indicator_mcse`); zero for points with weights (no Monte Carlo
        error). An indicator that is constant over the draws has no error either.
        """
        self._refuse_quadrature_points("mcse")
        indicator = np.asarray(event(self.rates), dtype=float)
        if self.weights is not None:
            return np.zeros(indicator.shape[1])
        return indicator_mcse(indicator, self.chains)

    def mcse_above(self, threshold: float, name: str = "p_dlt") -> np.ndarray:
        """Monte Carlo standard error of :meth:`prob_above` per level (0 when it is exact)."""
        if name in self.tails:
            return np.zeros(len(self.dose_levels))
        if not self.sampled:
            rates = self.rates
            declared = rates.declared_keys if isinstance(rates, Deferred) else None
            if name not in (declared if declared is not None else rates):
                self.rate(name)  # the error naming the rates there are
            return np.zeros(len(self.dose_levels))
        return self.mcse(lambda rates: rates[name] > threshold)

    def mcse_mtd_cdf(self, x: float) -> float:
        """Monte Carlo standard error of ``mtd.cdf(x)`` (0 unless the MTD is drawn)."""
        if not self.sampled or not isinstance(self.mtd, SampledDistribution):
            return 0.0
        return self.mtd.mcse_cdf(x)

    # ------------------------------------------------------------------ decisions

    def deciding(self, caution: float = 0.0) -> "DosePosterior":
        """Return a copy that records the comparisons :meth:`exceeds` makes, with ``caution``.

        A fresh record per decision: the posterior itself may be shared (a memo, a cache).
        ``caution`` is a number of MCSEs, finite and >= 0.
        """
        if real_number("deciding", "caution", caution) < 0.0:
            raise ValueError(f"deciding: caution must be >= 0, got {caution!r}")
        copy = replace(self, caution=float(caution))
        object.__setattr__(copy, "_comparisons", [])
        return copy

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        """The comparisons recorded since :meth:`deciding` (none otherwise)."""
        return tuple(self._comparisons or ())

    def exceeds(
        self,
        quantities: Sequence[str],
        values: Sequence[float] | np.ndarray,
        cutoff: float,
        mcse: Callable[[], Sequence[float] | np.ndarray],
        *,
        inclusive: bool = False,
    ) -> np.ndarray:
        """Whether each estimated risk is beyond its cutoff: the side of the cautious action.

        ``values > cutoff`` (``>=`` when ``inclusive``), and, on a posterior with
        :attr:`caution`, any value within ``caution`` MCSEs of the cutoff. On a posterior with
        Monte Carlo error (:attr:`sampled`) the comparisons are recorded (see
        :meth:`deciding`); on an exact one neither ``mcse`` is called nor anything recorded.

        Parameters
        ----------
        quantities : sequence of str
            The names of the values (as the decision's quantities name them).
        values : array_like
            The estimated probabilities.
        cutoff : float
            The threshold.
        mcse : callable
            Returns the values' Monte Carlo standard errors (called only when sampled).
        inclusive : bool
            Whether a value equal to the cutoff is beyond it.

        Returns
        -------
        numpy.ndarray
            Booleans, one per value.
        """
        values = np.asarray(values, dtype=float)
        if np.isnan(values).any() or cutoff != cutoff:
            _refuse_nan_comparison(quantities, values, cutoff)
        beyond = values >= cutoff if inclusive else values > cutoff
        if not self.sampled or self._comparisons is None:
            return beyond
        errors = np.asarray(mcse(), dtype=float)
        self._comparisons.extend(
            Comparison(name, float(value), float(cutoff), float(error))
            for name, value, error in zip(quantities, values, errors, strict=True)
        )
        if self.caution > 0:
            beyond |= np.abs(values - cutoff) < self.caution * errors
        return beyond

    def exceeds_value(
        self, quantity: str, value: float, cutoff: float, mcse: Callable[[], float]
    ) -> bool:
        """:meth:`exceeds` for one value: whether it is beyond ``cutoff`` (``>``).

        At a rule's scalar comparisons, every decision: the estimate decides alone, with no
        array made, unless the comparison is recorded (see :meth:`deciding`).
        """
        if value != value or cutoff != cutoff:
            _refuse_nan_comparison([quantity], np.array([value], dtype=float), cutoff)
        if not self.sampled or self._comparisons is None:
            return value > cutoff
        return bool(self.exceeds([quantity], [value], cutoff, lambda: [mcse()])[0])


#: The fields of :class:`DosePosterior`, and their defaults (values, and factories of fresh
#: ones), which :meth:`DosePosterior._of_engine` sets without its ``__init__``.
_FIELD_NAMES = frozenset(f.name for f in fields(DosePosterior))
_DEFAULTS = {f.name: f.default for f in fields(DosePosterior) if f.default is not MISSING}
_DEFAULT_FACTORIES = {
    f.name: f.default_factory for f in fields(DosePosterior) if f.default_factory is not MISSING
}
