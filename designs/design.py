r"""A dose-finding design: model + rule + conduct (seed 001, Algorithm 1 and its options).

:class:`MTDQuantileDesign` runs the seed's adaptive designs: the first cohort gets the start
dose :math:`x_1`; each later cohort of ``cohort_size`` patients gets
:math:`x_{n+1} = \mathcal D_\alpha(\mathcal F_n)` from :class:`MTDQuantileRule`; the trial ends
after ``sample_size`` patients, or earlier when the ``stopping`` rule fires. ``cohort_size = 1``
is the fully sequential adaptive design (FSAD), ``cohort_size = 3`` the cohort sequential one
(CSAD). ``design.next(data)`` is the decision for a real trial; the simulation engine
(:func:`dosezoo.simulate.simulate`) calls the same method.
"""

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.mtd_quantile import MTDPosterior, MTDQuantileRule, SampledMTD
from dosezoo.models.three_pnd import ThreePND

PosteriorEngine = Literal["quadrature", "kernel", "pymc", "nuts"]


@dataclass(frozen=True)
class ToxicityStopping:
    """Stop the trial when more than ``max_toxicities`` patients had ``y >= threshold``.

    Seed 001, Discussion ("Stopping rule"): e.g. stop when the number of patients with a
    CTCAE grade >= 4 toxicity exceeds a pre-specified number.

    Parameters
    ----------
    threshold : float
        A response at or above it is a toxicity (e.g. the model's ``eta``).
    max_toxicities : int
        Largest tolerated number of toxicities (>= 0).
    """

    threshold: float
    max_toxicities: int

    def __post_init__(self) -> None:
        """Validate the options."""
        if not (isinstance(self.threshold, int | float) and math.isfinite(self.threshold)):
            raise ValueError(
                f"ToxicityStopping: threshold must be a finite number, got {self.threshold!r}"
            )
        if (
            isinstance(self.max_toxicities, bool)
            or not isinstance(self.max_toxicities, int | np.integer)
            or self.max_toxicities < 0
        ):
            raise ValueError(
                f"ToxicityStopping: max_toxicities must be an integer >= 0, "
                f"got {self.max_toxicities!r}"
            )

    def reason(self, data: TrialData) -> str | None:
        """Why the trial must stop, or ``None`` to go on."""
        if not data.n_patients:
            return None
        count = int(np.sum(data.column("y") >= self.threshold))
        if count > self.max_toxicities:
            return (
                f"toxicity: {count} patients with y >= {self.threshold:g}, "
                f"more than {self.max_toxicities}"
            )
        return None


@dataclass(frozen=True)
class MTDQuantileDesign:
    """Seed 001's adaptive design: 3PND + the alpha-quantile rule + conduct.

    Parameters
    ----------
    model : ThreePND
        The dose-response model.
    rule : MTDQuantileRule
        Feasibility bound and the dose options (levels, monotone, maximum increment).
    start_dose : float
        Dose of the first cohort, ``x_1``, inside the model's dose range (and one of
        ``rule.dose_levels`` when the rule has levels).
    cohort_size : int
        Patients per cohort: 1 is FSAD, 3 is CSAD.
    sample_size : int
        Maximum number of patients ``N``.
    stopping : ToxicityStopping, optional
        Early stopping for safety.
    engine : {"quadrature", "kernel", "pymc", "nuts"}
        How the posterior of the MTD is computed: exact quadrature (default; milliseconds,
        no Monte Carlo error) or a fit by an MCMC engine, whose draws must pass
        ``rule.convergence``.
    draws, tune, chains : int
        MCMC settings (MCMC engines only).
    random_seed : int
        Seed of the MCMC engines. The seed of each fit is derived from it and the data, so
        a decision is a deterministic function of the data.
    """

    model: ThreePND
    rule: MTDQuantileRule
    start_dose: float
    cohort_size: int = 1
    sample_size: int = 30
    stopping: ToxicityStopping | None = None
    engine: PosteriorEngine = "quadrature"
    draws: int = 1000
    tune: int = 500
    chains: int = 2
    random_seed: int = 0

    def __post_init__(self) -> None:
        """Validate the conduct, naming the field at fault."""
        if not isinstance(self.model, ThreePND):
            raise TypeError(f"MTDQuantileDesign: model must be a ThreePND, got {self.model!r}")
        if not isinstance(self.rule, MTDQuantileRule):
            raise TypeError(
                f"MTDQuantileDesign: rule must be an MTDQuantileRule, got {self.rule!r}"
            )
        for name, smallest in (
            ("cohort_size", 1),
            ("sample_size", 1),
            ("draws", 1),
            ("chains", 1),
            ("tune", 0),
            ("random_seed", 0),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | np.integer)
                or value < smallest
            ):
                raise ValueError(
                    f"MTDQuantileDesign: {name} must be an integer >= {smallest}, got {value!r}"
                )
        if self.cohort_size > self.sample_size:
            raise ValueError(
                f"MTDQuantileDesign: cohort_size {self.cohort_size} exceeds sample_size "
                f"{self.sample_size}"
            )
        if self.engine not in ("quadrature", "kernel", "pymc", "nuts"):
            raise ValueError(
                f"MTDQuantileDesign: engine must be 'quadrature', 'kernel', 'pymc' or 'nuts', "
                f"got {self.engine!r}"
            )
        start = self.start_dose
        if not (
            isinstance(start, int | float | np.integer | np.floating)
            and not isinstance(start, bool)
            and self.model.x_min < start < self.model.x_max
        ):
            raise ValueError(
                f"MTDQuantileDesign: start_dose must lie in ({self.model.x_min:g}, "
                f"{self.model.x_max:g}), got {start!r}"
            )
        levels = self.rule.dose_levels
        if levels is not None and float(start) not in levels:
            raise ValueError(
                f"MTDQuantileDesign: start_dose {start!r} is not one of the dose levels {levels}"
            )
        if levels is not None and not all(self.model.x_min < v < self.model.x_max for v in levels):
            raise ValueError(
                f"MTDQuantileDesign: dose levels {levels} must lie in ({self.model.x_min:g}, "
                f"{self.model.x_max:g})"
            )
        object.__setattr__(self, "start_dose", float(start))

    def posterior(self, data: TrialData) -> MTDPosterior:
        """Compute the posterior of the MTD given ``data`` by the design's engine."""
        if self.engine == "quadrature":
            return self.model.mtd_posterior(data)
        idata = self.model.fit(
            data,
            engine=self.engine,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            random_seed=self._seed_for(data),
        )
        return SampledMTD.from_idata(idata, self.rule.convergence)

    def _seed_for(self, data: TrialData) -> int:
        digest = hashlib.sha256(np.asarray(data.dose, float).tobytes())
        digest.update(np.asarray(data.column("y"), float).tobytes())
        return int.from_bytes(digest.digest()[:8], "little") ^ self.random_seed

    def next(self, data: TrialData) -> Decision:
        """Dose for the next cohort of a trial with ``data`` so far, or why it stops.

        Parameters
        ----------
        data : TrialData
            The trial so far (may be empty: the first cohort gets ``start_dose``).

        Returns
        -------
        Decision
        """
        if not isinstance(data, TrialData):
            raise TypeError(f"MTDQuantileDesign needs a TrialData, got {type(data).__name__}")
        if data.n_patients >= self.sample_size:
            return Decision(
                None, stop_reason=f"sample size reached: {data.n_patients} of {self.sample_size}"
            )
        stop = self.stopping.reason(data) if self.stopping else None
        if stop:
            return Decision(None, stop_reason=stop)
        if not data.n_patients:
            return Decision(self.start_dose, bound_by=("start_dose",))
        return self.rule.choose(self.posterior(data), data)

    def recommend(self, data: TrialData) -> Decision:
        """Recommend a dose after a trial: the rule's dose given all the data.

        Seed 001 takes the dose given to the last patient, ``x_N``, as the estimate of the
        MTD; this is the dose the design would give next, ``x_{N+1}``, which uses the last
        cohort's responses too. A trial stopped by ``stopping`` recommends no dose.
        """
        if not isinstance(data, TrialData):
            raise TypeError(f"MTDQuantileDesign needs a TrialData, got {type(data).__name__}")
        stop = self.stopping.reason(data) if self.stopping else None
        if stop:
            return Decision(None, stop_reason=stop)
        return self.rule.choose(self.posterior(data), data)

    def describe(self) -> dict[str, float | int | str | bool | None]:
        """Flat record of the design's parameters (for simulation results)."""
        rule = self.rule
        record: dict[str, float | int | str | bool | None] = {
            "name": "MTDQuantileDesign",
            "model": "ThreePND",
            **self.model.parameters(),
            "alpha": rule.alpha,
            "dose_levels": ",".join(f"{v:g}" for v in rule.dose_levels)
            if rule.dose_levels
            else None,
            "rounding": rule.rounding,
            "monotone": rule.monotone,
            "max_increment": rule.max_increment,
            "start_dose": self.start_dose,
            "cohort_size": self.cohort_size,
            "sample_size": self.sample_size,
            "stopping_threshold": self.stopping.threshold if self.stopping else None,
            "stopping_max_toxicities": self.stopping.max_toxicities if self.stopping else None,
            "engine": self.engine,
        }
        if self.engine != "quadrature":
            record |= {
                "draws": self.draws,
                "tune": self.tune,
                "chains": self.chains,
                "random_seed": self.random_seed,
            }
        return record
