"""The layout of simulation results, shared by both engines and by the store.

A simulation's result is one `xarray.Dataset` with dims ``trial``, ``patient`` and
``decision``, and ``dose_column`` for drug combinations (see `dosezoo.simulate.simulate` for
its variables). Both engines, the per-trial
one (`dosezoo.simulate.engine`) and the lockstep one (`dosezoo.simulate.lockstep`), fill the
same padded arrays of a batch of trials (`_Batch`, shaped by the `_Layout` of the simulation),
from which `_assemble` builds the batch's Dataset; `_combine` gathers the batches into the
result. The names the results reserve are checked here too, so that a scenario's metric or a
decision's quantity cannot overwrite a variable.
"""

import functools
import hashlib
import importlib.util
from collections.abc import Collection, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr

from dosezoo import __version__

AttrValue = str | int | float
"""A netCDF-safe attribute value."""

_RESERVED = (
    "trial",
    "patient",
    "decision",
    "dose",
    "cohort",
    "n_patients",
    "stop_reason",
    "recommended_dose",
    "recommended_dose_stratum",
    "enrolled",
    "role",
)
#: Metrics the per-trial engine adds for a trial run in time (a design with backfill).
TIMED_METRICS = ("duration", "n_backfill", "n_turned_away")
_DECISION_TEXT = ("stop_reason", "bound_by", "kind")
_OPTIONAL_PACKAGES = ("pymc", "pytensor", "arviz")


class _Layout(NamedTuple):
    """Shape of the result of one simulation, shared by every batch.

    ``dose_columns`` are those of the scenario's data: with more than one (a drug
    combination), every dose carries a trailing ``dose_column`` dimension. ``covariates`` are
    recorded per patient like the outcomes. A ``timed`` simulation (a design with backfill)
    records each patient's ``enrolled`` time and ``role`` too.
    """

    outcomes: tuple[str, ...]
    sample_size: int
    n_decisions: int
    fingerprint: dict[str, AttrValue]
    dose_columns: tuple[str, ...] = ("dose",)
    covariates: tuple[str, ...] = ()
    timed: bool = False

    @property
    def dose_shape(self) -> tuple[int, ...]:
        """Trailing shape of one dose: () for one dose column, (J,) for a combination."""
        return () if len(self.dose_columns) == 1 else (len(self.dose_columns),)


class _Batch(NamedTuple):
    """The padded arrays of a batch of trials, from which `_assemble` builds its Dataset."""

    dose: np.ndarray
    """(trial, patient[, dose_column]) floats, NaN past a trial's last patient."""
    cohort: np.ndarray
    """(trial, patient) int64, -1 past a trial's last patient."""
    outcomes: dict[str, np.ndarray]
    """Each outcome, (trial, patient) floats, NaN past a trial's last patient."""
    covariates: dict[str, np.ndarray]
    """Each covariate, (trial, patient) objects, None past a trial's last patient."""
    decision_dose: np.ndarray
    """(trial, decision[, dose_column]) floats, NaN for a stop, for a decision per stratum
    and past a trial's last decision."""
    decision_text: dict[str, np.ndarray]
    """``stop_reason``, ``bound_by`` and ``kind`` of each decision, (trial, decision), objects."""
    quantities: dict[str, np.ndarray]
    """Each decision quantity, (trial, decision) floats, in the order of first appearance."""
    metrics: dict[str, np.ndarray]
    """Each metric, (trial,) floats, in the order of first appearance."""
    n_patients: np.ndarray
    """(trial,) int64."""
    stop_reason: np.ndarray
    """(trial,) objects: the reason of the early stop, ``""`` for none."""
    recommended_dose: np.ndarray
    """(trial[, dose_column]) floats, NaN when nothing (or one dose per stratum) was
    recommended."""
    recommended_strata: dict[str, np.ndarray] | None = None
    """For recommendations per stratum: each stratum's recommended dose by its label
    (``"z1=0"``), (trial[, dose_column]) floats, in the order of first appearance."""
    enrolled: np.ndarray | None = None
    """For a timed simulation: (trial, patient) enrolment times, NaN past the last patient."""
    role: np.ndarray | None = None
    """For a timed simulation: (trial, patient) ``"escalation"`` / ``"backfill"`` objects,
    ``""`` past the last patient."""


def _check_metric_name(name: str, outcomes: Sequence[str]) -> None:
    """Raise ValueError if a metric's name would clash with a variable of the results.

    ``outcomes`` are the per-patient variables: the outcomes and the covariates.
    """
    if (
        name in _RESERVED
        or name in TIMED_METRICS
        or name in outcomes
        or name.startswith("decision_")
        or "," in name
    ):
        raise ValueError(
            f"scenario.trial_metrics: metric name {name!r} clashes with a variable of "
            "the results or contains a comma; rename it"
        )


def _check_quantity_key(key: str) -> None:
    """Raise ValueError if a decision quantity would clash with a ``decision_*`` variable."""
    if key == "dose" or key in _DECISION_TEXT:
        raise ValueError(
            f"decision quantity {key!r} clashes with the variable 'decision_{key}' "
            "of the results; rename it"
        )


def _empty_batch(n_trials: int, layout: _Layout) -> _Batch:
    """Return the arrays of a batch of ``n_trials`` trials, all padding (no quantity, no metric)."""
    patient_shape, decision_shape = (n_trials, layout.sample_size), (n_trials, layout.n_decisions)
    return _Batch(
        dose=np.full((*patient_shape, *layout.dose_shape), np.nan),
        cohort=np.full(patient_shape, -1, dtype=np.int64),
        outcomes={name: np.full(patient_shape, np.nan) for name in layout.outcomes},
        covariates={name: np.full(patient_shape, None, dtype=object) for name in layout.covariates},
        decision_dose=np.full((*decision_shape, *layout.dose_shape), np.nan),
        decision_text={key: np.full(decision_shape, "", dtype=object) for key in _DECISION_TEXT},
        quantities={},
        metrics={},
        n_patients=np.zeros(n_trials, dtype=np.int64),
        stop_reason=np.full(n_trials, "", dtype=object),
        recommended_dose=np.full((n_trials, *layout.dose_shape), np.nan),
        enrolled=np.full(patient_shape, np.nan) if layout.timed else None,
        role=np.full(patient_shape, "", dtype=object) if layout.timed else None,
    )


def _covariate_values(values: np.ndarray) -> np.ndarray:
    """Return padded covariate values as floats (NaN padding) if numeric, else as strings."""
    missing = np.array([value is None for value in values.ravel()], dtype=bool)
    missing = missing.reshape(values.shape)
    present = values[~missing]
    if all(isinstance(value, int | float | np.integer | np.floating) for value in present):
        return np.where(missing, np.nan, values).astype(float)
    return np.where(missing, "", values).astype(str)


def _assemble(batch: _Batch, trials: np.ndarray, layout: _Layout) -> xr.Dataset:
    """Build the Dataset of a batch (dims trial, patient, decision) from its arrays."""
    patient, decision = ("trial", "patient"), ("trial", "decision")
    component = ("dose_column",) if layout.dose_shape else ()
    variables: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        "dose": ((*patient, *component), batch.dose),
        "cohort": (patient, batch.cohort),
        **{name: (patient, values) for name, values in batch.outcomes.items()},
        **{name: (patient, _covariate_values(values)) for name, values in batch.covariates.items()},
        **({"enrolled": (patient, batch.enrolled)} if batch.enrolled is not None else {}),
        **({"role": (patient, batch.role.astype(str))} if batch.role is not None else {}),
        "decision_dose": ((*decision, *component), batch.decision_dose),
        **{
            f"decision_{key}": (decision, text.astype(str))
            for key, text in batch.decision_text.items()
        },
        **{f"decision_{key}": (decision, values) for key, values in batch.quantities.items()},
        "n_patients": (("trial",), batch.n_patients),
        "stop_reason": (("trial",), batch.stop_reason.astype(str)),
        "recommended_dose": (("trial", *component), batch.recommended_dose),
        **{name: (("trial",), values) for name, values in batch.metrics.items()},
    }
    coords = {"trial": np.asarray(trials, dtype=np.int64)}
    if component:
        coords["dose_column"] = np.array(layout.dose_columns, dtype=str)
    if batch.recommended_strata:
        variables["recommended_dose_stratum"] = (
            ("trial", "stratum", *component),
            np.stack(list(batch.recommended_strata.values()), axis=1),
        )
        coords["stratum"] = np.array(list(batch.recommended_strata), dtype=str)
    return xr.Dataset(
        variables,
        coords=coords,
        attrs={**layout.fingerprint, "metrics": ",".join(batch.metrics)},
    )


def _combine(parts: Sequence[xr.Dataset], n_trials: int, attrs: dict[str, AttrValue]) -> xr.Dataset:
    """Concatenate batches into one Dataset sorted by trial, checking every trial is there once.

    The result carries ``attrs`` (the fingerprint, with the packages' versions, and what the
    caller records) and the metrics of every batch.
    """
    joined = _join(parts)
    if not np.array_equal(joined["trial"].values, np.arange(n_trials)):
        raise RuntimeError(
            f"the batches hold {joined.sizes['trial']} trials, not each of the {n_trials} "
            "trials once; the simulation store is corrupt"
        )
    return joined.assign_attrs({**attrs, "metrics": joined.attrs["metrics"]})


def _layout_group(name: str, variable: xr.Variable, *, metrics: Collection[str]) -> int:
    """Return the group of a result variable in `_assemble`'s layout, by its dims (metrics by name).

    0: per patient; 1: per decision (the dose, the texts, the rule's quantities); 2: per
    trial (patients, stop reason, recommended dose); 3: the scenario's metrics; 4: per
    stratum.
    """
    if name in metrics:
        return 3
    along = variable.dims[1] if len(variable.dims) > 1 else None
    return {"patient": 0, "decision": 1, "stratum": 4}.get(str(along), 2)


def _join(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """Concatenate batches of one simulation into one Dataset sorted by trial.

    A variable missing from a batch (a quantity or metric none of its trials had) is NaN
    there; ``metrics`` names those of every batch, the other attributes are the first
    batch's. The arrays are concatenated with numpy and the Dataset built once:
    ``xr.concat`` of many small batches cost more than simulating them.
    """
    parts = sorted(parts, key=lambda part: int(part["trial"].values[0]))
    first_seen: dict[str, xr.Variable] = {}
    metrics: dict[str, None] = {}
    for part in parts:
        for name in part.data_vars:
            first_seen.setdefault(str(name), part.variables[name])
        metrics.update(dict.fromkeys(filter(None, part.attrs["metrics"].split(","))))
    # Each batch lays its variables out in `_assemble`'s groups, each group in order of first
    # appearance over its trials; over the batches, in trial order, that is the order of first
    # appearance over all trials, within each group. A variable no trial of the first batch
    # had joins its group, not the end: the order, so the file's bytes, do not depend on how
    # the trials were batched.
    templates = dict(
        sorted(first_seen.items(), key=lambda item: _layout_group(*item, metrics=metrics))
    )
    trials = np.concatenate([part["trial"].values for part in parts])
    if (
        len(parts) == 1
        and list(parts[0].data_vars) == list(templates)
        and bool(np.all(trials[1:] > trials[:-1]))
    ):
        # One batch, its trials in order and its variables in the layout's: rebuilding it
        # (a Dataset of some forty variables) cost about a tenth of a run of 500 BOIN trials.
        return parts[0].assign_attrs(metrics=",".join(metrics))
    order = np.argsort(trials, kind="stable")

    def values(part: xr.Dataset, name: str, template: xr.Variable) -> np.ndarray:
        if name in part.variables:
            return part.variables[name].values
        return np.full((part.sizes["trial"], *template.shape[1:]), np.nan)

    variables = {
        name: (
            template.dims,
            np.concatenate([values(part, name, template) for part in parts])[order],
        )
        for name, template in templates.items()
    }
    coords = {"trial": trials[order]}
    for name in ("dose_column", "stratum"):
        labels = [part[name].values for part in parts if name in part.coords]
        if labels and any(not np.array_equal(labels[0], other) for other in labels):
            raise RuntimeError(f"the batches disagree on the {name} coordinate")
        if labels:
            coords[name] = labels[0]
    return xr.Dataset(
        variables, coords=coords, attrs={**parts[0].attrs, "metrics": ",".join(metrics)}
    )


#: dosezoo's import packages: their modules and bundled data make its results.
_SOURCE_PACKAGES = ("dosezoo", "dosezoo.models", "dosezoo.samplers", "dosezoo.designs")


@functools.cache
def source_digest() -> str:
    """SHA-256 of dosezoo's source: every module and bundled data file of its packages.

    Part of a simulation's fingerprint (`dosezoo.simulate.store`): results and saved batches
    made by other source, another version or an edited one, belong to another simulation and
    are never resumed or returned as this one's. Read once per process (some 10 ms).
    """
    digest = hashlib.sha256()
    for package in _SOURCE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or ()) if spec else ():
            root = Path(folder)
            files = sorted(
                path
                for path in root.rglob("*")
                if path.suffix in (".py", ".csv") and "__pycache__" not in path.parts
            )
            for path in files:
                digest.update(f"{package}:{path.relative_to(root).as_posix()}\0".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _versions() -> dict[str, str]:
    """Versions of dosezoo and the packages that shape its results.

    Read once: every result asks, and reading a package's metadata costs some 20 ms (callers
    copy the dict into their attributes; do not modify it).
    """
    versions = {"version_dosezoo": __version__}
    for package in ("numpy", "xarray", "scipy", "numba", *_OPTIONAL_PACKAGES):
        try:
            versions[f"version_{package}"] = version(package)
        except PackageNotFoundError:
            if package not in _OPTIONAL_PACKAGES:
                raise
    return versions
