r"""Efficacy-toxicity scenarios: per-dose toxicity and response rates, correlated, with CRN.

:class:`EffToxScenario` is the truth for simulating designs that use binary toxicity and
ordinal efficacy :math:`E \in \{0, 1, 2\}` (Lin 2023, slides on Project Optimus). Dose level
:math:`k` has true toxicity probability :math:`p_{T,k}`, response probability
:math:`p_{R,k} = P(E \ge 1)` and high-response probability
:math:`p_{H,k} = P(E = 2) \le p_{R,k}`; toxicity and efficacy of a patient are correlated
through a latent bivariate normal with correlation :math:`\rho` (the data-generating process
of the joint probit model, with free per-dose rates).

Common random numbers. Patient :math:`i` of a trial (in enrolment order) carries a latent pair
:math:`(\epsilon_{T,i}, \epsilon_{E,i})`, standard bivariate normal with correlation
:math:`\rho`, built from the :math:`i`-th pair of ``rng.standard_normal`` draws of the trial's
generator; at dose :math:`d` the patient has a DLT iff
:math:`\epsilon_{T,i} > -\Phi^{-1}(p_T(d))`, a response iff
:math:`\epsilon_{E,i} > -\Phi^{-1}(p_R(d))` and a high response iff
:math:`\epsilon_{E,i} > -\Phi^{-1}(p_H(d))`. Trial :math:`t` of two designs simulated with the
same seed gives its :math:`i`-th patients the same latent pair, so two designs giving them the
same dose see the same outcome. (A design that records only ``dlt`` sees the same DLTs.)

Target doses (the criterion of Lin 2023): the levels with :math:`p_{T,k}` in ``tox_interval`` and
:math:`p_{R,k} \ge` ``efficacy_threshold``. A trial selects correctly when it recommends a
target dose, or recommends nothing when there is none. That includes a scenario whose doses
are all below the interval (every dose safe): by this criterion none is a target, so
recommending nothing scores as correct there, whatever the doses' efficacy. The studies
(:func:`dosezoo.studies.optimal_level`) also score the optimal dose, which such a scenario has.

Per-trial metrics:

- ``correct_selection``, ``no_selection``, ``selected_<k>`` (0-based level);
- ``selected_p_tox`` / ``selected_p_response``: true rates of the selected dose (NaN if none);
- ``n_at_<k>``; ``n_at_target_fraction`` (patients at target doses over treated);
- ``n_overtoxic_fraction``: patients at doses with :math:`p_T` above the interval, over treated;
- ``dlt_rate``, ``response_rate``, ``high_response_rate``: over treated;
- ``stopped_early`` (fewer patients treated than ``planned_sample_size``, the scenario's, which
  need not be a design's own sample size), ``n_treated``;
- ``range_size`` and ``range_has_target`` (1 if the recommended dose range holds a target
  dose) when the recommendation carries a range (``in_range_<k>`` quantities), NaN otherwise.

With a ``utility`` (the BOIN12 design of Lin et al. 2020 gives its own: ``u11``, ``u00``, and
its limits ``phi_T``, ``phi_E``), a trial is also scored against the optimal biological dose
(OBD) of that design: the admissible level (:math:`p_{T,k} \le \phi_T`,
:math:`p_{R,k} \ge \phi_E`) of highest true utility (the lowest among ties), none if no level
is admissible. The true utility of a level is the mean of the patients' utilities, 100 for a
response without toxicity, ``u11`` for a response with toxicity, ``u00`` for neither and 0 for
toxicity alone, under the scenario's joint distribution of toxicity and response (the latent
correlation :math:`\rho`; BOIN12's own estimate takes them independent, which is the same at
:math:`\rho = 0`). Metrics: ``obd_selection`` (1 if the OBD is selected, or none when there
is none), ``n_at_obd_fraction`` (patients at the OBD over treated) and ``selected_utility``
(the true utility of the selected level; NaN if none). Lin (2023)'s criterion above is kept
for every design, so that designs with other targets are scored on one footing.
"""

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field

import numpy as np
from scipy.special import ndtri

from dosezoo.checks import number_array, probability, real_number
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.levels import (
    checked_level_indices,
    checked_trial_counts,
    level_counts,
    level_index,
    selected_level,
    validate_dose_levels,
)
from dosezoo.protocols import Described, number_text
from dosezoo.scenarios.registry import ScenarioType, design_attribute, register_scenario

__all__ = ["EffToxScenario", "standard_efftox_scenario", "standard_efftox_scenarios"]


def _probabilities(
    owner: str, name: str, values: object, size: int, expected: str = ""
) -> tuple[float, ...]:
    """Return ``values`` as ``size`` probabilities in (0, 1), naming the one at fault.

    ``expected`` says what the count is in the message (by default, the dose levels').
    """
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise ValueError(f"{owner}: {name} must be a sequence of probabilities, got {values!r}")
    out: list[float] = []
    for k, value in enumerate(values):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not 0 < float(value) < 1
        ):
            raise ValueError(f"{owner}: {name}[{k}] must lie in (0, 1), got {value!r}")
        out.append(float(value))
    if len(out) != size:
        raise ValueError(
            f"{owner}: {name} has {len(out)} values but {expected or f'dose_levels has {size}'}"
        )
    return tuple(out)


@dataclass(frozen=True)
class EffToxScenario:
    r"""True toxicity, response and high-response rates per dose, and their latent correlation.

    Parameters
    ----------
    dose_levels : tuple of float
        Strictly increasing (those of the designs); another sequence is stored as a tuple,
        as are the probabilities.
    p_tox, p_response : tuple of float
        True ``P(DLT)`` and ``P(E >= 1)`` per level, in (0, 1).
    p_high_response : tuple of float, optional
        True ``P(E = 2)`` per level, below ``p_response``; half of it by default (None is
        replaced by the default).
    rho : float
        Latent correlation of toxicity and efficacy in (-1, 1).
    planned_sample_size : int
        The designs' planned maximum sample size.
    tox_interval : tuple of float
        Target toxicity interval (0.16, 0.33).
    efficacy_threshold : float
        Smallest acceptable response rate (0.2).
    utility : (float, float), optional
        ``(u11, u00)``: the utilities of a response with toxicity and of neither, on BOIN12's
        scale (100 for a response alone, 0 for toxicity alone). Given, trials are also scored
        against the OBD (see the module docstring).
    utility_limits : (float, float)
        ``(phi_T, phi_E)``: the largest acceptable toxicity and the smallest acceptable
        response rate of an admissible level (BOIN12's; required with ``utility``).
    name : str
        A label (e.g. "plateau").

    Attributes
    ----------
    target_levels : tuple of int
        0-based levels meeting the criterion of Lin (2023).
    utilities : tuple of float
        The true utility of each level (empty without ``utility``).
    obd_level : int
        0-based level of the OBD; -1 when no level is admissible or without ``utility``.
    """

    dose_levels: tuple[float, ...]
    p_tox: tuple[float, ...]
    p_response: tuple[float, ...]
    p_high_response: tuple[float, ...] | None = None
    _: KW_ONLY
    rho: float = 0.0
    planned_sample_size: int
    tox_interval: tuple[float, float] = (0.16, 0.33)
    efficacy_threshold: float = 0.2
    utility: tuple[float, float] | None = None
    utility_limits: tuple[float, float] | None = None
    name: str = ""
    outcomes: tuple[str, ...] = field(default=("dlt", "efficacy"), init=False)
    target_levels: tuple[int, ...] = field(init=False)
    utilities: tuple[float, ...] = field(init=False)
    obd_level: int = field(init=False)

    def __post_init__(self) -> None:
        """Validate the truth, naming the field and value at fault."""
        owner = "EffToxScenario"
        levels = validate_dose_levels(owner, self.dose_levels)
        size = len(levels)
        p_tox = _probabilities(owner, "p_tox", self.p_tox, size)
        p_response = _probabilities(owner, "p_response", self.p_response, size)
        if self.p_high_response is None:
            p_high = tuple(p / 2 for p in p_response)
        else:
            p_high = _probabilities(owner, "p_high_response", self.p_high_response, size)
        for k, (high, response) in enumerate(zip(p_high, p_response, strict=True)):
            if not high < response:
                raise ValueError(
                    f"{owner}: p_high_response[{k}] = {high!r} must be below p_response[{k}] = "
                    f"{response!r} (a high response is a response)"
                )
        rho = self.rho
        if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not -1 < rho < 1:
            raise ValueError(f"{owner}: rho must lie in (-1, 1), got {rho!r}")
        planned = self.planned_sample_size
        if isinstance(planned, bool) or not isinstance(planned, numbers.Integral) or planned < 1:
            raise ValueError(
                f"{owner}: planned_sample_size must be an integer >= 1, got {planned!r}"
            )
        low, high = _probabilities(
            owner, "tox_interval", self.tox_interval, 2, "it must be a pair (low, high)"
        )
        if not low < high:
            raise ValueError(f"{owner}: tox_interval must have low < high, got {(low, high)!r}")
        threshold = probability(owner, "efficacy_threshold", self.efficacy_threshold)
        target = tuple(
            k for k in range(size) if low <= p_tox[k] <= high and p_response[k] >= threshold
        )
        utility, limits, utilities, obd = self._obd(owner, p_tox, p_response, float(rho))
        for name, value in (
            ("dose_levels", levels),
            ("p_tox", p_tox),
            ("p_response", p_response),
            ("p_high_response", p_high),
            ("rho", float(rho)),
            ("planned_sample_size", int(planned)),
            ("tox_interval", (low, high)),
            ("efficacy_threshold", threshold),
            ("name", str(self.name)),
            ("target_levels", target),
            ("utility", utility),
            ("utility_limits", limits),
            ("utilities", utilities),
            ("obd_level", obd),
        ):
            object.__setattr__(self, name, value)

    def _obd(
        self, owner: str, p_tox: tuple[float, ...], p_response: tuple[float, ...], rho: float
    ) -> tuple[tuple[float, float] | None, tuple[float, float] | None, tuple[float, ...], int]:
        """Check ``utility`` and its limits; return them, the true utilities and the OBD."""
        if self.utility is None:
            if self.utility_limits is not None:
                raise ValueError(f"{owner}: utility_limits need a utility (u11, u00)")
            return None, None, (), -1
        if isinstance(self.utility, str) or len(self.utility) != 2:
            raise ValueError(f"{owner}: utility must be a pair (u11, u00), got {self.utility!r}")
        u11, u00 = (real_number(owner, f"utility[{k}]", v) for k, v in enumerate(self.utility))
        if self.utility_limits is None:
            raise ValueError(f"{owner}: a utility needs its utility_limits (phi_T, phi_E)")
        phi_t, phi_e = _probabilities(
            owner, "utility_limits", self.utility_limits, 2, "it must be a pair (phi_T, phi_E)"
        )
        # loaded on use: scipy.stats costs a worker's start 0.6 s, and only a utility reads it
        from scipy.stats import multivariate_normal

        # P(toxicity and response): the latent pair beyond both thresholds, -ndtri(p) each
        joint = multivariate_normal(mean=[0.0, 0.0], cov=[[1.0, rho], [rho, 1.0]])
        utilities = []
        for tox, response in zip(p_tox, p_response, strict=True):
            both = float(joint.cdf([ndtri(tox), ndtri(response)]))
            neither = 1 - tox - response + both
            utilities.append(100 * (response - both) + u11 * both + u00 * neither)
        admissible = [k for k in range(len(p_tox)) if p_tox[k] <= phi_t and p_response[k] >= phi_e]
        obd = max(admissible, key=lambda k: (utilities[k], -k)) if admissible else -1
        return (u11, u00), (phi_t, phi_e), tuple(utilities), obd

    @functools.cached_property
    def _thresholds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The latent thresholds of each level, -ndtri(p): toxicity, response, high response.

        Every cohort's outcomes are drawn against them: computed once.
        """
        p_tox, p_response, p_high = self.p_tox, self.p_response, self.p_high_response
        assert p_high is not None  # set from p_response when not given
        return -ndtri(np.asarray(p_tox)), -ndtri(np.asarray(p_response)), -ndtri(np.asarray(p_high))

    def empty_data(self) -> TrialData:
        """Return the data of a trial before its first patient."""
        return TrialData.empty(outcomes=self.outcomes)

    def _levels(self, doses: np.ndarray) -> np.ndarray:
        return level_index(doses, self.dose_levels, owner="EffToxScenario")

    def latent_pairs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` patients' latent pairs (columns toxicity, efficacy), correlation rho."""
        u = rng.standard_normal((n, 2))
        u[:, 1] = self.rho * u[:, 0] + math.sqrt(1 - self.rho**2) * u[:, 1]
        return u

    def draw_latent(self, rng: np.random.Generator, n_patients: int) -> np.ndarray:
        """Draw the latent pairs of the next ``n_patients`` patients, (n_patients, 2).

        Two ``rng.standard_normal`` draws per patient in enrolment order, so drawing for a
        whole trial at once gives the pairs that drawing cohort by cohort gives.
        """
        return self.latent_pairs(n_patients, rng)

    def outcomes_at_levels(self, levels: np.ndarray, latent: np.ndarray) -> dict[str, np.ndarray]:
        """Outcomes of patients at ``levels`` (any shape) with latent pairs (that shape, 2).

        Raises
        ------
        ValueError
            If a level is not an integer in ``[0, K)``, or the latent pairs are not finite
            numbers of shape ``(*levels.shape, 2)`` (numpy would broadcast one pair to every
            patient, and a NaN reads as no DLT and no response).
        """
        owner = "EffToxScenario.outcomes_at_levels"
        levels = checked_level_indices(owner, levels, len(self.p_tox))
        latent = np.asarray(latent)
        if (
            latent.dtype.kind not in "iuf"
            or latent.shape != (*levels.shape, 2)
            or not np.all(np.isfinite(latent))
        ):
            raise ValueError(
                f"{owner}: latent must hold finite pairs of shape {(*levels.shape, 2)} (one per "
                f"patient), got shape {latent.shape}"
            )
        tox, response, high = self._thresholds
        dlt = latent[..., 0] > tox[levels]
        efficacy = (latent[..., 1] > response[levels]).astype(np.int64) + (
            latent[..., 1] > high[levels]
        )
        return {"dlt": dlt.astype(np.int64), "efficacy": efficacy}

    def outcomes_of(self, doses: np.ndarray, latent: np.ndarray) -> dict[str, np.ndarray]:
        """Outcomes of patients with these latent pairs at these doses."""
        return self.outcomes_at_levels(self._levels(doses), latent)

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Outcomes of new patients: one latent pair per patient, in enrolment order."""
        return self.outcomes_of(doses, self.latent_pairs(len(doses), rng))

    def trial_metrics(self, data: TrialData, recommendation: Decision) -> dict[str, float]:
        """Score one trial (see the module docstring)."""
        counts = level_counts(data, self.dose_levels, owner="EffToxScenario")
        owner = "EffToxScenario"
        selected = selected_level(owner, recommendation.scalar_dose(owner), self.dose_levels)
        treated = data.n_patients
        efficacy = np.asarray(data.column("efficacy")) if treated else np.zeros(0)
        overtoxic = [k for k, p in enumerate(self.p_tox) if p > self.tox_interval[1]]
        correct = selected in self.target_levels if self.target_levels else selected < 0

        def per_treated(count: float) -> float:
            return count / treated if treated else math.nan

        metrics = {
            "correct_selection": float(correct),
            "no_selection": float(selected < 0),
            **{f"selected_{k}": float(selected == k) for k in range(len(self.dose_levels))},
            "selected_p_tox": self.p_tox[selected] if selected >= 0 else math.nan,
            "selected_p_response": self.p_response[selected] if selected >= 0 else math.nan,
            **{f"n_at_{k}": float(n) for k, n in enumerate(counts.n)},
            "n_at_target_fraction": per_treated(float(counts.n[list(self.target_levels)].sum())),
            "n_overtoxic_fraction": per_treated(float(counts.n[overtoxic].sum())),
            "dlt_rate": per_treated(float(counts.y.sum())),
            "response_rate": per_treated(float(np.sum(efficacy >= 1))),
            "high_response_rate": per_treated(float(np.sum(efficacy == 2))),
            "stopped_early": float(treated < self.planned_sample_size),
            "n_treated": float(treated),
            "range_size": math.nan,
            "range_has_target": math.nan,
        }
        in_range = [
            recommendation.quantities.get(f"in_range_{k}") for k in range(len(self.dose_levels))
        ]
        if all(v is not None for v in in_range):
            members = [k for k, v in enumerate(in_range) if v]
            metrics["range_size"] = float(len(members))
            metrics["range_has_target"] = float(any(k in self.target_levels for k in members))
        if self.utility is not None:
            obd = self.obd_level
            at_obd = float(counts.n[obd]) if obd >= 0 else 0.0
            metrics |= {
                "obd_selection": float(selected == obd),
                "n_at_obd_fraction": per_treated(at_obd),
                "selected_utility": self.utilities[selected] if selected >= 0 else math.nan,
            }
        return metrics

    def metrics_at_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        selected: np.ndarray,
        treated: np.ndarray,
        outcomes: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Score ``m`` trials from their counts as :meth:`trial_metrics` does, (m,) each.

        ``outcomes["efficacy"]`` (m, sample size), NaN after the last patient, gives the
        response rates. A recommendation from counts carries no dose range, so ``range_size``
        and ``range_has_target`` are NaN.
        """
        if outcomes is None or "efficacy" not in outcomes:
            raise ValueError("EffToxScenario.metrics_at_counts: needs the patients' efficacy")
        owner = "EffToxScenario.metrics_at_counts"
        levels = len(self.dose_levels)
        counts = checked_trial_counts(owner, n, y, selected, treated, levels)
        n, y, selected = counts[0].astype(float), counts[1].astype(float), counts[2]
        treated = counts[3].astype(float)
        efficacy = np.asarray(number_array(owner, "efficacy", outcomes["efficacy"]), float)
        given = ~np.isnan(efficacy)
        if (
            efficacy.ndim != 2
            or efficacy.shape[0] != selected.size
            or not np.all(np.isin(efficacy[given], (0.0, 1.0, 2.0)))
            or not np.array_equal(given.sum(axis=1), treated)
        ):
            raise ValueError(
                f"{owner}: efficacy must be (m, sample size): 0, 1 or 2 for each patient "
                "treated, NaN after the last"
            )
        some = treated > 0
        overtoxic = [k for k, p in enumerate(self.p_tox) if p > self.tox_interval[1]]
        target = list(self.target_levels)

        def per_treated(count: np.ndarray) -> np.ndarray:
            return np.where(some, count / np.where(some, treated, 1), math.nan)

        def true_rate(rates: tuple[float, ...]) -> np.ndarray:
            return np.where(selected >= 0, np.asarray(rates)[np.maximum(selected, 0)], math.nan)

        correct = np.isin(selected, target) if target else selected < 0
        by_utility: dict[str, np.ndarray] = {}
        if self.utility is not None:
            obd = self.obd_level
            by_utility = {
                "obd_selection": (selected == obd).astype(float),
                "n_at_obd_fraction": per_treated(n[:, obd] if obd >= 0 else np.zeros(len(n))),
                "selected_utility": true_rate(self.utilities),
            }
        return {
            "correct_selection": correct.astype(float),
            "no_selection": (selected < 0).astype(float),
            **{f"selected_{k}": (selected == k).astype(float) for k in range(levels)},
            "selected_p_tox": true_rate(self.p_tox),
            "selected_p_response": true_rate(self.p_response),
            **{f"n_at_{k}": n[:, k] for k in range(levels)},
            "n_at_target_fraction": per_treated(n[:, target].sum(axis=1)),
            "n_overtoxic_fraction": per_treated(n[:, overtoxic].sum(axis=1)),
            "dlt_rate": per_treated(y.sum(axis=1)),
            "response_rate": per_treated(np.sum(efficacy >= 1, axis=1).astype(float)),
            "high_response_rate": per_treated(np.sum(efficacy == 2, axis=1).astype(float)),
            "stopped_early": (treated < self.planned_sample_size).astype(float),
            "n_treated": treated,
            "range_size": np.full(selected.shape, math.nan),
            "range_has_target": np.full(selected.shape, math.nan),
            **by_utility,
        }

    def describe(self) -> Described:
        """Flat record of the truth (for simulation results)."""

        def joined(values: Sequence[float]) -> str:
            return ",".join(map(number_text, values))

        p_high = self.p_high_response
        assert p_high is not None  # __post_init__ replaced None by the default

        return {
            "name": self.name or "EffToxScenario",
            "dose_levels": joined(self.dose_levels),
            "p_tox": joined(self.p_tox),
            "p_response": joined(self.p_response),
            "p_high_response": joined(p_high),
            "rho": self.rho,
            "tox_low": self.tox_interval[0],
            "tox_high": self.tox_interval[1],
            "efficacy_threshold": self.efficacy_threshold,
            "target_levels": ",".join(str(k) for k in self.target_levels) or "none",
            "planned_sample_size": self.planned_sample_size,
            # recorded only with a utility: the records of other scenarios stay as they were
            **(
                {}
                if self.utility is None or self.utility_limits is None
                else {
                    "utility": joined(self.utility),
                    "utility_limits": joined(self.utility_limits),
                    "utilities": joined(self.utilities),
                    "obd_level": str(self.obd_level) if self.obd_level >= 0 else "none",
                }
            ),
        }


def standard_efftox_scenarios(
    *,
    planned_sample_size: int = 36,
    rho: float = 0.3,
    utility: tuple[float, float] | None = None,
    utility_limits: tuple[float, float] | None = None,
) -> dict[str, EffToxScenario]:
    """Three efficacy shapes on the doses 10, 20, 40, 80, 160 (the study of this package).

    - ``monotone``: efficacy rises with dose; the target dose is also the dose whose toxicity
      is closest to 0.25 (the MTD of a toxicity-only design), so efficacy adds little;
    - ``plateau``: efficacy saturates from the third dose; two doses meet the criterion;
    - ``bell``: efficacy falls at high doses; the MTD (toxicity 0.27) is not efficacious
      (response 0.15), the target dose is one level below.

    Returns
    -------
    dict of str to EffToxScenario
    """
    levels = (10.0, 20.0, 40.0, 80.0, 160.0)
    shapes = {
        "monotone": ((0.02, 0.06, 0.12, 0.22, 0.40), (0.05, 0.10, 0.18, 0.30, 0.45)),
        "plateau": ((0.04, 0.10, 0.20, 0.32, 0.45), (0.10, 0.40, 0.45, 0.46, 0.46)),
        "bell": ((0.03, 0.08, 0.18, 0.27, 0.40), (0.12, 0.30, 0.40, 0.15, 0.08)),
    }
    return {
        name: EffToxScenario(
            levels,
            p_tox,
            p_response,
            rho=rho,
            planned_sample_size=planned_sample_size,
            utility=utility,
            utility_limits=utility_limits,
            name=name,
        )
        for name, (p_tox, p_response) in shapes.items()
    }


def _from_design(design: object) -> dict[str, object]:
    """Return the design's levels, sample size, and its rule's targets.

    The rule's target interval and threshold (the joint probit's), or its utility and limits
    (BOIN12's ``u11``, ``u00``, ``phi_T`` and ``phi_E``).
    """
    rule = getattr(design, "rule", None)
    values = {
        "dose_levels": design_attribute(design, "dose_levels"),
        "tox_interval": design_attribute(rule, "tox_interval"),
        "efficacy_threshold": design_attribute(rule, "efficacy_threshold"),
    }
    return {key: value for key, value in values.items() if value is not None} | _planned(design)


def standard_efftox_scenario(
    shape: str,
    *,
    rho: float = 0.3,
    planned_sample_size: int = 36,
    utility: tuple[float, float] | None = None,
    utility_limits: tuple[float, float] | None = None,
) -> EffToxScenario:
    """One of :func:`standard_efftox_scenarios` (``"monotone"``, ``"plateau"``, ``"bell"``)."""
    scenarios = standard_efftox_scenarios(
        planned_sample_size=planned_sample_size,
        rho=rho,
        utility=utility,
        utility_limits=utility_limits,
    )
    if shape not in scenarios:
        listed = ", ".join(repr(name) for name in scenarios)
        raise ValueError(f"standard_efftox_scenario: shape must be one of {listed}, got {shape!r}")
    return scenarios[shape]


def _planned(design: object) -> dict[str, object]:
    """Return the design's sample size, and a utility design's utility and its limits."""
    rule = getattr(design, "rule", None)
    u11, u00 = design_attribute(rule, "u11"), design_attribute(rule, "u00")
    limits = (design_attribute(rule, "target"), design_attribute(rule, "efficacy_limit"))
    values = {
        "planned_sample_size": design_attribute(design, "sample_size"),
        "utility": None if u11 is None or u00 is None else (u11, u00),
        "utility_limits": None if u11 is None or None in limits else limits,
    }
    return {key: value for key, value in values.items() if value is not None}


register_scenario(
    ScenarioType(
        name="efftox",
        summary=(
            "binary toxicity and ordinal efficacy per dose level, correlated, with common random "
            "numbers (after Lin 2023, Project Optimus)"
        ),
        build=EffToxScenario,
        from_design=_from_design,
        design_keys=(
            "dose_levels",
            "planned_sample_size",
            "tox_interval",
            "efficacy_threshold",
            "utility",
            "utility_limits",
        ),
    )
)
register_scenario(
    ScenarioType(
        name="efftox_standard",
        summary=(
            "the monotone, plateau or bell efficacy shape on the doses 10-160 (this package's "
            "study after Lin 2023)"
        ),
        build=standard_efftox_scenario,
        from_design=_planned,
        design_keys=("planned_sample_size", "utility", "utility_limits"),
    )
)
