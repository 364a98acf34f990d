r"""Dose-combination surfaces of Willard et al. (2024), Table 1, and their metrics (eqs 6-7).

Willard, Golchi, Moodie, Boulanger and Carlin (2024), *Bayesian optimization for personalized
dose-finding trials with combination therapies*. The objective (to be minimised) is a sum of
scaled negative bivariate normal densities of the standardised combination
:math:`d = (d_1, d_2) \in [0, 1]^2`, one sum per stratum of the binary covariates,

.. math::

    g_1 = -N\big[(1, 1)', \operatorname{diag}(0.1, 0.1)\big], \quad
    g_2 = -N\big[(0.25, 0.75)', \Sigma\big], \quad
    g_3 = -N\big[(0.75, 0.25)', \Sigma\big], \quad
    \Sigma = \begin{pmatrix} 0.2 & 0.05 \\ 0.05 & 0.1 \end{pmatrix},

and a response is :math:`y = f(d, z) + \varepsilon`, :math:`\varepsilon \sim N(0, \sigma_y^2)`:

=========  ====================================================================  ========
scenario   :math:`f(d, z)`                                                        sigma_y
=========  ====================================================================  ========
1          :math:`g_1` in both strata of :math:`z_1`                              2.015
2          :math:`g_2` (:math:`z_1 = 0`), :math:`g_3` (:math:`z_1 = 1`)           0.319
3          0, :math:`0.831 g_2`, :math:`3.134 g_3`, :math:`0.496 g_1` in strata   1
           :math:`(z_1, z_2) = (0,0), (0,1), (1,0), (1,1)`
implant    :math:`2.49 g_2 - 2` (:math:`z_1 = 0`), :math:`6.65 g_3 - 2` (1)       5
=========  ====================================================================  ========

(:func:`willard2024_scenario`). Patients whose stratum a design does not choose (the standard
algorithm enrols whoever comes) belong to each stratum with equal probability, as the paper's
"mixture ... of the equally weighted strata" (the authors' code draws a fair coin per
patient).

Common random numbers: every patient consumes two standard normals of the trial's generator,
in enrolment order, whatever the design: the first is the noise :math:`\varepsilon /
\sigma_y`, the second draws the stratum when the design does not choose it. Trial ``i`` of
every design then shares its patients' noise.

Metrics of a recommended combination :math:`\hat d_k` in stratum :math:`k`
(:meth:`CombinationSurfaceScenario.metrics_at`; the paper averages them over replicates):

* dose units from the optimum (eq 6): :math:`\lVert \hat d_k - d_{opt,k} \rVert / 0.25`
  (NaN in a stratum with no optimum, the flat stratum (0, 0) of scenario 3);
* root posterior squared error loss (eq 7) at the recommendation (not at the optimum):
  :math:`\{E[(f - f(\hat d_k, z_k))^2 \mid \text{data}]\}^{1/2}`, exactly
  :math:`\sqrt{\sigma^2 + (\mu - f(\hat d_k, z_k))^2}` for the normal posterior
  :math:`N(\mu, \sigma^2)` of :math:`f(\hat d_k, z_k)` (the paper's 10,000 posterior draws
  estimate the same number);
* absolute deviation of the posterior mean :math:`|\mu - f(\hat d_k, z_k)|`.

:meth:`CombinationSurfaceScenario.trial_metrics` scores a finished trial by these at its
final recommendation, with the patients per stratum, the sample size and the number of unique
combinations tried (each carries an engineering cost).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from dosezoo.checks import doses_within, integer, number_array, positive_number, real_number
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.outcomes import Outcome, register_outcome
from dosezoo.protocols import Described, number_text
from dosezoo.scenarios.registry import ScenarioType, register_scenario

__all__ = [
    "WILLARD2024_BASES",
    "WILLARD2024_SCENARIOS",
    "CombinationSurfaceScenario",
    "willard2024_scenario",
]

#: The response outcome (registered identically by ``dosezoo.models.gp_surface``).
RESPONSE = "response"
register_outcome(Outcome(RESPONSE))

_SIGMA = ((0.2, 0.05), (0.05, 0.1))
#: The base surfaces g1, g2, g3: (mean, covariance) of each negative bivariate normal density.
WILLARD2024_BASES: dict[str, tuple[tuple[float, float], tuple[tuple[float, float], ...]]] = {
    "g1": ((1.0, 1.0), ((0.1, 0.0), (0.0, 0.1))),
    "g2": ((0.25, 0.75), _SIGMA),
    "g3": ((0.75, 0.25), _SIGMA),
}
#: Table 1: per scenario, the covariates, sigma_y, the offset and each stratum's terms.
WILLARD2024_SCENARIOS: dict[str, dict] = {
    "1": {
        "covariates": ("z1",),
        "sigma": 2.015,
        "offset": 0.0,
        "strata": {(0.0,): (("g1", 1.0),), (1.0,): (("g1", 1.0),)},
    },
    "2": {
        "covariates": ("z1",),
        "sigma": 0.319,
        "offset": 0.0,
        "strata": {(0.0,): (("g2", 1.0),), (1.0,): (("g3", 1.0),)},
    },
    "3": {
        "covariates": ("z1", "z2"),
        "sigma": 1.0,
        "offset": 0.0,
        "strata": {
            (0.0, 0.0): (),
            (0.0, 1.0): (("g2", 0.831),),
            (1.0, 0.0): (("g3", 3.134),),
            (1.0, 1.0): (("g1", 0.496),),
        },
    },
    "implant": {
        "covariates": ("z1",),
        "sigma": 5.0,
        "offset": -2.0,
        "strata": {(0.0,): (("g2", 2.49),), (1.0,): (("g3", 6.65),)},
    },
}
#: Dose units of eq (6): the manufacturing precision of the standardised doses.
DOSE_UNIT = 0.25


def _negative_density(doses: np.ndarray, base: str) -> np.ndarray:
    """Return ``-N[mean, cov](d)`` of base surface ``base`` at doses (n, 2)."""
    mean, cov = WILLARD2024_BASES[base]
    cov_array = np.asarray(cov)
    inverse = np.linalg.inv(cov_array)
    diff = np.asarray(doses, dtype=float) - np.asarray(mean)
    quad = np.einsum("ni,ij,nj->n", diff, inverse, diff)
    return -np.exp(-0.5 * quad) / (2.0 * math.pi * math.sqrt(np.linalg.det(cov_array)))


@dataclass(frozen=True)
class CombinationSurfaceScenario:
    r"""A true response surface per stratum over standardised two-drug combinations.

    Parameters
    ----------
    name : str
        Label of the scenario.
    covariates : tuple of str
        Names of the covariates that define the strata.
    strata : mapping of tuple to tuple of (str, float)
        Per stratum (its covariate values), the terms ``(base, scale)`` of its surface (the
        bases of :data:`WILLARD2024_BASES`); no term: a flat surface.
    sigma : float
        :math:`\sigma_y`, the standard deviation of a response around the surface.
    offset : float
        A constant added to every surface (the implant's base response -2).
    weights : tuple of float, optional
        Probability of each stratum among patients whose stratum the design does not choose;
        equal by default.
    grid_step : float
        Spacing of the grid on which the optimum is sought (0.25).
    """

    name: str
    covariates: tuple[str, ...]
    strata: Mapping[tuple[float, ...], tuple[tuple[str, float], ...]]
    sigma: float
    offset: float = 0.0
    weights: tuple[float, ...] = None  # type: ignore[assignment]  # None: equal weights
    grid_step: float = DOSE_UNIT
    dose_columns: tuple[str, ...] = field(default=("d1", "d2"), init=False)
    outcomes: tuple[str, ...] = field(default=(RESPONSE,), init=False)

    def __post_init__(self) -> None:
        """Validate the truth, naming the field at fault."""
        owner = "CombinationSurfaceScenario"
        object.__setattr__(self, "covariates", tuple(self.covariates))
        strata = {}
        for values, terms in dict(self.strata).items():
            if isinstance(values, str) or len(values) != len(self.covariates):
                raise ValueError(
                    f"{owner}: stratum {values!r} must give one value per covariate "
                    f"{self.covariates!r}"
                )
            # finite numbers: text and bools are not covariate values
            key = tuple(real_number(owner, f"stratum {values!r}", v) for v in values)
            checked = []
            for base, scale in terms:
                if base not in WILLARD2024_BASES:
                    raise ValueError(
                        f"{owner}: stratum {values!r}: unknown base surface {base!r}; known: "
                        f"{', '.join(WILLARD2024_BASES)}"
                    )
                checked.append((base, real_number(owner, f"scale of {base}", scale)))
            strata[key] = tuple(checked)
        if not strata:
            raise ValueError(f"{owner}: strata must hold at least one stratum")
        object.__setattr__(self, "strata", strata)
        object.__setattr__(self, "sigma", positive_number(owner, "sigma", self.sigma))
        object.__setattr__(self, "offset", real_number(owner, "offset", self.offset))
        weights = self.weights
        if weights is None:
            weights = tuple(1.0 / len(strata) for _ in strata)
        weights = tuple(real_number(owner, "weights", w) for w in weights)
        if len(weights) != len(strata) or min(weights) < 0 or abs(sum(weights) - 1) > 1e-9:
            raise ValueError(
                f"{owner}: weights must be {len(strata)} probabilities summing to 1, got "
                f"{self.weights!r}"
            )
        object.__setattr__(self, "weights", weights)
        step = positive_number(owner, "grid_step", self.grid_step)
        cells = 1.0 / step
        if step > 1 or abs(cells - round(cells)) > 1e-9 * cells:
            raise ValueError(
                f"{owner}: grid_step must divide [0, 1] into whole steps (1 / n), got "
                f"{self.grid_step!r}"
            )
        object.__setattr__(self, "grid_step", step)

    # ------------------------------------------------------------------ the truth

    @property
    def stratum_values(self) -> tuple[tuple[float, ...], ...]:
        """The strata (covariate values), in order."""
        return tuple(self.strata)

    def stratum_index(self, values: Sequence[float]) -> int:
        """Return the index of the stratum with covariate values ``values``."""
        key = tuple(real_number(self.name, "stratum", v) for v in values)
        try:
            return self.stratum_values.index(key)
        except ValueError:
            raise ValueError(
                f"{self.name}: no stratum {key!r}; strata: {self.stratum_values!r}"
            ) from None

    def mean_response(self, doses: np.ndarray, stratum: int) -> np.ndarray:
        """Return the true surface :math:`f(d, z_k)` at doses (n, 2) in stratum ``stratum``."""
        stratum = self._checked_stratum(stratum)
        doses = np.atleast_2d(np.asarray(doses, dtype=float))
        values = np.full(doses.shape[0], self.offset)
        for base, scale in self.strata[self.stratum_values[stratum]]:
            values += scale * _negative_density(doses, base)
        return values

    @property
    def _owner(self) -> str:
        """The scenario as its errors name it."""
        return self.name or type(self).__name__

    def _checked_stratum(self, stratum: object) -> int:
        """Return ``stratum`` as an index of the strata; a ValueError unless one (-1 is not)."""
        index = integer(self._owner, "stratum", stratum, minimum=0)
        if index >= len(self.strata):
            raise ValueError(
                f"{self._owner}: stratum must be an index below {len(self.strata)}, got {stratum!r}"
            )
        return index

    @property
    def grid(self) -> np.ndarray:
        """The candidate combinations on [0, 1]^2, (G, 2), the second dose fastest."""
        axis = np.linspace(0.0, 1.0, round(1.0 / self.grid_step) + 1)
        return np.array([(a, b) for a in axis for b in axis])

    def optimum(self, stratum: int) -> tuple[tuple[float, float] | None, float | None]:
        """Return the optimal grid combination and value of a stratum (None, None if flat).

        A stratum is flat without a term or with terms of scale 0 only: every combination is
        as good as another, and none is the optimum.
        """
        stratum = self._checked_stratum(stratum)
        if not any(scale for _, scale in self.strata[self.stratum_values[stratum]]):
            return None, None
        values = self.mean_response(self.grid, stratum)
        best = int(np.argmin(values))
        return tuple(float(v) for v in self.grid[best]), float(values[best])  # type: ignore[return-value]

    def effect_size(self, stratum: int) -> float:
        """Return the standardised effect size ``|f_opt| / sigma_y`` (0 for a flat stratum)."""
        _, value = self.optimum(stratum)
        return 0.0 if value is None else abs(value) / self.sigma

    # ------------------------------------------------------------------ metrics

    def metrics_at(
        self, doses: np.ndarray, mean: np.ndarray, sd: np.ndarray, stratum: int
    ) -> dict[str, np.ndarray]:
        r"""Eqs (6)-(7) of recommended combinations in one stratum.

        Parameters
        ----------
        doses : array_like
            Recommended combinations :math:`\hat d`, (n, 2).
        mean, sd : array_like
            Posterior mean and standard deviation of :math:`f(\hat d, z_k)`, (n,).
        stratum : int
            The stratum.

        Returns
        -------
        dict of str to numpy.ndarray
            ``expected_dose_units`` (NaN without an optimum), ``rpsel``, ``abs_deviation``.
        """
        doses = np.atleast_2d(doses_within(self._owner, doses, 0.0, 1.0))
        truth = self.mean_response(doses, stratum)
        mean = np.asarray(number_array(self._owner, "mean", mean))
        if mean.shape != truth.shape:
            raise ValueError(
                f"{self._owner}: mean must hold one value per recommended combination "
                f"({truth.size}), got shape {mean.shape}"
            )
        error = mean.astype(float) - truth
        best, _ = self.optimum(stratum)
        if best is None:
            units = np.full(doses.shape[0], np.nan)
        else:
            units = np.sqrt(np.sum((doses - np.asarray(best)) ** 2, axis=1)) / DOSE_UNIT
        return {
            "expected_dose_units": units,
            "rpsel": np.sqrt(np.asarray(sd, dtype=float) ** 2 + error**2),
            "abs_deviation": np.abs(error),
        }

    # ------------------------------------------------------------------ the engine's view

    def empty_data(self) -> TrialData:
        """Return trial data with no patients (coded doses, the covariates, ``response``)."""
        return TrialData.empty(
            outcomes=self.outcomes,
            dose_columns=self.dose_columns,
            covariates=self.covariates,
            coded_doses=True,
        )

    def respond(
        self,
        doses: np.ndarray,
        rng: np.random.Generator,
        covariates: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Draw the responses of new patients (and their strata when not given).

        Parameters
        ----------
        doses : numpy.ndarray
            Combinations, (n, 2).
        rng : numpy.random.Generator
            The trial's generator: two standard normals per patient (noise, stratum).
        covariates : mapping of str to numpy.ndarray, optional
            The patients' covariates (a design that chose their strata); drawn when None.

        Returns
        -------
        dict of str to numpy.ndarray
            ``response`` and, when drawn, the covariates, each (n,).
        """
        doses = np.atleast_2d(doses_within(type(self).__name__, doses, 0.0, 1.0))
        if doses.ndim != 2 or doses.shape[1] != 2:
            raise ValueError(
                f"{type(self).__name__}: doses must be combinations of two doses, (n, 2); got "
                f"shape {doses.shape}"
            )
        n = doses.shape[0]
        normals = rng.standard_normal((n, 2))
        drawn: dict[str, np.ndarray] = {}
        if covariates is None:
            cumulative = np.cumsum(self.weights)
            index = np.minimum(
                np.searchsorted(cumulative, ndtr(normals[:, 1]), side="right"),
                len(self.strata) - 1,
            )
            values = np.asarray(self.stratum_values)[index]
            drawn = {name: values[:, j] for j, name in enumerate(self.covariates)}
        else:
            points = np.column_stack(
                [np.asarray(covariates[name], dtype=float) for name in self.covariates]
            )
            index = np.array([self.stratum_index(point) for point in points])
        mean = np.empty(n)
        for k in np.unique(index):
            rows = index == k
            mean[rows] = self.mean_response(doses[rows], int(k))
        return {RESPONSE: mean + self.sigma * normals[:, 0], **drawn}

    def _recommendations(self, recommendation: Decision) -> list[tuple | None]:
        """Return the recommended combination and its posterior mean and sd, per stratum."""
        out: list[tuple | None] = [None] * len(self.strata)
        if recommendation.strata:
            for decision in recommendation.strata:
                if decision.next_dose is None:
                    continue
                k = self.stratum_index([decision.stratum[c] for c in self.covariates])
                out[k] = (decision.next_dose, decision.quantities.get("mu_hat", math.nan),
                          decision.quantities.get("sd_hat", math.nan))  # fmt: skip
        elif recommendation.next_dose is not None:
            q = recommendation.quantities
            entry = (recommendation.next_dose, q.get("mu_hat", math.nan), q.get("sd_hat", math.nan))
            out = [entry] * len(self.strata)
        return out

    def trial_metrics(self, data: TrialData, recommendation: Decision) -> dict[str, float]:
        """Score a finished trial: eqs (6)-(7) per stratum at the recommendation, and costs.

        Metrics (``_s<k>`` for stratum ``k``): ``expected_dose_units_s<k>``,
        ``rpsel_s<k>``, ``abs_deviation_s<k>`` (NaN without a recommendation),
        ``n_s<k>`` (patients of the stratum), ``unique_combinations`` and
        ``unique_combinations_s<k>``.
        """
        metrics: dict[str, float] = {}
        for k, entry in enumerate(self._recommendations(recommendation)):
            if entry is None:
                values = dict.fromkeys(("expected_dose_units", "rpsel", "abs_deviation"), math.nan)
            else:
                dose, mean, sd = entry
                values = {
                    key: float(value[0])
                    for key, value in self.metrics_at(
                        np.asarray([dose]), np.array([mean]), np.array([sd]), k
                    ).items()
                }
            metrics |= {f"{key}_s{k}": value for key, value in values.items()}
        doses = np.asarray(data.doses)
        if data.n_patients and self.covariates:
            points = np.column_stack(
                [np.asarray(data.column(c), dtype=float) for c in self.covariates]
            )
            strata = np.array([self.stratum_index(p) for p in points])
        else:
            strata = np.zeros(data.n_patients, dtype=int)
        for k in range(len(self.strata)):
            rows = strata == k
            metrics[f"n_s{k}"] = float(rows.sum())
            metrics[f"unique_combinations_s{k}"] = float(len({tuple(d) for d in doses[rows]}))
        metrics["unique_combinations"] = float(len({tuple(d) for d in doses}))
        return metrics

    def describe(self) -> Described:
        """Return the truth, flat."""
        record: Described = {
            "name": self.name,
            "sigma": self.sigma,
            "offset": self.offset,
            "covariates": ",".join(self.covariates),
        }
        for k, (values, terms) in enumerate(self.strata.items()):
            record[f"stratum_{k}"] = ",".join(map(number_text, values))
            record[f"surface_{k}"] = " + ".join(f"{number_text(s)}*{b}" for b, s in terms) or "0"
            record[f"weight_{k}"] = self.weights[k]
        return record


def willard2024_scenario(number: str) -> CombinationSurfaceScenario:
    """Return scenario ``"1"``, ``"2"``, ``"3"`` or ``"implant"`` of Willard et al. (2024).

    Raises
    ------
    ValueError
        For another name, listing the known ones.
    """
    key = str(number)
    if key not in WILLARD2024_SCENARIOS:
        raise ValueError(
            f"willard2024_scenario: unknown scenario number {number!r}; known: "
            f"{', '.join(WILLARD2024_SCENARIOS)}"
        )
    spec = WILLARD2024_SCENARIOS[key]
    return CombinationSurfaceScenario(
        name=f"Willard2024-{key}",
        covariates=spec["covariates"],
        strata=spec["strata"],
        sigma=spec["sigma"],
        offset=spec["offset"],
    )


register_scenario(
    ScenarioType(
        name="willard2024",
        summary=(
            'scenario "1", "2", "3" or "implant" of Table 1 of Willard et al. (2024): two-drug '
            "combination surfaces per stratum of binary covariates"
        ),
        build=willard2024_scenario,
    )
)
