r"""Time-to-event scenarios of the Weibull D-optimal paper: 4 dose-response shapes x 6 hazards.

The truth is the quadratic Weibull AFT model of the paper (eq 5),
:math:`\log T = \beta_0 + \beta_1 x + \beta_2 x^2 + b W` with :math:`W` standard minimum
extreme value, so :math:`T = e^{\mu(x)} E^{b}` with :math:`E = e^W \sim \mathrm{Exp}(1)`,
observed under type I censoring at :math:`\tau`: :math:`t = \min(T, \tau)`,
:math:`\delta = 1\{T \le \tau\}`. The 24 scenarios (the paper's Fig 1) cross

======  =========================  ======  ======  ======
shape   description                beta_0  beta_1  beta_2
======  =========================  ======  ======  ======
I       monotone increasing        1.9     0.6     2.8
II      U-shaped                   3.4     -7.6    9.4
III     unimodal (maximum)         3.5     4.7     -3.1
IV      S-shaped                   3.1     4.2     -2.1
======  =========================  ======  ======  ======

with :math:`b \in \{0.4, \gamma_E, 0.65, 0.8, 1, 1.5\}`. The censoring time is calibrated
(:func:`calibrate_tau`, root finding on :math:`\log \tau`) so that the uniform design
:math:`\{0, 0.5, 1\}` has the average event probability
:math:`\tfrac13 \sum_{x \in \{0, 0.5, 1\}} 1 - \exp(-(\tau e^{-\mu(x)})^{1/b})` of 25, 50
or 75%.

Common random numbers. A patient's outcome is a function of the dose and one latent draw
:math:`E` (:meth:`WeibullScenario.draw_latent`, one per patient in enrolment order), so two
designs simulated with the same generator give the :math:`j`-th patient the same :math:`E`
whatever dose they receive.

Metrics of a trial (:meth:`WeibullScenario.trial_metrics`): the events and their proportion,
whether the final fit is an MLE, the log ratio of the estimated to the true median time at the
doses of ``metric_doses`` (read from the final decision's quantities ``beta_<j>`` and ``b``),
and, when the scenario was given a reference (see
:func:`dosezoo.designs.d_optimal.with_reference`), the D-efficiency of the realised allocation
against the locally D-optimal design at the true parameters.
"""

import math
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np

from dosezoo.checks import (
    choice,
    doses_within,
    number_array,
    positive_number,
    probability,
    real_array,
    real_number,
)
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.protocols import Described, number_text

__all__ = [
    "WEIBULL_B",
    "WEIBULL_SHAPES",
    "WeibullScenario",
    "calibrate_tau",
    "weibull_scenario",
    "weibull_scenarios",
    "weibull_truth",
]

#: Euler's constant (the paper's b = gamma).
_EULER_GAMMA = 0.5772156649015329
#: The paper's dose-response shapes: (beta_0, beta_1, beta_2).
WEIBULL_SHAPES: dict[str, tuple[float, float, float]] = {
    "I": (1.9, 0.6, 2.8),
    "II": (3.4, -7.6, 9.4),
    "III": (3.5, 4.7, -3.1),
    "IV": (3.1, 4.2, -2.1),
}
#: The paper's hazard parameters b (b < 1 increasing hazard, 1 exponential, > 1 decreasing).
WEIBULL_B: tuple[float, ...] = (0.4, _EULER_GAMMA, 0.65, 0.8, 1.0, 1.5)
_UNIFORM_DOSES = (0.0, 0.5, 1.0)


def _location(beta: tuple[float, ...], doses: np.ndarray) -> np.ndarray:
    x = np.asarray(doses, dtype=float)
    location = np.zeros(x.shape)
    for j, coefficient in enumerate(beta):
        location = location + coefficient * x**j
    return location


def calibrate_tau(
    beta: tuple[float, ...],
    b: float,
    event_probability: float,
    doses: tuple[float, ...] = _UNIFORM_DOSES,
) -> float:
    r"""Return the censoring time at which a design has a given average event probability.

    :math:`\tau` such that equal weights on ``doses`` give the average event probability
    ``event_probability``.

    Parameters
    ----------
    beta : tuple of float
        Coefficients of the polynomial in dose.
    b : float
        Scale of the extreme-value error, > 0.
    event_probability : float
        Target in (0, 1).
    doses : tuple of float
        The design's doses (the uniform design by default).

    Returns
    -------
    float
        :math:`\tau` (root of an increasing function of :math:`\log \tau`, to 1e-12).
    """
    from scipy.optimize import brentq

    owner = "calibrate_tau"
    p = probability(owner, "event_probability", event_probability)
    b = positive_number(owner, "b", b)
    coefficients = real_array(owner, "beta", beta)
    if not coefficients.size or not np.all(np.isfinite(coefficients)):
        raise ValueError(f"{owner}: beta must be finite coefficients, got {coefficients.tolist()}")
    dose_array = doses_within(owner, doses, 0.0, 1.0, entry="entry", space="the dose range")
    if not dose_array.size:
        raise ValueError(f"{owner}: doses must hold at least one dose")
    mu = _location(tuple(coefficients.tolist()), dose_array)

    def excess(log_tau: float) -> float:
        # exp overflows to inf far above a dose's location: its event probability is then 1.
        with np.errstate(over="ignore"):
            return float(np.mean(-np.expm1(-np.exp((log_tau - mu) / b)))) - p

    lo, hi = float(mu.min()) - 60.0 * b, float(mu.max()) + 10.0 * b
    tau = math.nan
    if excess(lo) < 0 < excess(hi):
        tau = math.exp(brentq(excess, lo, hi, xtol=1e-13, rtol=1e-13))
    if not 0 < tau < math.inf:
        # an event probability below e^-60 at every dose, or b so large that tau underflows
        raise ValueError(
            f"{owner}: no censoring time in double precision gives event_probability={p!r} "
            f"with b={b!r}"
        )
    return tau


@dataclass(frozen=True)
class WeibullScenario:
    r"""The true quadratic Weibull AFT dose-response with type I censoring at ``tau``.

    Parameters
    ----------
    beta : tuple of float
        True coefficients of the polynomial in dose.
    b : float
        True scale of the extreme-value error (> 0).
    tau : float or None
        Censoring time (follow-up of every patient); None: no censoring.
    name : str
        Label in the results (e.g. ``"I, b=0.577, 50%"``).
    metric_doses : tuple of float
        Doses at which the estimated median time is scored.
    reference : callable, optional
        Maps the doses of a trial's patients to the D-efficiency of that allocation against
        the locally D-optimal design at the truth (built by the designs layer, which knows
        the information matrix; :func:`dosezoo.designs.d_optimal.with_reference`).
    """

    beta: tuple[float, ...]
    b: float
    tau: float | None = None
    _: KW_ONLY
    name: str = ""
    metric_doses: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    reference: Callable[[np.ndarray], float] | None = field(default=None, compare=False)
    outcomes: tuple[str, ...] = field(default=("time", "event"), init=False)

    def __post_init__(self) -> None:
        """Validate the truth, naming the field at fault."""
        owner = "WeibullScenario"
        if isinstance(self.beta, str) or not len(self.beta):
            raise ValueError(f"{owner}: beta must be a non-empty sequence of numbers")
        beta = tuple(real_number(owner, f"beta[{j}]", v) for j, v in enumerate(self.beta))
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "b", positive_number(owner, "b", self.b))
        if self.tau is not None:
            object.__setattr__(self, "tau", positive_number(owner, "tau", self.tau))
        doses = tuple(
            real_number(owner, f"metric_doses[{i}]", v) for i, v in enumerate(self.metric_doses)
        )
        if len(set(doses)) < len(doses):  # each names a metric of its own
            raise ValueError(f"{owner}: metric_doses must be distinct, got {list(doses)}")
        doses_within(owner, doses, 0.0, 1.0, entry="entry", space="the dose range")
        object.__setattr__(self, "metric_doses", doses)
        if self.reference is not None and not callable(self.reference):
            raise ValueError(f"{owner}: reference must be callable, got {self.reference!r}")

    @property
    def theta(self) -> np.ndarray:
        r"""The true :math:`(\beta, b)` as a vector."""
        return np.array([*self.beta, self.b])

    def median_time(self, doses: np.ndarray) -> np.ndarray:
        r"""Return the true median :math:`e^{\mu(x)} (\log 2)^b` at doses in [0, 1]."""
        doses = doses_within("WeibullScenario.median_time", doses, 0.0, 1.0, entry="entry")
        return np.exp(_location(self.beta, doses)) * math.log(2.0) ** self.b

    def event_probability(self, doses: np.ndarray) -> np.ndarray:
        r"""Return the true :math:`P(T \le \tau \mid x)` at doses in [0, 1] (1 if uncensored)."""
        doses = doses_within("WeibullScenario.event_probability", doses, 0.0, 1.0, entry="entry")
        if self.tau is None:
            return np.ones(np.shape(doses))
        return -np.expm1(-np.exp((math.log(self.tau) - _location(self.beta, doses)) / self.b))

    # ------------------------------------------------------------------ simulation

    def empty_data(self) -> TrialData:
        """Return the data of a trial before its first patient."""
        return TrialData.empty(outcomes=self.outcomes)

    def draw_latent(self, rng: np.random.Generator, n_patients: int) -> np.ndarray:
        r""":math:`E = e^W \sim \mathrm{Exp}(1)` of the next ``n_patients`` patients."""
        return rng.standard_exponential(n_patients)

    def outcomes_from_latent(self, doses: np.ndarray, latent: np.ndarray) -> dict[str, np.ndarray]:
        r"""``time`` :math:`= \min(e^{\mu(x)} E^b, \tau)` and ``event`` of patients at ``doses``.

        Raises
        ------
        ValueError
            If a dose lies outside [0, 1], or the latent draws are not positive finite numbers
            of the doses' shape (a NaN or negative draw would read as a patient censored at
            ``tau``, a draw of 0 as an event at time 0).
        """
        owner = "WeibullScenario.outcomes_from_latent"
        doses = doses_within(owner, doses, 0.0, 1.0)
        latent = number_array(owner, "latent", latent)
        if latent.shape != doses.shape or not np.all((latent > 0) & np.isfinite(latent)):
            raise ValueError(
                f"{owner}: latent must hold one positive finite draw per dose (shape "
                f"{doses.shape}), got {np.ravel(latent)[:10].tolist()}"
            )
        event_time = np.exp(_location(self.beta, doses)) * latent.astype(float) ** self.b
        if self.tau is None:
            return {"time": event_time, "event": np.ones(event_time.shape, dtype=np.int64)}
        event = event_time <= self.tau
        return {"time": np.where(event, event_time, self.tau), "event": event.astype(np.int64)}

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Outcomes of new patients at ``doses`` in [0, 1] (one latent draw each, in order)."""
        doses = doses_within("WeibullScenario", doses, 0.0, 1.0)
        return self.outcomes_from_latent(doses, self.draw_latent(rng, doses.size))

    # ------------------------------------------------------------------ scoring

    def median_errors(self, estimate: np.ndarray) -> np.ndarray:
        r"""Log ratio of the estimated to the true median time at ``metric_doses``.

        ``estimate`` is :math:`(\hat\beta, \hat b)`; NaNs give NaNs.
        """
        owner = "WeibullScenario.median_errors"
        estimate = np.asarray(number_array(owner, "estimate", estimate), dtype=float)
        if estimate.shape != (len(self.beta) + 1,):
            raise ValueError(
                f"{owner}: the estimate must be (beta_0, ..., "
                f"beta_{len(self.beta) - 1}, b), {len(self.beta) + 1} values, got "
                f"{estimate.tolist()}"
            )
        doses = np.asarray(self.metric_doses)
        fitted = _location(tuple(estimate[:-1]), doses) + estimate[-1] * math.log(math.log(2.0))
        truth = _location(self.beta, doses) + self.b * math.log(math.log(2.0))
        return fitted - truth

    def trial_metrics(self, data: TrialData, recommendation: Decision) -> dict[str, float]:
        """Events, event proportion, the final fit's median-time errors and the D-efficiency.

        The final decision carries the estimate as quantities ``beta_0``, ... and ``b``
        (``estimate_is_mle`` 1 for an MLE, 0 for the fallback); without them the errors are
        NaN.
        """
        n = data.n_patients
        events = float(np.sum(data.column("event"))) if n else 0.0
        quantities = recommendation.quantities
        names = [f"beta_{j}" for j in range(len(self.beta))] + ["b"]
        if all(name in quantities for name in names):
            estimate = np.array([quantities[name] for name in names], dtype=float)
        else:
            estimate = np.full(len(names), np.nan)
        metrics = {
            "events": events,
            "event_proportion": events / n if n else math.nan,
            "estimate_is_mle": float(quantities.get("estimate_is_mle", math.nan)),
        }
        errors = self.median_errors(estimate)
        for dose, error in zip(self.metric_doses, errors, strict=True):
            metrics[f"log_median_error_{number_text(dose)}"] = float(error)
        if self.reference is not None:
            metrics["d_efficiency"] = (
                float(self.reference(np.asarray(data.dose, dtype=float))) if n else math.nan
            )
        return metrics

    def describe(self) -> Described:
        """Flat record of the truth (for simulation results)."""
        return {
            "name": self.name or "WeibullScenario",
            "beta": ",".join(map(number_text, self.beta)),
            "b": self.b,
            "tau": math.nan if self.tau is None else self.tau,
            "event_probability_uniform": float(
                np.mean(self.event_probability(np.array(_UNIFORM_DOSES)))
            ),
        }


def weibull_scenario(
    shape: str, b: float, event_probability: float | None = 0.5, **options: Any
) -> WeibullScenario:
    """One of the paper's 24 scenarios, with its calibrated censoring time.

    Parameters
    ----------
    shape : {"I", "II", "III", "IV"}
        The dose-response shape.
    b : float
        The hazard parameter (one of :data:`WEIBULL_B`, or any b > 0).
    event_probability : float or None
        Average event probability of the uniform design (25, 50, 75% in the paper); None
        for no censoring.
    **options
        Other :class:`WeibullScenario` options (``metric_doses``, ``reference``).

    Returns
    -------
    WeibullScenario
    """
    choice("weibull_scenario", "shape", shape, tuple(WEIBULL_SHAPES))
    beta = WEIBULL_SHAPES[shape]
    tau = None if event_probability is None else calibrate_tau(beta, b, event_probability)
    label = "none" if event_probability is None else f"{event_probability:.0%}"
    return WeibullScenario(beta, b, tau, name=f"{shape}, b={b:.3g}, events {label}", **options)


def weibull_scenarios(event_probability: float | None = 0.5) -> list[WeibullScenario]:
    """Return the paper's 24 scenarios (shapes I-IV x the six values of b), in that order."""
    return [
        weibull_scenario(shape, b, event_probability) for shape in WEIBULL_SHAPES for b in WEIBULL_B
    ]


def weibull_truth(
    shape: str | None = None,
    b: float = _EULER_GAMMA,
    beta: tuple[float, ...] | None = None,
    tau: float | None = None,
    event_probability: float | None = None,
    metric_doses: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
) -> WeibullScenario:
    """Return a Weibull truth from a shape of the paper (or coefficients) and a censoring.

    Parameters
    ----------
    shape : {"I", "II", "III", "IV"}, optional
        One of the paper's shapes; or give ``beta``.
    b : float
        The hazard parameter (Euler's constant by default, the paper's b = gamma).
    beta : tuple of float, optional
        Coefficients of the polynomial in dose, instead of ``shape``.
    tau : float, optional
        The censoring time; or give ``event_probability``; neither: no censoring.
    event_probability : float, optional
        Calibrate ``tau`` so that the uniform design has this average event probability.
    metric_doses : tuple of float
        Doses at which the estimated median time is scored.

    Returns
    -------
    WeibullScenario
    """
    owner = "weibull_truth"
    if (shape is None) == (beta is None):
        raise ValueError(f"{owner}: give shape (one of {', '.join(WEIBULL_SHAPES)}) or beta")
    if tau is not None and event_probability is not None:
        raise ValueError(f"{owner}: give tau or event_probability, not both")
    coefficients: tuple[float, ...]
    if shape is not None:
        choice(owner, "shape", shape, tuple(WEIBULL_SHAPES))
        coefficients = WEIBULL_SHAPES[shape]
    else:
        assert beta is not None
        coefficients = tuple(real_array(owner, "beta", beta).tolist())
    b = positive_number(owner, "b", b)
    if event_probability is not None:
        tau = calibrate_tau(coefficients, b, event_probability)
    name = f"{shape or 'beta ' + ','.join(f'{v:g}' for v in coefficients)}, b={b:.3g}"
    return WeibullScenario(coefficients, b, tau, name=name, metric_doses=tuple(metric_doses))
