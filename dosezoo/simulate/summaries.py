"""Operating characteristics: the per-trial metrics of a simulation, summarised.

`operating_characteristics` gives, for every metric, the median and the mean over the trials
with their Monte Carlo standard errors (a bootstrap for the median, seeded), and the fraction
of trials stopped early.
"""

import math
from typing import TYPE_CHECKING

import numpy as np

from dosezoo.checks import integer

if TYPE_CHECKING:
    import xarray as xr

_BOOTSTRAP_CELLS = 2**22


def _summary(values: np.ndarray, rng: np.random.Generator, n_bootstrap: int) -> tuple:
    """Median, mean, their Monte Carlo SEs and n of the non-NaN values."""
    x = values[~np.isnan(values)]
    n = x.size
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    if n == 1:
        return float(x[0]), float(x[0]), np.nan, np.nan, 1
    medians = np.empty(n_bootstrap)
    rows = max(1, _BOOTSTRAP_CELLS // n)
    for start in range(0, n_bootstrap, rows):
        stop = min(n_bootstrap, start + rows)
        medians[start:stop] = np.median(x[rng.integers(0, n, size=(stop - start, n))], axis=1)
    return (
        float(np.median(x)),
        float(np.mean(x)),
        _sd(medians),
        _sd(x) / math.sqrt(n),
        n,
    )


def _sd(values: np.ndarray) -> float:
    """Return the sample SD; 0 for equal values (numpy's SD of them may be 1e-17)."""
    return 0.0 if np.ptp(values) == 0 else float(np.std(values, ddof=1))


def operating_characteristics(
    results: "xr.Dataset", *, random_seed: int = 0, n_bootstrap: int = 1000
) -> "xr.Dataset":
    """Summarise the per-trial metrics of a simulation.

    Trials where a metric is NaN (undefined, e.g. no dose recommended) are left out of
    that metric's summary; ``n`` counts the trials used.

    Parameters
    ----------
    results : xarray.Dataset
        What `simulate` returned (or its netCDF file, loaded).
    random_seed : int, default 0
        Seed of the bootstrap; metric ``j`` uses child ``j`` of
        ``numpy.random.SeedSequence(random_seed).spawn(n_metrics)``.
    n_bootstrap : int, default 1000
        Bootstrap resamples for the Monte Carlo SE of the median, at least 2.

    Returns
    -------
    xarray.Dataset
        Dim ``metric`` (the names in ``results.attrs["metrics"]``), data variables
        ``median``, ``mean``, ``mcse_median`` (bootstrap SD of the median), ``mcse_mean``
        (SD / sqrt(n)), ``n``, the scalar ``p_stopped_early`` (fraction of trials with
        a non-empty ``stop_reason``) and its binomial Monte Carlo SE ``mcse_p_stopped_early``,
        sqrt(p (1 - p) / trials). The SEs are NaN when n < 2. Attributes: those of
        ``results`` plus ``bootstrap_seed`` and ``n_bootstrap``. The bootstrap SD of a
        median is poor for a metric that takes few values (a 0/1 metric's is often 0):
        read such a metric by its mean and ``mcse_mean``.

    Raises
    ------
    ValueError
        If ``results`` is not a simulation result, or an option is invalid.
    """
    import xarray as xr  # loaded on use: xarray slows every start-up

    if not (
        isinstance(results, xr.Dataset) and "metrics" in results.attrs and "stop_reason" in results
    ):
        raise ValueError(
            "results must be the Dataset returned by simulate (with attrs['metrics'] and "
            f"a stop_reason variable); got {type(results).__name__}"
        )
    owner = "operating_characteristics"
    random_seed = integer(owner, "random_seed", random_seed, minimum=0)
    n_bootstrap = integer(owner, "n_bootstrap", n_bootstrap, minimum=2)
    names = [name for name in str(results.attrs["metrics"]).split(",") if name]
    for name in names:
        if name not in results:
            raise ValueError(f"results: metric {name!r} is in attrs['metrics'] but not a variable")
    streams = np.random.SeedSequence(random_seed).spawn(len(names))
    rows = [
        _summary(
            np.asarray(results[name].values, dtype=float),
            np.random.default_rng(stream),
            n_bootstrap,
        )
        for name, stream in zip(names, streams, strict=True)
    ]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 5
    stopped = results["stop_reason"].values != ""
    p_stopped = float(np.mean(stopped))
    return xr.Dataset(
        {
            "median": ("metric", np.array(columns[0], dtype=float)),
            "mean": ("metric", np.array(columns[1], dtype=float)),
            "mcse_median": ("metric", np.array(columns[2], dtype=float)),
            "mcse_mean": ("metric", np.array(columns[3], dtype=float)),
            "n": ("metric", np.array(columns[4], dtype=np.int64)),
            "p_stopped_early": p_stopped,
            "mcse_p_stopped_early": math.sqrt(p_stopped * (1 - p_stopped) / stopped.size),
        },
        coords={"metric": np.array(names, dtype=str)},
        attrs={**results.attrs, "bootstrap_seed": random_seed, "n_bootstrap": n_bootstrap},
    )
