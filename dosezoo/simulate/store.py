"""The result store of a simulation: saved batches, their fingerprint, resumption.

With ``path``, `dosezoo.simulate.simulate` saves every finished batch of trials at once as a
netCDF part in the directory ``<path>.parts``, so a run that was killed resumes where it
stopped: only the missing trials are run. Every file carries the simulation's fingerprint (the
run settings and the descriptions of the design and the scenario), and a part or a finished
file with another fingerprint is refused rather than mixed in. Files are written under a
temporary name and then renamed, so a kill never leaves a half-written part.
"""

import numbers
import os
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from dosezoo.protocols import Design, Scenario
from dosezoo.simulate.layout import AttrValue

_RUN_KEYS = ("random_seed", "n_trials", "sample_size", "cohort_size")
_DESCRIBED_PREFIXES = ("design_", "scenario_")
_PART_GLOB = "trials-*.nc"


def _attr_value(value: object, name: str) -> AttrValue:
    """Convert a described parameter to a netCDF-safe attribute value."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{name} must be a str, int, float, bool or None; got {value!r}")


def _fingerprint(design: Design, scenario: Scenario, run: dict[str, int]) -> dict[str, AttrValue]:
    """Attributes that identify a simulation: run settings and both descriptions."""
    attrs: dict[str, AttrValue] = dict(run)
    for prefix, described in (("design", design.describe()), ("scenario", scenario.describe())):
        for key, value in described.items():
            attrs[f"{prefix}_{key}"] = _attr_value(value, f"{prefix}.describe()[{key!r}]")
    return attrs


def _same_value(a: AttrValue, b: AttrValue) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(a == b) or bool(np.isnan(a) and np.isnan(b))


def _check_fingerprint(attrs: dict, fingerprint: dict[str, AttrValue], path: Path) -> None:
    """Raise ValueError if stored attributes belong to another simulation."""
    stored = {
        key: value.item() if isinstance(value, np.generic) else value
        for key, value in attrs.items()
        if key in _RUN_KEYS or key.startswith(_DESCRIBED_PREFIXES)
    }
    differences = [
        f"{key}: stored {stored.get(key, 'nothing')!r}, now {fingerprint.get(key, 'nothing')!r}"
        for key in dict.fromkeys([*stored, *fingerprint])
        if key not in stored
        or key not in fingerprint
        or not _same_value(stored[key], fingerprint[key])
    ]
    if differences:
        raise ValueError(
            f"path {str(path)!r} holds a different simulation ({'; '.join(differences)}); "
            "choose another path or delete it"
        )


def _write_atomically(dataset: xr.Dataset, target: Path) -> None:
    """Write netCDF to a temporary name next to ``target``, then rename it."""
    temporary = target.with_name(f".{target.name}.tmp")
    dataset.to_netcdf(temporary, engine="h5netcdf")
    os.replace(temporary, target)


class _Store:
    """The netCDF file of a simulation and the directory of its saved batches."""

    def __init__(self, path: Path, fingerprint: dict[str, AttrValue]) -> None:
        self.path = path
        self.parts_dir = path.with_name(f"{path.name}.parts")
        self.fingerprint = fingerprint

    def finished(self) -> xr.Dataset | None:
        """Load the finished file of this simulation, if there is one."""
        if not self.path.exists():
            return None
        finished = xr.load_dataset(self.path, engine="h5netcdf")
        _check_fingerprint(finished.attrs, self.fingerprint, self.path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return finished

    def parts(self) -> list[xr.Dataset]:
        """Load the saved batches, checking they belong to this simulation."""
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.parts_dir.glob(".*.tmp"):
            stale.unlink()
        loaded = []
        for file in sorted(self.parts_dir.glob(_PART_GLOB)):
            part = xr.load_dataset(file, engine="h5netcdf").drop_encoding()
            _check_fingerprint(part.attrs, self.fingerprint, self.path)
            loaded.append(part)
        return loaded

    def save(self, part: xr.Dataset) -> None:
        """Save one finished batch at once."""
        trials = part["trial"].values
        _write_atomically(part, self.parts_dir / f"trials-{trials[0]:09d}-{trials[-1]:09d}.nc")

    def finish(self, result: xr.Dataset) -> None:
        """Write the combined results and remove the saved batches."""
        _write_atomically(result, self.path)
        shutil.rmtree(self.parts_dir)
