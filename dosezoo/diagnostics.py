"""Convergence diagnostics per variable, and the checks a rule applies before acting on a fit.

A component-wise sampler can mix well in the quantity a rule uses (the MTD) while another
parameter barely moves, so diagnostics are always reported per variable and a rule judges
the fit on the variables its decision uses. The numbers are ArviZ's (rank-normalised split
R-hat, bulk and tail ESS, MCSE of the mean; Vehtari et al. 2021), computed for all the elements
of a variable at once by :func:`chain_diagnostics`.
"""

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dosezoo.checks import integer, real_number
from dosezoo.lazy import compiled

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

#: Quantiles whose tail ESS is reported and checked: the tails of ArviZ's default 89% interval,
#: near Vehtari et al.'s (2021) 5% and 95%. ArviZ 1.x's own ``ess(method="tail")`` without
#: ``prob`` reads its ``ci_prob`` of 0.89 as the quantiles (0.11, 0.89), less far out, so
#: ``az.summary`` reports a larger tail ESS than this (145.7 against 102.7 on one EWOC fit):
#: the decisions read tail probabilities, and are checked on the further tails.
TAIL_PROBS = (0.055, 0.945)
#: Blom's (1958) offset of the normal scores of ranks, as ArviZ's.
_BLOM = 3 / 8
#: Fewest draws per chain ArviZ diagnoses (fewer give NaN).
_MIN_DRAWS = 4
#: Most autocovariance lags summed directly for an ESS; a stack whose Geyer sequence needs
#: more gets all its lags by FFT (direct sums cost lags x draws, the FFT draws x log draws).
_DIRECT_LAGS = 48
#: The columns of :func:`convergence_table` and how a variable's worst element is picked:
#: numpy's reductions, whose result is NaN if any element's is (a NaN element is a failed
#: diagnostic, as ArviZ's NaN for that element is, wherever it sits in the variable).
_WORST: dict[str, Callable[[np.ndarray], float]] = {
    "r_hat": np.max,
    "ess_bulk": np.min,
    "ess_tail": np.min,
    "mcse_mean": np.max,
}


@dataclass(frozen=True)
class ChainDiagnostics:
    """Per-column diagnostics returned by :func:`chain_diagnostics`.

    Attributes
    ----------
    r_hat, ess_bulk, ess_tail, mcse_mean : numpy.ndarray
        One value per column, as ``az.rhat``, ``az.ess``,
        ``az.ess(method="tail", prob=TAIL_PROBS)`` and ``az.mcse`` give them.
    """

    r_hat: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray
    mcse_mean: np.ndarray


def chain_diagnostics(values: np.ndarray) -> ChainDiagnostics:
    r"""R-hat, bulk and tail ESS and MCSE of the mean of each column of MCMC draws.

    ArviZ's computation (``arviz_stats.base.diagnostics``: ``_rhat_rank``, ``_ess_bulk``,
    ``_ess_tail``, ``_mcse_mean``) operation for operation, for all columns at once: one
    ``argsort`` of every column's draws, the normal scores of the ranks looked up in a table
    of ``scipy.special.ndtri`` (``norm.ppf``), the autocovariances of the split chains, and
    ArviZ's loops (ranks, Geyer's sequences) compiled by numba. The autocovariances are summed
    lag by lag as Geyer's sequence asks for them, up to ``_DIRECT_LAGS`` lags (a chain that
    mixes well needs a few); a stack whose sequence runs longer gets all of them by ArviZ's
    ``rfft``/``irfft`` pair (both ways agree to a few units in the last place: the FFT's
    rounding against the sums' dot products). The results agree with ArviZ's to a few units in
    the last place: R-hat is ArviZ's bit for bit (the scores are, and its sums are numpy's);
    elsewhere numba's sums run in order where numpy's are pairwise.

    With :math:`M` chains of :math:`N` draws, each chain is split in halves (the middle draw
    of an odd :math:`N` is dropped), giving :math:`m = 2M` chains of :math:`n = \lfloor N/2
    \rfloor` draws :math:`\theta^{(nj)}`, :math:`S = mn` in all (Vehtari et al. 2021, sec. 3).

    *Rank normalisation.* With :math:`r^{(nj)}` the rank of a draw among the :math:`S` (ties
    given their average rank), the normal scores are
    :math:`z^{(nj)} = \Phi^{-1}\bigl((r^{(nj)} - 3/8) / (S + 1/4)\bigr)` (Blom 1958).

    *R-hat.* For draws :math:`x`, with chain means :math:`\bar x^{(\cdot j)}` and variances
    :math:`s_j^2`, :math:`B = n\,\mathrm{var}_j(\bar x^{(\cdot j)})`,
    :math:`W = \mathrm{mean}_j(s_j^2)` and
    :math:`\hat R(x) = \sqrt{(B/W + n - 1)/n}`. The reported value is
    :math:`\max(\hat R(z), \hat R(z_f))`, :math:`z_f` the normal scores of the folded draws
    :math:`|\theta - \mathrm{median}(\theta)|`.

    *ESS.* With the autocovariances :math:`\hat\gamma_{t,j} = \frac1n \sum_{i < n - t}
    \tilde\theta^{(i j)} \tilde\theta^{(i + t, j)}` of each split chain (centred draws
    :math:`\tilde\theta`; ArviZ's FFT, zero-padded to ``next_fast_len(2n)``, computes the same
    sums), :math:`\widehat{\mathrm{var}}^- =
    \frac{n}{n-1}\mathrm{mean}_j\,\hat\gamma_{0,j}`, :math:`\widehat{\mathrm{var}}^+ =
    \frac{n-1}{n}\widehat{\mathrm{var}}^- + \mathrm{var}_j(\bar x^{(\cdot j)})` and
    :math:`\hat\rho_t = 1 - (\widehat{\mathrm{var}}^- - \mathrm{mean}_j\,
    \hat\gamma_{t,j}) / \widehat{\mathrm{var}}^+` (:math:`\hat\rho_0 = 1`). Geyer's (1992)
    initial positive sequence keeps the pairs :math:`P_k = \hat\rho_{2k} + \hat\rho_{2k+1}`
    up to the first :math:`k^*` with :math:`P_{k^*} \le 0` (or :math:`2k^*+1 \ge n-3`); the
    initial monotone sequence lowers each kept pair to the smallest sum before it (each lag to
    half that sum). Then :math:`\hat\tau = -1 + 2\sum_{t<2k^*}\hat\rho_t +
    \hat\rho_{2k^*}^+` (the next even lag, if positive or its pair non-negative),
    :math:`\hat\tau \leftarrow \max(\hat\tau, 1/\log_{10} S)` and
    :math:`\mathrm{ESS} = S/\hat\tau` (:math:`S` if the draws are constant to within
    ``finfo(float).resolution``). Bulk ESS is the ESS of :math:`z`; tail ESS the smaller ESS
    of the indicators :math:`I(\theta \le q_p)` at the two ``TAIL_PROBS`` quantiles
    :math:`q_p` (numpy's ``linear`` quantiles of the unsplit draws); the MCSE of the mean is
    :math:`\mathrm{sd}(\theta) / \sqrt{\mathrm{ESS}(\theta)}`, sd over all draws with
    ``ddof=1``.

    As ArviZ: every value of a column is NaN if it holds a NaN or there are fewer than 4 draws,
    and R-hat is NaN with a single chain. Unlike ArviZ, a constant column (R-hat 0/0) gives
    NaN without a RuntimeWarning.

    Parameters
    ----------
    values : numpy.ndarray
        Draws of shape (chain, draw, column).

    Returns
    -------
    ChainDiagnostics
        One value per column of each diagnostic.

    References
    ----------
    Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
    Rank-normalization, folding, and localization: an improved R-hat for assessing convergence
    of MCMC. Bayesian Analysis 16(2), 667-718.

    Geyer, C. J. (1992). Practical Markov chain Monte Carlo. Statistical Science 7(4), 473-483.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"values must have shape (chain, draw, column), got {values.shape}")
    n_chain, n_draw, n_column = values.shape
    if n_chain < 1 or n_draw < _MIN_DRAWS or n_column == 0:
        undefined = np.full(n_column, np.nan)
        return ChainDiagnostics(undefined, undefined, undefined, undefined)

    # C order whatever the input's strides: the kernels are compiled (and cached) for it.
    by_column = np.ascontiguousarray(values.transpose(2, 0, 1))
    draws = by_column.reshape(n_column, -1)
    half = n_draw // 2
    split = np.concatenate((by_column[:, :, :half], by_column[:, :, n_draw - half :]), axis=1)
    size = split.shape[1] * half
    rows = split.reshape(n_column, size)
    order = np.argsort(rows, axis=1)
    scores = np.empty((2 * n_column, size))
    stacks = np.empty((4 * n_column, size))
    # A column's NaN or infinities stay in its rows (every step works row by row) and a NaN
    # column's values are replaced at the end: their warnings say nothing.
    with np.errstate(divide="ignore", invalid="ignore"):
        # The tail quantiles are of all the draws, the split ones for an even number of them.
        ranked, ranks = (rows, order) if n_draw % 2 == 0 else (draws, np.argsort(draws, axis=1))
        sd, invalid, var_chain_mean, spread = compiled(_prepare_chains)(
            rows, order, half, _blom_scores(size), ranked, ranks, np.array(TAIL_PROBS), draws,
            scores, stacks,
        )  # fmt: skip
        r_hats = _split_r_hat(scores.reshape(2 * n_column, -1, half)).reshape(2, n_column)
        # max(bulk, tail) as Python's: a NaN bulk R-hat stays, a NaN tail one is ignored.
        r_hat = np.where(r_hats[1] > r_hats[0], r_hats[1], r_hats[0])
        chains = stacks.reshape(4 * n_column, -1, half)
        ess = _stack_ess(chains, var_chain_mean, spread)
        ess_bulk, ess_low, ess_high, ess_mean = ess.reshape(4, n_column)
        # min(low, high) as Python's: a NaN high-quantile ESS is ignored.
        ess_tail = np.where(ess_high < ess_low, ess_high, ess_low)
        mcse_mean = sd / np.sqrt(ess_mean)

    r_hat[invalid | (n_chain < 2)] = np.nan
    for diagnostic in (ess_bulk, ess_tail, mcse_mean):
        diagnostic[invalid] = np.nan
    return ChainDiagnostics(r_hat, ess_bulk, ess_tail, mcse_mean)


def mean_ess(values: np.ndarray) -> np.ndarray:
    r"""ESS of the mean of each column of MCMC draws: ArviZ's ``ess(method="mean")``.

    The ESS of :func:`chain_diagnostics` (split chains, Geyer's sequences) of the draws
    themselves, without their rank normalisation. For an indicator (draws of two values) it is
    also the bulk ESS: the normal scores of its ranks are an affine function of it, and the
    autocorrelations, hence the ESS, do not change under one. The Monte Carlo standard errors
    of the designs' posterior probabilities read it (:func:`dosezoo.posterior.indicator_mcse`)
    at every decision on draws, where the ranks cost more than the rest.

    Parameters
    ----------
    values : numpy.ndarray
        Draws of shape (chain, draw, column), without NaN.

    Returns
    -------
    numpy.ndarray
        One ESS per column (NaN for fewer than 4 draws).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"values must have shape (chain, draw, column), got {values.shape}")
    n_chain, n_draw, n_column = values.shape
    if n_chain < 1 or n_draw < _MIN_DRAWS:
        return np.full(n_column, np.nan)
    half = n_draw // 2
    by_column = values.transpose(2, 0, 1)
    split = np.concatenate((by_column[:, :, :half], by_column[:, :, n_draw - half :]), axis=1)
    spread = split.max(axis=(1, 2)) - split.min(axis=(1, 2))
    chain_mean = split.mean(axis=2)
    chains = np.ascontiguousarray(split - chain_mean[:, :, None])
    return _stack_ess(chains, np.var(chain_mean, axis=1, ddof=1), spread)


def _stack_ess(chains: np.ndarray, var_chain_mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """ESS of each stack of centred split chains (stack, chain, draw): :func:`_geyer_ess`.

    The lags are summed directly up to ``_DIRECT_LAGS``; the stacks whose sequence runs longer
    get ArviZ's autocovariances of every lag by one ``rfft``/``irfft`` pair.
    """
    from scipy.fft import next_fast_len

    ess = compiled(_geyer_ess)(chains, np.empty((0, 0, 0)), var_chain_mean, spread, _DIRECT_LAGS)
    longer = np.flatnonzero(np.isinf(ess))
    if longer.size:
        half = chains.shape[2]
        slow = chains[longer]
        padded = next_fast_len(2 * half, real=True)
        spectrum = np.fft.rfft(slow, n=padded, axis=2)
        spectrum *= np.conjugate(spectrum)
        covariance = np.fft.irfft(spectrum, n=padded, axis=2)
        ess[longer] = compiled(_geyer_ess)(
            slow, covariance, var_chain_mean[longer], spread[longer], half
        )
    return ess


@functools.cache
def _blom_scores(size: int) -> np.ndarray:
    """Tabulate the normal scores of the ranks 1, 1.5, ..., ``size`` of ``size`` draws (Blom 1958).

    Entry ``j`` is ArviZ's ``norm.ppf((r - 3/8) / (size - 3/4 + 1))`` of rank ``r = (j + 2)/2``
    (``norm.ppf`` is ``ndtri``): every tie-averaged rank is one of them, so a look-up replaces
    an ``ndtri`` per draw.
    """
    from scipy.special import ndtri

    ranks = np.arange(2, 2 * size + 1) / 2
    scores = ndtri((ranks - _BLOM) / (size - 2 * _BLOM + 1))
    scores.flags.writeable = False
    return scores


def _prepare_chains(
    rows: np.ndarray,
    order: np.ndarray,
    n: int,
    blom: np.ndarray,
    ranked: np.ndarray,
    ranks: np.ndarray,
    probs: np.ndarray,
    draws: np.ndarray,
    scores: np.ndarray,
    stacks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Numba kernel: the rank normal scores of each column and the stacks its ESS use.

    ``rows[k]`` holds column ``k``'s split chains end to end (``m`` chains of ``n`` draws),
    ``order[k]`` its argsort; ``ranks[k]`` is the argsort of ``ranked[k]``, the draws whose
    ``probs`` quantiles the tail ESS uses (``rows`` for an even number of draws). Fills
    ``scores[k]`` and ``scores[columns + k]`` with the normal scores of the ranks of the draws
    and of the folded draws ``|x - median|``, and ``stacks`` (4 x columns rows) with: the
    scores of the draws, the indicators of the draws at or below the low and the high
    quantile, the draws; each chain centred on its mean. Returns the sd of ``draws[k]`` (all
    the draws, ``ddof=1``) and whether one is NaN, and per stack the variance of its chain
    means (``ddof=1``) and its range (before centring). Sums run in order (numpy's are
    pairwise: the last bits may differ).
    """
    n_column, size = rows.shape
    m = size // n
    n_draw = draws.shape[1]
    n_stack = stacks.shape[0]
    sd = np.empty(n_column)
    has_nan = np.zeros(n_column, dtype=np.bool_)
    var_chain_mean = np.empty(n_stack)
    spread = np.empty(n_stack)
    ordered = np.empty(size)
    folded = np.empty(size)
    folded_index = np.empty(size, dtype=np.int64)
    chain_mean = np.empty(m)
    quantile = np.empty(2)
    n_ranked = ranked.shape[1]
    lower = size // 2
    for k in range(n_column):
        row, at = rows[k], order[k]
        for t in range(size):
            ordered[t] = row[at[t]]
        # np.median of the split draws (an even number of them).
        median = (ordered[lower - 1] + ordered[lower]) / 2
        for fold in range(2):
            if fold == 0:
                sorted_values, sorted_index = ordered, at
            else:
                # |x - median| of the sorted draws: two sorted runs (the lower half read
                # backwards, median - x, and the upper half, x - median) merged.
                sorted_values, sorted_index = folded, folded_index
                left, right = lower - 1, lower
                for t in range(size):
                    if right == size or (
                        left >= 0 and median - ordered[left] <= ordered[right] - median
                    ):
                        folded_index[t] = at[left]
                        folded[t] = median - ordered[left]
                        left -= 1
                    else:
                        folded_index[t] = at[right]
                        folded[t] = ordered[right] - median
                        right += 1
            # Ties at sorted positions first..last share the rank (first + last + 2) / 2.
            target = scores[fold * n_column + k]
            first = 0
            while first < size:
                last = first
                while last + 1 < size and sorted_values[last + 1] == sorted_values[first]:
                    last += 1
                for t in range(first, last + 1):
                    target[sorted_index[t]] = blom[first + last]
                first = last + 1
        # np.quantile(method="linear"): numpy's index (n - 1) p and its two-sided _lerp.
        for i in range(2):
            virtual = (n_ranked - 1) * probs[i]
            previous = np.floor(virtual)
            gamma = virtual - previous
            below = ranked[k, ranks[k, int(previous)]]
            above = ranked[k, ranks[k, min(int(previous) + 1, n_ranked - 1)]]
            step = above - below
            quantile[i] = above - step * (1 - gamma) if gamma >= 0.5 else below + step * gamma
        for t in range(size):
            stacks[k, t] = scores[k, t]
            stacks[n_column + k, t] = 1.0 if row[t] <= quantile[0] else 0.0
            stacks[2 * n_column + k, t] = 1.0 if row[t] <= quantile[1] else 0.0
            stacks[3 * n_column + k, t] = row[t]
        # np.std(ddof=1) of all the draws, and whether one is NaN (ArviZ's not_valid).
        total = 0.0
        for value in draws[k]:
            total += value
            has_nan[k] |= np.isnan(value)
        mean = total / n_draw
        total = 0.0
        for value in draws[k]:
            total += (value - mean) * (value - mean)
        sd[k] = np.sqrt(total / (n_draw - 1))
    for b in range(n_stack):
        stack = stacks[b]
        # np.max - np.min (NaN-propagating, as numpy's), before centring.
        low, high = stack[0], stack[0]
        for value in stack:
            if np.isnan(value):
                low = high = value
                break
            low, high = min(low, value), max(high, value)
        spread[b] = high - low
        total_mean = 0.0
        for j in range(m):
            total = 0.0
            for t in range(j * n, (j + 1) * n):
                total += stack[t]
            chain_mean[j] = total / n
            total_mean += chain_mean[j]
            for t in range(j * n, (j + 1) * n):
                stack[t] -= chain_mean[j]
        total_mean /= m
        total = 0.0
        for j in range(m):
            total += (chain_mean[j] - total_mean) * (chain_mean[j] - total_mean)
        var_chain_mean[b] = total / (m - 1)
    return sd, has_nan, var_chain_mean, spread


def _split_r_hat(chains: np.ndarray) -> np.ndarray:
    """R-hat of each stack of (split) chains, shape (stack, chain, draw): ArviZ's ``_rhat``.

    numpy's reductions along the contiguous last axes are ArviZ's: the values are its own to
    the bit, which matters when the chains are (nearly) constant and R-hat is rounding noise.
    """
    n = chains.shape[2]
    between = n * np.var(np.mean(chains, axis=2), axis=1, ddof=1)
    within = np.mean(np.var(chains, axis=2, ddof=1), axis=1)
    return np.sqrt((between / within + n - 1) / n)


def _geyer_ess(
    chains: np.ndarray,
    covariance: np.ndarray,
    var_chain_mean: np.ndarray,
    spread: np.ndarray,
    max_lags: int,
) -> np.ndarray:
    """Numba kernel: ESS of each stack from its chains' autocovariances, ArviZ's ``_ess``.

    ``chains[b, j]`` is chain ``j`` of stack ``b``, centred on its mean (``n`` draws). With
    ``covariance`` (one row per stack), ``covariance[b, j, t]`` is ``n`` times the lag-``t``
    autocovariance of chain ``j`` (the ``irfft`` of the power spectrum, before ArviZ's
    division by ``n``; lags from ``n`` on are padding). Without (zero rows), the lags are
    summed from ``chains``, eight at a time, as Geyer's sequence asks for them; a stack whose
    sequence needs more than ``max_lags`` gets ``inf`` (the caller then passes its FFT's).

    The chains' average of a lag is a sum in order, which is numpy's pairwise sum below 8
    chains. Geyer's initial positive and monotone sequences are ArviZ's loops verbatim; their
    sums run in order (numpy's are pairwise).
    """
    n_stack, m, n = chains.shape
    size = m * n
    ess = np.empty(n_stack)
    acov_mean = np.empty(n)
    rho_hat_t = np.empty(n)
    for b in range(n_stack):
        # ArviZ returns the number of draws for draws constant to within the resolution.
        if spread[b] < np.finfo(np.float64).resolution:
            ess[b] = size
            continue
        available = 0
        if covariance.shape[0] > 0:
            # ArviZ's np.mean(acov[:, t]) of the autocovariances acov = covariance / n.
            acov_mean[:] = 0.0
            for j in range(m):
                for t in range(n):
                    acov_mean[t] += covariance[b, j, t] / n
            for t in range(n):
                acov_mean[t] /= m
            available = n
        ess[b] = np.inf
        while True:
            if available < n:
                if available >= max_lags:
                    break
                top = min(available + 8, n)
                for t in range(available, top):
                    total = 0.0
                    for j in range(m):
                        total += np.dot(chains[b, j, : n - t], chains[b, j, t:]) / n
                    acov_mean[t] = total / m
                available = top
            mean_var = acov_mean[0] * n / (n - 1.0)
            var_plus = mean_var * (n - 1.0) / n + var_chain_mean[b]
            rho_hat_t[:] = 0.0
            rho_hat_even = 1.0
            rho_hat_t[0] = rho_hat_even
            rho_hat_odd = 1.0 - (mean_var - acov_mean[1]) / var_plus
            rho_hat_t[1] = rho_hat_odd
            # Geyer's initial positive sequence (restarted with more lags if it needs them).
            t = 1
            short = False
            while t < (n - 3) and (rho_hat_even + rho_hat_odd) > 0.0:
                if t + 2 >= available:
                    short = True
                    break
                rho_hat_even = 1.0 - (mean_var - acov_mean[t + 1]) / var_plus
                rho_hat_odd = 1.0 - (mean_var - acov_mean[t + 2]) / var_plus
                if (rho_hat_even + rho_hat_odd) >= 0:
                    rho_hat_t[t + 1] = rho_hat_even
                    rho_hat_t[t + 2] = rho_hat_odd
                t += 2
            if short:
                continue
            max_t = t - 2
            if rho_hat_even > 0:
                rho_hat_t[max_t + 1] = rho_hat_even
            # Geyer's initial monotone sequence.
            t = 1
            while t <= max_t - 2:
                if (rho_hat_t[t + 1] + rho_hat_t[t + 2]) > (rho_hat_t[t - 1] + rho_hat_t[t]):
                    rho_hat_t[t + 1] = (rho_hat_t[t - 1] + rho_hat_t[t]) / 2.0
                    rho_hat_t[t + 2] = rho_hat_t[t + 1]
                t += 2
            tau_hat = (
                -1.0 + 2.0 * rho_hat_t[: max_t + 1].sum() + rho_hat_t[max_t + 1 : max_t + 2].sum()
            )
            # max(tau_hat, 1 / log10(size)) as Python's: a NaN tau_hat stays.
            smallest = 1 / np.log10(size)
            if smallest > tau_hat:
                tau_hat = smallest
            ess[b] = np.nan if np.isnan(rho_hat_t).any() else size / tau_hat
            break
    return ess


def convergence_table(
    idata: "xr.DataTree", var_names: Sequence[str] | None = None
) -> "pd.DataFrame":
    """R-hat, bulk and tail ESS and MCSE of the mean for each posterior variable.

    Vector-valued variables are reported by their worst element (largest R-hat and MCSE,
    smallest ESS; NaN when any element's value is NaN, so that a NaN draw in any element
    fails the checks). The elements' values are :func:`chain_diagnostics`, for all the
    variables' elements at once.

    Parameters
    ----------
    idata : xarray.DataTree
        A fit with a ``posterior`` group (any engine).
    var_names : sequence of str, optional
        Variables to report; all posterior variables by default.

    Returns
    -------
    pandas.DataFrame
        Indexed by variable, columns ``r_hat``, ``ess_bulk``, ``ess_tail``, ``mcse_mean``.
    """
    posterior = idata["posterior"]
    data_vars, variables = posterior.data_vars, posterior.variables
    names = list(data_vars) if var_names is None else list(var_names)
    draws = {}
    for name in names:
        if name not in data_vars:
            raise KeyError(f"variable {name!r} is not in the posterior; it has {list(data_vars)}")
        variable = variables[name]
        if variable.dims[:2] != ("chain", "draw"):
            variable = variable.transpose("chain", "draw", ...)
        draws[name] = variable.values
    return draws_table(draws)


def draws_table(draws: Mapping[str, np.ndarray]) -> "pd.DataFrame":
    """Return the table of :func:`convergence_table` from arrays ``(chain, draw, ...)`` by name.

    The path of samplers that return arrays (no DataTree).
    """
    names = list(draws)
    columns = [values.reshape(values.shape[0], values.shape[1], -1) for values in draws.values()]
    worst = np.empty((len(columns), len(_WORST)))
    if columns:
        # One call for the elements of every variable (they share the chains and draws).
        per_element = chain_diagnostics(np.concatenate(columns, axis=2))
        elements = {diagnostic: getattr(per_element, diagnostic) for diagnostic in _WORST}
        sizes = (column.shape[2] for column in columns)
        bounds = itertools.pairwise(itertools.accumulate(sizes, initial=0))
        for i, (start, stop) in enumerate(bounds):
            for j, (diagnostic, pick) in enumerate(_WORST.items()):
                worst[i, j] = pick(elements[diagnostic][start:stop])
    import pandas as pd  # loaded on use: pandas costs a fifth of a second of every start

    # ``worst`` is this table's own: no copy (a simulation judges a fit per decision).
    return pd.DataFrame(
        worst, index=_labels(tuple(names)), columns=_labels(tuple(_WORST)), copy=False
    )


@functools.lru_cache(maxsize=256)
def _labels(names: tuple[str, ...]) -> "pd.Index":
    """Return the index of these row or column labels, made once (pandas builds one slowly)."""
    import pandas as pd

    return pd.Index(names)


def count_divergences(idata: "xr.DataTree") -> int:
    """Count divergent transitions (0 for samplers that have none)."""
    stats = idata.get("sample_stats")
    if stats is None or "diverging" not in stats.data_vars:
        return 0
    return int(stats["diverging"].sum())


@dataclass(frozen=True)
class ConvergenceCriteria:
    """Thresholds a fit must meet before a rule acts on it.

    Parameters
    ----------
    max_rhat : float
        Largest acceptable rank-normalised split R-hat. A fit of one chain has no R-hat (it
        compares chains) and is judged by its effective sample sizes alone, as the kernels'
        single-chain fits are.
    min_ess_bulk, min_ess_tail : float
        Smallest acceptable bulk and tail effective sample sizes.
    max_divergences : int
        Largest acceptable number of divergent transitions.
    """

    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    min_ess_tail: float = 200.0
    max_divergences: int = 0

    def __post_init__(self) -> None:
        """Validate the thresholds (numbers, not True or text), naming the field at fault."""
        owner = "ConvergenceCriteria"
        max_rhat = real_number(owner, "max_rhat", self.max_rhat)
        if max_rhat < 1.0:
            raise ValueError(f"{owner}: max_rhat must be a finite number >= 1, got {max_rhat!r}")
        object.__setattr__(self, "max_rhat", max_rhat)
        for field in ("min_ess_bulk", "min_ess_tail"):
            value = real_number(owner, field, getattr(self, field))
            if value < 0:
                raise ValueError(f"{owner}: {field} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, field, value)
        divergences = integer(owner, "max_divergences", self.max_divergences, minimum=0)
        object.__setattr__(self, "max_divergences", divergences)

    def check_draws(self, draws: Mapping[str, np.ndarray]) -> "ConvergenceReport":
        """Judge draws given as arrays ``(chain, draw, ...)`` by name, as :meth:`check` does.

        For samplers that return arrays (no DataTree) and have no divergences.

        Raises
        ------
        ValueError
            If an array has fewer than two dimensions (no chain and draw axes).
        """
        for name, values in draws.items():
            if np.ndim(values) < 2:
                raise ValueError(
                    f"check_draws: the draws of {name!r} have shape {np.shape(values)}; "
                    "expected (chain, draw, ...)"
                )
        chains = min((np.shape(values)[0] for values in draws.values()), default=0)
        return self._judge(draws_table(draws), 0, chains)

    def check(self, idata: "xr.DataTree", var_names: Sequence[str]) -> "ConvergenceReport":
        """Judge a fit on the variables ``var_names``.

        Parameters
        ----------
        idata : xarray.DataTree
            The fit.
        var_names : sequence of str
            The variables the decision uses.

        Returns
        -------
        ConvergenceReport
        """
        chains = idata["posterior"].sizes.get("chain", 0) if "posterior" in idata else 0
        return self._judge(
            convergence_table(idata, var_names), count_divergences(idata), int(chains)
        )

    def _judge(self, table: "pd.DataFrame", divergences: int, chains: int) -> "ConvergenceReport":
        failures = []
        # Plain floats, row by row: pandas' iterrows costs more than the diagnostics.
        values = table.to_numpy().T.tolist()
        judged = (values[table.columns.get_loc(name)] for name in ("r_hat", "ess_bulk", "ess_tail"))
        for name, r_hat, ess_bulk, ess_tail in zip(table.index, *judged, strict=True):
            if chains != 1 and not r_hat <= self.max_rhat:
                failures.append(f"{name}: R-hat {r_hat:.4f} > {self.max_rhat}")
            if not ess_bulk >= self.min_ess_bulk:
                failures.append(f"{name}: bulk ESS {ess_bulk:.0f} < {self.min_ess_bulk:g}")
            if not ess_tail >= self.min_ess_tail:
                failures.append(f"{name}: tail ESS {ess_tail:.0f} < {self.min_ess_tail:g}")
        if divergences > self.max_divergences:
            failures.append(f"{divergences} divergent transitions > {self.max_divergences}")
        return ConvergenceReport(table=table, divergences=divergences, failures=tuple(failures))


@dataclass(frozen=True)
class ConvergenceReport:
    """Outcome of :meth:`ConvergenceCriteria.check`.

    Attributes
    ----------
    table : pandas.DataFrame or None
        Per-variable diagnostics (see :func:`convergence_table`); None for a check that
        computed one number (e.g. a sampler's single-chain effective sample size).
    divergences : int
        Divergent transitions in the fit.
    failures : tuple of str
        One line per failed criterion; empty when the fit passes.
    """

    table: "pd.DataFrame | None"
    divergences: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every criterion was met."""
        return not self.failures


def pareto_khat(log_ratios: np.ndarray) -> float:
    r"""Pareto :math:`\hat k` of importance ratios from independent proposals.

    Vehtari et al. (2024), "Pareto smoothed importance sampling": a generalized Pareto
    distribution is fitted to the largest :math:`M = \lfloor 3\sqrt{S} \rfloor` ratios
    (:math:`\lfloor S / 5 \rfloor` when :math:`S \le 225`) above the next one, by Zhang &
    Stephens' (2009) empirical Bayes estimate with the weakly informative prior of the paper
    (10 pseudo-observations at :math:`k = 1/2`). Below 0.7 the importance ratios have a finite
    variance in practice and the proposal covers the target's tails; above it the estimates
    are unreliable. ArviZ's PSIS (``arviz_stats.base.array_stats.psislw(-log_ratios,
    r_eff=1)``) computes the same number (checked in the tests).

    Parameters
    ----------
    log_ratios : numpy.ndarray
        :math:`\log p(\theta_s) - \log q(\theta_s)` of ``S`` independent draws from ``q``
        (up to a common constant; -inf outside the support of ``p``), S >= 25.

    Returns
    -------
    float
        :math:`\hat k`; infinite if a ratio is NaN or +inf, or the fit fails.
    """
    ratios = np.sort(np.asarray(log_ratios, dtype=float).ravel())
    size = ratios.size
    # A ratio of -inf is a proposal outside the target's support: a weight of 0.
    if size < 25 or np.isnan(ratios).any() or not np.isfinite(ratios[-1]):
        return math.inf
    tail = int(3 * size**0.5) if size > 225 else size // 5
    scale = ratios[-1]
    cutoff = math.exp(ratios[size - tail - 1] - scale)
    excess = np.exp(ratios[size - tail :] - scale) - cutoff
    # Zhang & Stephens (2009): a posterior mean of b = -k / sigma over a grid of m values.
    m = 30 + int(tail**0.5)
    first_quartile = excess[int(tail / 4 + 0.5) - 1]
    if not first_quartile > excess[0]:
        return math.inf
    grid = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    grid = grid / (3.0 * first_quartile) + 1.0 / excess[-1]
    k_grid = np.mean(np.log1p(-grid[:, None] * excess), axis=1)
    log_likelihood = tail * (np.log(-grid / k_grid) - k_grid - 1.0)
    weights = np.exp(log_likelihood - log_likelihood.max())
    weights[weights < 10 * np.finfo(float).eps * weights.sum()] = 0.0
    b = np.sum(grid * weights) / np.sum(weights)
    kappa = float(np.mean(np.log1p(-b * excess)))
    # The prior's 10 pseudo-observations at 1/2.
    kappa = (tail * kappa + 10 * 0.5) / (tail + 10)
    return kappa if math.isfinite(kappa) else math.inf
