"""Cost of the result store: `simulate` of BOIN with and without ``path``.

For 2000 trials of BOIN (36 patients, cohorts of 3, Seno et al. 2025's scenario 13) on one
process, the wall time of ``simulate`` without ``path`` (the simulation) and with a fresh
``path`` (the simulation, every batch saved with its checksum in the manifest, the netCDF file
written once and the batches removed), each the median of ``--repeats`` runs in one warm
process (the first run of each, which imports h5py and compiles, is not counted). The page
gives the store's overhead, and the time spent saving the batches and writing the netCDF file,
as a fraction of the simulation, with the machine's load averages: figures from a busy machine
are noisy.

    .venv/bin/python benchmarks/bench_store.py [--trials 2000] [--repeats 5]
    .venv/bin/python benchmarks/bench_store.py --report-only
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import report
import xarray as xr

from dosezoo.designs.boin import boin_design
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import simulate, store

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
#: Scenario 13 of Seno et al. (2025), Table 1 (target 0.3).
P_TRUE = (0.05, 0.10, 0.25, 0.45, 0.60)
DATA = "store_overhead.json"


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure(n_trials: int, repeats: int) -> dict:
    design = boin_design(0.3, LEVELS)
    scenario = BinaryToxicityScenario(LEVELS, P_TRUE, 0.3, planned_sample_size=36)

    def plain() -> xr.Dataset:
        return simulate(design, scenario, n_trials, random_seed=1, progress=False)

    clock = {"netcdf": 0.0, "batches": 0.0}
    to_netcdf, save = xr.Dataset.to_netcdf, store._Store.save

    def timed(function, key):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                clock[key] += time.perf_counter() - started

        return run

    with tempfile.TemporaryDirectory() as folder:

        def stored(index: int) -> None:
            path = Path(folder) / f"run-{index}.nc"
            simulate(design, scenario, n_trials, random_seed=1, path=path, progress=False)

        plain()
        stored(-1)
        without = [_timed(plain) for _ in range(repeats)]
        xr.Dataset.to_netcdf = timed(to_netcdf, "netcdf")  # type: ignore[method-assign]
        store._Store.save = timed(save, "batches")  # type: ignore[method-assign]
        try:
            with_path = [_timed(lambda i=i: stored(i)) for i in range(repeats)]
        finally:
            xr.Dataset.to_netcdf = to_netcdf  # type: ignore[method-assign]
            store._Store.save = save  # type: ignore[method-assign]
    simulation, total = statistics.median(without), statistics.median(with_path)
    netcdf, batches = clock["netcdf"] / repeats, clock["batches"] / repeats
    return {
        "n_trials": n_trials,
        "repeats": repeats,
        "simulation_seconds": simulation,
        "with_path_seconds": total,
        "netcdf_write_seconds": netcdf,
        "overhead_ratio": (total - simulation) / simulation,
        "batches_seconds": batches,
        "batches_ratio": batches / simulation,
        "netcdf_ratio": netcdf / simulation,
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def write_report(results: dict) -> Path:
    load = ", ".join(f"{value:.2f}" for value in results["load_average"])
    body = f"""
`simulate(boin_design(0.3, {list(LEVELS)}), BinaryToxicityScenario(..., {list(P_TRUE)}),
{results["n_trials"]}, random_seed=1)` on one process; medians of {results["repeats"]} runs.

| | seconds | fraction of the simulation |
|---|---|---|
| simulation (no `path`) | {results["simulation_seconds"]:.3f} | 1 |
| with `path` (total) | {results["with_path_seconds"]:.3f} | {1 + results["overhead_ratio"]:.3f} |
| store overhead | {results["with_path_seconds"] - results["simulation_seconds"]:.3f} \
| {results["overhead_ratio"]:.3f} |
| saving the batches (encode, checksum, write, manifest; mean per run) | \
{results["batches_seconds"]:.3f} | {results["batches_ratio"]:.3f} |
| writing the netCDF file once (mean per run) | {results["netcdf_write_seconds"]:.3f} \
| {results["netcdf_ratio"]:.3f} |

Load averages (1, 5, 15 min) at the end: {load} on {results["cpu_count"]} CPUs
(Python {results["python"]}).
"""
    return report.write_page(
        "store_overhead",
        "Cost of the result store (BOIN, with and without path)",
        body,
        make="bench-store",
        runs=["bench_store.py"],
        rebuild="bench_store.py --report-only",
        data=[DATA],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    data = report.RESULTS / DATA
    if args.report_only:
        results = json.loads(data.read_text())
    else:
        results = measure(args.trials, args.repeats)
        data.write_text(json.dumps(results, indent=2) + "\n")
    print(write_report(results))


if __name__ == "__main__":
    main()
