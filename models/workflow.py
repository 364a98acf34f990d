r"""The statistician's checks every model shares: prior summaries, prior ESS, predictive checks.

Three pieces of the model contract (:class:`~dosezoo.models.base.DoseModel`) are written here
once:

**Prior effective sample size by variance ratio.** For an observation whose mean given the
parameters is :math:`\mu(\theta)` and whose variance is :math:`\sigma^2(\theta)`, the prior is
worth as many observations as make the variance of their mean equal the prior's variance of
:math:`\mu`,

.. math::

    \mathrm{ESS} = \frac{E[\sigma^2(\theta)]}{\operatorname{Var}[\mu(\theta)]}.

For a binary outcome :math:`\mu = p`, :math:`\sigma^2 = p(1 - p)`, and
:math:`E[p(1-p)] = m(1-m) - v` with prior mean :math:`m` and variance :math:`v` of :math:`p`,
so the ESS is :math:`m(1-m)/v - 1`: the :math:`a + b` of the Beta with that mean and variance,
exactly :math:`a + b` for a Beta(a, b) prior (the pseudo-count of the conjugate model). This is
the "moment" ESS of Morita, Thall and Mueller (2008, Section 2) extended by Neuenschwander,
Weber, Schmidli and O'Hagan (2020) to any mean-variance pair; models whose parameters are not
conjugate report it per dose of the quantity their rules read.

**Posterior predictive p-values.** For a statistic :math:`T` of the data per dose (the number of
DLTs; the number of patients in each category of an ordinal outcome; the mean and standard
deviation of a continuous response), with replicates :math:`T^{rep}_s` drawn from the posterior
predictive distribution, the mid-p posterior predictive p-value (Gelman, Meng and Stern 1996)
is

.. math::

    \mathrm{ppp} = \Pr(T^{rep} > T^{obs}) + \tfrac12 \Pr(T^{rep} = T^{obs}),

near 0.5 when the model reproduces the statistic and near 0 or 1 when it does not (the half
weight on ties keeps counts, whose replicates often equal the observation, from reading as
extreme).

**Fitting prior statements.** Elicitation helpers turn quantiles of the DLT probability at
given doses into hyper-parameters by least squares between the stated and the implied
quantiles (:func:`fit_statements`), and print the fitted statements back
(:class:`StatementFit`).
"""

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dosezoo.checks import real_number
from dosezoo.data import TrialData
from dosezoo.outcomes import registered_outcomes

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "PPP_EXTREME",
    "StatementFit",
    "dose_groups",
    "fit_statements",
    "outcome_statistics",
    "ppp_dataset",
    "variance_ratio_ess",
]

#: A ppp-value below this or above one minus this is flagged as extreme by the plot helper.
PPP_EXTREME = 0.025
#: A bounded entry of a statement fit this close to its bound is at the edge of its range.
_EDGE = 0.01


def variance_ratio_ess(mean: np.ndarray, noise_variance: np.ndarray) -> np.ndarray:
    r"""Return :math:`E[\sigma^2] / \operatorname{Var}[\mu]` per column of prior draws.

    Parameters
    ----------
    mean : numpy.ndarray
        Prior draws of the mean of one observation, shape (draws, K).
    noise_variance : numpy.ndarray
        Prior draws of its variance given the parameters, shape (draws, K).

    Returns
    -------
    numpy.ndarray
        The ESS per column, shape (K,) (``inf`` where the prior fixes the mean).
    """
    mean = np.asarray(mean, dtype=float)
    if mean.ndim != 2 or mean.shape[0] < 2:
        raise ValueError(
            f"variance_ratio_ess: mean must hold at least two draws, shape (draws, K), got "
            f"shape {mean.shape}"
        )
    # A column of one value has no spread, though its variance may round to ~1e-33.
    varies = np.ptp(mean, axis=0) > 0
    spread = np.var(mean, axis=0, ddof=1)
    expected = np.mean(np.asarray(noise_variance, dtype=float), axis=0)
    return np.where(varies, expected / np.where(varies, spread, 1.0), np.inf)


# ------------------------------------------------------------------ posterior predictive


def dose_groups(data: TrialData) -> tuple[np.ndarray, list[Any]]:
    """Return each patient's group index and the group labels: its dose (or dose tuple).

    Labels are floats for a single drug and strings ``"d1, d2"`` for a combination.
    """
    doses = np.asarray(data.doses, dtype=float)
    if doses.shape[0] == 0:
        return np.zeros(0, dtype=int), []
    distinct, index = np.unique(doses, axis=0, return_inverse=True)
    if doses.shape[1] == 1:
        labels: list[Any] = [float(row[0]) for row in distinct]
    else:
        labels = [", ".join(f"{value:g}" for value in row) for row in distinct]
    return index.reshape(-1), labels


def outcome_statistics(name: str, values: np.ndarray, group: np.ndarray, n_groups: int) -> dict:
    """Statistics per dose group of one outcome, for observed (n,) or replicated (S, n) values.

    Binary outcomes give the count of ones (``"<name> count"``); ordinal outcomes the count of
    each category (``"<name>=c count"``); continuous outcomes the mean and the standard
    deviation (``"<name> mean"``, ``"<name> sd"``; the sd is 0 for a single patient).

    Returns
    -------
    dict of str to numpy.ndarray
        Shape ``values.shape[:-1] + (n_groups,)`` each.
    """
    values = np.asarray(values, dtype=float)
    one_hot = np.zeros((group.size, n_groups))
    one_hot[np.arange(group.size), group] = 1.0
    size = one_hot.sum(axis=0)
    outcome = registered_outcomes().get(name)
    allowed = None if outcome is None else outcome.allowed
    if allowed is not None and tuple(allowed) == (0, 1):
        return {f"{name} count": values @ one_hot}
    if allowed is not None:
        return {f"{name}={c} count": (values == c).astype(float) @ one_hot for c in allowed}
    mean = (values @ one_hot) / size
    centred = values - mean[..., group]
    sd = np.sqrt(((centred**2) @ one_hot) / np.maximum(size - 1, 1))
    return {f"{name} mean": mean, f"{name} sd": sd}


def ppp_dataset(
    observed: Mapping[str, np.ndarray], replicated: Mapping[str, np.ndarray], labels: Sequence
) -> "xr.Dataset":
    """Assemble the mid-p posterior predictive p-values per statistic and dose group.

    Parameters
    ----------
    observed : mapping of str to numpy.ndarray
        Each statistic per group, shape (G,).
    replicated : mapping of str to numpy.ndarray
        The same statistics per replicate, shape (S, G).
    labels : sequence
        The G group labels (doses).

    Returns
    -------
    xarray.Dataset
        ``ppp``, ``observed``, ``replicated_mean``, ``replicated_low`` and
        ``replicated_high`` (5 % and 95 % quantiles), dims ``(statistic, dose)``.
    """
    import xarray as xr  # loaded on use: xarray slows every start-up

    names = list(observed)
    obs = np.stack([np.asarray(observed[name], dtype=float) for name in names])
    rep = np.stack([np.asarray(replicated[name], dtype=float) for name in names], axis=1)
    above = (rep > obs[None]).mean(axis=0)
    tied = np.isclose(rep, obs[None], rtol=1e-12, atol=1e-12).mean(axis=0)
    dims = ("statistic", "dose")
    coords = {"statistic": names, "dose": list(labels)}
    low, high = np.quantile(rep, [0.05, 0.95], axis=0)
    dataset = xr.Dataset(
        {
            "ppp": (dims, above + 0.5 * tied),
            "observed": (dims, obs),
            "replicated_mean": (dims, rep.mean(axis=0)),
            "replicated_low": (dims, low),
            "replicated_high": (dims, high),
        },
        coords=coords,
    )
    dataset.attrs["replicates"] = int(rep.shape[0])
    dataset.attrs["definition"] = "P(T_rep > T_obs) + P(T_rep = T_obs) / 2"
    return dataset


def plot_ppc(check: "xr.Dataset", *, ax: Any = None) -> Any:
    """Plot observed statistics against their 90 % replicate intervals, one panel per statistic.

    Points whose ppp-value is below ``PPP_EXTREME`` or above ``1 - PPP_EXTREME`` are red.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    statistics = list(check["statistic"].values)
    if ax is None:
        _, ax = plt.subplots(
            1, len(statistics), figsize=(3.2 * len(statistics), 3.0), squeeze=False
        )
        axes = ax[0]
    else:
        axes = np.atleast_1d(ax)
    positions = np.arange(check.sizes["dose"])
    labels = [f"{d:g}" if isinstance(d, float) else str(d) for d in check["dose"].values]
    for axis, statistic in zip(axes, statistics, strict=True):
        row = check.sel(statistic=statistic)
        axis.vlines(positions, row["replicated_low"], row["replicated_high"], color="0.6", lw=4)
        axis.plot(positions, row["replicated_mean"], "_", color="0.3", ms=14)
        ppp = row["ppp"].to_numpy()
        extreme = (ppp < PPP_EXTREME) | (ppp > 1 - PPP_EXTREME)
        axis.scatter(positions, row["observed"], c=np.where(extreme, "tab:red", "k"), zorder=3)
        for x, y, value in zip(positions, row["observed"].to_numpy(), ppp, strict=True):
            axis.annotate(f"{value:.2f}", (x, y), textcoords="offset points", xytext=(4, 4))
        axis.set_xticks(positions, labels)
        axis.set_xlabel("dose")
        axis.set_title(statistic)
    return axes


# ------------------------------------------------------------------ elicitation


@dataclass(frozen=True)
class StatementFit:
    """Hyper-parameters fitted to prior statements, with the statements printed back.

    Attributes
    ----------
    options : dict
        The model's keyword arguments that the fit sets (e.g. ``prior_mean``, ``prior_sd``).
    table : pandas.DataFrame
        One row per statement: ``statement`` (e.g. ``"p_dlt at 40"`` or ``"MTD"``),
        ``probability`` (the quantile level), ``stated`` and ``fitted`` (the quantile the
        fitted prior implies).
    """

    options: dict[str, Any]
    table: "pd.DataFrame"

    @property
    def max_error(self) -> float:
        """Largest absolute difference between a stated and a fitted quantile."""
        return float(np.max(np.abs(self.table["fitted"] - self.table["stated"])))

    def __str__(self) -> str:
        """Show the options, then the stated and fitted quantiles side by side."""
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return f"{options}\n{self.table.to_string(index=False, float_format='{:.4f}'.format)}"


def statement_table(
    statements: Sequence[str],
    probabilities: Sequence[float] | np.ndarray,
    stated: np.ndarray,
    fitted: np.ndarray,
) -> "pd.DataFrame":
    """Tabulate stated against fitted quantiles, one row per (statement, quantile level)."""
    rows = [
        {
            "statement": statement,
            "probability": float(q),
            "stated": float(stated[i, j]),
            "fitted": float(fitted[i, j]),
        }
        for i, statement in enumerate(statements)
        for j, q in enumerate(probabilities)
    ]
    import pandas as pd  # loaded on use: pandas costs a fifth of a second of every start

    return pd.DataFrame(rows)


def check_statements(
    owner: str,
    n_doses: int,
    quantiles: object,
    probabilities: Sequence[float] | np.ndarray,
    bounds: tuple[float, float] = (0.0, 1.0),
    *,
    field: str = "quantiles",
    dose_order: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Validate stated quantiles: shape (doses, levels), inside ``bounds``, increasing.

    Parameters
    ----------
    owner : str
        The function named in error messages.
    n_doses : int
        Rows expected (one per dose stated at).
    quantiles : array_like
        The stated quantiles, argument ``field`` of the owner.
    probabilities : sequence of float
        The quantile levels, increasing within (0, 1).
    bounds : (float, float)
        The open interval every quantile must lie in.
    field : str
        The argument's name, for the messages.
    dose_order : sequence of float, optional
        The position of each row's dose (e.g. its level) when the model's rate increases with
        the dose at every parameter value: then every quantile must not decrease with the
        dose, since the quantiles of an increasing function of one variable are ordered as it.

    Raises
    ------
    ValueError
        Naming the owner, the argument, and the row and value at fault.
    """
    levels = np.asarray(probabilities, dtype=float)
    if levels.ndim != 1 or not np.all((levels > 0) & (levels < 1)) or np.any(np.diff(levels) <= 0):
        raise ValueError(f"{owner}: probabilities must increase within (0, 1), got {probabilities}")
    rows = np.asarray(quantiles, dtype=object)
    if rows.shape != (n_doses, levels.size):
        raise ValueError(
            f"{owner}: {field} must have shape ({n_doses}, {levels.size}), got {rows.shape}"
        )
    low, high = bounds
    for row, values in enumerate(rows.tolist()):
        for value in values:
            number = real_number(owner, f"{field}[{row}]", value)
            if not low < number < high:
                raise ValueError(
                    f"{owner}: {field}[{row}] = {values}: quantiles must lie in "
                    f"({low:g}, {high:g}), got {value!r}"
                )
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ValueError(
                f"{owner}: {field}[{row}] = {values}: quantiles must increase along each row "
                f"(with the probabilities {tuple(levels.tolist())})"
            )
    stated = rows.astype(float)
    if dose_order is not None:
        order = np.argsort(np.asarray(dose_order, dtype=float), kind="stable")
        for lower, upper in itertools.pairwise(order.tolist()):
            if np.any(stated[upper] < stated[lower]):
                raise ValueError(
                    f"{owner}: {field}[{upper}] = {stated[upper].tolist()} lies below "
                    f"{field}[{lower}] = {stated[lower].tolist()} at a lower dose: the model's "
                    "DLT probability increases with the dose, so no prior gives these quantiles"
                )
    return stated


def fit_statements(
    implied: Callable[[np.ndarray], np.ndarray],
    stated: np.ndarray,
    starts: Sequence[Sequence[float]],
    *,
    owner: str,
    names: Sequence[str],
    bound: float = 5.0,
    bounded: slice = slice(None),
    refuse_edge: bool = True,
) -> np.ndarray:
    """Minimise the squared distance between implied and stated quantiles (Nelder-Mead).

    Parameters
    ----------
    implied : callable
        Maps a parameter vector to the implied quantiles, the shape of ``stated``.
    stated : numpy.ndarray
        The stated quantiles.
    starts : sequence of sequences
        Starting vectors (the loss may have flat ridges: the best of the runs is kept).
    owner : str
        The function named in error messages.
    names : sequence of str
        What each bounded entry is (e.g. ``"log prior_sd"``), for the messages.
    bound : float
        The entries ``bounded`` of the vector (log scales, transformed correlations) must stay
        within ``(-bound, bound)``.
    bounded : slice
        Which entries are bounded.
    refuse_edge : bool
        Whether a best vector at the edge of the bounds is refused (below); False for a
        construction whose closest prior may lie there by design (then the vector at the edge
        is returned, after the restart from it).

    Returns
    -------
    numpy.ndarray
        The best parameter vector.

    Raises
    ------
    ValueError
        If the best vector has a bounded entry at the edge of its range (within
        :data:`_EDGE`), even after a search restarted from it with that entry in the middle
        of its range: the loss falls on towards a prior the bounds exclude (statements that
        contradict one another, or ask for a prior sharper or wider than any), so the fit
        says what the bounds say, not what the statements say.
    """
    from scipy import optimize  # loaded on use: scipy.optimize slows every start-up

    def loss(v: np.ndarray) -> float:
        if not np.all(np.abs(v[bounded]) < bound):
            return np.inf
        value = float(np.sum((implied(v) - stated) ** 2))
        return value if np.isfinite(value) else np.inf

    def search(start: Sequence[float] | np.ndarray) -> Any:
        return optimize.minimize(
            loss,
            np.asarray(start, dtype=float),
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 6000},
        )

    best = min((search(start) for start in starts), key=lambda result: result.fun)
    at_edge = np.abs(best.x[bounded]) > bound - _EDGE
    if at_edge.any():
        # A search can stall against the edge, where the loss is infinite: once more from
        # there with those entries back in the middle of their range.
        start = best.x.copy()
        start[bounded] = np.where(at_edge, 0.0, start[bounded])
        best = min((best, search(start)), key=lambda result: result.fun)
    for name, value in zip(names, best.x[bounded].tolist(), strict=True):
        if refuse_edge and abs(value) > bound - _EDGE:
            error = float(np.max(np.abs(implied(best.x) - stated)))
            raise ValueError(
                f"{owner}: the closest fit to the statements puts {name} at the edge of its "
                f"range ({value:.4g}, within (-{bound:g}, {bound:g})), where its quantiles are "
                f"still off by {error:.3g}: the statements may contradict one another, or ask "
                "for a prior sharper or wider than this family's; check them"
            )
    return best.x
