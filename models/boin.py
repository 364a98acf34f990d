r"""BOIN's working model: independent beta-binomial DLT probabilities per dose level.

Liu and Yuan (2015) make their escalation decisions from the observed rate at the current dose
and their elimination and stopping rules from its posterior under independent priors
:math:`p_k \sim \mathrm{Beta}(a, b)` (the R package BOIN uses :math:`a = b = 1`). With
:math:`y_k` DLTs in :math:`n_k` patients the posterior is exact and conjugate,

.. math::

    p_k \mid \text{data} \sim \mathrm{Beta}(a + y_k,\, b + n_k - y_k),

independently across levels. ``fit(engine="grid")`` draws from it directly; ``engine="nuts"``
samples the PyMC model, the reference. :meth:`BOIN.posterior` is the exact posterior
(:class:`BetaPosterior`): its ``prob_above`` is the exact
:math:`P(p_k > \phi \mid \text{data})` that the BOIN rule's elimination uses
(:class:`~dosezoo.designs.boin.BOINRule`).
"""

from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy.special import betainc, betaincc, betaincinv

from dosezoo.checks import real_number
from dosezoo.data import TrialData
from dosezoo.levels import level_counts, level_index, validate_dose_levels
from dosezoo.models.binary import BinaryDoseModel
from dosezoo.posterior import DosePosterior, Sampling

if TYPE_CHECKING:
    import pymc as pm


__all__ = ["BOIN", "BetaPosterior", "BetaTails"]

#: Quantiles per level that represent a BetaPosterior as points (for summaries and events).
_QUANTILE_POINTS = 2000


@dataclass(frozen=True)
class BetaTails:
    """Exact tails and quantiles of independent Beta(a_k, b_k) rates (``QuantileLevelTails``)."""

    a: np.ndarray
    b: np.ndarray

    def prob_above(self, threshold: float) -> np.ndarray:
        """Return ``P(p_k > threshold)`` per level, shape (K,)."""
        return betaincc(self.a, self.b, threshold)

    def quantile(self, q: float) -> np.ndarray:
        """Return the ``q``-quantile of ``p_k`` per level, shape (K,) (``betaincinv``)."""
        return betaincinv(self.a, self.b, q)


@dataclass(frozen=True, eq=False)
class BetaPosterior(DosePosterior):
    r"""Independent Beta posteriors of the DLT probability per level, exact.

    The probabilities and quantiles are the Beta's own (:class:`BetaTails`); as points
    (``rates``, for smooth summaries of one level) each level is represented by the
    :math:`(i + 1/2) / m` quantiles of its Beta, ``m`` = 2000, equally weighted: the same
    quantile at every level in a row, so no events or joint draws are read from them
    (``quadrature_points``).

    Attributes
    ----------
    a, b : numpy.ndarray
        The shapes :math:`a + y_k` and :math:`b + n_k - y_k` per level, shape (K,).
    """

    a: np.ndarray = field(default_factory=lambda: np.empty(0))
    b: np.ndarray = field(default_factory=lambda: np.empty(0))

    def mean(self, name: str = "p_dlt") -> np.ndarray:
        """Posterior mean ``a / (a + b)`` per level."""
        self.rate(name)
        return self.a / (self.a + self.b)

    def prob_above(self, threshold: float, name: str = "p_dlt") -> np.ndarray:
        """Exact ``P(p_k > threshold)`` per level."""
        self.rate(name)
        return betaincc(self.a, self.b, threshold)

    def prob_below(self, threshold: float, name: str = "p_dlt") -> np.ndarray:
        """Exact ``P(p_k < threshold)`` per level."""
        self.rate(name)
        return betainc(self.a, self.b, threshold)

    def prob_between(self, lower: float, upper: float, name: str = "p_dlt") -> np.ndarray:
        """Exact ``P(lower <= p_k < upper)`` per level."""
        return self.prob_below(upper, name) - self.prob_below(lower, name)


@dataclass(frozen=True)
class BOIN(BinaryDoseModel):
    r"""Independent Beta(a, b) priors on the DLT probability of each dose level.

    Parameters
    ----------
    target : float
        Target DLT rate :math:`\phi` in (0, 1).
    dose_levels : tuple of float
        The dose levels, increasing; data doses must be among them. Another sequence is
        stored as a tuple.
    prior_a, prior_b : float
        The Beta prior's shapes (1, 1).
    """

    model_name: ClassVar[str] = "BOIN"

    target: float
    dose_levels: tuple[float, ...]
    _: KW_ONLY
    prior_a: float = 1.0
    prior_b: float = 1.0

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "BOIN"
        target = real_number(owner, "target", self.target)
        if not 0 < target < 1:
            raise ValueError(f"{owner}: target must lie in (0, 1), got {self.target!r}")
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "dose_levels", validate_dose_levels(owner, self.dose_levels))
        for name in ("prior_a", "prior_b"):
            value = real_number(owner, name, getattr(self, name))
            if value <= 0:
                raise ValueError(f"{owner}: {name} must be > 0, got {value!r}")
            object.__setattr__(self, name, value)

    def mtd_target(self) -> float:
        """Return the target DLT probability at the MTD (``target``)."""
        return self.target

    def parameters(self) -> dict:
        """Return the options as a plain dict (recorded in every fit's attributes)."""
        return {
            "target": self.target,
            "dose_levels": list(self.dose_levels),
            "prior_a": self.prior_a,
            "prior_b": self.prior_b,
        }

    def prior_effective_sample_size(
        self, *, draws: int = 4000, random_seed: int | np.random.Generator | None = 0
    ) -> float:
        """Return a + b, the pseudo-count of each level's conjugate Beta(a, b) prior.

        ``draws`` and ``random_seed`` are unused: the answer is exact (the variance-ratio
        definition of :class:`~dosezoo.models.base.DoseModel` gives the same number).
        """
        return self.prior_a + self.prior_b

    def check_doses(self, dose: np.ndarray) -> None:
        """Raise a DataError naming the row of a dose that is not one of the levels."""
        level_index(dose, self.dose_levels, owner=self.model_name)

    def posterior_shapes(self, data: TrialData) -> tuple[np.ndarray, np.ndarray]:
        """Return the Beta posterior's shapes ``(a + y_k, b + n_k - y_k)`` per level."""
        counts = level_counts(data, self.dose_levels, owner=self.model_name)
        return self.prior_a + counts.y, self.prior_b + counts.n - counts.y

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> BetaPosterior:
        """Return the exact conjugate posterior (``sampling`` is unused).

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` (on the levels) and ``dlt``; may be empty (the prior).
        sampling : Sampling, optional
            Unused: the posterior is exact.

        Returns
        -------
        BetaPosterior
        """
        a, b = self.posterior_shapes(data)
        quantiles = (np.arange(_QUANTILE_POINTS) + 0.5) / _QUANTILE_POINTS
        return BetaPosterior(
            dose_levels=self.dose_levels,
            rates={"p_dlt": betaincinv(a, b, quantiles[:, None])},
            weights=np.full(_QUANTILE_POINTS, 1.0 / _QUANTILE_POINTS),
            # the same quantile at every level in a row: no joint draws
            quadrature_points=True,
            tails={"p_dlt": BetaTails(a.astype(float), b.astype(float))},
            a=a.astype(float),
            b=b.astype(float),
        )

    def prob_above(self, data: TrialData, threshold: float | None = None) -> np.ndarray:
        """Return the exact ``P(p_k > threshold)`` per level (the target by default)."""
        return self.posterior(data).prob_above(self.target if threshold is None else threshold)

    def exact_draws(
        self, data: TrialData, n: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Return ``n`` independent draws of ``p_dlt`` from the conjugate posterior."""
        a, b = self.posterior_shapes(data)
        return {"p_dlt": rng.beta(a, b, size=(n, a.size))}

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model: ``p_dlt`` ~ Beta per level, Bernoulli DLTs.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` (on the levels) and ``dlt``; may be empty.

        Returns
        -------
        pymc.Model
        """
        import pymc as pm

        self.summarise(data)
        level = level_index(data.dose, self.dose_levels, owner=self.model_name)
        dlt = np.asarray(data.column("dlt"), dtype=np.int64)
        coords = {"dose": list(self.dose_levels), "patient": np.arange(level.size)}
        with pm.Model(coords=coords) as model:
            level_data = pm.Data("level", level, dims="patient")
            p_dlt = pm.Beta("p_dlt", self.prior_a, self.prior_b, dims="dose")
            pm.Bernoulli("dlt", p=p_dlt[level_data], observed=dlt, dims="patient")
        return model
