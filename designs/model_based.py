"""The conduct shared by the designs built on a binary-DLT model (CRM, BLRM, EWOC).

Such a design is a model, a rule that turns a :class:`~dosezoo.models.binary.DLTPosterior` into
a decision (``choose``) and a final selection (``select``), and the conduct: start dose, cohort
size, sample size and the engine that computes the posterior. ``engine="grid"`` (default)
computes the exact posterior on the model's grid; ``engine="nuts"`` fits the PyMC model, seeded
from ``random_seed`` and the data so that a decision is a deterministic function of the data,
and the rule refuses a fit that fails its convergence checks. ``decide(idata, data)`` applies
the same rule to any fit.
"""

import hashlib
from abc import ABC, abstractmethod
from typing import Literal

import numpy as np
import xarray as xr

from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.errors import ConvergenceError
from dosezoo.levels import positive_int, validate_start_dose
from dosezoo.models.binary import DLTPosterior, GridDoseModel

__all__ = ["ModelBasedDesign"]

DesignEngine = Literal["grid", "nuts"]


class ModelBasedDesign(ABC):
    """Base of the model-based binary designs (subclasses are frozen dataclasses).

    Subclasses hold ``model``, ``start_dose``, ``cohort_size``, ``sample_size``, ``engine``,
    ``draws``, ``chains``, ``random_seed`` and ``convergence``, call :meth:`_validate_conduct`
    from ``__post_init__``, and define :meth:`choose`, :meth:`select` and :meth:`describe`.
    """

    model: GridDoseModel
    start_dose: float | None
    cohort_size: int
    sample_size: int
    engine: DesignEngine
    draws: int
    chains: int
    random_seed: int
    convergence: ConvergenceCriteria

    @abstractmethod
    def choose(self, posterior: DLTPosterior, data: TrialData) -> Decision:
        """Decide the next dose (or a stop) from a posterior of the trial so far."""

    @abstractmethod
    def select(self, posterior: DLTPosterior, data: TrialData) -> Decision:
        """Select the dose to recommend at the end of a trial (or none, with the reason)."""

    @abstractmethod
    def describe(self) -> dict[str, float | int | str | bool | None]:
        """Return the design's parameters, flat (for simulation results)."""

    def _validate_conduct(self, owner: str, model_type: type) -> None:
        if not isinstance(self.model, model_type):
            raise TypeError(f"{owner}: model must be a {model_type.__name__}, got {self.model!r}")
        for name in ("cohort_size", "sample_size", "draws", "chains"):
            object.__setattr__(self, name, positive_int(owner, name, getattr(self, name)))
        seed = self.random_seed
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"{owner}: random_seed must be an integer >= 0, got {seed!r}")
        if self.cohort_size > self.sample_size:
            raise ValueError(
                f"{owner}: cohort_size {self.cohort_size} exceeds sample_size {self.sample_size}"
            )
        if self.engine not in ("grid", "nuts"):
            raise ValueError(f"{owner}: engine must be 'grid' or 'nuts', got {self.engine!r}")
        if not isinstance(self.convergence, ConvergenceCriteria):
            raise TypeError(
                f"{owner}: convergence must be a ConvergenceCriteria, got {self.convergence!r}"
            )
        levels = self.model.dose_levels
        object.__setattr__(self, "start_dose", validate_start_dose(owner, self.start_dose, levels))

    def _conduct_record(self) -> dict[str, float | int | str | bool | None]:
        record: dict[str, float | int | str | bool | None] = {
            "name": type(self).__name__,
            "model": self.model.model_name,
            "model_parameters": str(self.model.parameters()),
            "dose_levels": ",".join(f"{v:g}" for v in self.model.dose_levels),
            "start_dose": self.start_dose,
            "cohort_size": self.cohort_size,
            "sample_size": self.sample_size,
            "engine": self.engine,
        }
        if self.engine == "nuts":
            record |= {"draws": self.draws, "chains": self.chains, "random_seed": self.random_seed}
        return record

    def posterior(self, data: TrialData) -> DLTPosterior:
        """Compute the posterior of the trial so far by the design's engine."""
        if self.engine == "grid":
            return self.model.posterior(data)
        digest = hashlib.sha256(np.asarray(data.dose, float).tobytes())
        digest.update(np.asarray(data.column("dlt"), float).tobytes())
        seed = int.from_bytes(digest.digest()[:8], "little") ^ self.random_seed
        idata = self.model.fit(
            data, engine="nuts", draws=self.draws, chains=self.chains, random_seed=seed
        )
        return self._checked(DLTPosterior.from_idata(idata, self.convergence))

    def _checked(self, posterior: DLTPosterior) -> DLTPosterior:
        if posterior.report is not None and not posterior.report.ok:
            raise ConvergenceError(
                f"{type(self).__name__} will not act on this fit: "
                + "; ".join(posterior.report.failures)
            )
        return posterior

    def decide(self, idata: xr.DataTree, data: TrialData) -> Decision:
        """Decide the next dose from a fit of the trial so far (any engine).

        Parameters
        ----------
        idata : xarray.DataTree
            A fit of the design's model to ``data``.
        data : TrialData
            The trial so far.

        Returns
        -------
        Decision

        Raises
        ------
        ConvergenceError
            If the fit fails the design's convergence criteria.
        """
        return self.choose(self._checked(DLTPosterior.from_idata(idata, self.convergence)), data)

    def next(self, data: TrialData) -> Decision:
        """Decide the dose of the next cohort, or to stop the trial.

        Parameters
        ----------
        data : TrialData
            The trial so far (may be empty: the first cohort gets ``start_dose``).

        Returns
        -------
        Decision
        """
        if not isinstance(data, TrialData):
            raise TypeError(f"{type(self).__name__} needs a TrialData, got {type(data).__name__}")
        if data.n_patients >= self.sample_size:
            return Decision(
                None, stop_reason=f"sample size reached: {data.n_patients} of {self.sample_size}"
            )
        if not data.n_patients:
            self.model.summarise(data)
            return Decision(self.start_dose, bound_by=("start_dose",))
        return self.choose(self.posterior(data), data)

    def recommend(self, data: TrialData) -> Decision:
        """Recommend a dose at the end of a trial (see :meth:`select`).

        Parameters
        ----------
        data : TrialData
            Every patient of the trial.

        Returns
        -------
        Decision
        """
        if not isinstance(data, TrialData):
            raise TypeError(f"{type(self).__name__} needs a TrialData, got {type(data).__name__}")
        return self.select(self.posterior(data), data)
