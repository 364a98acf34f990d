"""Convergence diagnostics per variable, and the checks a rule applies before acting on a fit.

A component-wise sampler can mix well in the quantity a rule uses (the MTD) while another
parameter barely moves, so diagnostics are always reported per variable and a rule judges
the fit on the variables its decision uses. The numbers come from ArviZ's array layer
(rank-normalised split R-hat, bulk and tail ESS; Vehtari et al. 2021).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import xarray as xr

#: Quantiles whose tail ESS is reported (ArviZ's default interval for xarray input).
TAIL_PROBS = (0.055, 0.945)


def convergence_table(idata: "xr.DataTree", var_names: Sequence[str] | None = None) -> pd.DataFrame:
    """R-hat, bulk and tail ESS and MCSE of the mean for each posterior variable.

    Vector-valued variables are reported by their worst element (largest R-hat, smallest
    ESS).

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
    import arviz as az

    posterior = idata["posterior"]
    names = list(posterior.data_vars) if var_names is None else list(var_names)
    rows = {}
    for name in names:
        if name not in posterior.data_vars:
            raise KeyError(
                f"variable {name!r} is not in the posterior; it has {list(posterior.data_vars)}"
            )
        values = posterior[name].transpose("chain", "draw", ...).to_numpy()
        columns = values.reshape(values.shape[0], values.shape[1], -1)
        per_element = [columns[:, :, k] for k in range(columns.shape[2])]
        rows[name] = {
            "r_hat": max(float(az.rhat(v)) for v in per_element),
            "ess_bulk": min(float(az.ess(v)) for v in per_element),
            "ess_tail": min(float(az.ess(v, method="tail", prob=TAIL_PROBS)) for v in per_element),
            "mcse_mean": max(float(az.mcse(v)) for v in per_element),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


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
        Largest acceptable rank-normalised split R-hat.
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
        """Validate the thresholds."""
        if not (np.isfinite(self.max_rhat) and self.max_rhat >= 1.0):
            raise ValueError(f"max_rhat must be a finite number >= 1, got {self.max_rhat!r}")
        for field in ("min_ess_bulk", "min_ess_tail"):
            value = getattr(self, field)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{field} must be a finite number >= 0, got {value!r}")
        if int(self.max_divergences) != self.max_divergences or self.max_divergences < 0:
            raise ValueError(
                f"max_divergences must be an integer >= 0, got {self.max_divergences!r}"
            )

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
        table = convergence_table(idata, var_names)
        divergences = count_divergences(idata)
        failures = []
        for name, row in table.iterrows():
            if not row["r_hat"] <= self.max_rhat:
                failures.append(f"{name}: R-hat {row['r_hat']:.4f} > {self.max_rhat}")
            if not row["ess_bulk"] >= self.min_ess_bulk:
                failures.append(f"{name}: bulk ESS {row['ess_bulk']:.0f} < {self.min_ess_bulk:g}")
            if not row["ess_tail"] >= self.min_ess_tail:
                failures.append(f"{name}: tail ESS {row['ess_tail']:.0f} < {self.min_ess_tail:g}")
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

    table: pd.DataFrame | None
    divergences: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every criterion was met."""
        return not self.failures
