r"""Continuous-toxicity scenarios of the 3PND paper, Lee (2023), Trials 24:745.

:class:`ContinuousToxicityScenario` is the simulation setting of Lee (2023) ("Simulation
experiments"): responses :math:`y \sim N(\beta_0 (x - x_{min})^{\nu_0}, \sigma_0^2)` with
:math:`\beta_0 = (\eta - \sigma_0 \Phi^{-1}(\gamma)) / (\xi_0 - x_{min})^{\nu_0}` from eq (5),
so that the true MTD is :math:`\xi_0`. A trial is scored by the paper's four metrics at
:math:`n = N`:

- NPD, number of patients with a DLT: :math:`\sum_i 1(y_i \ge \eta)`;
- NPO, number of patients overdosed: :math:`\sum_i 1(x_i > \xi_0)`;
- BTM, bias to the MTD: :math:`x_N - \xi_0`;
- RMSE, relative error: :math:`|x_N - \xi_0| / \xi_0`,

where :math:`x_N` is the dose given to the last patient (the paper's estimate of the MTD).
``BTM_recommended`` and ``RMSE_recommended`` score the design's recommendation after the
last patient's response instead. A trial that stopped early has no :math:`x_N` estimate: its
BTM and RMSE are NaN (it still counts in NPD and NPO).

:class:`O6BGResampling` is the paper's re-design of the O6-benzylguanine trial
("Application"): a patient at one of the trial's dose levels gets the tumour AGT activity of
a patient drawn at random from those treated at that level, plus a uniform perturbation of
+-8, +-6, +-4, +-2 fmol/mg at 40, 60, 80, 100 mg/m^2; the 3PND response is ``60 - AGT``.
With ``dichotomise`` it also gives each patient the binary outcome of the paper's EWOC
re-design, ``dlt = 1`` when the AGT activity is undetectable (< 5 fmol/mg), from the same
draws: a design on the DLTs and one on ``y`` treat the same simulated patients.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from scipy.special import ndtri

from dosezoo.checks import doses_within, real_array, real_number
from dosezoo.data import TrialData
from dosezoo.datasets import O6BG_AGT_UNDETECTABLE, O6BG_RESPONSE_OFFSET, o6bg_frame
from dosezoo.decision import Decision
from dosezoo.protocols import Described, number_text
from dosezoo.scenarios.registry import ScenarioType, design_attribute, register_scenario

__all__ = ["O6BG_PERTURBATION", "ContinuousToxicityScenario", "O6BGResampling", "o6bg_resampling"]


@dataclass(frozen=True)
class ContinuousToxicityScenario:
    r"""The true dose-toxicity curve of Lee (2023), with its true MTD.

    Parameters
    ----------
    true_mtd : float
        :math:`\xi_0`, inside ``(x_min, x_max)`` of the design.
    nu : float
        :math:`\nu_0 > 0`, the curvature (1 linear, < 1 concave, > 1 convex).
    sigma : float
        :math:`\sigma_0 > 0`, the response's standard deviation.
    eta, gamma, x_min : float
        As in the model: DLT threshold, homogeneity constant and dose-range start; they
        define the MTD and so :math:`\beta_0`.
    x_max : float, optional
        The end of the design's dose range, when known (a configuration takes it from the
        model): the true MTD must then lie below it, or no dose of the design could reach it.
    """

    true_mtd: float
    nu: float
    sigma: float
    eta: float
    gamma: float
    x_min: float
    x_max: float | None = None
    outcomes: tuple[str, ...] = field(default=("y",), init=False)

    def __post_init__(self) -> None:
        """Validate the truth, naming the field at fault."""
        owner = "ContinuousToxicityScenario"
        for name in ("true_mtd", "nu", "sigma", "eta", "gamma", "x_min"):
            object.__setattr__(self, name, real_number(owner, name, getattr(self, name)))
        for name in ("nu", "sigma", "eta"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{owner}: {name} must be > 0, got {getattr(self, name)!r}")
        if not 0.5 < self.gamma < 1:
            raise ValueError(f"{owner}: gamma must lie in (0.5, 1), got {self.gamma!r}")
        if self.true_mtd <= self.x_min:
            raise ValueError(
                f"{owner}: true_mtd must exceed x_min={self.x_min!r}, got {self.true_mtd!r}"
            )
        if self.x_max is not None:
            object.__setattr__(self, "x_max", real_number(owner, "x_max", self.x_max))
            if not self.x_min < self.x_max:
                raise ValueError(
                    f"{owner}: x_max must exceed x_min={self.x_min!r}, got {self.x_max!r}"
                )
            if not self.true_mtd < self.x_max:
                raise ValueError(
                    f"{owner}: true_mtd must lie below x_max={self.x_max!r} (the end of the "
                    f"design's dose range), got {self.true_mtd!r}"
                )
        if self.sigma * ndtri(self.gamma) >= self.eta:
            raise ValueError(
                f"{owner}: sigma * Phi^-1(gamma) must be below eta so that the MTD exists, got "
                f"sigma={self.sigma!r}"
            )

    @property
    def beta(self) -> float:
        r""":math:`\beta_0` of eq (5)."""
        return (self.eta - self.sigma * ndtri(self.gamma)) / (self.true_mtd - self.x_min) ** self.nu

    def mean_response(self, doses: np.ndarray) -> np.ndarray:
        """Return the true mean response ``beta_0 (x - x_min)^nu_0`` (doses from ``x_min`` on)."""
        high = math.inf if self.x_max is None else self.x_max
        doses = doses_within("ContinuousToxicityScenario", doses, self.x_min, high)
        return self.beta * (doses - self.x_min) ** self.nu

    def empty_data(self) -> TrialData:
        """Return the data of a trial before its first patient."""
        return TrialData.empty(outcomes=self.outcomes)

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Responses of new patients at ``doses``."""
        return {"y": rng.normal(self.mean_response(doses), self.sigma)}

    def trial_metrics(self, data: TrialData, recommendation: Decision) -> dict[str, float]:
        """NPD, NPO, BTM and RMSE of Lee (2023), and BTM, RMSE of the recommendation."""
        dose, y = data.dose, data.column("y")
        recommended = recommendation.scalar_dose("ContinuousToxicityScenario")
        if data.n_patients > 0 and recommended is not None:
            last = float(dose[-1])
        else:
            last = recommended = math.nan
        return {
            "NPD": float(np.sum(y >= self.eta)),
            "NPO": float(np.sum(dose > self.true_mtd)),
            "BTM": last - self.true_mtd,
            "RMSE": abs(last - self.true_mtd) / self.true_mtd,
            "BTM_recommended": recommended - self.true_mtd,
            "RMSE_recommended": abs(recommended - self.true_mtd) / self.true_mtd,
        }

    def describe(self) -> Described:
        """Flat record of the truth (for simulation results)."""
        return {
            "name": "ContinuousToxicityScenario",
            "true_mtd": self.true_mtd,
            "nu": self.nu,
            "sigma": self.sigma,
            "beta": self.beta,
            "eta": self.eta,
            "gamma": self.gamma,
            "x_min": self.x_min,
            # Recorded only when given, so that the records of earlier simulations still match.
            **({} if self.x_max is None else {"x_max": self.x_max}),
        }


#: Half-widths (fmol/mg) of the uniform perturbations of the O6-BG re-design of Lee (2023).
O6BG_PERTURBATION = MappingProxyType({40.0: 8.0, 60.0: 6.0, 80.0: 4.0, 100.0: 2.0})


def _o6bg_agt() -> dict[float, tuple[float, ...]]:
    frame = o6bg_frame()
    return {float(d): tuple(group["agt"].astype(float)) for d, group in frame.groupby("dose")}


@dataclass(frozen=True)
class O6BGResampling:
    """The re-design scenario of Lee (2023): resampled O6-BG tumour AGT activity, perturbed.

    A patient at dose ``d`` gets ``AGT = a + U(-w_d, w_d)`` with ``a`` drawn uniformly from
    the AGT values of the trial's patients at ``d`` and ``w_d`` from ``perturbation``; the
    response is ``60 - AGT``.

    The trial treated nobody at 120 mg/m^2, so the paper's scenario does not say what such a
    patient gets. Here a dose with no data takes the values and the perturbation of the
    highest dose below it that has data (100 for 120): AGT depletion is taken
    to have saturated at 100 mg/m^2, where the trial's values already sit at the assay's
    5 fmol/mg detection limit. That is an assumption, stated in the scenario's record; it
    cannot make 120 look worse than 100, so the re-design's selections of 120 are not caused
    by an invented toxicity.

    Lee (2023)'s EWOC re-design dichotomises the response "using a threshold value of 55":
    ``y = 1`` "when tumor AGT activity is less than 5 fmol/mg, and 0 otherwise". With
    ``dichotomise`` the scenario adds that outcome as ``dlt = 1(AGT < 5) = 1(60 - AGT > 55)``:
    strictly below 5, so a response of exactly 55 (AGT = 5.00, as three of the real trial's
    patients at 100 mg/m^2) is no DLT, although the 3PND's DLT definition, ``y >= eta``, would
    count it. The perturbation is continuous, so a simulated patient is never exactly at 5.
    The "DLT" here is the wanted effect (undetectable AGT), with target rate
    ``theta = 0.4 = 1 - gamma``.

    Parameters
    ----------
    agt : Mapping[float, tuple of float]
        AGT values per dose level; the bundled trial data by default.
    perturbation : Mapping[float, float]
        Half-width of the uniform perturbation per dose level.
    dichotomise : bool
        Also give the binary outcome ``dlt = 1(AGT < 5)`` (False: ``y`` only). The draws,
        and so ``y``, are the same either way.
    """

    agt: Mapping[float, tuple[float, ...]] = field(default_factory=_o6bg_agt)
    perturbation: Mapping[float, float] = field(default_factory=lambda: dict(O6BG_PERTURBATION))
    dichotomise: bool = False
    outcomes: tuple[str, ...] = field(default=("y",), init=False)

    def __post_init__(self) -> None:
        """Check that every level with data has a perturbation; keep plain (picklable) dicts."""
        if not isinstance(self.dichotomise, bool | np.bool_):
            raise ValueError(
                f"O6BGResampling: dichotomise must be True or False, got {self.dichotomise!r}"
            )
        object.__setattr__(self, "dichotomise", bool(self.dichotomise))
        object.__setattr__(self, "outcomes", ("y", "dlt") if self.dichotomise else ("y",))
        agt = {}
        for key, values in dict(self.agt).items():
            level = real_number("O6BGResampling", "agt level", key)
            name = f"agt[{level:g}]"
            if isinstance(values, str) or not hasattr(values, "__len__") or not len(values):
                raise ValueError(
                    f"O6BGResampling: {name} must be a non-empty sequence of AGT values, "
                    f"got {values!r}"
                )
            checked = tuple(real_number("O6BGResampling", name, v) for v in values)
            if min(checked) < 0:  # an activity: a negative one would give a response above 60
                raise ValueError(f"O6BGResampling: {name} must hold values >= 0, got {values!r}")
            agt[level] = checked
        object.__setattr__(self, "agt", agt)
        object.__setattr__(
            self, "perturbation", {float(k): v for k, v in self.perturbation.items()}
        )
        missing = sorted(set(self.agt) - set(self.perturbation))
        if missing:
            raise ValueError(f"O6BGResampling: no perturbation for the dose levels {missing}")
        for level, width in self.perturbation.items():
            real_number("O6BGResampling", f"perturbation[{level:g}]", width)
            if width < 0:
                raise ValueError(
                    f"O6BGResampling: perturbation[{level:g}] must be >= 0, got {width!r}"
                )

    def source_level(self, dose: float) -> float:
        """Return the dose level whose patients a patient at ``dose`` is resampled from."""
        below = [level for level in self.agt if level <= dose]
        if not below:
            raise ValueError(
                f"O6BGResampling: dose {dose:g} is below every level with data {sorted(self.agt)}"
            )
        return max(below)

    def empty_data(self) -> TrialData:
        """Return the data of a trial before its first patient."""
        return TrialData.empty(outcomes=self.outcomes)

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Responses ``60 - AGT`` of new patients at ``doses`` (and ``dlt``, if dichotomised)."""
        doses = real_array("O6BGResampling", "doses", doses)
        if not np.all(np.isfinite(doses)):
            raise ValueError(f"O6BGResampling: doses must be finite, got {doses.tolist()}")
        agt = np.empty(len(doses))
        for i, dose in enumerate(doses.tolist()):
            level = self.source_level(dose)
            values = self.agt[level]
            width = self.perturbation[level]
            agt[i] = values[rng.integers(len(values))] + rng.uniform(-width, width)
        outcomes = {"y": O6BG_RESPONSE_OFFSET - agt}
        if self.dichotomise:
            outcomes["dlt"] = (agt < O6BG_AGT_UNDETECTABLE).astype(np.int64)
        return outcomes

    def trial_metrics(self, data: TrialData, recommendation: Decision) -> dict[str, float]:
        """Patients with undetectable AGT (< 5 fmol/mg), at 120 mg/m^2, final doses."""
        agt = O6BG_RESPONSE_OFFSET - data.column("y")
        dose = data.dose
        recommended = recommendation.scalar_dose("O6BGResampling")
        return {
            "n_agt_below_5": float(np.sum(agt < O6BG_AGT_UNDETECTABLE)),
            "n_above_100": float(np.sum(dose > 100.0)),
            "final_dose": float(dose[-1]) if data.n_patients else math.nan,
            "recommended": math.nan if recommended is None else recommended,
        }

    def describe(self) -> Described:
        """Flat record of the scenario (for simulation results)."""
        return {
            "name": "O6BGResampling",
            "agt": "; ".join(
                f"{number_text(level)}: " + ",".join(map(number_text, values))
                for level, values in sorted(self.agt.items())
            ),
            "perturbation": ", ".join(
                f"{number_text(level)}: +-{number_text(width)}"
                for level, width in sorted(self.perturbation.items())
            ),
            "untreated_levels": "resampled from the highest lower level with data (plateau)",
            # Recorded only when on, so that the records of earlier simulations still match.
            **({"dlt": "1(AGT < 5 fmol/mg) = 1(y > 55)"} if self.dichotomise else {}),
        }


def _from_model(design: object) -> dict[str, object]:
    """Return the model's DLT threshold, homogeneity and dose range (eta, gamma, x_min, x_max)."""
    names = ("eta", "gamma", "x_min", "x_max")
    values = {name: design_attribute(design, name) for name in names}
    return {key: value for key, value in values.items() if value is not None}


def o6bg_resampling(dichotomise: bool = False) -> O6BGResampling:
    """Return the O6-BG re-design scenario of Lee (2023) with the bundled trial's AGT values.

    ``dichotomise`` adds the binary outcome ``dlt = 1(AGT < 5)`` of the paper's EWOC re-design.
    """
    return O6BGResampling(dichotomise=dichotomise)


register_scenario(
    ScenarioType(
        name="continuous",
        summary=(
            "continuous toxicity y ~ N(beta (x - x_min)^nu, sigma^2) with a true MTD "
            "(Lee 2023, Trials 24:745)"
        ),
        build=ContinuousToxicityScenario,
        from_design=_from_model,
        design_keys=("eta", "gamma", "x_min", "x_max"),
        of_design=("x_max",),
    )
)
register_scenario(
    ScenarioType(
        name="o6bg",
        summary=(
            "the O6-benzylguanine trial's AGT values resampled and perturbed (Friedman et al. "
            "1998, re-designed by Lee 2023)"
        ),
        build=o6bg_resampling,
    )
)
