"""Trial simulation: run a design against a scenario many times, reproducibly.

The simulation engine never names a model: it sees a design and a scenario only through the
protocols of `dosezoo.protocols`. Its modules, one concern each:

- `dosezoo.simulate.runner`: `simulate`, which splits the trials into batches, runs them in
  process, on local worker processes (loky) or on a dask cluster, and gathers one
  `xarray.Dataset` with one entry per trial; its reproducibility guarantee (trial ``i`` draws
  only from child ``i`` of ``SeedSequence(random_seed)``); `simulate_designs`, several
  designs on the same trials, each trial run by every design in turn;
- `dosezoo.simulate.engine`: the per-trial engine, `run_trial` (one trial, any design and
  scenario, its decisions and metrics checked) and `TrialRecord`;
- `dosezoo.simulate.lockstep`: the lockstep engine for count rules (BOIN, 3+3) under level
  scenarios, identical results, many trials per array call;
- `dosezoo.simulate.layout`: the layout of the results shared by both engines (the padded
  arrays of a batch, its Dataset, the gathering of batches, the reserved names);
- `dosezoo.simulate.store`: the netCDF store of a run (saved batches, fingerprints, resumption,
  atomic writes);
- `dosezoo.simulate.netcdf`: the netCDF-4 file of the results, written in one pass with h5py
  (the file ``xarray.Dataset.to_netcdf`` writes, at a fraction of its cost);
- `dosezoo.simulate.summaries`: `operating_characteristics`, the metrics summarised with their
  Monte Carlo standard errors.
"""

from typing import TYPE_CHECKING

from dosezoo.lazy import attach

if TYPE_CHECKING:
    from dosezoo.simulate.engine import TrialRecord, run_trial
    from dosezoo.simulate.runner import simulate, simulate_designs
    from dosezoo.simulate.summaries import operating_characteristics


__all__ = [
    "TrialRecord",
    "operating_characteristics",
    "run_trial",
    "simulate",
    "simulate_designs",
]

#: Each name is imported from its module on first access (:mod:`dosezoo.lazy`).
__getattr__, __dir__ = attach(__name__, __file__)
